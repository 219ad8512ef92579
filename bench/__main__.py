"""``python -m bench`` (``make bench``): every benchmark, a table, and bench/results.json.

Each section runs in its own interpreter (``python -m bench.<section> <json>``) so that one's
hooks, caches and memory never touch another's timings. ``--only operations,warm`` runs some.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
SECTIONS = (
    "operations",
    "scaling",
    "console_list",
    "coldstart",
    "warm",
    "hashing",
    "forged_tokens",
    "relay",
    "devserver",
)


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model or platform.processor(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def run_section(name: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{name}.json"
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", f"bench.{name}", str(out)],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
        if done.returncode != 0 or not out.exists():
            sys.stderr.write(done.stdout[-3000:] + done.stderr[-5000:])
            raise SystemExit(f"bench.{name} failed (exit {done.returncode})")
        result = json.loads(out.read_text())
    result["seconds"] = round(seconds, 1)
    return result


# -- the tables --------------------------------------------------------------------------------


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(c) for c in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _units(value: float) -> str:
    return f"{value:g}"


def show_operations(data: dict[str, Any]) -> str:
    rows = []
    for row in data["rows"]:
        target = row.get("target")
        if "not_built" in row:
            rows.append([row["operation"], "not yet built", "", "", "", row["minimum"], "", ""])
            continue
        met = "" if target is None else ("yes" if row["requests"] <= target else "NO")
        rows.append(
            [
                row["operation"],
                row["requests"],
                "" if target is None else f"{target} {met}",
                _units(row["read_units"]),
                f"{_units(row['write_units'])} ({_units(row['index_write_units'])})",
                row["minimum"],
                f"{row['ratio']:.2f}",
                row["sequence"],
            ]
        )
    headers = [
        "operation",
        "requests",
        "target (issue 16)",
        "RCU",
        "WCU (index)",
        "min",
        "ratio",
        "requests made",
    ]
    return "1. DynamoDB cost per operation\n" + _table(headers, rows)


def show_scaling(data: dict[str, Any]) -> str:
    rows = []
    for size in data["sizes"]:
        sweep = size["sweep"]
        rows.append(
            [
                f"{size['users']:,}",
                sweep["expired_links"],
                sweep["expired_by_sweep"],
                sweep["due_index_items_read"],
                f"{sweep['read_over_expired']:.2f}",
                sweep["requests"],
                size["list_page_100"]["items_read"],
                size["filter_email_eq"]["items_read"],
            ]
        )
    headers = [
        "users",
        "expired",
        "swept",
        "sweep items read",
        "read/expired",
        "sweep requests",
        "$top=100 items read",
        "email eq items read",
    ]
    return "2. Scaling\n" + _table(headers, rows)


def show_console_list(data: dict[str, Any]) -> str:
    rows = []
    for name, pages in data["orders"].items():
        rows.append(
            [name]
            + [
                f"{pages[p]['items_read']} items, {pages[p]['requests']} req"
                for p in ("first_page", "next_page", "previous_page")
            ]
        )
    for name, page in data["filters"].items():
        rows.append([name, f"{page['items_read']} items, {page['requests']} req", "", ""])
    whole = data["console_page_registered_desc"]
    rows.append(["whole console page", f"{whole['items_read']} items, {whole['requests']} req"])
    rows[-1] += ["", ""]
    headers = ["Users list, 20 a page", "first page", "next page", "previous page"]
    title = f"2b. The console's Users list at {data['users']:,} users (DynamoDB reads per page)"
    return title + "\n" + _table(headers, rows)


def show_coldstart(data: dict[str, Any]) -> str:
    rows = []
    for name, v in data["variants"].items():
        ours, hello = v["ours"], v["hello"]
        rows.append(
            [
                name,
                ours["import_ms"],
                hello["import_ms"],
                f"{v['ratio_import']:.2f}",
                ours["import_and_first_request_ms"],
                hello["import_and_first_request_ms"],
                f"{v['ratio_import_and_first_request']:.2f}",
                f"{v['ratio_import_cpu']:.2f} / {v['ratio_import_and_first_request_cpu']:.2f}",
                f"{ours['zip_bytes'] / 2**20:.1f} / {hello['zip_bytes'] / 2**20:.1f}",
            ]
        )
    headers = [
        "package",
        "import ms",
        "hello",
        "ratio",
        "import+1st request ms",
        "hello",
        "ratio",
        "CPU-time ratios",
        "zip MiB ours/hello",
    ]
    lines = [
        f"3. Cold start (medians of {data['runs_per_app']} starts each)",
        _table(headers, rows),
    ]
    if "goal" in data:
        goal = data["goal"]
        lines.append(
            f"goal, ours as shipped / hello as packaged, import+1st request: {goal['ratio']:.2f} "
            f"({goal['ours_ms']} / {goal['hello_ms']} ms; pair by pair "
            f"{goal['paired_ratio']:.2f}), CPU time {goal['ratio_cpu']:.2f}"
        )
    for name, cost in data.get("ssm_client", {}).items():
        extra = cost["boto3_extra_first_request"]
        lines.append(
            f"SSM client by boto3 instead of botocore ({name}): {extra['ms']:+} ms "
            f"(CPU {extra['cpu_ms']:+} ms) on the first request"
        )
    return "\n".join(lines)


def show_warm(data: dict[str, Any]) -> str:
    m, c = data["median_ms"], data["cpu_median_ms"]
    rows = [
        [
            "GET /users/{id} through chalice.test.Client",
            m["app"],
            f"{data['ratio_app_over_bare']:.2f}",
            c["app"],
            f"{data['cpu_ratio_app_over_bare']:.2f}",
        ],
        [
            "our store layer's get",
            m["store"],
            f"{data['ratio_store_over_bare']:.2f}",
            c["store"],
            f"{data['cpu_ratio_store_over_bare']:.2f}",
        ],
        ["bare PynamoDB get", m["bare"], "1.00", c["bare"], "1.00"],
    ]
    headers = ["call", "median ms", "ratio", "CPU ms", "CPU ratio"]
    return f"4. Warm overhead (medians of {data['rounds']})\n" + _table(headers, rows)


def show_hashing(data: dict[str, Any]) -> str:
    p = data["parameters"]
    rows = [
        [
            f"argon2id m={p['memory_kib']} KiB t={p['time_cost']} p={p['parallelism']}",
            data["hash_ms_median"],
            data["hash_cpu_ms_median"],
            data["verify_ms_median"],
            f"{data['peak_rss_delta_kib'] / 1024:.1f}",
        ]
    ]
    headers = ["parameters", "hash ms", "hash CPU ms", "verify ms", "peak RSS +MiB"]
    return f"5. Password hashing (medians of {data['rounds']})\n" + _table(headers, rows)


def show_forged_tokens(data: dict[str, Any]) -> str:
    m, c = data["median_ms"], data["cpu_median_ms"]
    rows = [[name, m[name], c[name], data["p90_ms"][name]] for name in m]
    headers = ["forged token on GET /me naming", "median ms", "CPU ms", "p90 ms"]
    return (
        f"6. Forged user tokens (medians of {data['rounds']}; "
        f"ratio {data['ratio_existing_over_unknown']:.2f}; "
        f"{data['token_refused_events_for_the_existing_id']} audit events "
        f"for {data['forged_requests']} forgeries)\n" + _table(headers, rows)
    )


def show_relay(data: dict[str, Any]) -> str:
    rows = [
        [
            "invitation, SES instant / SES after 1 s",
            f"{data['invitation_ms_instant_ses']} / {data['invitation_ms_slow_ses']}",
            f"{data['invitation_ratio_slow_over_instant']:.2f} (goal <= 1.2)",
        ],
        [
            "its email delivered after (from the request)",
            f"{data['delivery_ms_instant_ses']} / {data['delivery_ms_slow_ses']}",
            "",
        ],
        [
            "reset request, account exists / unknown (SES 1 s)",
            f"{data['reset_ms_existing']} / {data['reset_ms_unknown']}",
            f"{data['reset_ratio_existing_over_unknown']:.2f}",
        ],
    ]
    b = data["burst"]
    burst = (
        f"burst: {b['invitations']} invitations at {b['rate_limit_per_second']}/s: "
        f"{b['delivered_addresses']} delivered, {b['delivered_more_than_once']} twice, "
        f"{b['lost']} lost, {b['throttled_by_ses']} throttled by SES; requests took "
        f"{b['requests_seconds']} s, last delivery at {b['last_delivery_seconds']} s (goal 60)"
    )
    headers = ["request (medians, ms)", "ms", "ratio"]
    return "7. The request path and SES\n" + _table(headers, rows) + "\n" + burst


def show_devserver(data: dict[str, Any]) -> str:
    rows = [
        [page, data[page]["kept_alive_ms"], data[page]["new_connection_ms"]]
        for page in ("/portal.css", "/signin")
    ]
    headers = ["GET (medians, ms)", "kept-alive connection", "new connection"]
    return f"9. The dev server (medians of {data['rounds']})\n" + _table(headers, rows)


SHOW = {
    "operations": show_operations,
    "scaling": show_scaling,
    "console_list": show_console_list,
    "coldstart": show_coldstart,
    "warm": show_warm,
    "hashing": show_hashing,
    "forged_tokens": show_forged_tokens,
    "relay": show_relay,
    "devserver": show_devserver,
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--out", default=str(RESULTS), help="where the JSON figures go")
    args = parser.parse_args()
    wanted = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(wanted) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    started = time.perf_counter()
    # Sections not run keep their figures (and the saved "before" ones): --only re-measures some.
    out = Path(args.out)
    kept = json.loads(out.read_text()) if out.exists() else {}
    results: dict[str, Any] = {
        **kept,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_average_before": list(os.getloadavg()),
    }
    for name in wanted:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        results[name] = run_section(name)
        results[name]["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        print(SHOW[name](results[name]) + "\n", flush=True)
    results["load_average_after"] = list(os.getloadavg())
    results["seconds"] = round(time.perf_counter() - started, 1)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{results['seconds']} s in all; figures written to {args.out}")
    from bench.charts import draw

    for line in draw(results):
        print(f"chart, {line}")


if __name__ == "__main__":
    main()
