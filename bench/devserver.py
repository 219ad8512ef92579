"""Section 9: the dev server's answer time, on a kept-alive connection and on new ones.

Run alone: ``python -m bench.devserver [out.json]``. Starts ``apim-users dev`` (its embedded
backend) on a free loopback port and asks ``ROUNDS`` times for a static page (the portal's
stylesheet: no DynamoDB call) and for the sign-in page, once on one kept-alive connection (as
browsers, requests' sessions and the SDKs do) and once on a new connection each time.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from bench import emit

ROUNDS = 200
PAGES = ("/portal.css", "/signin")


def _median_ms(ask: Any, url: str) -> float:
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        answer = ask(url)
        times.append(time.perf_counter() - started)
        answer.raise_for_status()
    return round(statistics.median(times) * 1000, 2)


def run() -> dict[str, Any]:
    from chalicelib.cli import free_port, stop_process, wait_for_http

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "chalicelib.cli", "dev", "--port", str(port)],
        cwd=Path(__file__).resolve().parent.parent,
        # Its own embedded backend, whatever this shell names.
        env={k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_http(port, timeout=60)
        base = f"http://127.0.0.1:{port}"
        kept = requests.Session()
        kept.get(base + PAGES[0]).raise_for_status()  # the connection, and the app, warmed once
        result: dict[str, Any] = {"rounds": ROUNDS}
        for page in PAGES:
            result[page] = {
                "kept_alive_ms": _median_ms(kept.get, base + page),
                "new_connection_ms": _median_ms(
                    lambda url: requests.get(url, headers={"Connection": "close"}), base + page
                ),
            }
        return result
    finally:
        stop_process(server)


def main() -> None:
    emit(run())


if __name__ == "__main__":
    main()
