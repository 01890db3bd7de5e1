"""`crypto-agent slack socket|manifest`: run the Slack front door over Socket Mode; print the app manifest."""

from __future__ import annotations

import argparse
import asyncio
import sys


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    slack = sub.add_parser("slack", help="Slack front door: Socket Mode runner and the app manifest")
    slack_sub = slack.add_subparsers(dest="slack_command", metavar="ACTION", required=True)
    socket = slack_sub.add_parser(
        "socket", help="run the desk for Slack over Socket Mode (no public URL; needs SLACK_APP_TOKEN)"
    )
    socket.set_defaults(func=cmd_socket)
    man = slack_sub.add_parser("manifest", help="print the Slack app manifest to paste at api.slack.com/apps")
    where = man.add_mutually_exclusive_group()
    where.add_argument("--url", help="public base URL of this service (HTTP mode), e.g. https://desk.example.org")
    where.add_argument("--socket", action="store_true", help="a Socket Mode manifest (no request URLs)")
    man.set_defaults(func=cmd_manifest)


def cmd_socket(args: argparse.Namespace) -> int:
    from agent.slack.socket_mode import SocketModeUnavailable, run_socket_mode
    from core.logging import configure_logging
    from core.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    try:
        asyncio.run(run_socket_mode(settings))
    except SocketModeUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_manifest(args: argparse.Namespace) -> int:
    from urllib.parse import urlsplit

    from agent.slack.socket_mode import manifest

    if args.url is not None:
        parts = urlsplit(args.url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname or " " in args.url.strip():
            print(f"error: --url must be this service's public base URL such as https://desk.example.org, got "
                  f"{args.url!r}", file=sys.stderr)
            return 2

    sys.stdout.write(manifest(args.url, args.socket))
    return 0
