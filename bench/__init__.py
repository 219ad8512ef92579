"""Benchmarks (measurements, never assertions): ``python -m bench`` or ``make bench``."""

from __future__ import annotations

import json
import sys
from typing import Any


def emit(result: Any) -> None:
    """A section's figures as JSON: into the file its first argument names, else (or for ``-``)
    on stdout."""
    text = json.dumps(result, indent=2)
    if len(sys.argv) > 1 and sys.argv[1] != "-":
        with open(sys.argv[1], "w") as out:
            out.write(text)
    else:
        print(text)
