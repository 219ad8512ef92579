"""Section 4: a warm ``GET /users/{id}`` against a bare PynamoDB get of the same item.

Run alone: ``python -m bench.warm [out.json]``. One process, one moto backend, the two calls
alternated so that drift (GC, caches, CPU frequency) hits both alike; nothing here counts calls.
Also timed, for the breakdown: the store layer's own get (our full model, no HTTP layer).
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench import emit, env

env.configure()

WARMUP = 50
ROUNDS = 600


def _bare_model(table: str) -> Any:
    """What a hello-world app would declare: the key and one attribute."""
    from pynamodb.attributes import UnicodeAttribute
    from pynamodb.models import Model

    class BareUser(Model):
        class Meta:
            table_name = table
            region = env.REGION

        id = UnicodeAttribute(hash_key=True)
        email = UnicodeAttribute(null=True)

    return BareUser


def _log_to(sink: Any) -> None:
    from chalicelib.logs import logger

    logging.disable(logging.NOTSET)
    for handler in logger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sink)


def _timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """Wall and CPU seconds (moto is in-process: CPU time is the work, whatever else runs)."""
    started, started_cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - started, time.process_time() - started_cpu


def run() -> dict[str, Any]:
    from chalice.test import Client

    from app import app
    from chalicelib.bootstrap import services
    from chalicelib.config import get_settings
    from tests.support import Api

    with (
        env.moto_backend(),
        Client(app, stage_name="bench") as client,
        open(os.devnull, "w") as sink,
    ):
        api = Api(client)
        api.create_user("ada", "ada@example.com", note="warm overhead")
        # As deployed: the app writes one JSON log line per request (here into /dev/null).
        _log_to(sink)
        bare = _bare_model(get_settings().users_table)
        repository = services().store.users

        def through_app() -> None:
            reply = api.get("/users/ada")
            if reply.status != 200:
                raise RuntimeError(reply.body)

        def bare_get() -> None:
            bare.get("ada", consistent_read=True)

        def store_get() -> None:
            repository.get("ada")

        calls = {"app": through_app, "bare": bare_get, "store": store_get}
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
        medians = {name: statistics.median(values) * 1000 for name, values in samples.items()}
        cpu_medians = {name: statistics.median(values) * 1000 for name, values in cpu.items()}
        return {
            "rounds": ROUNDS,
            "median_ms": {k: round(v, 3) for k, v in medians.items()},
            "p90_ms": {
                k: round(statistics.quantiles(v, n=10)[-1] * 1000, 3) for k, v in samples.items()
            },
            "ratio_app_over_bare": round(medians["app"] / medians["bare"], 3),
            "ratio_store_over_bare": round(medians["store"] / medians["bare"], 3),
            "cpu_median_ms": {k: round(v, 3) for k, v in cpu_medians.items()},
            "cpu_ratio_app_over_bare": round(cpu_medians["app"] / cpu_medians["bare"], 3),
            "cpu_ratio_store_over_bare": round(cpu_medians["store"] / cpu_medians["bare"], 3),
        }


def main() -> None:
    emit(run())


if __name__ == "__main__":
    main()
