"""Fault injection shared by a fake's HTTP server and its control API.

A `FaultTable` holds rules matched by method (optional) and path prefix, in insertion order.
The server (`server.py`) consults the table before handing a request to the WSGI app, so a rule
can act below HTTP: `drop` closes the connection without a response. Kinds:

- `status`: answer `status` with a body shaped like the service's real errors (`message` optional);
- `rate_limit`: answer 429 with `Retry-After: seconds` and the service's error body;
- `edge`: answer `status` (default 502) as a proxy in front of the service does: an HTML
  page, no `Retry-After`;
- `delay`: sleep `seconds` (at most 60), then answer normally;
- `drop`: read the request, then close the connection without writing anything.

`times` is how many requests a rule affects before it expires (`null` = until removed); `after`
is how many matching requests it lets through first (a failure halfway through a walk of pages).
Paths under `/_fake/` are never faulted, so tests can always reach the control API.

Control API (registered by `register()`): `GET /_fake/faults` lists the rules, `POST /_fake/faults`
adds one (`{"kind", "path", "method"?, "status"?, "message"?, "seconds"?, "times"?, "after"?}`) and returns it
with its `id`, `DELETE /_fake/faults` clears them all, `DELETE /_fake/faults/<id>` removes one.
`POST /_fake/clock` with `{"advance": seconds}` moves the fake clock.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from http import HTTPStatus
from typing import Any, NoReturn

import bottle

from harmony.fakes.clock import FakeClock

KINDS = ("status", "delay", "drop", "rate_limit", "edge")
MAX_DELAY = 60.0
CONTROL_PREFIX = "/_fake/"
DEFAULT_STATUS = {"rate_limit": 429, "edge": 502}

# (status, message) -> (body bytes, content type): the service's own error shape.
ErrorBody = Callable[[int, str], tuple[bytes, str]]


@dataclass
class Rule:
    """One fault. `times` counts down on every match; the rule expires when it reaches 0."""

    kind: str
    path: str = "/"
    method: str | None = None
    status: int = 500
    message: str = ""
    seconds: float = 1.0
    times: int | None = None
    after: int = 0
    id: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method.upper()) and path.startswith(self.path)


class FaultTable:
    """Thread-safe list of fault rules for one fake service.

    `error_body` renders the service's error bodies. `strip_prefix` (e.g. slskd's URL base) is
    removed from request paths before matching, so rules name the canonical paths.
    """

    def __init__(self, error_body: ErrorBody, *, strip_prefix: str = "") -> None:
        self.error_body = error_body
        self.strip_prefix = strip_prefix.rstrip("/")
        self._rules: list[Rule] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def add(self, rule: Rule) -> Rule:
        """Validate and append `rule`; raises ValueError on a bad rule."""
        if rule.kind not in KINDS:
            raise ValueError(f"unknown fault kind {rule.kind!r}; expected one of {', '.join(KINDS)}")
        if not rule.path.startswith("/"):
            raise ValueError("path must start with '/'")
        if not 100 <= rule.status <= 599:
            raise ValueError("status must be an HTTP status code")
        if rule.times is not None and rule.times < 1:
            raise ValueError("times must be at least 1 (or null for unlimited)")
        rule.seconds = max(float(rule.seconds), 0.0)
        if rule.kind == "delay":  # only a delay holds a thread; a Retry-After may be hours, as on Spotify
            rule.seconds = min(rule.seconds, MAX_DELAY)
        with self._lock:
            rule.id = next(self._ids)
            self._rules.append(rule)
        return rule

    def add_json(self, data: dict[str, Any]) -> Rule:
        """Build a rule from a control-API body; raises ValueError on unknown keys or bad values."""
        allowed = {"kind", "path", "method", "status", "message", "seconds", "times", "after"}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault keys: {', '.join(sorted(unknown))}")
        if "kind" not in data:
            raise ValueError("kind is required")
        try:
            rule = Rule(
                kind=str(data["kind"]),
                path=str(data.get("path", "/")),
                method=data.get("method"),
                status=int(data.get("status", DEFAULT_STATUS.get(str(data["kind"]), 500))),
                message=str(data.get("message", "")),
                seconds=float(data.get("seconds", 1.0)),
                times=None if data.get("times") is None else int(data["times"]),
                after=int(data.get("after", 0)),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"bad fault value: {exc}") from None
        return self.add(rule)

    def rules(self) -> list[Rule]:
        with self._lock:
            return list(self._rules)

    def remove(self, rule_id: int) -> bool:
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if r.id != rule_id]
            return len(self._rules) != before

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def take(self, method: str, path: str) -> Rule | None:
        """The first rule matching this request, counting one use of it; None if no rule applies."""
        if self.strip_prefix and path.startswith(self.strip_prefix + "/"):
            path = path[len(self.strip_prefix) :]
        if path.startswith(CONTROL_PREFIX):
            return None
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path) and rule.after > 0:
                    rule.after -= 1
                    return None
                if rule.matches(method, path):
                    if rule.times is not None:
                        rule.times -= 1
                        if rule.times == 0:
                            self._rules.remove(rule)
                    return rule
        return None

    def response(self, rule: Rule) -> tuple[int, list[tuple[str, str]], bytes]:
        """Status, headers and body for a `status`, `rate_limit` or `edge` rule."""
        if rule.kind == "edge":
            return rule.status, [("Content-Type", "text/html")], edge_page(rule.status)
        if rule.kind == "rate_limit":
            body, ctype = self.error_body(429, rule.message)
            retry_after = str(max(0, round(rule.seconds)))
            return 429, [("Content-Type", ctype), ("Retry-After", retry_after)], body
        body, ctype = self.error_body(rule.status, rule.message)
        headers = [("Content-Type", ctype)] if body else []
        return rule.status, headers, body


def edge_page(status: int) -> bytes:
    """The HTML error page a load balancer sends when the service behind it fails."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    title = f"{status} {reason}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()


def register(app: bottle.Bottle, table: FaultTable, clock: FakeClock) -> None:
    """Add the `/_fake/faults` and `/_fake/clock` control routes to `app`."""

    @app.get("/_fake/faults")
    def list_faults() -> dict[str, Any]:
        return {"faults": [asdict(r) for r in table.rules()]}

    @app.post("/_fake/faults")
    def add_fault() -> dict[str, Any]:
        try:
            rule = table.add_json(json_body())
        except ValueError as exc:
            control_error(400, str(exc))
        return asdict(rule)

    @app.delete("/_fake/faults")
    def clear_faults() -> dict[str, Any]:
        table.clear()
        return {"faults": []}

    @app.delete("/_fake/faults/<rule_id:int>")
    def remove_fault(rule_id: int) -> dict[str, Any]:
        if not table.remove(rule_id):
            control_error(404, "no such fault")
        return {"removed": rule_id}

    @app.post("/_fake/clock")
    def advance_clock() -> dict[str, Any]:
        data = json_body()
        try:
            now = clock.advance(float(data.get("advance", 0)))
        except (TypeError, ValueError) as exc:
            control_error(400, str(exc))
        return {"now": now, "iso": clock.utcnow().isoformat()}


def json_body() -> dict[str, Any]:
    """The request's JSON object body ({} when empty); 400 when it is not a JSON object."""
    raw = bottle.request.body.read()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        control_error(400, "body is not JSON")
    if not isinstance(data, dict):
        control_error(400, "body must be a JSON object")
    return data


def control_error(status: int, message: str) -> NoReturn:
    """Abort a control-API request with a small JSON error."""
    raise bottle.HTTPResponse(
        json.dumps({"error": message}), status, headers={"Content-Type": "application/json"}
    )
