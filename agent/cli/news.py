"""`crypto-agent news ingest|search|sentiment|train-sentiment|events|impact`: the news knowledge base from the command
line."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

from agent.cli.args import int_in, positive_float


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    news = sub.add_parser("news", help="news knowledge base: ingest, search, sentiment, events, impact",
                          description="Crypto news: RSS (keyless) and Google CSE sources, a Chroma knowledge base, "
                          "sentiment and event detection.")
    nsub = news.add_subparsers(dest="news_command", metavar="ACTION")
    news.set_defaults(func=lambda args: (news.print_help(sys.stderr), 2)[1])

    ing = nsub.add_parser("ingest", help="fetch configured sources (RSS feeds; Google CSE when keyed) and store")
    ing.add_argument("--feed", action="append", default=None, metavar="NAME=URL",
                     help="RSS/Atom feed to use instead of the default list (repeatable)")
    ing.add_argument("--query", default=None, help="keyword filter for feeds / query for Google CSE")
    ing.add_argument("--lookback-hours", type=positive_float(24 * 3650), default=48.0)
    ing.add_argument("--retention-days", type=int_in(0, 36_500), default=180,
                     help="delete items older than this (0: keep all)")
    ing.add_argument("--json", action="store_true", help="print one JSON object")
    ing.set_defaults(func=_ingest)

    se = nsub.add_parser("search", help="hybrid search of the knowledge base")
    se.add_argument("query")
    se.add_argument("--symbols", default=None, help="comma-separated coins, e.g. BTC,ETH")
    se.add_argument("--hours", type=float, default=None, help="only the last N hours")
    se.add_argument("--source", action="append", default=None, help="outlet name (repeatable)")
    se.add_argument("-k", type=int, default=10)
    se.add_argument("--json", action="store_true")
    se.set_defaults(func=_search)

    sen = nsub.add_parser("sentiment", help="label a CSV column (or --text) with sentiment",
                          description="Adds sentiment_label (positive|neutral|negative) and sentiment_score in "
                          "[-1, 1]. Uses the LLM when LLM_API_KEY is set unless --offline.")
    sen.add_argument("--file", type=Path, default=None, help="input CSV")
    sen.add_argument("--column", default=None, help="text column of the CSV")
    sen.add_argument("--out", type=Path, default=None, help="output CSV (default: stdout)")
    sen.add_argument("--text", action="append", default=None, help="score this text (repeatable)")
    sen.add_argument("--symbols", default=None, help="instead: per-coin sentiment index from the knowledge base")
    sen.add_argument("--offline", action="store_true", help="never call the LLM")
    sen.add_argument("--json", action="store_true")
    sen.set_defaults(func=_sentiment)

    tr = nsub.add_parser("train-sentiment", help="train the offline sentiment model on labelled CSV files",
                         description="Trains the offline sentiment head on MiniLM embeddings from labelled CSV files "
                         "(each file one dataset; labels positive/neutral/negative, 1/0/-1 or Bullish/Bearish), "
                         "scores every dataset with a model trained without it, and writes a versioned model with "
                         "its evaluation under DATA_DIR/models/sentiment (the service then uses the newest).")
    tr.add_argument("--data", type=Path, action="append", required=True, metavar="CSV",
                    help="labelled CSV file (repeatable: one dataset each)")
    tr.add_argument("--text-column", default=None, help="text column (default: text, title, headline, sentence "
                    "or body)")
    tr.add_argument("--label-column", default=None, help="label column (default: label, sentiment or tag)")
    tr.add_argument("--out", type=Path, default=None,
                    help="write the model into this directory instead of a new version under the data directory")
    tr.add_argument("--json", action="store_true", help="print one JSON object")
    tr.set_defaults(func=_train_sentiment)

    ev = nsub.add_parser("events", help="the newest stored items with detected event types")
    ev.add_argument("--symbols", default=None, help="comma-separated coins, e.g. BTC,ETH")
    ev.add_argument("--types", default=None, help="comma-separated event types (default: any)")
    ev.add_argument("--hours", type=float, default=None, help="only the last N hours (default: any age)")
    ev.add_argument("--limit", type=int, default=30, help="at most N events (1-500, default 30)")
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(func=_events)

    im = nsub.add_parser("impact", help="event study: abnormal returns 1h/4h/24h after each event type",
                         description="Abnormal returns of the coins named in stored news events over 1h, 4h and "
                         "24h, against BTC/USDT as benchmark, from the stored candles (get them with "
                         "`crypto-agent data download --symbol SOL/USDT --timeframe 1h --since YYYY-MM-DD`).")
    im.add_argument("--event-type", default=None, help="one event type (default: all)")
    im.add_argument("--symbol", default=None, help="one coin, e.g. SOL or SOL/USDT")
    im.add_argument("--hours", type=float, default=None, help="only events of the last N hours (default: all)")
    im.add_argument("--timeframe", default="1h", help="candles: 5m, 15m, 30m or 1h (default 1h)")
    im.add_argument("--json", action="store_true")
    im.set_defaults(func=_impact)


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _service() -> Any:
    from knowledge.service import get_service

    return get_service()


def _ingest(args: argparse.Namespace) -> int:
    from core.settings import get_settings
    from knowledge.sources import sources_from_settings

    feeds = None
    if args.feed:
        feeds = {}
        for spec in args.feed:
            name, sep, url = spec.partition("=")
            if not sep or not url.startswith(("http://", "https://")):
                print(f"error: --feed expects NAME=URL, got {spec!r}", file=sys.stderr)
                return 2
            feeds[name.strip()] = url.strip()
    sources = sources_from_settings(get_settings(), feeds=feeds)
    report = _service().ingest(sources=sources, query=args.query, lookback_hours=args.lookback_hours,
                               retention_days=args.retention_days or None)
    if args.json:
        print(json.dumps(report, default=str))
    else:
        print(f"fetched {report['fetched']}, stored {report['stored']}, duplicates url/exact/near "
              f"{report['dup_url']}/{report['dup_exact']}/{report['dup_near']}, purged {report['purged']} "
              f"in {report['seconds']} s")
        for err in report["errors"]:
            print(f"  source error: {err}", file=sys.stderr)
    return 0 if report["fetched"] or not report["errors"] else 1


def _search(args: argparse.Namespace) -> int:
    if not 1 <= args.k <= 100:  # as GET /v1/news/search
        print(f"error: -k must be between 1 and 100, got {args.k}", file=sys.stderr)
        return 2
    if args.hours is not None and args.hours <= 0:
        print("error: --hours must be positive", file=sys.stderr)
        return 2
    try:
        hits = _service().search(args.query, k=args.k, symbols=_split(args.symbols), since_hours=args.hours,
                                 sources=args.source)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"query": args.query, "results": [h.as_dict() for h in hits]}, default=str))
        return 0
    if not hits:
        print("no results")
    for h in hits:
        print(f"{h.rank:>2}. [{h.score:.3f}] {h.title}\n    {h.source} · {h.published:%Y-%m-%d %H:%M} · {h.url}")
    return 0


def _sentiment(args: argparse.Namespace) -> int:
    svc = _service()
    if args.symbols:
        rows = [s.as_dict() for s in svc.symbol_sentiment(_split(args.symbols) or [])]
        print(json.dumps({"symbols": rows}) if args.json else "\n".join(
            f"{r['symbol']}: index {r['index']:+.3f} over {r['n_docs']} docs" for r in rows))
        return 0
    if args.text:
        res = svc.score_texts(args.text, offline=True if args.offline else None)
        if args.json:
            print(json.dumps({"results": [r.as_dict() for r in res]}))
        else:
            for t, r in zip(args.text, res, strict=True):
                print(f"{r.label:>8} {r.score:+.3f}  {t[:100]}")
        return 0
    if args.file is None or args.column is None:
        print("error: give --file and --column (or --text, or --symbols)", file=sys.stderr)
        return 2
    if not args.file.exists():
        print(f"error: {args.file} not found", file=sys.stderr)
        return 2
    with args.file.open(newline="", encoding="utf-8-sig", errors="replace") as fh:
        reader = csv.DictReader(fh)
        fields = list(reader.fieldnames or [])
        if args.column not in fields:
            print(f"error: column {args.column!r} not in {fields}", file=sys.stderr)
            return 2
        rows_in = list(reader)
    texts = [str(r.get(args.column) or "") for r in rows_in]
    results = svc.score_texts(texts, offline=True if args.offline else None) if texts else []
    out_fields = fields + [f for f in ("sentiment_label", "sentiment_score") if f not in fields]
    out = args.out.open("w", newline="", encoding="utf-8") if args.out else sys.stdout
    try:
        writer = csv.DictWriter(out, fieldnames=out_fields)
        writer.writeheader()
        for row, res in zip(rows_in, results, strict=True):
            empty = not str(row.get(args.column) or "").strip()
            row["sentiment_label"] = "neutral" if empty else res.label
            row["sentiment_score"] = "0.0000" if empty else f"{max(-1.0, min(1.0, res.score)):.4f}"
            writer.writerow(row)
    finally:
        if args.out:
            out.close()
    if args.out:
        counts: dict[str, int] = {}
        for r in results:
            counts[r.label] = counts.get(r.label, 0) + 1
        offline_note = _offline_note(results)
        summary = {"rows": len(rows_in), "out": str(args.out), "labels": counts,
                   "method": results[0].method if results else None, "model": offline_note}
        print(json.dumps(summary) if args.json else f"wrote {len(rows_in)} rows to {args.out}: {counts}"
              + (f" ({offline_note})" if offline_note else ""))
    return 0


def _offline_note(results: list[Any]) -> str | None:
    """Which offline model labelled the rows (the bundled default says so), or None when the LLM did."""
    if not any(str(r.method).startswith("offline") for r in results):
        return None
    from knowledge.sentiment import get_offline

    return str(get_offline().note)


def _train_sentiment(args: argparse.Namespace) -> int:
    from core.clock import utcnow
    from core.settings import get_settings
    from knowledge.embeddings import get_embedder
    from knowledge.sentiment.registry import save_trained
    from knowledge.sentiment.training import TrainingDataError, read_labelled_csv, train

    def fail(msg: str) -> int:
        if args.json:
            print(json.dumps({"ok": False, "error": msg}))
        else:
            print(f"error: {msg}", file=sys.stderr)
        return 2

    try:
        names = [p.stem for p in args.data]
        datasets = [read_labelled_csv(p, text_column=args.text_column, label_column=args.label_column,
                                      name=p.stem if names.count(p.stem) == 1 else f"{p.parent.name}/{p.stem}")
                    for p in args.data]
        embedder = get_embedder()
        result = train(datasets, embedder.embed, now=utcnow(), embedding_mode=embedder.mode)
    except TrainingDataError as exc:
        return fail(str(exc))
    if args.out is not None:
        result.head.save(args.out)
        path = args.out
    else:
        path = save_trained(result.head, get_settings().data_dir)
    ev = result.evaluation
    lodo = {k: v.get("macro_f1") for k, v in ev["leave_one_dataset_out"].items()}
    if args.json:
        print(json.dumps({"ok": True, "version": result.head.version, "path": str(path), **ev}, default=str))
        return 0
    print(f"model {result.head.version} written to {path}")
    print(f"neutral band |score| < {ev['threshold']} ({ev['threshold_note']})")
    for name, info in ev["datasets"].items():
        f1 = lodo.get(name)
        cell = f"leave-one-out macro-F1 {f1:.3f}" if f1 is not None else "no leave-one-out score (one dataset)"
        print(f"  {name}: {info['rows']} rows {info['classes']}, {cell}, in-sample "
              f"{ev['in_sample'][name]['macro_f1']:.3f}")
    if ev["lodo_mean_macro_f1"] is not None:
        print(f"mean leave-one-dataset-out macro-F1 {ev['lodo_mean_macro_f1']:.3f}")
    return 0


def _events(args: argparse.Namespace) -> int:
    from knowledge.events import EVENT_TYPES

    if not 1 <= args.limit <= 500:
        print(f"error: --limit must be between 1 and 500, got {args.limit}", file=sys.stderr)
        return 2
    if args.hours is not None and not 0 < args.hours <= 24 * 3650:
        print("error: --hours must be positive (at most ten years)", file=sys.stderr)
        return 2
    types = _split(args.types)
    if types and (bad := [t for t in types if t not in EVENT_TYPES]):
        print(f"error: unknown event type(s) {', '.join(bad)}; valid: {', '.join(EVENT_TYPES)}", file=sys.stderr)
        return 2
    items = _service().events(symbols=_split(args.symbols), types=types, since_hours=args.hours, limit=args.limit)
    if args.json:
        print(json.dumps({"count": len(items), "events": items}, default=str))
        return 0
    if not items:
        window = f" in the last {args.hours:g} hours" if args.hours is not None else ""
        print(f"no stored news items with events{window}; `crypto-agent news ingest` fetches news")
    for it in items:
        print(f"{it['published']} {','.join(it['events']):<20} {','.join(it['symbols']):<12} {it['title'][:90]}")
    return 0


def _impact(args: argparse.Namespace) -> int:
    from tools.news import impact_view

    if args.hours is not None and args.hours <= 0:
        print("error: --hours must be positive", file=sys.stderr)
        return 2
    try:
        report = impact_view(_service(), event_type=args.event_type, symbol=args.symbol, since_hours=args.hours,
                             timeframe=args.timeframe)
    except ValueError as exc:  # bad input, or no candles (ImpactError): the message says what to do
        if args.json:
            print(json.dumps({"ok": False, "error": str(exc)}))
        else:
            print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"ok": True, **report}, default=str))
        return 0
    print(f"{report['events']} events, coins with candles: {', '.join(report['coins']) or 'none'}; "
          f"benchmark {report['benchmark']}, {report['timeframe']} candles")
    if report.get("note"):
        print(report["note"])
    for etype, by_h in sorted(report["study"].items()):
        cells = "  ".join(f"{h} n={int(s['n'])} mean {s['mean_car'] * 100:+.2f}% t={s['t_stat']:+.1f}"
                          for h, s in by_h.items())
        print(f"{etype:<13} {cells}")
    for hint in report["missing_candles"]:
        print(f"  {hint}", file=sys.stderr)
    return 0
