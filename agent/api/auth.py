"""API-key authentication and scopes.

Keys look like `cqa_<key_id>_<secret>` (12 hex digits, then 32 URL-safe characters). Only an argon2 hash of the secret
is stored (Mongo `api_keys`). A key of any other shape is refused before the database or argon2 is touched.

Verifying argon2 costs tens of milliseconds by design, so a verified key is remembered in-process under a SHA-256 of
the whole key (never the key itself), together with the revocation counter (`api_key_state`, `_id: "revocations"`)
read before its record was. Every request reads that counter (one indexed document) and uses a remembered key only
when the counter has not moved since: a revocation made by any process (the CLI, another replica) increments it, so it
takes effect at the next request everywhere.

Failed checks are counted per client address (`FailureLimiter`): past AUTH_FAILURE_LIMIT within
AUTH_FAILURE_WINDOW_S, an address gets 429 with Retry-After for any key that is not already verified, so guessing costs
the desk no argon2 work while keys in use keep working.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
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
from core.ratelimit import FailureLimiter

SCOPES = ("read", "trade", "approve", "admin")
KEY_PREFIX = "cqa_"
KEY_SHAPE = re.compile(r"^cqa_([0-9a-f]{12})_([A-Za-z0-9_-]{32})$")
_CACHE_TTL_S = 60.0
_REVOCATIONS = "revocations"
UNKNOWN_KEY = (
    "API key not recognised by this desk: it is unknown to this desk's database or revoked (keys are per database: "
    "create one with `crypto-agent apikey create --data-dir <the server's data dir>` or the server's MONGO_URI)"
)

_hasher = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)


@dataclass(frozen=True)
class Principal:
    key_id: str
    name: str
    scopes: frozenset[str]

    @property
    def actor(self) -> str:
        """The label the desk records (requester, approver, audit): the key's name, else its id. A label only:
        rights come from `scopes` and identity from `key_id`."""
        return self.name or self.key_id

    @property
    def owner(self) -> str:
        """The identity that owns what this key creates (conversations): the key id, never the free-text name."""
        return f"key:{self.key_id}"

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


def well_formed(key: str) -> bool:
    """The shape `create` hands out; anything else cannot be a key and costs no database read or argon2 check."""
    return KEY_SHAPE.match(key) is not None


class ApiKeyStore:
    def __init__(self, db: Database[dict[str, Any]]) -> None:
        self.col = db["api_keys"]
        self.col.create_index("key_id", unique=True)
        self.state = db["api_key_state"]
        # digest of the key -> (expires at, revocation counter read before the key's record, principal)
        self._cache: dict[bytes, tuple[float, int, Principal]] = {}
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
        """Revoke in the database, then move the revocation counter: every process that remembers a verified key
        compares the counter on its next request and forgets what it verified before (this process at once)."""
        res = self.col.update_one({"key_id": key_id, "revoked": False}, {"$set": {"revoked": True}})
        if res.modified_count == 1:
            self.state.update_one({"_id": _REVOCATIONS}, {"$inc": {"n": 1}}, upsert=True)
        with self._lock:
            self._cache = {k: v for k, v in self._cache.items() if v[2].key_id != key_id}
        return res.modified_count == 1

    def list(self) -> list[dict[str, Any]]:
        return [
            {k: d[k] for k in ("key_id", "name", "scopes", "created_at", "revoked")}
            for d in self.col.find({}, {"hash": 0})
        ]

    def revocation_counter(self) -> int:
        doc = self.state.find_one({"_id": _REVOCATIONS})
        return int(doc["n"]) if doc else 0

    def cached(self, key: str) -> Principal | None:
        """The principal of a key verified earlier, if no key was revoked anywhere since (one small read)."""
        digest = hashlib.sha256(key.encode()).digest()
        with self._lock:
            hit = self._cache.get(digest)
        if hit is None or hit[0] <= time.monotonic():
            return None
        return hit[2] if hit[1] == self.revocation_counter() else None

    def remembered(self, key: str) -> bool:
        """Whether this key was verified here before (even if a revocation since means it must be checked again):
        such a key is not throttled with guesses from its address; if it fails now it is forgotten."""
        with self._lock:
            return hashlib.sha256(key.encode()).digest() in self._cache

    def verify(self, key: str) -> Principal | None:
        hit = self.cached(key)
        if hit is not None:
            return hit
        match = KEY_SHAPE.match(key)
        if match is None:
            return None
        key_id, secret = match.group(1), match.group(2)
        counter = self.revocation_counter()  # before the record: a revocation after this read moves it on
        doc = self.col.find_one({"key_id": key_id, "revoked": False})
        # Verify against a dummy hash when the id is unknown so that timing does not reveal which ids exist.
        stored = doc["hash"] if doc else _DUMMY_HASH
        ok: bool
        try:
            ok = bool(_hasher.verify(stored, secret))
        except (VerificationError, InvalidHashError):
            ok = False
        digest = hashlib.sha256(key.encode()).digest()
        if not ok or doc is None:
            with self._lock:
                self._cache.pop(digest, None)
            return None
        principal = Principal(key_id, str(doc.get("name", "")), frozenset(doc["scopes"]))
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (time.monotonic() + _CACHE_TTL_S, counter, principal)
        return principal


_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(24))


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _extract_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.headers.get("x-api-key")


def client_address(request: Request) -> str:
    """The peer's address as the server sees it (behind a proxy, run uvicorn with --proxy-headers and
    --forwarded-allow-ips so that this is the client's, not the proxy's)."""
    return request.client.host if request.client is not None else "unknown"


def _failure_limiter(request: Request) -> FailureLimiter:
    limiter: FailureLimiter | None = getattr(request.app.state, "auth_failures", None)
    if limiter is None:
        settings = getattr(request.app.state, "settings", None)
        limiter = request.app.state.auth_failures = FailureLimiter(
            int(getattr(settings, "auth_failure_limit", 20)), float(getattr(settings, "auth_failure_window_s", 60.0))
        )
    return limiter


def _unauthorised(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


async def authenticate(request: Request) -> Principal:
    """The request's principal, or 401 (no key, or a key this desk does not know) / 429 (too many failed keys from
    this address)."""
    key = _extract_key(request)
    if not key:
        raise _unauthorised(
            "missing API key: send 'Authorization: Bearer <key>' (create one with `crypto-agent apikey create`)"
        )
    store: ApiKeyStore = request.app.state.api_keys
    # A key verified before is answered from memory after one read of the revocation counter; anything else is
    # throttled per address before it may cost an argon2 check, and a key of the wrong shape never costs one.
    principal = await asyncio.to_thread(store.cached, key)
    if principal is None:
        failures = _failure_limiter(request)
        address = client_address(request)
        wait_s = 0.0 if store.remembered(key) else failures.blocked(address)
        if wait_s > 0:
            raise HTTPException(
                status_code=429,
                detail=f"too many failed API-key attempts from this address; retry in {wait_s:.0f}s",
                headers={"Retry-After": str(max(1, round(wait_s)))},
            )
        if well_formed(key):
            principal = await asyncio.to_thread(store.verify, key)
        if principal is None:
            failures.failed(address)
            raise _unauthorised(UNKNOWN_KEY)
    return principal


async def optional_principal(request: Request) -> Principal | None:
    """For public routes that show more to a key: None without a key; a key that is sent must be valid (401/429)."""
    return await authenticate(request) if _extract_key(request) else None


def require_scope(scope: str) -> Callable[[Request], Awaitable[Principal]]:
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope}")

    async def dependency(request: Request) -> Principal:
        principal = await authenticate(request)
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
