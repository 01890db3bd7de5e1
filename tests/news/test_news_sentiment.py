"""Sentiment: the offline model, the LLM path (JSON mode, batching, cache, retries, fallback), the per-symbol index,
signals and the CSV command."""

from __future__ import annotations

import csv
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from openai import OpenAI

from knowledge.models import NewsDoc
from knowledge.sentiment import OfflineSentiment, lexicon_label, lexicon_score, sentiment_index, sentiment_series
from knowledge.sentiment.llm import LLMSentiment
from knowledge.signals import news_signal
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.news.conftest import NOW

CLEAR = [
    ("Bitcoin surges to a record high on strong ETF inflows", "positive"),
    ("The exchange was hacked and user funds were stolen", "negative"),
    ("Net sales decreased by 20 percent as demand weakened", "negative"),
    ("Revenue rose sharply", "positive"),
    ("The company's headquarters are located in Helsinki", "neutral"),
    ("The meeting will take place on Thursday", "neutral"),
    ("Solana network outage halts block production", "negative"),
    ("What is a crypto wallet? A beginner's guide", "neutral"),
]


def test_lexicon_direction_and_negation() -> None:
    assert lexicon_score("Costs fell by 10 percent") > 0  # a bad metric falling is good
    assert lexicon_score("Losses widened sharply") < 0
    assert lexicon_score("Profit did not rise") < lexicon_score("Profit rose")
    assert lexicon_score("Revenue rose significantly") > lexicon_score("Revenue rose slightly") > 0
    assert lexicon_label("The company has 200 employees") == "neutral"


def test_offline_model_labels_clear_cases(embedder: Any, tmp_path: Path) -> None:
    model = OfflineSentiment(embedder, data_dir=tmp_path)  # no trained model there: the bundled default
    results = model.predict([t for t, _ in CLEAR])
    assert [r.label for r in results] == [label for _, label in CLEAR]
    for r in results:
        assert -1.0 <= r.score <= 1.0 and r.method == "offline"
    assert results[0].score > 0.5 and results[1].score < -0.5
    # precomputed embeddings give the same answer as letting the model embed
    emb = embedder.embed([t for t, _ in CLEAR])
    again = model.predict([t for t, _ in CLEAR], emb)
    assert np.allclose([r.score for r in again], [r.score for r in results], atol=1e-5)


def _answer(body: dict[str, Any], labels: list[tuple[str, float]] | None = None) -> Reply:
    n = body["messages"][1]["content"].count("\n") and sum(
        1 for line in body["messages"][1]["content"].splitlines() if line[:1].isdigit()
    )
    items = [{"id": i, "label": (labels[i][0] if labels else "positive"),
              "score": (labels[i][1] if labels else 0.5), "rationale": "because"} for i in range(n)]
    return Reply(content=json.dumps({"items": items}))


@pytest.fixture()
def llm() -> Any:
    with FakeOpenAI() as fake:
        yield fake


def _client(fake: FakeOpenAI) -> OpenAI:
    return OpenAI(base_url=fake.base_url, api_key="sk-test-123456789", max_retries=0)


def test_llm_json_mode_batching_and_cache(llm: FakeOpenAI, mongo_db: Any) -> None:
    llm.script(_answer, _answer)
    model = LLMSentiment(_client(llm), "deepseek-v4-flash", db=mongo_db, batch_size=3)
    texts = ["Bitcoin up", "Ether up", "SOL up", "ADA up", "Bitcoin up"]  # one repeat
    out = model.predict(texts)
    assert [r.label for r in out] == ["positive"] * 5 and all(r.method == "llm" for r in out)
    assert len(llm.requests) == 2  # 4 distinct texts in batches of 3
    body = llm.requests[0]
    assert body["response_format"] == {"type": "json_object"}
    prompt = body["messages"][0]["content"] + body["messages"][1]["content"]
    assert "json" in prompt and '"items"' in prompt  # the word json and an example
    assert "UNTRUSTED_NEWS" in body["messages"][1]["content"]
    # cached by content hash: in memory, and in Mongo for a fresh instance
    assert model.predict(["Ether up"])[0].rationale == "because" and len(llm.requests) == 2
    fresh = LLMSentiment(_client(llm), "deepseek-v4-flash", db=mongo_db)
    assert fresh.predict(["SOL up"])[0].label == "positive" and len(llm.requests) == 2


def test_llm_empty_and_invalid_replies_are_retried(llm: FakeOpenAI) -> None:
    llm.script(Reply(content=""), Reply(content="not json"),
               lambda b: _answer(b, [("negative", -0.9)]))
    model = LLMSentiment(_client(llm), "m", attempts=3)
    out = model.predict(["Exchange hacked"])
    assert out[0].label == "negative" and out[0].score == -0.9 and out[0].method == "llm"
    assert len(llm.requests) == 3


def test_llm_gives_up_and_falls_back_to_offline(llm: FakeOpenAI, embedder: Any, tmp_path: Path) -> None:
    llm.script(Reply(content=""), Reply(status=500, error="boom"), Reply(content='{"items": [{"id": 0}]}'))
    model = LLMSentiment(_client(llm), "m", attempts=3, fallback=OfflineSentiment(embedder, data_dir=tmp_path))
    out = model.predict(["The exchange was hacked and user funds were stolen"])
    assert out[0].method == "offline-fallback" and out[0].label == "negative"
    assert len(llm.requests) == 3


def _doc(title: str, score: float, hours_ago: float, symbols: list[str], events: list[str] | None = None) -> NewsDoc:
    return NewsDoc(id=title, title=title, summary="", body="", source="s", url="u", url_canon="u",
                   published=NOW - timedelta(hours=hours_ago), symbols=symbols, content_hash=title,
                   events=events or [], sentiment_label="positive" if score > 0 else "negative",
                   sentiment_score=score)


def test_sentiment_index_time_decay_and_no_lookahead() -> None:
    docs = [_doc("old good", 1.0, 48, ["BTC"]), _doc("new bad", -1.0, 0, ["BTC"]),
            _doc("future", 1.0, -5, ["BTC"]), _doc("other coin", 1.0, 0, ["ETH"])]
    idx = sentiment_index(docs, "BTC", as_of=NOW, half_life_hours=24)
    # weights 0.25 (48h, two half-lives) and 1.0: (0.25 - 1) / 1.25 = -0.6
    assert idx.index == pytest.approx(-0.6) and idx.n_docs == 2 and idx.weight == pytest.approx(1.25)
    assert sentiment_index(docs, "SOL", as_of=NOW).n_docs == 0
    times = [int((NOW - timedelta(hours=h)).timestamp() * 1000) for h in (49, 47, 0)]
    series = sentiment_series(docs, "BTC", times, half_life_hours=24)
    assert series[0] == 0.0 and series[1] == pytest.approx(1.0) and series[2] == pytest.approx(-0.6)


def test_news_signal_combines_sentiment_and_event_priors() -> None:
    calm = news_signal([_doc("ok", 0.2, 1, ["SOL"])], "SOL/USDT", as_of=NOW)
    hacked = news_signal([_doc("ok", 0.2, 1, ["SOL"]), _doc("hack", -0.8, 1, ["SOL"], ["hack"])], "SOL", as_of=NOW)
    assert hacked.signal < calm.signal and hacked.events == {"hack": 1}
    assert -1.0 <= hacked.signal <= 1.0 and any("hack" in r for r in hacked.reasons)


def test_cli_sentiment_labels_a_csv_offline(tmp_path: Path, isolated_settings: Path, embedder: Any) -> None:
    from agent.cli import main

    src = tmp_path / "in.csv"
    with src.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "headline"])
        for i, (text, _) in enumerate(CLEAR):
            w.writerow([i, text])
        w.writerow([99, ""])
    out = tmp_path / "out.csv"
    assert main(["news", "sentiment", "--file", str(src), "--column", "headline", "--out", str(out),
                 "--offline"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["sentiment_label"] for r in rows[:-1]] == [label for _, label in CLEAR]
    assert rows[-1]["sentiment_label"] == "neutral" and rows[-1]["sentiment_score"] == "0.0000"
    assert all(-1 <= float(r["sentiment_score"]) <= 1 for r in rows) and rows[0]["id"] == "0"
    assert main(["news", "sentiment", "--file", str(src), "--column", "nope", "--offline"]) == 2
