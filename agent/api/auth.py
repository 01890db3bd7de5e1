"""API-key authentication and scopes.

Keys look like `cqa_<key_id>_<secret>`. Only an argon2 hash of the secret is stored (Mongo `api_keys`). Verifying
argon2 costs tens of milliseconds by design, so a verified key is remembered in-process for a short time under a
SHA-256 of the whole key (never the key itself); revocation clears that memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import HTTPException, Request
from pymongo.database import Database

from core.clock import utcnow

SCOPES = ("read", "trade", "approve", "admin")
KEY_PREFIX = "cqa_"
_CACHE_TTL_S = 60.0

_hasher = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)


@dataclass(frozen=True)
class Principal:
    key_id: str
    name: str
    scopes: frozenset[str]

    @property
    def actor(self) -> str:
        """The identity the desk records (requester, approver, audit): the key's name, else its id."""
        return self.name or self.key_id

    def has(self, scope: str) -> bool:
        # admin implies every scope
        return scope in self.scopes or "admin" in self.scopes


class AuthError(ValueError):
    pass


def parse_scopes(text: str | Iterable[str]) -> frozenset[str]:
    items = [s.strip() for s in (text.split(",") if isinstance(text, str) else text) if s.strip()]
    unknown = sorted(set(items) - set(SCOPES))
    if unknown:
        raise AuthError(f"unknown scope(s) {', '.join(unknown)}; valid scopes: {', '.join(SCOPES)}")
    if not items:
        raise AuthError(f"at least one scope is required; valid scopes: {', '.join(SCOPES)}")
    return frozenset(items)


class ApiKeyStore:
    def __init__(self, db: Database[dict[str, Any]]) -> None:
        self.col = db["api_keys"]
        self.col.create_index("key_id", unique=True)
        self._cache: dict[bytes, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def create(self, name: str, scopes: Iterable[str] | str) -> tuple[str, Principal]:
        parsed = parse_scopes(scopes)
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(24)
        self.col.insert_one(
            {
                "key_id": key_id,
                "name": name,
                "scopes": sorted(parsed),
                "hash": _hasher.hash(secret),
                "created_at": utcnow(),
                "revoked": False,
            }
        )
        return f"{KEY_PREFIX}{key_id}_{secret}", Principal(key_id, name, parsed)

    def revoke(self, key_id: str) -> bool:
        res = self.col.update_one({"key_id": key_id, "revoked": False}, {"$set": {"revoked": True}})
        with self._lock:
            self._cache = {k: v for k, v in self._cache.items() if v[1].key_id != key_id}
        return res.modified_count == 1

    def list(self) -> list[dict[str, Any]]:
        return [
            {k: d[k] for k in ("key_id", "name", "scopes", "created_at", "revoked")}
            for d in self.col.find({}, {"hash": 0})
        ]

    def cached(self, key: str) -> Principal | None:
        """The principal of a key verified within the cache window, without touching the database."""
        digest = hashlib.sha256(key.encode()).digest()
        with self._lock:
            hit = self._cache.get(digest)
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def verify(self, key: str) -> Principal | None:
        digest = hashlib.sha256(key.encode()).digest()
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        if not key.startswith(KEY_PREFIX) or key.count("_") < 2:
            return None
        key_id, _, secret = key[len(KEY_PREFIX) :].partition("_")
        doc = self.col.find_one({"key_id": key_id, "revoked": False})
        # Verify against a dummy hash when the id is unknown so that timing does not reveal which ids exist.
        stored = doc["hash"] if doc else _DUMMY_HASH
        ok: bool
        try:
            ok = bool(_hasher.verify(stored, secret))
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok or doc is None:
            return None
        principal = Principal(key_id, str(doc.get("name", "")), frozenset(doc["scopes"]))
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now + _CACHE_TTL_S, principal)
        return principal


_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(24))


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _extract_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.headers.get("x-api-key")


def require_scope(scope: str) -> Callable[[Request], Awaitable[Principal]]:
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope}")

    async def dependency(request: Request) -> Principal:
        key = _extract_key(request)
        if not key:
            raise HTTPException(
                status_code=401,
                detail="missing API key: send 'Authorization: Bearer <key>' "
                "(create one with `crypto-agent apikey create`)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        store: ApiKeyStore = request.app.state.api_keys
        # A key verified in the last minute is answered from memory on the event loop; otherwise the slow hash and
        # the database lookup run in a worker thread so they never block other requests.
        principal = store.cached(key)
        if principal is None:
            principal = await asyncio.to_thread(store.verify, key)
        if principal is None:
            raise HTTPException(
                status_code=401, detail="invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"}
            )
        if not principal.has(scope):
            raise HTTPException(status_code=403, detail=f"this API key lacks the '{scope}' scope")
        limiter = getattr(request.app.state, "rate_limiter", None)
        if limiter is not None:
            allowed, wait_s = limiter.allow(principal.key_id)
            if not allowed:
                raise HTTPException(
                    status_code=429,
                    detail=f"rate limit exceeded for this API key; retry in {wait_s:.1f}s",
                    headers={"Retry-After": str(max(1, round(wait_s)))},
                )
        request.state.principal = principal
        return principal

    dependency.__name__ = f"require_{scope}"
    return dependency
