"""A forecast's percent agrees with the price shown beside it (the ticker above it, or the last close it names)."""

from __future__ import annotations

from agent.analysis import Report, Section, forecast_change, render_markdown


def _report(last: float | None) -> Report:
    forecast = {"horizon": 24, "timeframe": "1h", "last_close": 105.0, "verdict": "v",
                "final": {"price": 110.0, "lower": 100.0, "upper": 120.0, "return_pct": 100 * (110 / 105 - 1)}}
    sections = [Section("forecast", True, forecast)]
    if last is not None:
        sections.insert(0, Section("ticker", True, {"last": last, "bid": last, "ask": last, "exchange": "sim",
                                                    "change_pct_24h": 0.0}))
    return Report("BTC/USDT", sections)


def test_percent_is_measured_from_the_price_shown_above() -> None:
    text = render_markdown(_report(100.0))
    assert "- Price 100.00" in text
    assert "110.00 (+10.00% from the price above)" in text  # 110 / 100, not 110 / 105 (+4.76%)
    assert "+4.76%" not in text


def test_without_a_ticker_the_percent_names_the_last_close() -> None:
    text = render_markdown(_report(None))
    assert "110.00 (+4.76% from the last close 105.00)" in text
    assert forecast_change({"price": None}, 105.0, 100.0) == "n/a"
    assert forecast_change({"price": 99.0, "return_pct": -1.0}, None, None) == "-1.00% from the last close"


def test_slack_forecast_line_names_its_base() -> None:
    from agent.slack.rendering import forecast_line

    line = forecast_line({"horizon": 24, "timeframe": "1h", "last_close": 105.0, "interval": 0.8,
                          "final": {"price": 110.0, "lower": 100.0, "upper": 120.0, "return_pct": 4.76}})
    assert "from the last close 105" in line
