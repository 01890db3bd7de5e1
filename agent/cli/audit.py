"""`crypto-agent audit export`: the append-only audit log (`audit_log`) as JSON lines, oldest first.

Two writers share the collection: `core.audit.AuditLog` (`at` datetime, `action`, `actor`, `source`, `outcome`,
`details`) and the OMS store (`ts_ms` epoch milliseconds, `kind`, `actor`, `order_id`, `data`). Every exported line
carries the record as stored (minus the Mongo `_id`) plus two normalised fields, `time` (ISO 8601 UTC) and `event`,
so both shapes sort and filter the same way.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`2026-01-31`, `2026-01-31T12:00:00Z` (naive means UTC) or a relative age such as `90m`, `24h`, `7d`."""
    text = text.strip()
    now = now or datetime.now(UTC)
    if m := _RELATIVE.match(text.lower()):
        try:
            return now - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
        except OverflowError as exc:
            raise ValueError(f"--since {text!r} reaches before year 1") from exc
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise ValueError(
            f"--since {text!r} is neither an ISO date/time (2026-01-31, 2026-01-31T12:00:00Z) nor an age (24h, 7d)"
        ) from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _time_of(doc: dict[str, Any]) -> datetime | None:
    at = doc.get("at")
    if isinstance(at, datetime):
        return at if at.tzinfo else at.replace(tzinfo=UTC)
    ts = doc.get("ts_ms")
    if isinstance(ts, int | float):
        return datetime.fromtimestamp(ts / 1000, UTC)
    return None


def audit_records(db: Any, since: datetime | None = None, event: str | None = None) -> Iterator[dict[str, Any]]:
    """Audit records (both shapes), oldest first, each with normalised `time` and `event`."""
    query: dict[str, Any] = {}
    if since is not None:
        query = {"$or": [{"at": {"$gte": since}}, {"ts_ms": {"$gte": int(since.timestamp() * 1000)}}]}
    docs = []
    for doc in db["audit_log"].find(query, {"_id": 0}):
        when = _time_of(doc)
        name = doc.get("action") or doc.get("kind")
        if event is not None and name != event:
            continue
        if since is not None and (when is None or when < since):
            continue
        docs.append((when or datetime.min.replace(tzinfo=UTC), name, doc))
    docs.sort(key=lambda item: item[0])
    for when, name, doc in docs:
        yield {"time": when.isoformat().replace("+00:00", "Z"), "event": name, **doc}


def write_jsonl(records: Iterator[dict[str, Any]], out: IO[str]) -> int:
    count = 0
    for record in records:
        out.write(json.dumps(record, default=str, sort_keys=True) + "\n")
        count += 1
    return count


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    audit = sub.add_parser("audit", help="the append-only audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    export = audit_sub.add_parser("export", help="export the audit log as JSON lines, oldest first")
    export.add_argument("--since", default=None, help="ISO date/time (UTC when naive) or an age such as 24h or 7d")
    export.add_argument("--event", default=None, help="only records of this action/kind, e.g. order_submitted")
    export.add_argument("--out", type=Path, default=None, help="write to FILE instead of stdout")
    export.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    try:
        since = parse_since(args.since) if args.since else None
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.out is not None and (args.out.is_dir() or not args.out.parent.exists()):
        print(f"error: cannot write {args.out}: not a file path in an existing directory", file=sys.stderr)
        return 2
    from core import storage

    records = audit_records(storage.get_db(), since, args.event)
    if args.out is None:
        count = write_jsonl(records, sys.stdout)
    else:
        tmp = args.out.with_name(args.out.name + ".partial")
        with tmp.open("w", encoding="utf-8") as fh:
            count = write_jsonl(records, fh)
        tmp.replace(args.out)
    print(f"exported {count} audit record(s)" + (f" to {args.out}" if args.out else ""), file=sys.stderr)
    return 0
