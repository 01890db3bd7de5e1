"""Training the offline sentiment head: the CLI on small generated datasets, leave-one-dataset-out evaluation,
versioned models and loading the newest, the bundled fallback, and bad training files refused with exit code 2."""

from __future__ import annotations

import csv
import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.clock import use_clock
from knowledge.sentiment import OfflineSentiment
from knowledge.sentiment.head import SentimentHead
from knowledge.sentiment.registry import BUNDLED_DIR, load_model, models_root, trained_versions
from knowledge.sentiment.training import calibration, confusion, macro_f1

COINS = ["Bitcoin", "Ether", "Solana", "Cardano", "Dogecoin", "Polygon", "Avalanche", "Litecoin"]
GOOD = ["soars to a record high after ETF approval", "rallies as buyers pile in", "surges after a major exchange "
        "listing", "jumps on a big partnership announcement", "gains strongly as inflows hit a record"]
BAD = ["crashes after a massive exchange hack", "plunges as the SEC files a lawsuit", "tumbles after the delisting "
       "news", "collapses as investors panic and sell", "drops sharply after an exploit drained funds"]
FLAT = ["developers publish the meeting notes", "foundation moves its office to a new city", "will hold a community "
        "call on Thursday", "documentation was updated this week", "conference schedule is now available"]
POST_GOOD = ["{c} to the moon, buying more!!", "loading up on {c}, so bullish", "{c} breakout confirmed, long it"]
POST_BAD = ["{c} is dumping, get out now", "shorting {c}, this is going to zero", "{c} looks terrible, sold it all"]


def _write(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def _headlines(path: Path, seed: int) -> Path:
    rng = random.Random(seed)
    rows = []
    for _ in range(30):
        for phrases, label in ((GOOD, 1), (BAD, -1), (FLAT, 0)):
            rows.append([f"{rng.choice(COINS)} {rng.choice(phrases)}", label])
    return _write(path, ["title", "label"], rows)


def _posts(path: Path, seed: int) -> Path:
    rng = random.Random(seed)
    rows = []
    for i in range(40):
        for phrases, tag in ((POST_GOOD, "Bullish"), (POST_BAD, "Bearish")):
            rows.append([i, tag, rng.choice(phrases).format(c=rng.choice(COINS))])
    return _write(path, ["message_id", "tag", "body"], rows)


def _clock(day: int) -> Any:
    return lambda: int(datetime(2024, 3, day, 12, tzinfo=UTC).timestamp() * 1000)


def _train(paths: list[Path], capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, Any]]:
    from agent.cli import main

    args = ["news", "train-sentiment", "--json", *extra]
    for p in paths:
        args += ["--data", str(p)]
    rc = main(args)
    return rc, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_train_evaluates_each_dataset_left_out_and_the_service_loads_it(
    tmp_path: Path, isolated_settings: Path, embedder: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    heads, posts = _headlines(tmp_path / "heads.csv", 1), _posts(tmp_path / "posts.csv", 2)
    with use_clock(_clock(1)):
        rc, out = _train([heads, posts], capsys)
    assert rc == 0 and out["ok"] is True, out
    version = out["version"]
    assert version.startswith("20240301T120000Z-")
    path = models_root(isolated_settings) / version
    assert Path(out["path"]) == path and (path / "head.npz").exists()
    meta = json.loads((path / "model.json").read_text())
    assert meta["version"] == version and meta["evaluation"]["datasets"]["heads"]["classes"] == {
        "negative": 30, "neutral": 30, "positive": 30}
    lodo = out["leave_one_dataset_out"]
    # each dataset scored by a model trained on the other one only
    assert lodo["heads"]["trained_on"] == ["posts"] and lodo["posts"]["trained_on"] == ["heads"]
    assert lodo["heads"]["mode"] == "three-class" and lodo["posts"]["mode"].startswith("two-class")
    assert sum(map(sum, lodo["heads"]["confusion"])) == 90 and len(lodo["heads"]["confusion"]) == 3
    assert lodo["posts"]["macro_f1"] > 0.8  # the polarity learnt from headlines carries over to posts
    assert 0 < out["threshold"] < 1 and out["in_sample"]["heads"]["macro_f1"] > 0.8
    cal = lodo["posts"]["calibration"]
    assert cal["n"] == 80 and 0 <= cal["ece"] <= 1 and sum(b["n"] for b in cal["reliability"]) == 80

    model = OfflineSentiment(embedder)  # the settings' data dir: the newest trained model
    assert model.model().head.version == version and not model.model().bundled
    res = model.predict(["Avalanche jumps on a big partnership announcement",
                         "Litecoin plunges as the SEC files a lawsuit",
                         "Cardano will hold a community call on Thursday"])
    assert [r.label for r in res] == ["positive", "negative", "neutral"]
    assert all(-1 <= r.score <= 1 for r in res) and version in res[0].rationale
    # precomputed embeddings (as at ingestion) give the same scores
    emb = embedder.embed(["Avalanche jumps on a big partnership announcement"])
    again = model.predict(["Avalanche jumps on a big partnership announcement"], emb)
    assert again[0].score == pytest.approx(res[0].score, abs=1e-5)


def test_versions_sort_by_time_and_the_newest_loadable_one_wins(
    tmp_path: Path, isolated_settings: Path, embedder: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    heads = _headlines(tmp_path / "heads.csv", 3)
    with use_clock(_clock(2)):
        assert _train([heads], capsys)[0] == 0
    model = OfflineSentiment(embedder)
    first = model.model().head.version
    with use_clock(_clock(5)):
        rc, out = _train([_headlines(tmp_path / "heads.csv", 4)], capsys)
    assert rc == 0 and out["leave_one_dataset_out"] == {} and out["lodo_mean_macro_f1"] is None
    assert [p.name for p in trained_versions(isolated_settings)] == [first, out["version"]]
    assert model.model().head.version == out["version"]  # picked up without a restart
    (models_root(isolated_settings) / out["version"] / "head.npz").write_bytes(b"not a model")
    loaded = load_model(isolated_settings)
    assert loaded.head.version == first and not loaded.bundled
    # --out writes a model elsewhere (how the bundled default is built) and adds no version
    with use_clock(_clock(9)):
        rc, out = _train([heads], capsys, "--out", str(tmp_path / "bundle"))
    assert rc == 0 and SentimentHead.load(tmp_path / "bundle").version == out["version"]
    assert len(trained_versions(isolated_settings)) == 2


def test_without_a_trained_model_the_bundled_default_is_used_with_a_note(
    tmp_path: Path, embedder: Any
) -> None:
    model = OfflineSentiment(embedder, data_dir=tmp_path / "empty")
    assert model.model().bundled and model.model().path == BUNDLED_DIR
    assert "no trained model" in model.note and "bundled default" in model.note
    bundled = SentimentHead.load(BUNDLED_DIR)
    assert bundled.dim == 384 and "crypto" in json.dumps(bundled.meta["datasets"]).lower()
    res = model.predict(["Hackers drain $80 million from DeFi protocol in an exploit",
                         "Bitcoin soars to a record high after ETF approval"])
    assert res[0].label == "negative" and res[1].label == "positive" and "(bundled)" in res[0].rationale


def test_cli_sentiment_csv_uses_the_offline_model_and_names_it(
    tmp_path: Path, isolated_settings: Path, embedder: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent.cli import main

    rows: list[list[Any]] = [[1, "Ripple announces stock buyback, nabs $15 billion valuation"],
                             [2, "Crypto lender files for bankruptcy"]]
    src = _write(tmp_path / "in.csv", ["id", "headline"], rows)
    out = tmp_path / "out.csv"
    assert main(["news", "sentiment", "--file", str(src), "--column", "headline", "--out", str(out), "--offline",
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "bundled default" in summary["model"] and summary["method"] == "offline"
    rows = list(csv.DictReader(out.open()))
    assert rows[1]["sentiment_label"] == "negative" and float(rows[0]["sentiment_score"]) > float(
        rows[1]["sentiment_score"])


@pytest.mark.parametrize(("header", "rows", "extra", "message"), [
    (["title", "label"], [["Bitcoin up", "1"], ["Bitcoin down", "maybe"]], [], "unknown labels"),
    (["headline_text", "label"], [["Bitcoin up", "1"]], [], "no text column"),
    (["title", "label"], [["Bitcoin up", "1"]], ["--label-column", "sentiment"], "label column 'sentiment' not in"),
    (["title", "label"], [], [], "no labelled rows"),
    ([], [], [], "empty file"),
    (["title", "label"], [["Bitcoin up", "1"], ["Ether up", "1"], ["Calm day", "0"]], [], "negative rows"),
])
def test_bad_training_files_are_refused_with_exit_code_2(
    tmp_path: Path, isolated_settings: Path, capsys: pytest.CaptureFixture[str], header: list[str],
    rows: list[list[str]], extra: list[str], message: str
) -> None:
    path = tmp_path / "bad.csv"
    if header:
        _write(path, header, rows)
    else:
        path.write_text("")
    rc, out = _train([path], capsys, *extra)
    assert rc == 2 and out["ok"] is False and message in out["error"]
    assert trained_versions(isolated_settings) == []  # nothing written


def test_missing_file_is_refused_in_plain_text(tmp_path: Path, isolated_settings: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from agent.cli import main

    assert main(["news", "train-sentiment", "--data", str(tmp_path / "nope.csv")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_metrics_confusion_and_calibration() -> None:
    truth = ["positive", "negative", "neutral", "positive"]
    pred = ["positive", "neutral", "neutral", "negative"]
    assert confusion(truth, pred) == [[0, 1, 0], [0, 1, 0], [1, 0, 1]]
    # F1: negative 0, neutral 2/3, positive 2/3
    assert macro_f1(truth, pred, ["negative", "neutral", "positive"]) == pytest.approx(4 / 9)
    cal = calibration(["positive", "negative", "neutral"], np.array([0.9, -0.9, 0.1]))
    # polar rows: p = 0.95 (positive) and 0.05 (negative): perfectly ordered, each off by 0.05
    assert cal["n"] == 2 and cal["ece"] == pytest.approx(0.05) and cal["brier"] == pytest.approx(0.0025)
