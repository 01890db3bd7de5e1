"""`crypto-agent desk status|halt|resume|kill|reconcile` and `crypto-agent orders list|show|propose|approve|reject`."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from agent.cli.args import int_in
from trading.types import OrderType, Side


def _print(obj: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(obj, default=str))
    else:
        print(json.dumps(obj, indent=2, default=str))


def _svc() -> Any:
    from trading.oms.factory import get_trading_service

    return get_trading_service(timers=False)  # a one-shot command: reconciled on start, no timers


def _actor(args: argparse.Namespace) -> str:
    return str(args.actor or getpass.getuser())


def _desk(args: argparse.Namespace) -> int:
    """The CLI reads and writes the desk's database directly, so whoever can run it on the desk's data is its
    operator: `--as` only labels the record (SLACK_ADMINS lists Slack user ids and applies to Slack)."""
    from trading.oms.factory import run

    svc = _svc()
    if args.action == "status":
        out: Any = svc.risk_status()
    elif args.action == "halt":
        out = svc.halt(_actor(args), args.reason or "halted from CLI")
    elif args.action == "resume":
        out = svc.resume(_actor(args), args.reason or "resumed from CLI", reset_baselines=args.reset_baselines)
    elif args.action == "kill":
        out = run(svc.kill(_actor(args), args.reason or "kill switch from CLI"))
    else:
        out = run(svc.reconcile()).to_dict()
    _print(out, args.json)
    return 0


def _orders(args: argparse.Namespace) -> int:
    from trading.oms.factory import run

    if args.action == "propose":  # the input is checked before the trading service starts (and reconciles)
        from pydantic import ValidationError

        from tools.trading import ProposeOrderArgs

        try:
            body = ProposeOrderArgs(
                symbol=args.symbol,
                side=Side(args.side),
                qty=args.qty,
                type=OrderType(args.type),
                limit_price=args.price,
                note=args.note or "",
            )
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(x) for x in err.get("loc", ())) or "order"
            print(f"error: {field}: {err['msg']}", file=sys.stderr)
            return 2
    elif args.action != "list" and not args.order_id:
        print("error: an order id is required", file=sys.stderr)
        return 2
    svc = _svc()
    if args.action == "list":
        _print({"orders": svc.list_orders(args.state, args.symbol, args.limit)}, args.json)
        return 0
    if args.action == "propose":
        res = run(svc.propose_async(body.to_request(), _actor(args), source="cli"))
        _print(res.to_dict(), args.json)
        return 0 if res.status == "pending_approval" else 1
    if args.action == "show":
        doc = svc.get_order(args.order_id)
        if doc is None:
            print(f"error: no order {args.order_id}", file=sys.stderr)
            return 1
        _print(doc, args.json)
        return 0
    # preauthorised: the CLI operator holds the desk's data (SLACK_APPROVERS lists Slack user ids, for Slack); four-eyes
    # still applies.
    if args.action == "approve":
        res = run(svc.approve(args.order_id, _actor(args), preauthorised=True))
    else:
        res = svc.reject(args.order_id, _actor(args), args.reason or "rejected from CLI", preauthorised=True)
    _print(res.to_dict(), args.json)
    # approved and sent (filled, or resting at the venue), or a decision recorded: done; anything else: failure
    done = ("executed", "approved", "rejected", "submitted", "partially_filled")
    return 0 if res.status in done else 1


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    desk = sub.add_parser("desk", help="trading desk state: status, halt, resume (admin), kill switch, reconcile")
    desk.add_argument("action", choices=["status", "halt", "resume", "kill", "reconcile"])
    desk.add_argument("--reason", default=None)
    desk.add_argument("--reset-baselines", action="store_true", help="resume: accept current loss as new baseline")
    desk.add_argument("--as", dest="actor", default=None, help="who is acting (default: OS user)")
    desk.add_argument("--json", action="store_true", help="one JSON object on stdout")
    desk.set_defaults(func=_desk)

    orders = sub.add_parser("orders", help="orders and proposals: list, show, propose, approve, reject")
    orders.add_argument("action", choices=["list", "show", "propose", "approve", "reject"])
    orders.add_argument("order_id", nargs="?", default=None)
    orders.add_argument("--state", default=None)
    orders.add_argument("--symbol", default=None)
    orders.add_argument("--limit", type=int_in(1, 1000), default=20)
    orders.add_argument("--side", choices=["buy", "sell"], default="buy")
    orders.add_argument("--qty", type=float, default=0.0)
    orders.add_argument("--type", choices=["market", "limit"], default="market")
    orders.add_argument("--price", type=float, default=None)
    orders.add_argument("--note", default=None)
    orders.add_argument("--reason", default=None)
    orders.add_argument("--as", dest="actor", default=None, help="who is acting (default: OS user)")
    orders.add_argument("--json", action="store_true", help="one JSON object on stdout")
    orders.set_defaults(func=_orders)
