"""API keys: creation, lookup and roles. Owns the `api_keys` table.

A key looks like `hmy_<prefix>_<secret>`. Only its SHA-256 is stored; the prefix is stored in
clear so a key can be found and shown in listings without revealing it. Keys are random
(256 bits), so a plain hash is enough; the comparison is constant-time all the same.
Roles are ordered: `read` < `operator` < `admin`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any

from .db import Database, Row
from .errors import BadInput, Forbidden, NotFound, Unauthorized

ROLES = ("read", "operator", "admin")

# A key in use is touched at most this often, so reads do not each become a write.
TOUCH_INTERVAL = 60.0


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def role_allows(have: str, need: str) -> bool:
    return ROLES.index(have) >= ROLES.index(need)


def create_key(db: Database, name: str, role: str) -> tuple[str, Row]:
    """Create a key; return the full key (shown once, never stored) and its public row."""
    if role not in ROLES:
        raise BadInput(f"role must be one of {', '.join(ROLES)}", role=role)
    name = name.strip()
    if not name or len(name) > 100 or any(ord(ch) < 32 for ch in name):
        raise BadInput("name must be 1-100 printable characters", name=name)
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
                raise BadInput("cannot revoke the last active admin key; create another admin key first")
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
