"""Section 7: what SES's speed does to a request, and a burst of invitations at SES's rate.

Run alone: ``python -m bench.relay [out.json]``. The app runs in-process (``chalice.test.Client``
against moto) with the outbox relay following the outbox stream in a thread beside it, as the
stream-triggered function runs beside the API in AWS (and in ``apim-users dev``).

- **Latency.** Invitations are made with a mailer that answers at once and with one that takes
  a second per message (SES on a bad day), in alternating blocks; each request is timed from
  the client, and each email's delivery from the start of its request.
- **Resets.** Self-service reset requests for addresses with an active account and for unknown
  ones, alternated, with the slow mailer: the response must not tell them apart. Timed at the
  endpoint with the response floor of public endpoints as deployed (400 ms), and the service's
  own work without it (``PasswordService.request`` called directly).
- **Burst.** 500 invitations through the API as fast as the client makes them, with a mailer
  that refuses (SES's Throttling) any send above 14 in the last second and a relay paced at 14
  a second, in real time: every message delivered once, and when the last one went out. Then
  the same with the relay run after the requests on a virtual clock (as tests/api/test_relay.py
  does): what the pacing alone allows, without this machine's CPU in the way.
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench import emit, env

env.configure()
# The reset endpoint as deployed: public answers are padded to this floor (config.py's default).
os.environ["PUBLIC_RESPONSE_FLOOR_MS"] = "400"

ROUNDS = 4  # alternating blocks: instant, slow, instant, slow, ...
PER_BLOCK = 8
RESETS = 24  # of each kind
BURST = 500
RATE = 14
SLOW_SECONDS = 1.0
INVITED = {"firstName": "Iris", "lastName": "Murdoch", "confirmation": "invite"}


class TimedMailer:
    """Answers after ``delay`` seconds; records when each address got its message."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.delivered: dict[str, float] = {}

    def send(self, email: Any) -> str:
        if self.delay:
            time.sleep(self.delay)
        self.delivered[email.to] = time.monotonic()
        return f"timed-{len(self.delivered)}"


@contextmanager
def relay_beside() -> Iterator[None]:
    """The relay following the outbox stream in a thread, every 50 ms, until the block ends."""
    from app import outbox_relay
    from chalicelib.relay import StreamFollower
    from tests.support import STREAMS_ENDPOINT

    follower = StreamFollower(outbox_relay, endpoint_url=STREAMS_ENDPOINT)
    follower.drain()  # what earlier steps left in the stream is not this block's
    stop = threading.Event()
    thread = threading.Thread(target=follower.follow, args=(stop, 0.05), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _wait_for(mailer: Any, addresses: list[str], limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and not all(a in mailer.delivered for a in addresses):
        time.sleep(0.05)


def _ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 2)


def latency(api: Any, client: Any) -> dict[str, Any]:
    from chalicelib.bootstrap import services
    from tests.support import from_address, wire

    timings: dict[str, list[float]] = {"instant": [], "slow": []}
    cpu: dict[str, list[float]] = {"instant": [], "slow": []}
    delivery: dict[str, list[float]] = {"instant": [], "slow": []}
    n = 0
    with relay_beside():
        for block in range(ROUNDS * 2):
            mode = "instant" if block % 2 == 0 else "slow"
            mailer = TimedMailer(0.0 if mode == "instant" else SLOW_SECONDS)
            wire(mailer=mailer)
            started: dict[str, float] = {}
            for _ in range(PER_BLOCK):
                n += 1
                address = f"lat{n:03d}@example.com"
                body = {"properties": {**INVITED, "email": address}}
                t0, c0 = time.monotonic(), time.process_time()
                reply = api.put(f"/users/lat{n:03d}", body)
                timings[mode].append(time.monotonic() - t0)
                cpu[mode].append(time.process_time() - c0)
                started[address] = t0
                if reply.status != 201:
                    raise RuntimeError(f"invitation answered {reply.status}")
            _wait_for(mailer, list(started), 60 + PER_BLOCK * SLOW_SECONDS)
            delivery[mode] += [mailer.delivered[a] - t for a, t in started.items()]

        # Resets: the slow mailer, accounts that exist (active) and addresses nobody has.
        mailer = TimedMailer(SLOW_SECONDS)
        wire(mailer=mailer)
        for i in range(RESETS):
            api.create_user(f"rst{i:03d}", f"rst{i:03d}@example.com")
        resets: dict[str, list[float]] = {"existing": [], "unknown": []}
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        for i in range(RESETS):
            for kind, address in (
                ("existing", f"rst{i:03d}@example.com"),
                ("unknown", f"nobody{i:03d}@example.com"),
            ):
                # One client address per request: the per-address limit is not what is measured.
                with from_address(
                    client, f"10.{i}.{len(resets[kind])}.{1 if kind == 'existing' else 2}"
                ):
                    t0 = time.monotonic()
                    reply = client.http.request(
                        "POST",
                        "/password-reset",
                        headers=headers,
                        body=json.dumps({"email": address}),
                    )
                    resets[kind].append(time.monotonic() - t0)
                if reply.status_code != 202:
                    raise RuntimeError(f"reset request answered {reply.status_code}")
        raw: dict[str, list[float]] = {"existing": [], "unknown": []}
        passwords = services().passwords
        for i in range(RESETS):
            for kind, address in (
                ("existing", f"rst{i:03d}@example.com"),
                ("unknown", f"nobody{i:03d}@example.com"),
            ):
                t0 = time.monotonic()
                passwords.request(address, f"10.200.{i}.{1 if kind == 'existing' else 2}")
                raw[kind].append(time.monotonic() - t0)
        _wait_for(mailer, [f"rst{i:03d}@example.com" for i in range(RESETS)], 60 + 2 * RESETS)
        reset_mails = sum(1 for a in mailer.delivered if a.startswith("rst"))
    instant, slow = _ms(timings["instant"]), _ms(timings["slow"])
    existing, unknown = _ms(resets["existing"]), _ms(resets["unknown"])
    return {
        "invitations_per_mode": len(timings["instant"]),
        "slow_seconds": SLOW_SECONDS,
        "invitation_ms_instant_ses": instant,
        "invitation_ms_slow_ses": slow,
        "invitation_ratio_slow_over_instant": round(slow / instant, 2),
        "invitation_cpu_ms_instant_ses": _ms(cpu["instant"]),
        "invitation_cpu_ms_slow_ses": _ms(cpu["slow"]),
        "delivery_ms_instant_ses": _ms(delivery["instant"]),
        "delivery_ms_slow_ses": _ms(delivery["slow"]),
        "resets_per_kind": RESETS,
        "reset_ms_existing": existing,
        "reset_ms_unknown": unknown,
        "reset_ratio_existing_over_unknown": round(existing / unknown, 2),
        "reset_p90_ms_existing": round(sorted(resets["existing"])[int(RESETS * 0.9)] * 1000, 2),
        "reset_p90_ms_unknown": round(sorted(resets["unknown"])[int(RESETS * 0.9)] * 1000, 2),
        "reset_emails_sent": reset_mails,
        "reset_floor_ms": 400,
        "reset_service_ms_existing": _ms(raw["existing"]),
        "reset_service_ms_unknown": _ms(raw["unknown"]),
    }


def burst(api: Any) -> dict[str, Any]:
    from chalicelib.bootstrap import services
    from tests.support import ThrottlingMailer, wire

    mailer = ThrottlingMailer(RATE, time.monotonic)
    wire(mailer=mailer, send_rate=RATE)
    addresses = [f"burst{n:03d}@example.com" for n in range(BURST)]
    load_before = os.getloadavg()[0]
    cpu0 = time.process_time()
    with relay_beside():
        t0 = time.monotonic()
        for n, address in enumerate(addresses):
            reply = api.put(f"/users/burst{n:03d}", {"properties": {**INVITED, "email": address}})
            if reply.status != 201:
                raise RuntimeError(f"invitation {n} answered {reply.status}")
        requests_done = time.monotonic() - t0
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and len({e.to for e in mailer.sent}) < BURST:
            time.sleep(0.1)
    cpu = time.process_time() - cpu0
    counts = Counter(email.to for email in mailer.sent)
    times = sorted(t - t0 for t in mailer.times)
    left = services().sweep.run().as_dict()
    return {
        "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0],
        "process_cpu_seconds": round(cpu, 1),
        "invitations": BURST,
        "rate_limit_per_second": RATE,
        "delivered_addresses": len(counts),
        "delivered_more_than_once": sum(1 for c in counts.values() if c > 1),
        "lost": len(set(addresses) - set(counts)),
        "throttled_by_ses": mailer.refused,
        "requests_seconds": round(requests_done, 2),
        "first_delivery_seconds": round(times[0], 2) if times else None,
        "last_delivery_seconds": round(times[-1], 2) if times else None,
        # Delivered by second since the first request: the chart's curve.
        "delivered_by_second": [sum(1 for t in times if t <= s) for s in range(int(times[-1]) + 2)]
        if times
        else [],
        "sweep_after": left,
    }


def paced(api: Any) -> dict[str, Any]:
    """The burst again, the relay run after the requests on a virtual clock: pacing alone."""
    from tests.support import ThrottlingMailer, VirtualTimer, relay, relay_paused, wire

    timer = VirtualTimer()
    mailer = ThrottlingMailer(RATE, timer.monotonic)
    wire(mailer=mailer, timer=timer, send_rate=RATE)
    relay()  # what earlier steps left in the stream
    with relay_paused():
        for n in range(BURST):
            address = f"paced{n:03d}@example.com"
            api.put(f"/users/paced{n:03d}", {"properties": {**INVITED, "email": address}})
    start = timer.monotonic()
    relay()
    counts = Counter(email.to for email in mailer.sent)
    return {
        "delivered_addresses": len(counts),
        "delivered_more_than_once": sum(1 for c in counts.values() if c > 1),
        "throttled_by_ses": mailer.refused,
        "last_delivery_virtual_seconds": round(max(mailer.times) - start, 2),
    }


def run() -> dict[str, Any]:
    from chalice.test import Client

    from app import app
    from tests.support import Api

    with env.moto_backend(), Client(app, stage_name="bench") as client:
        figures = latency(Api(client), client)
    with env.moto_backend(), Client(app, stage_name="bench") as client:
        figures["burst"] = burst(Api(client))
    with env.moto_backend(), Client(app, stage_name="bench") as client:
        figures["burst_paced_only"] = paced(Api(client))
    return figures


def main() -> None:
    emit(run())


if __name__ == "__main__":
    main()
