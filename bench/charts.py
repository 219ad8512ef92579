"""The charts of docs/performance.md, drawn from bench/results.json: ``python -m bench.charts``.

``make bench`` draws them after every run. Each chart shows only figures the JSON holds (its
"before" columns come from the sections saved as ``<section>_before``); a chart whose figures
are missing is skipped, and says so.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
DOCS = ROOT / "docs"
# The operations issue 16 set a target for, in the order of its table (name before, after).
TARGETED = [
    ("invite", "invite", "invite"),
    ("create user", "create user", "create user"),
    ("block", "block", "block"),
    ("delete", "delete", "delete"),
    ("send reset", "send reset", "send reset"),
    ("PATCH", None, "PATCH (a name)"),
    ("accept, page GET", None, "accept invitation, page GET"),
    ("accept, POST", "accept invitation", "accept invitation, POST"),
    ("sign-in", "sign-in", "sign-in"),
]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False})
    return plt


def _rows(section: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {r["operation"]: r for r in (section or {}).get("rows", []) if "requests" in r}


def request_counts(data: dict[str, Any], out: Path) -> str:
    before, after = _rows(data.get("operations_before")), _rows(data.get("operations"))
    if not after:
        return "request counts: no 'operations' figures"
    plt = _pyplot()
    labels, old, new, target = [], [], [], []
    for label, old_name, new_name in TARGETED:
        row = after.get(new_name)
        if row is None:
            continue
        labels.append(label)
        was = before.get(old_name) if old_name else None
        old.append(was["requests"] if was else 0)
        new.append(row["requests"])
        target.append(row.get("target") or row["minimum"])
    x = range(len(labels))
    fig, ax = plt.subplots(figsize=(8, 3.4))
    ax.bar([i - 0.2 for i in x], old, 0.4, label="before", color="#b0b0b0")
    ax.bar([i + 0.2 for i in x], new, 0.4, label="after", color="#2f6db5")
    ax.scatter(list(x), target, marker="_", s=600, color="#c0392b", label="target", zorder=3)
    ax.set_xticks(list(x), labels, rotation=20, ha="right")
    ax.set_ylabel("DynamoDB requests")
    ax.set_title("DynamoDB requests on the request path (0: not measured before)")
    ax.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return f"request counts: {out.name}"


def cold_start(data: dict[str, Any], out: Path) -> str:
    before, after = data.get("coldstart_before"), data.get("coldstart")
    if not before or not after or "goal" not in after:
        return "cold start: no 'coldstart' and 'coldstart_before' figures"
    plt = _pyplot()
    was = before["variants"]["as packaged"]
    goal = after["goal"]
    groups = ["wall ms", "CPU ms"]
    series = [
        (
            "ours before (as packaged)",
            [
                was["ours"]["import_and_first_request_ms"],
                was["ours"]["import_and_first_request_cpu_ms"],
            ],
            "#b0b0b0",
        ),
        ("ours after (as shipped)", [goal["ours_ms"], goal["ours_cpu_ms"]], "#2f6db5"),
        ("hello world (as packaged)", [goal["hello_ms"], goal["hello_cpu_ms"]], "#7f9f5f"),
    ]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    width = 0.26
    for n, (name, values, colour) in enumerate(series):
        ax.bar([i + (n - 1) * width for i in range(2)], values, width, label=name, color=colour)
    ax.set_xticks(range(2), groups)
    ax.set_ylabel("import + first request")
    ax.set_title("Cold start, medians (before: 1 December 03:40; after: paired runs)")
    ax.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return f"cold start: {out.name}"


def burst(data: dict[str, Any], out: Path) -> str:
    figures = (data.get("relay") or {}).get("burst")
    if not figures or not figures.get("delivered_by_second"):
        return "burst: no 'relay' figures"
    plt = _pyplot()
    delivered = figures["delivered_by_second"]
    rate = figures["rate_limit_per_second"]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(range(len(delivered)), delivered, color="#2f6db5", label="delivered")
    ax.plot(
        range(len(delivered)),
        [min(figures["invitations"], rate * s) for s in range(len(delivered))],
        color="#c0392b",
        linestyle="--",
        label=f"{rate} a second from the first request",
    )
    ax.axvline(60, color="#999999", linestyle=":", label="goal: last within 60 s")
    ax.set_xlabel("seconds since the first request")
    ax.set_ylabel("invitations delivered")
    ax.set_title(
        f"{figures['invitations']} invitations in a burst: last delivered at "
        f"{figures['last_delivery_seconds']} s"
    )
    ax.legend(frameon=False, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return f"burst: {out.name}"


def draw(data: dict[str, Any], docs: Path = DOCS) -> list[str]:
    return [
        request_counts(data, docs / "perf-request-counts.png"),
        cold_start(data, docs / "perf-cold-start.png"),
        burst(data, docs / "perf-burst.png"),
    ]


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS
    for line in draw(json.loads(source.read_text())):
        print(line)


if __name__ == "__main__":
    main()
