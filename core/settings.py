"""Application settings: environment variables and `.env`, secrets as SecretStr.

Settings may tighten the hard risk limits in code; they can never loosen them (see trading.risk.limits).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from platformdirs import user_data_dir
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path(user_data_dir("crypto-quant-agent", appauthor=False))


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    data_dir: Path = Field(default_factory=_default_data_dir)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "INFO"
    log_json: bool = False

    mongo_uri: str | None = None
    mongo_db: str = Field(default="crypto_agent", min_length=1, max_length=63, pattern=r"^[^/\\. \"$*<>:|?]+$")
    redis_url: str | None = None
    chroma_host: str | None = None
    chroma_port: int = 8000
    embed_precision: Literal["auto", "fp32", "bf16", "int8"] = "auto"  # news embeddings; auto = bf16 if native
    embed_backend: Literal["auto", "torch", "onnx"] = "auto"  # news embeddings; auto = onnx for int8, else torch

    llm_base_url: str = "https://api.deepseek.com"
    llm_api_key: SecretStr | None = None
    llm_model: str = "deepseek-v4-flash"
    llm_deep_model: str = "deepseek-v4-pro"
    llm_timeout_s: float = Field(default=60.0, gt=0, le=600)
    llm_max_retries: int = Field(default=2, ge=0, le=10)
    llm_max_tool_calls: int = Field(default=12, ge=1, le=50)
    llm_max_seconds: float = Field(default=120.0, gt=0, le=900)
    llm_daily_token_budget: int = Field(default=2_000_000, ge=0)
    llm_price_in_per_mtok: float = 0.27
    llm_price_out_per_mtok: float = 1.10

    exchange_id: str = "binance"
    exchanges: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["binance"])
    exchange_api_url: str | None = None  # override ccxt urls['api'] (tests point it at a loopback fake)
    exchange_timeout_ms: int = Field(default=10_000, ge=100, le=120_000)
    exchange_api_key: SecretStr | None = None
    exchange_secret: SecretStr | None = None
    simulated_exchange: bool = False  # force the simulated exchange
    live_trading: bool = False  # paper is the default; live needs keys and this switch
    symbols: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["BTC/USDT", "ETH/USDT"])

    allow_private_fetch: bool = False  # SSRF guard: outbound fetches to private/loopback addresses refused unless set
    google_api_key: SecretStr | None = None
    google_cse_id: str | None = None
    google_cse_url: str = "https://www.googleapis.com/customsearch/v1"

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    slack_approvers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    slack_admins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    four_eyes: bool = False

    approval_ttl_s: int = Field(default=900, ge=10, le=86_400)
    paper_initial_usdt: float = Field(default=100_000.0, gt=0)
    reconcile_interval_s: float = Field(default=30.0, ge=0, le=3600)  # 0: reconcile on start only
    stop_watch_interval_s: float = Field(default=2.0, ge=0, le=300)  # 0: nothing watches stops (do not, live)
    # live venues that list a stop order type also hold each stop-loss as a sell stop (protection while the desk
    # is down); a stop-limit's limit sits NATIVE_STOP_LIMIT_PCT below its trigger
    native_stops: bool = True
    native_stop_limit_pct: float = Field(default=0.01, gt=0, le=0.2)
    # websocket streams for SYMBOLS on EXCHANGE_ID feed the desk's books (stops watched from the stream; the
    # STOP_WATCH_INTERVAL_S poll stays as fallback). Off by default: offline the simulated venue needs no stream.
    market_streams: bool = False
    # Risk limits: each may only tighten the hard ceiling in trading/risk/limits.py (a looser value is ignored).
    risk_max_order_notional: float | None = Field(default=None, gt=0)
    risk_max_position_notional: float | None = Field(default=None, gt=0)
    risk_max_gross_exposure: float | None = Field(default=None, gt=0)
    risk_max_net_exposure: float | None = Field(default=None, gt=0)
    risk_max_leverage: float | None = Field(default=None, gt=0)
    risk_price_band_pct: float | None = Field(default=None, gt=0)
    risk_max_orders_per_minute: int | None = Field(default=None, gt=0)
    risk_max_daily_loss_pct: float | None = Field(default=None, gt=0)
    risk_max_drawdown_pct: float | None = Field(default=None, gt=0)

    scheduler_enabled: bool = True  # one leader per deployment is elected through a lock in Mongo
    retrain_schedule: str = "daily 02:00 UTC"  # "off" disables
    news_ingest_schedule: str = "hourly :05"  # "off" disables
    rate_limit_per_minute: int = Field(default=600, ge=1)
    # failed API-key checks per client address: past the limit within the window, unverified keys get 429
    auth_failure_limit: int = Field(default=20, ge=1)
    auth_failure_window_s: float = Field(default=60.0, gt=0, le=3600)
    max_request_bytes: int = Field(default=1_000_000, ge=1_000)

    @field_validator("exchanges", "symbols", "slack_approvers", "slack_admins", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @property
    def llm_enabled(self) -> bool:
        return self.llm_api_key is not None and bool(self.llm_api_key.get_secret_value())


def register_secrets(settings: Settings) -> None:
    """Tell the log formatter and the audit log every configured secret, so none is ever written out."""
    from core.logging import register_secret

    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            register_secret(value.get_secret_value())


class SettingsError(Exception):
    """Settings from the environment or `.env` that do not validate: one sentence per bad variable.

    Not a ValueError on purpose: a handler that turns a bad *argument* into a message must not swallow it."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(" ".join(problems))
        self.problems = problems


def _allowed(field: str, error: dict[str, object]) -> str:
    """What a field accepts, in words: its bounds when it has them, else pydantic's own words for the type."""
    raw_ctx = error.get("ctx")
    ctx: dict[str, object] = raw_ctx if isinstance(raw_ctx, dict) else {}
    info = Settings.model_fields.get(field)
    words = {"ge": "at least", "gt": "greater than", "le": "at most", "lt": "less than"}
    bounds = [f"{words[k]} {getattr(m, k)}" for m in (info.metadata if info else []) for k in words if hasattr(m, k)]
    if bounds:
        return "a number " + " and ".join(bounds)
    if "expected" in ctx:
        return f"one of {ctx['expected']}"
    msg = str(error.get("msg") or "a valid value")
    for prefix, lead in (("Input should be ", ""), ("String should have ", "text with "),
                         ("String should match pattern ", "text matching the pattern ")):
        if msg.startswith(prefix):
            head, _, why = msg[len(prefix):].partition(", ")
            return lead + (f"{head} ({why})" if why else head)
    return f"valid ({msg[0].lower()}{msg[1:]})"


def describe_settings_error(exc: ValidationError) -> list[str]:
    """One sentence per bad variable: its name, the value given (never a secret's) and what is allowed."""
    out: list[str] = []
    for error in exc.errors():
        loc = error.get("loc") or ()
        field = str(loc[0]) if loc else "?"
        name = field.upper()
        value = error.get("input")
        info = Settings.model_fields.get(field)
        secret = info is not None and "SecretStr" in str(info.annotation)
        shown = "(hidden)" if secret else repr(value) if isinstance(value, str) else str(value)
        out.append(f"{name}={shown} is not allowed: it must be {_allowed(field, dict(error))}.")
    return out


def load_settings() -> Settings:
    """Settings from the environment and `.env`; a bad value raises SettingsError naming each variable."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(describe_settings_error(exc)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    settings = load_settings()
    register_secrets(settings)
    return settings


def reset_settings() -> None:
    """Forget cached settings (tests and the CLI change env between runs)."""
    get_settings.cache_clear()
