"""Slack fixtures: the app with a fake Slack API, a paper trading service attached, and signed-request helpers."""

from __future__ import annotations

import json
import os
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.agent.conftest import (  # noqa: F401  (fixtures re-exported for tests/slack)
    fake_exchange,
    fake_llm,
    fake_slack,
    make_client,
    make_settings,
    slack_headers,
)
from tests.fakes.slack_server import FakeSlack
from trading.execution.paper import PaperExchange
from trading.oms.service import ServiceConfig, TradingService
from trading.risk.limits import limits_from_settings
from trading.types import BookLevel, Market, OrderBook

APPROVER = "UAPPROVER"
APPROVER2 = "UAPPROVER2"
ADMIN = "UADMIN"
TRADER = "UTRADER"
OUTSIDER = "UOUTSIDER"


class Books:
    """A market source whose books the test sets (the paper venue fills against them)."""

    exchange_id = "paper"

    def __init__(self) -> None:
        self.mids = {"BTC/USDT": 50_000.0, "ETH/USDT": 3_000.0}

    def market(self, symbol: str) -> Market:
        if symbol not in self.mids:
            raise KeyError(symbol)
        base, quote = symbol.split("/")
        return Market(exchange="paper", symbol=symbol, base=base, quote=quote, price_precision=0.01,
                      amount_precision=0.0001, min_amount=0.0001, min_cost=5.0, max_amount=1000.0,
                      taker_fee=0.001, maker_fee=0.001)

    async def fetch_order_book(self, symbol: str, limit: int = 20) -> OrderBook:
        mid = self.mids[symbol]
        bids = tuple(BookLevel(round(mid * (1 - 0.0001 - i * 0.0005), 2), 1.0) for i in range(10))
        asks = tuple(BookLevel(round(mid * (1 + 0.0001 + i * 0.0005), 2), 1.0) for i in range(10))
        return OrderBook("paper", symbol, int(time.time() * 1000), bids, asks)


def build_service(db: Any, **config: Any) -> TradingService:
    limits = limits_from_settings(None, symbols=["BTC/USDT", "ETH/USDT"], overrides={"max_order_notional": 20_000})
    venue = PaperExchange(Books(), balances={"USDT": 100_000.0}, slippage_bps=0.0, db=db)
    return TradingService(db, {"paper": venue}, limits, config=ServiceConfig(**config),
                          initial_balances={"paper": {"USDT": 100_000.0}})


class SlackDesk:
    """One running app (lifespan entered) with helpers that post signed Slack requests to /slack/events."""

    def __init__(self, client: TestClient, slack: FakeSlack, trading: Callable[..., TradingService]) -> None:
        self.client = client
        self.slack = slack
        self._trading = trading

    @property
    def app(self) -> Any:
        return self.client.app

    def attach_trading(self, **config: Any) -> TradingService:
        """A paper service (on the test's database) for the app, the trading tools and HTTP alike."""
        svc = self._trading(**config)
        self.app.state.trading = svc
        return svc

    def command(self, name: str, text: str = "", user: str = TRADER, channel: str = "C1",
                trigger_id: str | None = None, **headers: str) -> httpx.Response:
        body = urllib.parse.urlencode({
            "command": name, "text": text, "user_id": user, "user_name": user.lower(), "channel_id": channel,
            "team_id": "T1", "response_url": f"{self.slack.api_url}response",
            "trigger_id": trigger_id or uuid.uuid4().hex,
        })
        return self.client.post("/slack/events", content=body, headers=slack_headers(body, **headers))

    def click(self, action_id: str, order_id: str, user: str, *, message_ts: str, channel: str = "C1",
              action_ts: str | None = None, trigger_id: str | None = None, **headers: str) -> httpx.Response:
        payload = {
            "type": "block_actions", "team": {"id": "T1"}, "user": {"id": user},
            "api_app_id": "A1", "trigger_id": trigger_id or uuid.uuid4().hex,
            "channel": {"id": channel}, "container": {"type": "message", "message_ts": message_ts,
                                                      "channel_id": channel},
            "message": {"ts": message_ts, "text": "card"},
            "response_url": f"{self.slack.api_url}response",
            "actions": [{"action_id": action_id, "block_id": f"trade:{order_id}", "value": order_id,
                         "type": "button", "action_ts": action_ts or f"{time.time():.6f}"}],
        }
        body = urllib.parse.urlencode({"payload": json.dumps(payload)})
        return self.client.post("/slack/events", content=body, headers=slack_headers(body, **headers))

    def event(self, event: dict[str, Any], event_id: str | None = None, **headers: str) -> httpx.Response:
        body = json.dumps({"type": "event_callback", "team_id": "T1", "api_app_id": "A1",
                           "event_id": event_id or f"Ev{uuid.uuid4().hex[:10]}", "event_time": int(time.time()),
                           "event": event})
        return self.client.post("/slack/events", content=body,
                                headers=slack_headers(body, **{"Content-Type": "application/json", **headers}))

    def ephemerals_to(self, user: str) -> list[dict[str, Any]]:
        return [p for p in self.slack.calls_of("chat.postEphemeral") if p.get("user") == user]


@pytest.fixture()
def slack_desk(make_client: Callable[..., tuple[TestClient, str]], fake_slack: FakeSlack,  # noqa: F811
               monkeypatch: pytest.MonkeyPatch, isolated_settings: Any,
               mongo_client: Any) -> Iterator[Callable[..., SlackDesk]]:
    """Apps under test. A paper trading service is installed as the process-wide one (trading.oms.factory) on the
    test's database through the session's Mongo client, so it outlives app restarts within the test."""
    import agent.slack.install as install
    from trading.oms import factory

    monkeypatch.setattr(install, "SWEEP_INTERVAL_S", 0.2)

    def trading(**config: Any) -> TradingService:
        svc = build_service(mongo_client[os.environ["MONGO_DB"]], **config)
        factory.set_trading_service(svc)
        return svc

    trading()

    def build(**env: str) -> SlackDesk:
        env.setdefault("slack_approvers", f"{APPROVER},{APPROVER2}")
        env.setdefault("slack_admins", ADMIN)
        client, _ = make_client(slack=fake_slack, **env)
        return SlackDesk(client, fake_slack, trading)

    yield build
    factory.set_trading_service(None)


def blocks_text(params: dict[str, Any]) -> str:
    """All text in a message's blocks (and its fallback text), for assertions."""
    out = [str(params.get("text", ""))]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    out.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(params.get("blocks") or [])
    return "\n".join(out)


def buttons(params: dict[str, Any]) -> list[dict[str, Any]]:
    return [el for b in (params.get("blocks") or []) if b.get("type") == "actions" for el in b.get("elements", [])]
