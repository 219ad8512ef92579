"""One cold start, as Lambda does it: import a package's ``app``, then answer one event.

Run by bench.coldstart as ``python -S -B bench/coldchild.py SPEC`` in a bare interpreter (no
site-packages, no bytecode written); SPEC is JSON with ``app_dir``, ``runtime_dir`` and
``event``. Prints one JSON line: milliseconds to import and to answer (wall and CPU time), the
status, and the peak resident memory. Only the standard library may be imported here before the app.
"""

import json
import sys
import time


class LambdaContext:
    """The few attributes a handler may read from Lambda's context object."""

    function_name = "cold-start"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:cold-start"
    log_group_name = "/aws/lambda/cold-start"
    log_stream_name = "cold-start"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def _high_water_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def main() -> None:
    spec = json.loads(sys.argv[1])
    del sys.path[0]  # this script's own folder
    # Lambda's order: the function's code first, then the runtime's packages, then the stdlib.
    sys.path[:0] = [spec["app_dir"], spec["runtime_dir"]]
    started, started_cpu = time.perf_counter(), time.process_time()
    import app as package

    imported, imported_cpu = time.perf_counter(), time.process_time()
    imported_modules = len(sys.modules)
    response = package.app(spec["event"], LambdaContext())
    answered, answered_cpu = time.perf_counter(), time.process_time()
    print(
        json.dumps(
            {
                "import_ms": (imported - started) * 1000,
                "first_request_ms": (answered - imported) * 1000,
                "import_cpu_ms": (imported_cpu - started_cpu) * 1000,
                "first_request_cpu_ms": (answered_cpu - imported_cpu) * 1000,
                "status": response.get("statusCode"),
                "modules_after_import": imported_modules,
                "modules_after_request": len(sys.modules),
                "peak_rss_kib": _high_water_kib(),
            }
        )
    )


if __name__ == "__main__":
    main()
