"""API keys, roles and web UI sessions. Owns the `api_keys` and `sessions` tables.

A key looks like `hmy_<prefix>_<secret>`. Only its SHA-256 is stored; the prefix is stored in
clear so a key can be found and shown in listings without revealing it. Keys are random
(256 bits), so a plain hash is enough; the comparison is constant-time all the same.
Roles are ordered: `read` < `operator` < `admin`.

A key may expire (`expires_at`): from then on it is refused with a 401 that says so, and its
sessions end. Rotating a key (`rotate_key`) creates its successor, with the same name and role,
and leaves the old key working until it is revoked or, when a grace period is given, until
that ends (its `expires_at` is brought forward). A key's last use is written at most once a
minute (`TOUCH_INTERVAL`), so requests do not each become a write.

A web UI session is opened by logging in with a key (`open_session`): the browser keeps a
random session id in a cookie, the table keeps its SHA-256, the key it came from (which gives
its role: revoking the key ends its sessions) and a CSRF token every state-changing request
of the session must send back. A session ends when it has been idle for `auth.session_idle`,
`auth.session_lifetime` after its login, at logout, or when an admin ends every session.
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
# The longest a key may live, and the longest grace a rotation gives the old key.
MAX_LIFETIME = 10 * 366 * 86400.0
MAX_GRACE = 366 * 86400.0

# The public columns of a key: everything but its hash.
KEY_COLUMNS = "id, name, role, prefix, created_at, last_used_at, expires_at, rotated_from, revoked_at"


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


def valid_expiry(expires_at: float | None, now: float, field: str = "expires_at") -> float | None:
    """An expiry time (Unix seconds) in the future and within `MAX_LIFETIME`, or None; else
    BadInput naming `field`."""
    if expires_at is None:
        return None
    if isinstance(expires_at, bool) or not isinstance(expires_at, int | float):
        raise BadInput(f"{field} must be a number", field=field)
    if not now < expires_at <= now + MAX_LIFETIME:
        raise BadInput(f"{field} must be in the future, at most ten years away", field=field)
    return float(expires_at)


def utc_text(when: float) -> str:
    """`2026-05-01 12:00 UTC`: a time (a key's expiry, its last use) for messages."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(when))


def is_active(row: Row, now: float | None = None) -> bool:
    """Neither revoked nor expired."""
    now = time.time() if now is None else now
    return row["revoked_at"] is None and (row["expires_at"] is None or row["expires_at"] > now)


def create_key(
    db: Database,
    name: str,
    role: str,
    *,
    expires_at: float | None = None,
    rotated_from: int | None = None,
    now: float | None = None,
) -> tuple[str, Row]:
    """Create a key, valid until `expires_at` (Unix seconds; None: until revoked); return the
    full key (shown once, never stored) and its public row."""
    if role not in ROLES:
        raise BadInput(f"role must be one of {', '.join(ROLES)}", role=role)
    name = valid_name(name)
    now = time.time() if now is None else now
    expires_at = valid_expiry(expires_at, now)
    prefix = secrets.token_hex(4)
    key = f"hmy_{prefix}_{secrets.token_urlsafe(32)}"
    with db.write() as conn:
        conn.execute(
            "INSERT INTO api_keys (name, role, prefix, hash, created_at, expires_at, rotated_from) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (name, role, prefix, _hash(key), now, expires_at, rotated_from),
        )
        row = get_key(db, conn.last_insert_rowid())
    return key, row


def get_key(db: Database, key_id: int) -> Row:
    row = db.query_one(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?", (key_id,))
    if row is None:
        raise NotFound(f"no API key with id {key_id}", id=key_id)
    return row


def list_keys(db: Database, after: int = 0, limit: int = -1) -> list[Row]:
    """Keys with an id above `after`, by id; at most `limit` (-1: all)."""
    return db.query(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE id > ? ORDER BY id LIMIT ?", (after, limit))


def successors(db: Database) -> dict[int, int]:
    """Each rotated key's id -> its successor's id."""
    rows = db.query("SELECT rotated_from, id FROM api_keys WHERE rotated_from IS NOT NULL")
    return {row["rotated_from"]: row["id"] for row in rows}


def rotate_key(
    db: Database,
    key_id: int,
    *,
    grace_s: float | None = None,
    expires_at: float | None = None,
    now: float | None = None,
) -> tuple[str, Row, Row]:
    """Create the successor of an active key: the same name and role, shown once. Returns
    (the new key, its row, the old key's row).

    The old key keeps working until it is revoked; with `grace_s` it also expires that many
    seconds from now (0: at once), unless it expires sooner anyway. The successor expires at
    `expires_at` if given, else after the old key's lifetime if it had one, else never.
    Conflict for a revoked or expired key, and for one already rotated (rotate its successor).
    """
    now = time.time() if now is None else now
    if grace_s is not None and (
        isinstance(grace_s, bool) or not isinstance(grace_s, int | float) or not 0 <= grace_s <= MAX_GRACE
    ):
        raise BadInput("grace must be a number of seconds from 0 to a year", field="grace")
    expires_at = valid_expiry(expires_at, now)
    with db.write() as conn:
        old = get_key(db, key_id)
        if old["revoked_at"] is not None:
            raise Conflict(f"key {key_id} is revoked; create a new key instead", state="revoked", id=key_id)
        if not is_active(old, now):
            raise Conflict(f"key {key_id} has expired; create a new key instead", state="expired", id=key_id)
        successor = db.scalar("SELECT id FROM api_keys WHERE rotated_from = ? LIMIT 1", (key_id,))
        if successor is not None:
            raise Conflict(
                f"key {key_id} was rotated already; its successor is key {successor}",
                state="rotated",
                id=key_id,
                successor=successor,
            )
        if expires_at is None and old["expires_at"] is not None:
            expires_at = now + max(60.0, old["expires_at"] - old["created_at"])
        key, new = create_key(
            db, old["name"], old["role"], expires_at=expires_at, rotated_from=key_id, now=now
        )
        if grace_s is not None:
            end = now + grace_s
            conn.execute(
                "UPDATE api_keys SET expires_at = min(coalesce(expires_at, ?), ?) WHERE id = ?",
                (end, end, key_id),
            )
        old = get_key(db, key_id)
    return key, new, old


def revoke_key(db: Database, key_id: int) -> Row:
    """Revoke a key. Revoking the last active admin key is refused: it would lock everyone out."""
    with db.write() as conn:
        row = get_key(db, key_id)
        now = time.time()
        if is_active(row, now) and row["role"] == "admin":
            admins = db.scalar(
                "SELECT count(*) FROM api_keys WHERE role = 'admin' AND revoked_at IS NULL "
                "AND (expires_at IS NULL OR expires_at > ?)",
                (now,),
            )
            if admins <= 1:
                raise Conflict("cannot revoke the last active admin key; create another admin key first")
        conn.execute(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?", (time.time(), key_id)
        )
        conn.execute("DELETE FROM sessions WHERE key_id = ?", (key_id,))  # a revoked key logs out
    return get_key(db, key_id)


def ensure_admin_key(db: Database) -> str | None:
    """On an empty key table, create the first admin key and return it; otherwise None."""
    with db.write():
        if db.scalar("SELECT count(*) FROM api_keys"):
            return None
        key, _ = create_key(db, "initial admin", "admin")
    return key


# A key in use is touched only when its last use is older than TOUCH_INTERVAL; the condition is
# repeated in the UPDATE, so requests racing past the first check still write once.
SQL_TOUCH = """
    UPDATE api_keys SET last_used_at = ?
    WHERE id = ? AND (last_used_at IS NULL OR last_used_at <= ?)
"""


def authenticate(db: Database, key: str | None, need: str, *, now: float | None = None) -> Row:
    """Return the key's row if `key` is valid and its role is at least `need`.

    Raises Unauthorized for a missing, malformed, unknown, revoked or expired key (an expired
    one with a message saying so, and `details.reason` "expired") and Forbidden for a valid
    key whose role is too low. Never puts the key, or any part of its secret, in an error.
    """
    if not key:
        raise Unauthorized("an API key is required (X-API-Key or Authorization: Bearer)")
    parts = key.split("_")
    if len(parts) < 3 or parts[0] != "hmy":
        raise Unauthorized("invalid API key")
    row: dict[str, Any] | None = db.query_one(
        "SELECT id, name, role, hash, last_used_at, expires_at, revoked_at FROM api_keys WHERE prefix = ?",
        (parts[1],),
    )
    # Compare even when no row matched, so a miss takes as long as a wrong secret.
    stored = row["hash"] if row else "0" * 64
    if not hmac.compare_digest(stored, _hash(key)) or row is None or row["revoked_at"] is not None:
        raise Unauthorized("invalid API key")
    now = time.time() if now is None else now
    if row["expires_at"] is not None and row["expires_at"] <= now:
        raise Unauthorized(
            f"this API key expired on {utc_text(row['expires_at'])}; ask an admin for a new one",
            reason="expired",
        )
    if not role_allows(row["role"], need):
        raise Forbidden(f"this needs the {need} role; the key has {row['role']}", need=need, role=row["role"])
    if row["last_used_at"] is None or now - row["last_used_at"] >= TOUCH_INTERVAL:
        with db.write() as conn:
            conn.execute(SQL_TOUCH, (now, row["id"], now - TOUCH_INTERVAL))
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


# --- web UI sessions -----------------------------------------------------------------------------
# A session row is found by the SHA-256 of its id, with the role and state of its key.

SQL_SESSION = """
    SELECT s.id_hash, s.key_id, s.csrf_token, s.created_at, s.last_seen_at, s.expires_at,
        k.name, k.role, k.revoked_at, k.expires_at AS key_expires_at
    FROM sessions s JOIN api_keys k ON k.id = s.key_id
    WHERE s.id_hash = ?
"""
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")


def open_session(
    db: Database,
    key: str | None,
    *,
    lifetime_s: float,
    address: str = "",
    user_agent: str = "",
    now: float | None = None,
) -> tuple[str, Row]:
    """Log in with an API key: returns the new session id (for the cookie only; the table keeps
    its hash) and the session row. Raises Unauthorized as `authenticate` does. Sessions past
    their absolute expiry are cleared on the way."""
    now = time.time() if now is None else now
    row = authenticate(db, key, "read", now=now)
    session_id = secrets.token_urlsafe(32)
    with db.write() as conn:
        conn.execute("DELETE FROM sessions WHERE expires_at < ?", (now,))
        conn.execute(
            "INSERT INTO sessions (id_hash, key_id, csrf_token, created_at, last_seen_at, expires_at, "
            "address, user_agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                _hash(session_id),
                row["id"],
                secrets.token_urlsafe(32),
                now,
                now,
                now + lifetime_s,
                address[:100],
                user_agent[:300],
            ),
        )
    session = find_session(db, session_id, idle_s=lifetime_s, now=now)
    assert session is not None
    return session_id, session


def find_session(
    db: Database, session_id: str | None, *, idle_s: float, now: float | None = None
) -> Row | None:
    """The live session with this id, with its key's `name` and `role`; None when there is no
    such session, or it has expired (idle or absolute), or its key was revoked or has expired.
    A session in use is touched at most every TOUCH_INTERVAL seconds."""
    if not session_id or not SESSION_ID.fullmatch(session_id):
        return None
    now = time.time() if now is None else now
    row = db.query_one(SQL_SESSION, (_hash(session_id),))
    if row is None:
        return None
    key_expired = row["key_expires_at"] is not None and row["key_expires_at"] <= now
    if (
        row["revoked_at"] is not None
        or key_expired
        or row["expires_at"] <= now
        or row["last_seen_at"] + idle_s <= now
    ):
        with db.write() as conn:
            conn.execute("DELETE FROM sessions WHERE id_hash = ?", (row["id_hash"],))
        return None
    if now - row["last_seen_at"] > TOUCH_INTERVAL:
        with db.write() as conn:
            conn.execute("UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?", (now, row["id_hash"]))
    return row


def csrf_ok(session: Row, sent: str | None) -> bool:
    """True when `sent` is this session's CSRF token (compared in constant time)."""
    return bool(sent) and hmac.compare_digest(str(session["csrf_token"]).encode(), str(sent).encode())


def close_session(db: Database, session_id: str | None) -> None:
    """Log out: forget the session (nothing happens for an unknown id)."""
    if session_id:
        with db.write() as conn:
            conn.execute("DELETE FROM sessions WHERE id_hash = ?", (_hash(session_id),))


def close_all_sessions(db: Database) -> int:
    """Log out everywhere: end every session of every key; returns how many ended."""
    with db.write() as conn:
        conn.execute("DELETE FROM sessions")
        return int(conn.changes())


def count_sessions(db: Database, now: float | None = None) -> int:
    now = time.time() if now is None else now
    return int(db.scalar("SELECT count(*) FROM sessions WHERE expires_at > ?", (now,)))
