"""Section 5: one argon2id hash at the configured cost: its time and its peak memory.

Run alone: ``python -m bench.hashing [out.json]``. The memory is measured in a fresh process
(argon2's buffer is a C allocation that tracemalloc does not see): the peak resident set
(VmHWM) after importing argon2 and building the hasher, then after the first hash.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import emit

ROUNDS = 20
PASSWORD = "correct horse battery staple 42"


def configured() -> dict[str, int]:
    """The cost deployed stages set in .chalice/config.json (prod), else the code's default."""
    from chalicelib.domain.passwords import HashParameters

    default = HashParameters()
    found = {
        "memory_kib": default.memory_kib,
        "time_cost": default.time_cost,
        "parallelism": default.parallelism,
    }
    config = Path(__file__).resolve().parent.parent / ".chalice" / "config.json"
    try:
        stages = json.loads(config.read_text())["stages"]
    except (OSError, ValueError, KeyError):
        return found
    variables = stages.get("prod", {}).get("environment_variables", {})
    for key, name in (
        ("memory_kib", "ARGON2_MEMORY_KIB"),
        ("time_cost", "ARGON2_TIME_COST"),
        ("parallelism", "ARGON2_PARALLELISM"),
    ):
        if name in variables:
            found[key] = int(variables[name])
    return found


def _high_water_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(params: dict[str, int]) -> dict[str, Any]:
    """In a fresh interpreter: memory first (one hash), then the timings."""
    from chalicelib.domain.passwords import HashParameters, hash_password, verify_password

    cost = HashParameters(params["memory_kib"], params["time_cost"], params["parallelism"])
    hash_password("warm the imports and the hasher", HashParameters(8, 1, 1))
    before = _high_water_kib()
    stored = hash_password(PASSWORD, cost)
    after = _high_water_kib()
    hashes, verifies, hash_cpu = [], [], []
    for _ in range(ROUNDS):
        started, started_cpu = time.perf_counter(), time.process_time()
        hash_password(PASSWORD, cost)
        hashes.append(time.perf_counter() - started)
        hash_cpu.append(time.process_time() - started_cpu)
        started = time.perf_counter()
        verify_password(stored, PASSWORD, cost)
        verifies.append(time.perf_counter() - started)
    return {
        "parameters": params,
        "rounds": ROUNDS,
        "hash_ms_median": round(statistics.median(hashes) * 1000, 1),
        "verify_ms_median": round(statistics.median(verifies) * 1000, 1),
        "hash_ms_min": round(min(hashes) * 1000, 1),
        "hash_cpu_ms_median": round(statistics.median(hash_cpu) * 1000, 1),
        "peak_rss_before_kib": before,
        "peak_rss_after_kib": after,
        "peak_rss_delta_kib": after - before,
    }


def run() -> dict[str, Any]:
    params = configured()
    out = subprocess.run(
        [sys.executable, "-m", "bench.hashing", "--child", json.dumps(params)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    return json.loads(out.stdout)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(child(json.loads(sys.argv[2]))))
        return
    emit(run())


if __name__ == "__main__":
    main()
