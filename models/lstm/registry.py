"""Model registry: versioned artifacts on disk, metadata in Mongo (`lstm_models`).

Layout: <root>/<SYMBOL>/<timeframe>/v<version>/ holding model.keras, scaler.json, engine.json and meta.json.
An artifact directory is written under a temporary name and renamed into place before its Mongo document is
inserted, so a document never points at a half-written model. Versions are allocated per symbol+timeframe through a
unique index (a concurrent writer that loses the race takes the next number).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from pymongo import DESCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from core.clock import utcnow
from core.queries import eq
from models.lstm.engine import LSTMEngine
from models.lstm.status import SERVABLE, STATUSES, UNEVALUATED

COLLECTION = "lstm_models"
META_FILE = "meta.json"


def code_version() -> str:
    """Package version plus a hash of this engine's source files: changes whenever the model code changes."""
    try:
        version = importlib_metadata.version("crypto-quant-agent")
    except importlib_metadata.PackageNotFoundError:
        version = "0+unknown"
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return f"{version}+src.{digest.hexdigest()[:12]}"


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", part).strip("-") or "x"


@dataclass(frozen=True)
class ModelRecord:
    model_id: str
    symbol: str
    timeframe: str
    version: int
    path: Path
    status: str
    created_at: datetime
    metadata: dict[str, Any]

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self.metadata.get("metrics") or {})

    def summary(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "version": self.version,
            "status": self.status,
            "created_at": self.created_at.isoformat(),
            "path": str(self.path),
            "data_range": self.metadata.get("data_range"),
            "data_hash": self.metadata.get("data_hash"),
            "code_version": self.metadata.get("code_version"),
        }


class ModelRegistry:
    def __init__(self, db: Database[dict[str, Any]], root: Path) -> None:
        self.col = db[COLLECTION]
        self.root = Path(root)
        self.col.create_index([("symbol", 1), ("timeframe", 1), ("version", 1)], unique=True)
        self.col.create_index("model_id", unique=True)

    def _dir(self, symbol: str, timeframe: str, version: int) -> Path:
        return self.root / _safe(symbol) / _safe(timeframe) / f"v{version:04d}"

    def register(
        self,
        engine: LSTMEngine,
        *,
        symbol: str,
        timeframe: str,
        metadata: dict[str, Any],
        status: str = UNEVALUATED,
    ) -> ModelRecord:
        """Write the artifact and its metadata; returns the record. `metadata` should carry data_range, data_hash
        and metrics; config and code_version are added here."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}")
        staging = self.root / ".staging" / uuid.uuid4().hex
        engine.save(staging)
        meta = {
            **metadata,
            "symbol": symbol,
            "timeframe": timeframe,
            "config": engine.config.to_dict(),
            "feature_names": engine.feature_names,
            "code_version": metadata.get("code_version") or code_version(),
        }
        floor = 1
        try:
            for _attempt in range(50):
                last = self.col.find_one(
                    eq(symbol=symbol, timeframe=timeframe),
                    sort=[("version", DESCENDING)],
                    projection={"version": 1},
                )
                version = max(int(last["version"]) + 1 if last else 1, floor)
                floor = version + 1
                target = self._dir(symbol, timeframe, version)
                if target.exists():  # left over from a crash between rename and insert: skip the number
                    continue
                model_id = f"{_safe(symbol)}:{_safe(timeframe)}:v{version}"
                created = utcnow()
                doc = {
                    "model_id": model_id,
                    "symbol": symbol,
                    "timeframe": timeframe,
                    "version": version,
                    "path": str(target),
                    "status": status,
                    "created_at": created,
                    "metadata": _jsonable(meta),
                }
                target.parent.mkdir(parents=True, exist_ok=True)
                (staging / META_FILE).write_text(
                    json.dumps({**doc["metadata"], "model_id": model_id, "version": version,
                                "created_at": created.isoformat()}, indent=1)
                )
                staging.rename(target)
                try:
                    self.col.insert_one(doc)
                except DuplicateKeyError:
                    target.rename(staging)
                    continue
                return _record(doc)
            raise RuntimeError(f"could not allocate a model version for {symbol} {timeframe}")
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def latest(
        self, symbol: str, timeframe: str, status: str | tuple[str, ...] | None = SERVABLE
    ) -> ModelRecord | None:
        """The newest model with one of these statuses (default: any that is served; None: any at all)."""
        wanted = (status,) if isinstance(status, str) else status
        query = eq(symbol=symbol, timeframe=timeframe)
        for doc in self.col.find(query, sort=[("version", DESCENDING)]).limit(50):
            rec = _record(doc)
            if wanted is not None and rec.status not in wanted:
                continue
            if (rec.path / META_FILE).is_file():  # skip a record whose files were deleted by hand
                return rec
        return None

    def get(self, model_id: str) -> ModelRecord | None:
        doc = self.col.find_one({"model_id": model_id})
        return _record(doc) if doc else None

    def list(self, symbol: str | None = None, timeframe: str | None = None, limit: int = 50) -> list[ModelRecord]:
        query = eq(**{k: v for k, v in (("symbol", symbol), ("timeframe", timeframe)) if v})
        return [_record(d) for d in self.col.find(query).sort([("created_at", DESCENDING)]).limit(limit)]

    def set_status(self, model_id: str, status: str) -> bool:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}")
        return self.col.update_one({"model_id": model_id}, {"$set": {"status": status}}).matched_count == 1

    def load(self, record: ModelRecord) -> LSTMEngine:
        return LSTMEngine.load(record.path)

    def load_latest(self, symbol: str, timeframe: str) -> tuple[ModelRecord, LSTMEngine] | None:
        rec = self.latest(symbol, timeframe)
        if rec is None:
            return None
        return rec, self.load(rec)


def _record(doc: dict[str, Any]) -> ModelRecord:
    return ModelRecord(
        model_id=str(doc["model_id"]),
        symbol=str(doc["symbol"]),
        timeframe=str(doc["timeframe"]),
        version=int(doc["version"]),
        path=Path(doc["path"]),
        status=str(doc["status"]),
        created_at=doc["created_at"],
        metadata=dict(doc.get("metadata") or {}),
    )


def _jsonable(value: Any) -> Any:
    """Mongo- and JSON-safe copy: NaN/inf become None, tuples lists, numpy scalars Python numbers."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    return value
