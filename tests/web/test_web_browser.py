"""The web desk in headless Chromium against the whole app on loopback (every non-loopback request is cut off):
sign in, the desk, an approval made over HTTP and watched until filled, a read key's refused approval, four-eyes,
halt, the Ask page's streamed answer, the Market page, and /docs and /redoc rendering offline."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import httpx

from tests.web.conftest import Served

PAGE_TIMEOUT_MS = 15_000


def shot(page: Any, name: str) -> Path:
    """A full-page screenshot under the test's temp dir (and into WEB_SCREENSHOT_DIR when set, for docs/img)."""
    path = page.shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    extra = os.environ.get("WEB_SCREENSHOT_DIR")
    if extra:
        shutil.copy(path, Path(extra) / f"web-{name}.png")
    return path


def watch_errors(page: Any) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    # refused requests (401, 403) are logged by the browser as failed resources: the tests expect some of those
    page.on("console", lambda msg: errors.append(f"console: {msg.text}")
            if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
    return errors


def sign_in(page: Any, key: str) -> None:
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.locator("#shell").wait_for(state="visible")


def sign_out(page: Any) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.locator("#login").wait_for(state="visible")


def propose(served: Served, who: str, qty: float = 0.01, note: str = "breakout above the 20-day high") -> str:
    r = httpx.post(
        f"{served.url}/v1/proposals",
        json={"symbol": "BTC/USDT", "side": "buy", "qty": qty, "note": note},
        headers=served.headers(who),
        timeout=30,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "pending_approval", body
    return str(body["order"]["id"])


def test_desk_approve_refuse_halt_ask(browser_page: Any, served: Served) -> None:
    page = browser_page
    errors = watch_errors(page)
    page.goto(served.url + "/")
    # a bad key is refused on the sign-in form, and no key ever appears in the URL
    sign_in_form = page.locator("#login")
    sign_in_form.wait_for(state="visible")
    page.get_by_label("API key").fill("cqa_nope_nope")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("alert").filter(has_text="refused").wait_for()

    # a read key sees the desk, and its approval is refused by the desk
    sign_in(page, served.keys["read"])
    page.locator("#desk-state-value").get_by_text("active").wait_for()
    page.locator("#ticks").get_by_text("BTC/USDT").wait_for()
    assert page.locator("#halt").count() == 0  # no admin controls for a read key
    oid = propose(served, "trade")
    page.get_by_role("link", name=re.compile("^Approvals")).click()
    card = page.locator(f"#proposal-{oid}")
    card.wait_for()
    assert "breakout above the 20-day high" in card.inner_text()  # the reasoning
    assert "max order notional" in card.inner_text()  # the gate's figures
    page.locator("#scope-note").wait_for()
    card.get_by_role("button", name=f"Approve {oid}").click()
    page.locator(f"#status-{oid}").get_by_text("Refused (403)").wait_for()
    assert "lacks the 'approve' scope" in page.locator(f"#status-{oid}").inner_text()
    assert httpx.get(f"{served.url}/v1/orders/{oid}", headers=served.headers("read")).json()["state"] == (
        "pending_approval"
    )
    sign_out(page)
    assert served.keys["read"] not in page.url

    # an approver approves the proposal made over HTTP and watches it fill
    sign_in(page, served.keys["approve"])
    page.goto(served.url + "/#/approvals")
    card = page.locator(f"#proposal-{oid}")
    card.wait_for()
    shot(page, "approvals")
    card.get_by_role("button", name=f"Approve {oid}").click()
    page.locator(f'#decided tr[data-order="{oid}"][data-state="filled"]').wait_for()
    assert page.locator(f"#proposal-{oid}").count() == 0
    # a proposal decided elsewhere leaves the list by itself (polling)
    other = propose(served, "trade", qty=0.02)
    page.locator(f"#proposal-{other}").wait_for()
    r = httpx.post(f"{served.url}/v1/approvals/{other}/reject", json={"reason": "not now"},
                   headers=served.headers("admin"), timeout=30)
    assert r.status_code == 200, r.text
    page.locator(f"#proposal-{other}").wait_for(state="detached")
    page.locator(f'#decided tr[data-order="{other}"][data-state="rejected"]').wait_for()
    page.get_by_role("link", name="Desk").click()
    page.locator("#positions").get_by_text("BTC/USDT").wait_for()
    page.locator("#equity svg").wait_for()
    page.locator("#headroom meter").first.wait_for()
    sign_out(page)

    # four-eyes: the admin's own proposal cannot be approved by the admin
    mine = propose(served, "admin", qty=0.01)
    sign_in(page, served.keys["admin"])
    page.goto(served.url + "/#/approvals")
    own = page.locator(f"#proposal-{mine}")
    own.wait_for()
    assert own.get_by_role("button", name=f"Approve {mine}").is_disabled()
    assert "Four-eyes" in own.inner_text()

    # the admin halts the desk, after confirming
    page.get_by_role("link", name="Desk").click()
    page.locator("#desk-state-value").get_by_text("active").wait_for()
    shot(page, "desk")
    page.get_by_role("button", name="Halt").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Reason").fill("browser test")
    dialog.get_by_role("button", name="Cancel").click()
    assert httpx.get(f"{served.url}/v1/risk", headers=served.headers("read")).json()["desk_state"] == "active"
    page.get_by_role("button", name="Halt").click()
    dialog.get_by_label("Reason").fill("browser test")
    dialog.get_by_role("button", name="Halt").click()
    page.locator("#desk-state-value").get_by_text("halted").wait_for()
    risk = httpx.get(f"{served.url}/v1/risk", headers=served.headers("read")).json()
    assert risk["desk_state"] == "halted" and "browser test" in str(risk["desk_reason"])

    # Ask: the deterministic answer streams in, with its tool calls; the conversation is kept
    page.get_by_role("link", name="Ask").click()
    page.get_by_label(re.compile("^Question")).fill("How is BTC/USDT doing?")
    page.keyboard.press("Control+Enter")
    answer = page.locator(".msg.desk.done").first
    try:
        answer.wait_for(timeout=60_000)  # the analysis reads candles, news and risk first
    except Exception:
        shot(page, "ask-failed")
        raise AssertionError(page.locator("#main").inner_text()) from None
    text = answer.inner_text()
    assert "BTC/USDT" in text and "deterministic" in text
    assert answer.locator('[data-tool="get_ticker"]').count() == 1
    shot(page, "ask")
    page.reload()
    # the conversation is kept by the desk under this tab's session id and comes back after a reload
    page.locator(".msg.desk", has_text="deterministic desk report").wait_for()
    assert page.locator(".msg.user").count() == 1
    assert not page.blocked and not errors, (page.blocked, errors)


def test_ask_streams_llm_tool_calls(browser_page: Any, served_llm: Served, fake_llm: Any) -> None:
    """With a language model (the scripted fake the app is pointed at): the tool call is listed as it runs, then
    the streamed answer."""
    from tests.agent.conftest import tool_result
    from tests.fakes.openai_server import Reply, ToolCall

    llm = fake_llm
    llm.script(
        Reply(tool_calls=[ToolCall("get_ticker", {"symbol": "BTC/USDT"})], reasoning="price first"),
        lambda body: Reply(content=f"BTC is at {tool_result(body, 'get_ticker')['result']['last']} now",
                           reasoning="answer"),
    )
    page = browser_page
    errors = watch_errors(page)
    page.goto(served_llm.url + "/#/ask")
    sign_in(page, served_llm.keys["read"])
    page.get_by_label(re.compile("^Question")).fill("BTC?")
    page.get_by_role("button", name="Send").click()
    answer = page.locator(".msg.desk.done").first
    answer.wait_for(timeout=60_000)
    assert "BTC is at 65000.0 now" in answer.inner_text()
    tool = answer.locator('[data-tool="get_ticker"]')
    assert tool.count() == 1 and tool.inner_text().startswith("✓ get_ticker")
    assert "language model" in answer.inner_text()
    assert llm.requests[0]["stream"] is True
    assert not page.blocked and not errors, (page.blocked, errors)


def store_forecast(served: Served) -> None:
    """A forecast as the LSTM service stores it (GET /predictions serves the latest), starting at the last candle."""
    from models.lstm.service import ForecastStore

    candles = httpx.get(f"{served.url}/v1/market/candles?symbol=BTC/USDT&timeframe=1h&limit=2",
                        headers=served.headers("read"), timeout=30).json()
    as_of, last = candles["candles"][-1][0], candles["candles"][-1][4]
    path = [{"step": k, "timestamp_ms": 0, "price": last * (1 + 0.001 * k), "lower": last * (1 - 0.004 * k ** 0.5),
             "upper": last * (1 + 0.006 * k ** 0.5)} for k in range(1, 25)]
    ForecastStore(served.app.state.db).save({
        "symbol": "BTC/USDT", "timeframe": "1h", "model_id": "lstm-test", "as_of": as_of, "stale": False,
        "last_close": last, "horizon": 24, "interval": 0.8, "path": path,
        "final": {"timestamp": as_of, "price": path[-1]["price"], "lower": path[-1]["lower"],
                  "upper": path[-1]["upper"], "return_pct": 2.4},
        "skill": {"rmse_ratio": 0.98}, "beats_random_walk": True, "verdict": "slightly better than a random walk",
    })


def chain_csv() -> str:
    """A small synthetic chain (two expiries with SVI smiles) in the flat Deribit format."""
    from tests.options.conftest import chain_to_csv, make_chain

    return chain_to_csv(make_chain())


def test_market_page(browser_page: Any, served: Served, tmp_path: Path) -> None:
    page = browser_page
    errors = watch_errors(page)
    store_forecast(served)
    page.goto(served.url + "/#/market")
    # keyboard only: the key field has the focus on arrival, the skip link is one Shift+Tab away, the field takes
    # Enter, and the nav links take Enter
    page.locator("#login").wait_for(state="visible")
    assert page.evaluate("document.activeElement.id") == "api-key"
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Tab")
    page.keyboard.type(served.keys["read"])
    page.keyboard.press("Enter")
    page.locator("#shell").wait_for(state="visible")
    page.get_by_role("link", name="Ask").focus()
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Ask the desk").wait_for()
    page.get_by_role("link", name="Market").focus()
    page.keyboard.press("Enter")
    page.locator("#m-chart svg .candles rect").first.wait_for()
    # the stored forecast is drawn over the candles: its path, and its interval as a band
    page.locator("#m-chart svg path[data-series='forecast']").wait_for(timeout=60_000)
    assert "Forecast from" in page.locator("#m-forecast").inner_text()
    page.locator("#m-symbol").select_option("ETH/USDT")
    page.locator("#m-forecast").get_by_text("No stored forecast").wait_for(timeout=60_000)
    page.locator("#m-symbol").select_option("BTC/USDT")
    page.locator("#m-chart svg path[data-series='forecast']").wait_for(timeout=60_000)
    page.locator("#m-news table").first.wait_for()
    # backtest: equity chart with trade markers
    page.get_by_label("Bars").fill("400")
    page.get_by_role("button", name="Run backtest").click()
    page.locator("#m-backtest svg path[data-series='strategy']").wait_for()
    assert page.locator("#m-backtest svg .marker").count() >= 1
    # volatility smile and surface of a chosen chain
    csv = tmp_path / "chain.csv"
    csv.write_text(chain_csv())
    page.get_by_label(re.compile("^Option chain")).set_input_files(str(csv))
    page.get_by_role("button", name="Fit surface").click()
    page.locator("#m-surface svg").nth(1).wait_for()
    assert page.locator("#m-surface svg").first.locator("path[data-series]").count() >= 2
    shot(page, "market")
    assert not page.blocked and not errors, (page.blocked, errors)


def test_docs_render_offline(browser_page: Any, served: Served) -> None:
    page = browser_page
    errors = watch_errors(page)
    page.goto(served.url + "/docs")
    page.locator(".swagger-ui .info .title").get_by_text("Crypto Quant Agent").wait_for()
    page.locator(".opblock-summary-path", has_text="/v1/proposals").first.wait_for()
    page.goto(served.url + "/redoc")
    page.get_by_role("heading", name=re.compile("Crypto Quant Agent")).first.wait_for()
    assert not page.blocked, page.blocked  # nothing tried to leave the machine
    assert not [e for e in errors if "pageerror" in e], errors


def test_page_weight(served: Served) -> None:
    """What a first visit to the desk downloads (HTML, scripts, styles, icon), without chart data: under 500 kB."""
    from tests.web.weight import page_bytes

    total = page_bytes(served.url, "/")
    assert 10_000 < total < 500_000, total
