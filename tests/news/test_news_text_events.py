"""URL canonicalisation, coin detection and event classification."""

from __future__ import annotations

import pytest

from knowledge.events import detect_events
from knowledge.text import base_asset, canonical_url, clean_text, detect_symbols


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("http://www.CoinDesk.com/markets/2026/01/btc/?utm_source=x&utm_medium=rss#top",
         "https://coindesk.com/markets/2026/01/btc"),
        ("https://example.com/a/amp/", "https://example.com/a"),
        ("https://example.com:443/a?b=2&a=1&fbclid=zz", "https://example.com/a?a=1&b=2"),
        ("https://amp.example.com//x//y", "https://example.com/x/y"),
    ],
)
def test_canonical_url(a: str, b: str) -> None:
    assert canonical_url(a) == canonical_url(b) == b


def test_canonical_url_keeps_meaningful_params_distinct() -> None:
    assert canonical_url("https://x.com/news?id=1") != canonical_url("https://x.com/news?id=2")


def test_clean_text_strips_tags_scripts_entities() -> None:
    assert clean_text("<p>BTC&nbsp;<b>up</b></p><script>alert(1)</script> &amp; more") == "BTC up & more"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Bitcoin and Ethereum rally as SOL lags", ["BTC", "ETH", "SOL"]),
        ("Bitcoin Cash forks again", ["BCH"]),
        ("Ethereum Classic sees 51% attack", ["ETC"]),
        ("$DOGE pumps; ripple lawsuit drags on", ["DOGE", "XRP"]),
        ("An avalanche of criticism hit the polygon shape", []),  # ambiguous words in lowercase are not coins
        ("Avalanche and Polygon sign deal", ["AVAX", "MATIC"]),
        ("The company is near a decision", []),
        ("ETH2 and BTCUSDT are not coin names; eth_usd neither", []),  # names match whole words only
        ("Solana leads while bitcoin cash and Bitcoin trail", ["SOL", "BCH", "BTC"]),  # order of first mention
        ("Shiba  Inu and shiba inu", ["SHIB"]),  # two-word names need exactly one space
        ("$sol, $Link and $PEPE", ["SOL", "LINK", "PEPE"]),
    ],
)
def test_detect_symbols(text: str, expected: list[str]) -> None:
    assert detect_symbols(text) == expected


def test_base_asset() -> None:
    assert [base_asset(s) for s in ("BTC/USDT", "eth-usdt", "SOLUSDT", "ada")] == ["BTC", "ETH", "SOL", "ADA"]


@pytest.mark.parametrize(
    ("title", "summary", "etype", "coins"),
    [
        ("Hackers drain $80 million from bridge in exploit", "ETH stolen", "hack", ["ETH"]),
        ("Binance will list Aptos (APT)", "", "listing", ["APT"]),
        ("Coinbase to delist XRP", "", "delisting", ["XRP"]),
        ("SEC sues exchange in enforcement action", "", "regulation", []),
        ("Spot bitcoin ETF sees record inflows", "", "etf_flows", ["BTC"]),
        ("Fed raises interest rates as inflation persists", "", "macro", []),
        ("Chainlink partners with SWIFT", "", "partnership", ["LINK"]),
        ("Solana network outage halts block production", "", "outage", ["SOL"]),
        ("Arbitrum token unlock releases 1.1 billion ARB", "vesting cliff", "token_unlock", ["ARB"]),
    ],
)
def test_event_types_and_coins(title: str, summary: str, etype: str, coins: list[str]) -> None:
    res = detect_events(title, summary)
    assert res.types[0] == etype
    assert res.symbols == coins


def test_plain_price_story_has_no_event_and_delisting_wins_over_listing() -> None:
    assert detect_events("Bitcoin price edges higher in quiet trading").types == []
    assert "listing" not in detect_events("Kraken delists and removes listing of privacy coins").types
