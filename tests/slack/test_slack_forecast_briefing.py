"""With a trained model and news in the knowledge base: `/forecast` edits its progress message with the forecast and
uploads the chart through files_upload_v2 in its thread, and a briefing's forecast, sentiment and news sections
carry real values rather than the 'unavailable' notes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.lstm.conftest import tiny_config
from tests.slack.conftest import SlackDesk, blocks_text

pytestmark = pytest.mark.slow
PNG = b"\x89PNG\r\n\x1a\n"


def _train_btc() -> dict[str, Any]:
    """A tiny LSTM for BTC/USDT 1h on the fake venue's candles, registered in the app's database and data dir."""
    from tools.forecast import run_train

    out = run_train("BTC/USDT", "1h", config=tiny_config(horizon=24, epochs=1, folds=1, test_size=100), limit=800)
    assert out["model"]["symbol"] == "BTC/USDT", out
    return out


def _ingest_btc_news() -> None:
    from knowledge.ingest import ingest_items
    from knowledge.models import NewsItem
    from knowledge.service import get_service

    now = datetime.now(UTC).replace(microsecond=0)
    items = [
        NewsItem(title=t, summary=s, source="TestWire", url=f"https://testwire.example/{i}",
                 published=now - timedelta(hours=1 + i), origin="test")
        for i, (t, s) in enumerate([
            ("Bitcoin ETF inflows hit a record as BTC rallies", "Spot bitcoin funds took in $1.2 billion."),
            ("Bitcoin miners report strong quarter, BTC hashrate at an all-time high", "Miners expand capacity."),
            ("Bitcoin slips after exchange outage rattles traders", "BTC fell 3% during the outage."),
        ])
    ]
    report = ingest_items(get_service().store, items)
    assert report.stored == len(items), report


def test_forecast_uploads_chart_and_briefing_has_real_sections(slack_desk: Any, fake_exchange: Any) -> None:
    desk: SlackDesk = slack_desk()
    desk.attach_trading()
    trained = _train_btc()
    _ingest_btc_news()

    assert desk.command("/forecast", "BTC/USDT 12").text == ""
    [progress] = desk.slack.wait_for("chat.postMessage", timeout=60,
                                     predicate=lambda p: "Forecasting BTC/USDT (12×1h)" in p["text"])
    done = desk.slack.wait_for("chat.update", timeout=120, predicate=lambda p: p.get("channel") == "C1")[-1]
    text = blocks_text(done)
    assert ":warning:" not in text, text
    assert "12×1h ahead" in text and "random walk" in text, text
    upload = desk.slack.wait_for("files.completeUploadExternal", timeout=60)[-1]
    # the chart goes into the thread of the progress message that the forecast edited
    assert upload["channel_id"] == progress["channel"] == "C1" and upload["thread_ts"] == done["ts"]
    png = desk.slack.uploads[upload["files"][0]["id"]]
    assert png.startswith(PNG) and len(png) > 5_000
    assert desk.slack.calls_of("files.getUploadURLExternal"), "uploaded through files_upload_v2's external flow"

    desk.command("/briefing", "now BTC/USDT")
    [msg] = desk.slack.wait_for("chat.postMessage", timeout=120,
                                predicate=lambda p: "Market briefing" in blocks_text(p))
    brief = blocks_text(msg)
    assert ":crystal_ball: 24×1h ahead" in brief, brief
    assert "forecast:" not in brief, "no 'forecast unavailable' note when a model exists"
    assert ":speech_balloon: sentiment:" in brief and "articles" in brief, brief
    assert "<https://testwire.example/" in brief, "top news with links"
    assert "news:" not in brief, brief
    assert trained["skill"]["h"] == 24
