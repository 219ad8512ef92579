"""Section 6: a forged user token on ``GET /me``, naming an existing id against an unknown one.

Run alone: ``python -m bench.forged_tokens [out.json]``. One process, one moto backend, the two
requests alternated so that drift hits both alike. If the refusal took longer for an id that
exists, timing would tell an attacker which ids exist; the audit events the forgeries wrote are
counted too (each one would be a line in the console's activity).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import emit, env

env.configure()

WARMUP = 50
ROUNDS = 500


def _timed(fn: Callable[[], Any]) -> tuple[float, float]:
    started, started_cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - started, time.process_time() - started_cpu


def run() -> dict[str, Any]:
    from chalice.test import Client

    from app import app
    from chalicelib.domain.sas import compact_token
    from tests.support import Api

    expiry = datetime.now(UTC) + timedelta(days=1)
    with env.moto_backend(), Client(app, stage_name="bench") as client:
        api = Api(client)
        api.create_user("ada", "ada@example.com", password="a long enough passphrase")

        def forged_me(user_id: str) -> Callable[[], None]:
            header = "SharedAccessSignature " + compact_token(user_id, expiry, "a guessed key")

            def call() -> None:
                reply = client.http.get("/me", headers={"Authorization": header})
                if reply.status_code != 401:
                    raise RuntimeError(reply.body)

            return call

        calls = {"existing id": forged_me("ada"), "unknown id": forged_me("nobody-by-this-id")}
        samples: dict[str, list[float]] = {name: [] for name in calls}
        cpu: dict[str, list[float]] = {name: [] for name in calls}
        for _ in range(WARMUP):
            for fn in calls.values():
                fn()
        order = list(calls)
        for i in range(ROUNDS):
            for name in order if i % 2 == 0 else reversed(order):
                wall, used = _timed(calls[name])
                samples[name].append(wall)
                cpu[name].append(used)
        events = api.get("/users/ada/events?$top=1000").json["value"]
        refused = sum(1 for e in events if e["action"] == "token.refused")
        medians = {k: statistics.median(v) * 1000 for k, v in samples.items()}
        return {
            "rounds": ROUNDS,
            "median_ms": {k: round(v, 3) for k, v in medians.items()},
            "p90_ms": {
                k: round(statistics.quantiles(v, n=10)[-1] * 1000, 3) for k, v in samples.items()
            },
            "cpu_median_ms": {k: round(statistics.median(v) * 1000, 3) for k, v in cpu.items()},
            "ratio_existing_over_unknown": round(medians["existing id"] / medians["unknown id"], 3),
            "forged_requests": ROUNDS + WARMUP,
            "token_refused_events_for_the_existing_id": refused,
            "load_average": list(os.getloadavg()),
        }


def main() -> None:
    emit(run())


if __name__ == "__main__":
    main()
