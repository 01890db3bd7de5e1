"""Service commands: serve, doctor, apikey, ask, analyze."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from core.settings import get_settings, reset_settings


def _port(value: str) -> int:
    """argparse type: a TCP port (0 would fall back to the configured port, not ask the OS for a free one)."""
    try:
        port = int(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from exc
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1-65535, got {port}")
    return port


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    serve = sub.add_parser("serve", help="start the HTTP service (API, Slack endpoint, docs)")
    serve.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=None, help="port 1-65535 (default: PORT, 8000)")
    serve.add_argument("--data-dir", type=Path, default=None, help="where embedded MongoDB, Chroma and models live")
    serve.set_defaults(func=cmd_serve)

    doctor = sub.add_parser("doctor", help="check configuration and services, say what is missing and how to fix it")
    doctor.add_argument("--json", action="store_true", help="print one JSON object")
    doctor.set_defaults(func=cmd_doctor)

    apikey = sub.add_parser(
        "apikey",
        help="manage API keys (stored hashed in MongoDB)",
        description="Keys live in the desk's database: run these with the server's --data-dir (or its MONGO_URI and "
        "MONGO_DB), or the server will not know the key.",
    )
    apikey_sub = apikey.add_subparsers(dest="apikey_command", metavar="ACTION", required=True)
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument(
        "--data-dir", type=Path, default=None, help="the desk's data dir, as given to `serve` (default: DATA_DIR)"
    )
    create = apikey_sub.add_parser("create", help="create a key and print it once", parents=[where])
    create.add_argument("--scopes", required=True, help="comma-separated: read,trade,approve,admin")
    create.add_argument("--name", default="cli", help="a label for the key")
    create.set_defaults(func=cmd_apikey_create)
    lst = apikey_sub.add_parser("list", help="list keys (never their secrets)", parents=[where])
    lst.set_defaults(func=cmd_apikey_list)
    revoke = apikey_sub.add_parser("revoke", help="revoke a key by its id", parents=[where])
    revoke.add_argument("key_id")
    revoke.set_defaults(func=cmd_apikey_revoke)

    ask = sub.add_parser("ask", help="ask the desk a question (LLM when configured, deterministic otherwise)")
    ask.add_argument("question")
    ask.add_argument("--session", default=None, help="session id for conversation memory")
    ask.add_argument("--json", action="store_true")
    ask.set_defaults(func=cmd_ask)

    analyze = sub.add_parser("analyze", help="deterministic analysis of a symbol (plus narrative with an LLM)")
    analyze.add_argument("symbol")
    analyze.add_argument("--json", action="store_true")
    analyze.set_defaults(func=cmd_analyze)


def _apply_data_dir(data_dir: Path | None) -> None:
    if data_dir is not None:
        os.environ["DATA_DIR"] = str(data_dir)
        reset_settings()


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from agent.app import create_app
    from core import nacos
    from core.logging import configure_logging

    _apply_data_dir(args.data_dir)
    # With NACOS_SERVER set, remote configuration lands in the environment before settings are read.
    if nacos.configure_from_env():
        reset_settings()
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    host = args.host or settings.host
    port = args.port or settings.port
    print(f"crypto-agent serving on http://{host}:{port} (docs at /docs, data in {settings.data_dir})", file=sys.stderr)
    registration = nacos.start_from_env(host, port)
    try:
        # start_trading: reconcile and price the book at startup, before the first request (not at the first trade)
        app = create_app(settings, start_trading=True)
        uvicorn.run(app, host=host, port=port, log_level=settings.log_level.lower(), access_log=False)
    finally:
        if registration is not None:
            registration.stop()
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from agent.doctor import run_doctor

    report = run_doctor(get_settings())
    if args.json:
        print(json.dumps(report, default=str))
    else:
        for item in report["checks"]:
            mark = "ok  " if item["ok"] else ("WARN" if not item["required"] else "FAIL")
            print(f"[{mark}] {item['name']}: {item['detail']}")
            if not item["ok"] and item.get("fix"):
                print(f"       fix: {item['fix']}")
    return 0 if report["ok"] else 1


def _store(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from agent.api.auth import ApiKeyStore
    from core import storage

    _apply_data_dir(getattr(args, "data_dir", None))
    return ApiKeyStore(storage.get_db())


def _desk_database() -> str:
    """Which desk a key belongs to, in words (never the URI: it may carry a password)."""
    settings = get_settings()
    if settings.mongo_uri:
        return f"database {settings.mongo_db!r} on MONGO_URI"
    return f"database {settings.mongo_db!r} in {settings.data_dir}"


def cmd_apikey_create(args: argparse.Namespace) -> int:
    from agent.api.auth import AuthError, parse_scopes

    try:
        parse_scopes(args.scopes)  # bad input is refused before a database is started
    except AuthError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    key, principal = _store(args).create(args.name, args.scopes)
    print(key)
    print(
        f"key id {principal.key_id}, scopes {','.join(sorted(principal.scopes))}, for the desk using "
        f"{_desk_database()}: store it now, it is not shown again",
        file=sys.stderr,
    )
    return 0


def cmd_apikey_list(args: argparse.Namespace) -> int:
    for item in _store(args).list():
        print(json.dumps(item, default=str))
    return 0


def cmd_apikey_revoke(args: argparse.Namespace) -> int:
    if _store(args).revoke(args.key_id):
        print(f"revoked {args.key_id}")
        return 0
    print(f"error: no active key with id {args.key_id} in {_desk_database()}", file=sys.stderr)
    return 1


def _desk():  # type: ignore[no-untyped-def]
    from agent.desk import Desk
    from core import storage

    return Desk(get_settings(), storage.get_db())


def cmd_ask(args: argparse.Namespace) -> int:
    if not args.question.strip():
        print("error: the question is empty", file=sys.stderr)
        return 2
    answer = _desk().ask(args.question, session_id=args.session, user="cli", source="cli")
    print(answer.model_dump_json() if args.json else answer.answer)
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from agent.analysis import extract_symbol

    symbol = extract_symbol(args.symbol)
    if symbol is None:
        print(f"error: {args.symbol!r} is not a trading pair; use BASE/QUOTE such as BTC/USDT", file=sys.stderr)
        return 2
    from trading.exchanges.errors import UnknownSymbol

    try:
        answer = _desk().analyze(symbol, user="cli", source="cli")
    except UnknownSymbol as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(answer.model_dump_json() if args.json else answer.answer)
    return 0
