"""MongoDB access: one client per process, embedded nx-27017 unless MONGO_URI is set.

Modules that own data declare their collections and indexes through `ensure_indexes` hooks; nothing here knows
about orders or news.
"""

from __future__ import annotations

import threading
from typing import Any

from pymongo import MongoClient
from pymongo.database import Database

from core.embedded_mongo import EmbeddedMongo
from core.settings import Settings, get_settings

Doc = dict[str, Any]

_lock = threading.Lock()
_client: MongoClient[Doc] | None = None
_embedded: EmbeddedMongo | None = None
_users = 0  # apps (lifespans) currently using the shared client; the last one out closes it


def retain(settings: Settings | None = None) -> Database[Doc]:
    """The database for one long-lived user (an app lifespan); pair with `release()`."""
    global _users
    db = get_db(settings)
    with _lock:
        _users += 1
    return db


def release() -> None:
    """One user is done; the client and the embedded server stop when nobody uses them any more."""
    global _users
    with _lock:
        _users = max(0, _users - 1)
        last = _users == 0
    if last:
        close()


def mongo_uri(settings: Settings | None = None) -> str:
    """The URI in use: MONGO_URI, or the embedded server's (started on first call)."""
    global _embedded
    settings = settings or get_settings()
    if settings.mongo_uri:
        return settings.mongo_uri
    with _lock:
        if _embedded is None:
            _embedded = EmbeddedMongo(settings.data_dir / "mongo")
        return _embedded.start()


def get_client(settings: Settings | None = None) -> MongoClient[Doc]:
    global _client
    if _client is not None:
        return _client
    uri = mongo_uri(settings)
    with _lock:
        if _client is None:
            _client = MongoClient(uri, serverSelectionTimeoutMS=5000, tz_aware=True)
        return _client


def get_db(settings: Settings | None = None) -> Database[Doc]:
    settings = settings or get_settings()
    return get_client(settings)[settings.mongo_db]


def embedded_server() -> EmbeddedMongo | None:
    return _embedded


def close() -> None:
    """Close the client and stop the embedded server (process exit, tests)."""
    global _client, _embedded, _users
    with _lock:
        _users = 0
        if _client is not None:
            _client.close()
            _client = None
        if _embedded is not None:
            _embedded.stop()
            _embedded = None


def ping(settings: Settings | None = None) -> tuple[bool, str]:
    try:
        get_client(settings).admin.command("ping")
        return True, mongo_uri(settings).split("@")[-1]
    except Exception as exc:  # readiness reports any failure as data
        return False, str(exc)
