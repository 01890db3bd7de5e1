"""Training and honest evaluation of the offline sentiment head (`knowledge.sentiment.head`).

Data: one or more labelled CSV files, each one *dataset* (a source with its own style and labelling rule). Labels
may be positive/neutral/negative, 1/0/-1 or Bullish/Bearish; a file without neutral rows is a two-class dataset.

Recipe (chosen by leave-one-dataset-out measurement, see docs/news.md):
- polarity: logistic regression (L2, C=1) on the MiniLM embedding, fitted on the positive and negative rows of
  every dataset; each dataset weighs the same in total and the two classes weigh the same, so a large source or a
  skewed class does not set the direction;
- score: (1 - 0.7) (2 P(positive) - 1) + 0.7 lexicon score (`knowledge.sentiment.lexicon`, finance and crypto
  terms). Left out, the crypto headlines scored 0.43 / 0.43 / 0.455 / 0.475 with lexicon weights 0.3 / 0.5 / 0.7 /
  1.0, the StockTwits posts 0.598 / 0.599 / 0.596 / 0.550, the PhraseBank 0.595 / 0.643 / 0.667 / 0.665: the
  lexicon carries across sources better than the embedding head, and the head still adds on the posts;
- neutral band: the threshold on |score| that maximises the mean macro-F1 of the three-class datasets, measured
  out of fold (3 folds), so the band is not fitted on the rows it is judged on. Without a three-class dataset the
  band stays at `DEFAULT_THRESHOLD` (said in the evaluation).

Evaluation: for every dataset, a model trained on the others only (leave one dataset out) scores it: macro-F1,
the confusion matrix and the calibration of P(positive) on its polar rows. A two-class dataset is scored as its
authors labelled it, by the side of the score (positive when score >= 0): its labels (a Bullish/Bearish tag)
say which side a post takes, not whether it is neutral, so a neutral prediction cannot be right or wrong there;
the three-way macro-F1 over its two classes (a neutral prediction counted as a miss) is reported beside it.
"""

from __future__ import annotations

import csv
import hashlib
import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from knowledge.sentiment.head import SentimentHead, label_from_score, texts_lexicon

LABELS = ("negative", "neutral", "positive")
TEXT_COLUMNS = ("text", "title", "headline", "sentence", "body")
LABEL_COLUMNS = ("label", "sentiment", "tag")
LABEL_MAP = {
    "positive": "positive", "pos": "positive", "bullish": "positive", "1": "positive", "+1": "positive",
    "1.0": "positive",
    "negative": "negative", "neg": "negative", "bearish": "negative", "-1": "negative", "-1.0": "negative",
    "neutral": "neutral", "neu": "neutral", "0": "neutral", "0.0": "neutral",
}
DEFAULT_THRESHOLD = 0.5
THRESHOLD_GRID = tuple(round(0.05 * i, 2) for i in range(1, 19))  # 0.05 .. 0.90
C = 1.0
LEXICON_WEIGHT = 0.7
NEUTRAL_WEIGHT = 0.5
FOLDS = 3
MIN_PER_CLASS = 2

Embed = Callable[[list[str]], NDArray[np.float32]]


class TrainingDataError(ValueError):
    """A training file that cannot be used; the message says which file and what is wrong."""


@dataclass(frozen=True)
class LabelledSet:
    name: str
    texts: list[str]
    labels: list[str]  # positive | neutral | negative
    skipped_empty: int = 0

    @property
    def three_class(self) -> bool:
        return "neutral" in self.labels

    def counts(self) -> dict[str, int]:
        return {c: self.labels.count(c) for c in LABELS if c in self.labels}


def _read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    for encoding in ("utf-8-sig", "latin-1"):
        try:
            with path.open(newline="", encoding=encoding) as fh:
                reader = csv.DictReader(fh)
                fields = [f.strip() for f in reader.fieldnames or []]
                return fields, [{(k or "").strip(): (v or "") for k, v in row.items()} for row in reader]
        except UnicodeDecodeError:
            continue
    raise TrainingDataError(f"{path}: not a readable text CSV")  # latin-1 decodes any bytes: unreachable


def _pick(fields: list[str], wanted: str | None, candidates: Sequence[str], what: str, path: Path) -> str:
    if wanted is not None:
        if wanted not in fields:
            raise TrainingDataError(f"{path}: {what} column {wanted!r} not in {fields}")
        return wanted
    lower = {f.lower(): f for f in fields}
    for c in candidates:
        if c in lower:
            return lower[c]
    raise TrainingDataError(f"{path}: no {what} column (looked for {', '.join(candidates)}; columns are {fields}); "
                            f"name it with --{what}-column")


def read_labelled_csv(path: Path, *, text_column: str | None = None, label_column: str | None = None,
                      name: str | None = None) -> LabelledSet:
    """One dataset from a CSV; raises `TrainingDataError` for a missing file or column, unknown labels, no rows."""
    if not path.is_file():
        raise TrainingDataError(f"{path}: no such file")
    fields, rows = _read_rows(path)
    if not fields:
        raise TrainingDataError(f"{path}: empty file (no header)")
    tcol = _pick(fields, text_column, TEXT_COLUMNS, "text", path)
    lcol = _pick(fields, label_column, LABEL_COLUMNS, "label", path)
    texts: list[str] = []
    labels: list[str] = []
    unknown: dict[str, int] = {}
    empty = 0
    for i, row in enumerate(rows, start=2):  # line 1 is the header
        raw = row.get(lcol, "").strip()
        label = LABEL_MAP.get(raw.lower())
        if label is None:
            unknown.setdefault(raw, i)
            continue
        text = html.unescape(row.get(tcol, "")).strip()
        if not text:
            empty += 1
            continue
        texts.append(text)
        labels.append(label)
    if unknown:
        shown = ", ".join(f"{k!r} (line {v})" for k, v in list(unknown.items())[:5])
        raise TrainingDataError(f"{path}: unknown labels in column {lcol!r}: {shown}; use positive/neutral/negative, "
                                "1/0/-1 or Bullish/Bearish")
    if not texts:
        raise TrainingDataError(f"{path}: no labelled rows with text")
    return LabelledSet(name or path.stem, texts, labels, empty)


# -- fitting -------------------------------------------------------------------------------------------------------
def _weights(sets: Sequence[tuple[NDArray[np.float64], list[str]]]) -> tuple[NDArray[np.float64],
                                                                            NDArray[np.int64],
                                                                            NDArray[np.float64]]:
    """Rows, y (1 = positive), weights. Polar rows: each set the same total, then the classes balanced. Neutral rows
    (three-class sets) enter twice, once on each side, with `NEUTRAL_WEIGHT` of the polar weight in all: they pull
    the score of a text that takes no side towards 0, where the neutral band is."""
    xs, ys, ws = [], [], []
    nx, nw = [], []
    for x, labels in sets:
        lab = np.asarray(labels)
        polar = lab != "neutral"
        if polar.any():
            xs.append(x[polar])
            ys.append((lab[polar] == "positive").astype(np.int64))
            ws.append(np.full(int(polar.sum()), 1.0 / float(polar.sum())))
        if (~polar).any():
            nx.append(x[~polar])
            nw.append(np.full(int((~polar).sum()), 1.0 / float((~polar).sum())))
    if not xs:
        raise TrainingDataError("no positive or negative rows to learn from")
    xa, ya, wa = np.vstack(xs), np.concatenate(ys), np.concatenate(ws)
    for cls in (0, 1):
        mask = ya == cls
        if mask.sum() < MIN_PER_CLASS:
            name = "positive" if cls else "negative"
            raise TrainingDataError(f"need at least {MIN_PER_CLASS} {name} rows to train, found {int(mask.sum())}")
        wa[mask] *= 0.5 / wa[mask].sum()
    if nx and NEUTRAL_WEIGHT > 0:
        xn, wn = np.vstack(nx), np.concatenate(nw)
        wn *= NEUTRAL_WEIGHT / wn.sum() / 2.0
        xa = np.vstack([xa, xn, xn])
        ya = np.concatenate([ya, np.ones(len(xn), np.int64), np.zeros(len(xn), np.int64)])
        wa = np.concatenate([wa, wn, wn])
    return xa, ya, wa * len(ya) / wa.sum()


def fit_polarity(sets: Sequence[tuple[NDArray[np.float64], list[str]]]) -> tuple[NDArray[np.float64], float]:
    from sklearn.linear_model import LogisticRegression

    x, y, w = _weights(sets)
    clf = LogisticRegression(C=C, max_iter=5000)
    clf.fit(x, y, sample_weight=w)
    return clf.coef_[0].astype(np.float64), float(clf.intercept_[0])


Scored = tuple[NDArray[np.float64], list[str], NDArray[np.float64]]  # embeddings, labels, lexicon scores


def _scores(coef: NDArray[np.float64], intercept: float, x: NDArray[np.float64],
            lex: NDArray[np.float64]) -> NDArray[np.float64]:
    return SentimentHead(coef, intercept, 0.0, "", lexicon_weight=LEXICON_WEIGHT).scores(x, lex)


def macro_f1(truth: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> float:
    """Macro-F1 over `labels` (a class never true nor predicted scores 0, as in scikit-learn's zero_division=0)."""
    t, p = np.asarray(truth), np.asarray(pred)
    f1s = []
    for c in labels:
        tp = float(np.sum((t == c) & (p == c)))
        fp = float(np.sum((t != c) & (p == c)))
        fn = float(np.sum((t == c) & (p != c)))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return float(np.mean(f1s)) if f1s else 0.0


def _folds(n: int) -> NDArray[np.int64]:
    """A fixed random fold per row (rows often come grouped by label or time: never fold by position)."""
    return np.random.default_rng(0).permutation(n) % FOLDS


def choose_threshold(sets: Sequence[Scored]) -> tuple[float, str]:
    """The neutral band from out-of-fold scores of the three-class sets (all sets train each fold)."""
    three = [i for i, (_, labels, _) in enumerate(sets) if "neutral" in labels]
    if not three:
        return DEFAULT_THRESHOLD, f"no three-class data: neutral band left at {DEFAULT_THRESHOLD}"
    oof = {i: np.zeros(len(sets[i][1])) for i in three}
    folds = [_folds(len(labels)) for _, labels, _ in sets]
    for k in range(FOLDS):
        train = []
        for (x, labels, _), fold in zip(sets, folds, strict=True):
            keep = fold != k
            train.append((x[keep], [lab for lab, m in zip(labels, keep, strict=True) if m]))
        coef, b = fit_polarity(train)
        for i in three:
            held = folds[i] == k
            oof[i][held] = _scores(coef, b, sets[i][0][held], sets[i][2][held])
    best, best_f1 = DEFAULT_THRESHOLD, -1.0
    for th in THRESHOLD_GRID:
        f1 = float(np.mean([macro_f1(sets[i][1], [label_from_score(s, th) for s in oof[i]], LABELS)
                            for i in three]))
        if f1 > best_f1 + 1e-12:
            best, best_f1 = th, f1
    return best, f"out-of-fold macro-F1 {best_f1:.3f} on the three-class data"


def fit_head(sets: Sequence[Scored], version: str) -> SentimentHead:
    """The recipe on (embeddings, labels, lexicon scores) sets: polarity head, lexicon blend, neutral band."""
    coef, b = fit_polarity([(x, labels) for x, labels, _ in sets])
    th, note = choose_threshold(sets)
    return SentimentHead(coef, b, th, version, {"threshold_note": note}, LEXICON_WEIGHT)


# -- evaluation ----------------------------------------------------------------------------------------------------
def confusion(truth: Sequence[str], pred: Sequence[str]) -> list[list[int]]:
    """Rows: true negative/neutral/positive; columns: predicted, same order."""
    idx = {c: i for i, c in enumerate(LABELS)}
    m = [[0] * 3 for _ in LABELS]
    for t, p in zip(truth, pred, strict=True):
        m[idx[t]][idx[p]] += 1
    return m


def calibration(truth: Sequence[str], scores: NDArray[np.float64], bins: int = 10) -> dict[str, Any]:
    """How well P(positive) = (score + 1) / 2 matches the share of positives among polar rows."""
    lab = np.asarray(truth)
    polar = lab != "neutral"
    if not polar.any():
        return {"n": 0}
    p = (np.asarray(scores)[polar] + 1.0) / 2.0
    y = (lab[polar] == "positive").astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        m = which == b
        if not m.any():
            continue
        gap = abs(float(p[m].mean()) - float(y[m].mean()))
        ece += gap * float(m.sum()) / len(p)
        table.append({"p_lo": round(float(edges[b]), 2), "p_hi": round(float(edges[b + 1]), 2), "n": int(m.sum()),
                      "mean_p": round(float(p[m].mean()), 3), "share_positive": round(float(y[m].mean()), 3)})
    neutral = np.abs(np.asarray(scores)[~polar])
    return {"n": int(polar.sum()), "ece": round(ece, 4), "brier": round(float(np.mean((p - y) ** 2)), 4),
            "reliability": table,
            "mean_abs_score_polar": round(float(np.mean(np.abs(2 * p - 1))), 3),
            "mean_abs_score_neutral": round(float(neutral.mean()), 3) if len(neutral) else None}


def evaluate(head: SentimentHead, data: LabelledSet, scores: NDArray[np.float64]) -> dict[str, Any]:
    pred = head.labels(scores)
    out: dict[str, Any] = {"rows": len(data.labels), "classes": data.counts(),
                           "predicted": {c: pred.count(c) for c in LABELS}, "confusion": confusion(data.labels, pred),
                           "confusion_order": list(LABELS), "calibration": calibration(data.labels, scores)}
    if data.three_class:
        out["mode"] = "three-class"
        out["macro_f1"] = round(macro_f1(data.labels, pred, LABELS), 4)
    else:
        present = [c for c in LABELS if c in data.labels]
        side = ["positive" if s >= 0 else "negative" for s in scores]
        out["mode"] = "two-class: side of the score"
        out["macro_f1"] = round(macro_f1(data.labels, side, present), 4)
        out["macro_f1_neutral_as_miss"] = round(macro_f1(data.labels, pred, present), 4)
        out["confusion_side"] = confusion(data.labels, side)
    return out


# -- the whole run -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainResult:
    head: SentimentHead
    evaluation: dict[str, Any]


def _version(now: datetime, coef: NDArray[np.float64], threshold: float) -> str:
    digest = hashlib.sha256(coef.tobytes() + f"{threshold}".encode()).hexdigest()[:8]
    return f"{now:%Y%m%dT%H%M%SZ}-{digest}"


def train(datasets: Sequence[LabelledSet], embed: Embed, *, now: datetime,
          embedding_mode: str = "") -> TrainResult:
    """Fit on all `datasets`, and when there are two or more, score each by a model trained without it."""
    if not datasets:
        raise TrainingDataError("no training data given")
    names = [d.name for d in datasets]
    if len(set(names)) != len(names):
        raise TrainingDataError(f"dataset names must differ: {names}")
    xs = [np.asarray(embed(d.texts), dtype=np.float64) for d in datasets]
    lexs = [texts_lexicon(d.texts) for d in datasets]
    triples = [(x, d.labels, lex) for x, d, lex in zip(xs, datasets, lexs, strict=True)]
    lodo: dict[str, Any] = {}
    if len(datasets) > 1:
        for i, d in enumerate(datasets):
            try:
                h = fit_head([t for j, t in enumerate(triples) if j != i], "lodo")
            except TrainingDataError as exc:
                lodo[d.name] = {"skipped": f"the other datasets cannot train a model: {exc}"}
                continue
            lodo[d.name] = {"trained_on": [n for j, n in enumerate(names) if j != i], "threshold": h.threshold,
                            **evaluate(h, d, h.scores(xs[i], lexs[i]))}
    fitted = fit_head(triples, "")
    th, th_note = fitted.threshold, fitted.meta["threshold_note"]
    coef, b = fitted.coef, fitted.intercept
    version = _version(now, coef, th)
    final = SentimentHead(coef, b, th, version, lexicon_weight=LEXICON_WEIGHT)
    in_sample = {d.name: evaluate(final, d, final.scores(x, lex))
                 for d, x, lex in zip(datasets, xs, lexs, strict=True)}
    scored = [v["macro_f1"] for v in lodo.values() if "macro_f1" in v]
    evaluation = {
        "recipe": "logistic polarity head on MiniLM embeddings, datasets and classes weighted equally, blended "
                  f"with the lexicon score (weight {LEXICON_WEIGHT}); neutral band |score| < threshold chosen out "
                  "of fold",
        "threshold": th, "threshold_note": th_note, "embedding_mode": embedding_mode,
        "datasets": {d.name: {"rows": len(d.labels), "classes": d.counts(), "skipped_empty": d.skipped_empty}
                     for d in datasets},
        "leave_one_dataset_out": lodo,
        "lodo_mean_macro_f1": round(float(np.mean(scored)), 4) if scored else None,
        "in_sample": in_sample,
    }
    meta = {"trained_at": now.isoformat(), "datasets": evaluation["datasets"], "evaluation": evaluation}
    return TrainResult(SentimentHead(coef, b, th, version, meta, LEXICON_WEIGHT), evaluation)
