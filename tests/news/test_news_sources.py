"""RSS/Atom feeds and the Google CSE client against loopback fakes, including broken feeds and quota errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from knowledge.ingest import fetch_all, ingest_items
from knowledge.sources import GoogleCSESource, QuotaExceededError, RSSFeed, SourceError, sources_from_settings
from knowledge.store import NewsStore
from tests.fakes.google_cse_server import FakeGoogleCSE, result
from tests.fakes.rss_server import FakeFeeds, atom, rss

NOW = datetime.now(UTC).replace(microsecond=0)
ENTRIES = [
    {"title": "Bitcoin climbs above $70,000", "link": "https://a.example/btc-70k?utm_source=rss",
     "summary": "<p>BTC <b>rallied</b> &amp; ETH followed.</p>", "published": NOW - timedelta(hours=1)},
    {"title": "Old story about Litecoin", "link": "https://a.example/ltc", "summary": "LTC news",
     "published": NOW - timedelta(days=10)},
]


def test_rss_feed_parses_items_cleans_html_and_dates(feeds: FakeFeeds) -> None:
    feeds.feeds["good"] = rss("Good Feed", ENTRIES)
    items = RSSFeed("Good", feeds.feed_url("good"), allow_private=True).fetch()
    assert [i.title for i in items] == ["Bitcoin climbs above $70,000", "Old story about Litecoin"]
    first = items[0]
    assert first.source == "Good" and first.origin == "rss"
    assert first.published is not None and abs((first.published - ENTRIES[0]["published"]).total_seconds()) < 1
    assert "<b>" in first.summary  # raw; normalisation cleans it


def test_rss_content_encoded_becomes_the_body(feeds: FakeFeeds, store: NewsStore) -> None:
    body_html = ("<p>The <b>full article</b>: Solana validators restarted the chain after a consensus bug.</p>"
                 "<p>Second paragraph.</p>")
    feeds.feeds["full"] = rss("Full Feed", [{"title": "Solana outage explained", "link": "https://a.example/sol",
                                             "summary": "Short teaser.", "content": body_html}, ENTRIES[0]])
    items = RSSFeed("Full", feeds.feed_url("full"), allow_private=True).fetch()
    assert items[0].body == body_html and items[0].summary == "Short teaser."
    assert items[1].body == ""  # no content:encoded, no body
    ingest_items(store, items)
    doc = next(d for d in store.find(limit=10) if d.title == "Solana outage explained")
    assert "full article" in doc.body and "Solana validators restarted the chain" in doc.body
    assert "<b>" not in doc.body and "<p>" not in doc.body
    assert "Second paragraph." in doc.body and doc.summary == "Short teaser."


def test_rss_since_and_query_filters(feeds: FakeFeeds) -> None:
    feeds.feeds["good"] = rss("Good Feed", ENTRIES)
    src = RSSFeed("Good", feeds.feed_url("good"), allow_private=True)
    assert [i.title for i in src.fetch(since=NOW - timedelta(days=1))] == ["Bitcoin climbs above $70,000"]
    assert [i.title for i in src.fetch("litecoin")] == ["Old story about Litecoin"]


def test_atom_feed(feeds: FakeFeeds) -> None:
    feeds.feeds["atom"] = atom("Atom Feed", ENTRIES[:1])
    items = RSSFeed("AtomSrc", feeds.feed_url("atom"), allow_private=True).fetch()
    assert len(items) == 1 and items[0].url.startswith("https://a.example/btc-70k")
    assert items[0].published is not None


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("<rss><channel><item><title>unterminated", "malformed feed"),
        ("<html><body>Just a web page</body></html>", "malformed|not an RSS"),
        (b"\x00\x01\x02 binary junk", "malformed|not an RSS"),
    ],
)
def test_broken_feeds_raise_readable_source_errors(feeds: FakeFeeds, body: str | bytes, match: str) -> None:
    feeds.feeds["bad"] = body
    with pytest.raises(SourceError, match=match) as info:
        RSSFeed("Broken", feeds.feed_url("bad"), allow_private=True).fetch()
    assert info.value.source == "Broken"


def test_http_errors_and_rate_limits(feeds: FakeFeeds) -> None:
    with pytest.raises(QuotaExceededError, match=r"429.*retry after 60"):
        RSSFeed("Limited", f"{feeds.url}/status/429", allow_private=True).fetch()
    with pytest.raises(SourceError, match="HTTP 500"):
        RSSFeed("Down", f"{feeds.url}/status/500", allow_private=True).fetch()
    with pytest.raises(SourceError, match="HTTP 404"):
        RSSFeed("Missing", feeds.feed_url("nope"), allow_private=True).fetch()


def test_unreachable_feed_is_a_source_error() -> None:
    with pytest.raises(SourceError, match="fetch failed"):
        RSSFeed("Nowhere", "http://127.0.0.1:9/feed", allow_private=True, timeout=2).fetch()


def test_one_broken_source_does_not_stop_the_others(feeds: FakeFeeds) -> None:
    feeds.feeds["good"] = rss("Good", ENTRIES)
    feeds.feeds["bad"] = "<rss><channel><item><title>x"
    sources = [
        RSSFeed("Bad", feeds.feed_url("bad"), allow_private=True),
        RSSFeed("Limited", f"{feeds.url}/status/429", allow_private=True),
        RSSFeed("Good", feeds.feed_url("good"), allow_private=True),
    ]
    items, errors, quota = fetch_all(sources)
    assert len(items) == 2
    assert len(errors) == 2 and any(e.startswith("Bad:") for e in errors)
    assert quota == [e for e in errors if e.startswith("Limited:")]


# -- Google CSE --------------------------------------------------------------------------------------------


def _google(cse: FakeGoogleCSE, key: str = "test-key") -> GoogleCSESource:
    return GoogleCSESource(key, "test-cx", base_url=cse.url, allow_private=True)


def test_google_pages_through_results_with_date_restrict(cse: FakeGoogleCSE) -> None:
    items = _google(cse).search("bitcoin etf", date_restrict="d3", max_results=25)
    assert len(items) == 25
    assert [r["start"] for r in cse.requests] == ["1", "11", "21"]
    assert [r["num"] for r in cse.requests] == ["10", "10", "5"]
    assert all(r["dateRestrict"] == "d3" and r["q"] == "bitcoin etf" and r["cx"] == "test-cx" for r in cse.requests)
    first = items[0]
    assert first.origin == "google_cse" and first.source == "news.example.com"
    assert first.published == datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def test_google_stops_when_no_next_page(cse: FakeGoogleCSE) -> None:
    cse.corpus = [result(1), result(2, published=None)]
    items = _google(cse).search("x", max_results=50)
    assert len(items) == 2 and len(cse.requests) == 1
    assert items[1].published is None


@pytest.mark.parametrize(("mode", "exc", "match"), [
    ("quota429", QuotaExceededError, "quota exhausted.*429.*RSS sources keep working"),
    ("daily403", QuotaExceededError, "quota exhausted.*403.*dailyLimitExceeded"),
    ("forbidden", SourceError, "forbidden.*enabled"),
    ("bad400", SourceError, "bad request"),
])
def test_google_errors_are_reported_clearly(cse: FakeGoogleCSE, mode: str, exc: type[Exception], match: str) -> None:
    cse.mode = mode
    with pytest.raises(exc, match=match) as info:
        _google(cse).search("bitcoin")
    if mode == "forbidden":
        assert not isinstance(info.value, QuotaExceededError)


def test_google_invalid_key(cse: FakeGoogleCSE) -> None:
    with pytest.raises(SourceError, match="API key not valid"):
        _google(cse, key="wrong").search("bitcoin")


def test_google_fetch_maps_since_to_date_restrict(cse: FakeGoogleCSE) -> None:
    _google(cse).fetch(None, since=datetime.now(UTC) - timedelta(hours=50), limit=5)
    assert cse.requests[0]["dateRestrict"] == "d3"
    assert "bitcoin" in cse.requests[0]["q"]


def test_google_refused_on_loopback_without_allow_private(cse: FakeGoogleCSE) -> None:
    src = GoogleCSESource("test-key", "test-cx", base_url=cse.url, allow_private=False)
    with pytest.raises(SourceError, match="non-public"):
        src.search("bitcoin")
    assert cse.requests == []


def test_sources_from_settings_rss_only_without_google_keys(tmp_path: object) -> None:
    from core.settings import Settings

    rss_only = sources_from_settings(Settings(google_api_key=None, google_cse_id=None))
    assert rss_only and all(isinstance(s, RSSFeed) for s in rss_only)
    both = sources_from_settings(Settings(google_api_key="k", google_cse_id="cx"))  # type: ignore[arg-type]
    assert isinstance(both[-1], GoogleCSESource)
