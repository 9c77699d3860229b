"""Lenient field readers for upstream JSON: the one way the clients read a value they do not trust.

Upstreams omit null properties (slskd) or strip fields (Spotify Development Mode apps), so a
client reads every field through these: a value of the wrong type counts as absent, and no
reader raises, whatever JSON it is given (NaN and infinities included, which Python's parser
accepts). A payload whose overall shape is wrong is refused with `expect`, which raises
`UpstreamRejected`: that, or a dataclass, is all a parser may return.
"""

from __future__ import annotations

import math
from typing import Any

from .errors import UpstreamRejected


def as_str(value: object, default: str = "") -> str:
    return value if isinstance(value, str) else default


def as_opt_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def as_int(value: object, default: int = 0) -> int:
    number = as_opt_int(value)
    return default if number is None else number


def as_opt_int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return int(value)


def as_float(value: object, default: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    try:
        number = float(value)
    except OverflowError:  # an integer beyond float range
        return default
    return number if math.isfinite(number) else default


def as_bool(value: object, default: bool = False) -> bool:
    """Only JSON `true` and `false` count; `"true"`, 1 and the like are absent."""
    return value if isinstance(value, bool) else default


def as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def dicts(value: object) -> list[dict[str, Any]]:
    """The objects in a JSON array; anything else in it (nulls, strings) is skipped."""
    return [item for item in as_list(value) if isinstance(item, dict)]


def expect(payload: object, kind: type, what: str, service: str) -> Any:
    """`payload` when it is of `kind` (dict or list), else UpstreamRejected naming `what`."""
    if not isinstance(payload, kind):
        raise UpstreamRejected(f"{service} sent an unexpected {what} payload", service=service)
    return payload
