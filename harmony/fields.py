"""Lenient field readers for upstream JSON: the one way the clients read a value they do not trust.

Upstreams omit null properties (slskd) or strip fields (Spotify Development Mode apps), so a
client reads every field through these: a value of the wrong type counts as absent.
"""

from __future__ import annotations

from typing import Any


def as_str(value: object, default: str = "") -> str:
    return value if isinstance(value, str) else default


def as_int(value: object, default: int = 0) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def as_opt_int(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
