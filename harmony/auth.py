"""API keys: creation, lookup and roles. Owns the `api_keys` table.

A key looks like `hmy_<prefix>_<secret>`. Only its SHA-256 is stored; the prefix is stored in
clear so a key can be found and shown in listings without revealing it. Keys are random
(256 bits), so a plain hash is enough; the comparison is constant-time all the same.
Roles are ordered: `read` < `operator` < `admin`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from .db import Database, Row
from .errors import BadInput, Conflict, Forbidden, NotFound, Unauthorized

ROLES = ("read", "operator", "admin")

# A key in use is touched at most this often, so reads do not each become a write.
TOUCH_INTERVAL = 60.0


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def role_allows(have: str, need: str) -> bool:
    return ROLES.index(have) >= ROLES.index(need)


# Characters that make a name look like something else: bidirectional overrides and isolates,
# zero-width characters and other invisible format controls.
_INVISIBLE = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def valid_name(name: object) -> str:
    """A key's name, stripped: 1 to 100 printable characters with no bidirectional or
    invisible controls, or BadInput."""
    if not isinstance(name, str):
        raise BadInput("name must be a string", field="name")
    name = name.strip()
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput("name must be valid Unicode text", field="name") from None
    if not name or len(name) > 100 or not name.isprintable() or _INVISIBLE.search(name):
        raise BadInput(
            "name must be 1 to 100 printable characters, without invisible or direction controls",
            field="name",
        )
    return name


def create_key(db: Database, name: str, role: str) -> tuple[str, Row]:
    """Create a key; return the full key (shown once, never stored) and its public row."""
    if role not in ROLES:
        raise BadInput(f"role must be one of {', '.join(ROLES)}", role=role)
    name = valid_name(name)
    prefix = secrets.token_hex(4)
    key = f"hmy_{prefix}_{secrets.token_urlsafe(32)}"
    with db.write() as conn:
        conn.execute(
            "INSERT INTO api_keys (name, role, prefix, hash, created_at) VALUES (?, ?, ?, ?, ?)",
            (name, role, prefix, _hash(key), time.time()),
        )
        row = get_key(db, conn.last_insert_rowid())
    return key, row


def get_key(db: Database, key_id: int) -> Row:
    row = db.query_one(
        "SELECT id, name, role, prefix, created_at, last_used_at, revoked_at FROM api_keys WHERE id = ?",
        (key_id,),
    )
    if row is None:
        raise NotFound(f"no API key with id {key_id}", id=key_id)
    return row


def list_keys(db: Database, after: int = 0, limit: int = -1) -> list[Row]:
    """Keys with an id above `after`, by id; at most `limit` (-1: all)."""
    return db.query(
        "SELECT id, name, role, prefix, created_at, last_used_at, revoked_at FROM api_keys "
        "WHERE id > ? ORDER BY id LIMIT ?",
        (after, limit),
    )


def revoke_key(db: Database, key_id: int) -> Row:
    """Revoke a key. Revoking the last active admin key is refused: it would lock everyone out."""
    with db.write() as conn:
        row = get_key(db, key_id)
        if row["revoked_at"] is None and row["role"] == "admin":
            admins = db.scalar("SELECT count(*) FROM api_keys WHERE role = 'admin' AND revoked_at IS NULL")
            if admins <= 1:
                raise Conflict("cannot revoke the last active admin key; create another admin key first")
        conn.execute(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?", (time.time(), key_id)
        )
    return get_key(db, key_id)


def ensure_admin_key(db: Database) -> str | None:
    """On an empty key table, create the first admin key and return it; otherwise None."""
    with db.write():
        if db.scalar("SELECT count(*) FROM api_keys"):
            return None
        key, _ = create_key(db, "initial admin", "admin")
    return key


def authenticate(db: Database, key: str | None, need: str) -> Row:
    """Return the key's row if `key` is valid and its role is at least `need`.

    Raises Unauthorized for a missing, malformed, unknown or revoked key and Forbidden for a
    valid key whose role is too low.
    """
    if not key:
        raise Unauthorized("an API key is required (X-API-Key or Authorization: Bearer)")
    parts = key.split("_")
    if len(parts) < 3 or parts[0] != "hmy":
        raise Unauthorized("invalid API key")
    row: dict[str, Any] | None = db.query_one(
        "SELECT id, name, role, hash, last_used_at, revoked_at FROM api_keys WHERE prefix = ?", (parts[1],)
    )
    # Compare even when no row matched, so a miss takes as long as a wrong secret.
    stored = row["hash"] if row else "0" * 64
    if not hmac.compare_digest(stored, _hash(key)) or row is None or row["revoked_at"] is not None:
        raise Unauthorized("invalid API key")
    if not role_allows(row["role"], need):
        raise Forbidden(f"this needs the {need} role; the key has {row['role']}", need=need, role=row["role"])
    now = time.time()
    if row["last_used_at"] is None or now - row["last_used_at"] > TOUCH_INTERVAL:
        with db.write() as conn:
            conn.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (now, row["id"]))
    return row


class Throttle:
    """Failed authentications counted per client address over a fixed window.

    `blocked(address)` says how long an address must wait (0 when it may try); `failed(address)`
    counts one failure and says whether to log it: the first failure of an address in each
    window is logged, the rest only counted, so a guessing client cannot flood the log. At
    most `max_addresses` are remembered (least recently seen dropped first). Thread-safe.
    """

    def __init__(
        self,
        limit: int,
        window_s: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_failure: Callable[[str], None] | None = None,
        max_addresses: int = 10_000,
    ) -> None:
        self.limit, self.window_s, self.clock = limit, window_s, clock
        self.on_failure = on_failure or (lambda outcome: None)
        self.max_addresses = max_addresses
        self._seen: OrderedDict[str, tuple[float, int]] = OrderedDict()  # address -> (window start, n)
        self._lock = threading.Lock()

    def _entry(self, address: str, now: float) -> tuple[float, int]:
        start, count = self._seen.get(address, (now, 0))
        return (now, 0) if now - start >= self.window_s else (start, count)

    def blocked(self, address: str) -> float:
        now = self.clock()
        with self._lock:
            start, count = self._entry(address, now)
        if count < self.limit:
            return 0.0
        self.on_failure("throttled")
        return max(0.1, start + self.window_s - now)

    def failed(self, address: str) -> bool:
        now = self.clock()
        with self._lock:
            start, count = self._entry(address, now)
            self._seen[address] = (start, count + 1)
            self._seen.move_to_end(address)
            while len(self._seen) > self.max_addresses:
                self._seen.popitem(last=False)
        self.on_failure("rejected")
        return count == 0
