"""moto's dispatch without its per-request inspection of the response class.

moto 5.2.5 lists the methods of the service's response class (``inspect.getmembers``) on every
request, to see whether the action is one of them: about a tenth of moto's own overhead for a
GetItem. A class's methods do not change while tests run, so ``install()`` keeps each class's list
after the first request; what moto dispatches to is unchanged.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

MOTO_VERSION = "5.2.5"
_installed = False


def install() -> bool:
    """Put the cache in (idempotent). False on another moto release, which keeps its own."""
    global _installed
    import moto
    import moto.core.responses as responses

    if _installed:
        return True
    if moto.__version__ != MOTO_VERSION:
        warnings.warn(
            f"tests/moto_dispatch.py was written for moto {MOTO_VERSION}, not "
            f"{moto.__version__}: moto inspects its response classes on every request",
            stacklevel=2,
        )
        return False
    listed: Any = functools.cache(responses.method_names_from_class)
    responses.method_names_from_class = lambda clazz: listed(clazz)
    _installed = True
    return True
