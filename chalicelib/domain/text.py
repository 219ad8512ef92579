"""Which characters ids and names may hold: what URLs, headers, emails and screens all carry."""

from __future__ import annotations

import unicodedata

# Controls (C0, DEL, C1), line and paragraph separators, and lone surrogates: never text.
_NEVER = frozenset({"Cc", "Zl", "Zp", "Cs"})
# Explicit direction embeddings, overrides and isolates (U+202A-202E, U+2066-2069) reorder what
# follows them on screen: "\u202egnp.exe" displays as "exe.png". Right-to-left scripts need none.
_DIRECTION_CONTROLS = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))
# URLs resolve these path segments away: /users/.. is the parent of /users.
_DOT_SEGMENTS = frozenset({".", ".."})


def id_characters_problem(value: str) -> str | None:
    """Why an id cannot be used in every URL and on every screen, or None.

    Besides controls, ids hold no format characters (category Cf: direction controls,
    zero-width spaces, the byte order mark), which would make two ids look alike or one id look
    like another; and neither ``.`` nor ``..``, which no URL can carry as a path segment.
    """
    if value in _DOT_SEGMENTS:
        return "The id cannot be . or .., which URLs resolve to the parent path."
    for char in value:
        category = unicodedata.category(char)
        if category in _NEVER or category == "Cf":
            return (
                f"The id cannot contain the invisible character U+{ord(char):04X} "
                "(a control, format or line-separator character)."
            )
    return None


def name_characters_problem(value: str) -> str | None:
    """Why a person's name cannot go into an email header or a page, or None.

    Names stay on one line (no CR, LF, NUL or other control) and hold no direction override;
    joiners such as U+200C, which some scripts spell words with, are fine.
    """
    for char in value:
        if unicodedata.category(char) in _NEVER or char in _DIRECTION_CONTROLS:
            return (
                f"The name cannot contain U+{ord(char):04X}: names are one line of text "
                "without control or direction-override characters."
            )
    return None
