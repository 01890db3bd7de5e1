"""Subprocess for the SIGKILL test: `submit` proposes and approves one live (fake-venue) order and blocks in the
send; `recover` builds the service again (start() reconciles) and prints the order book state as one JSON line."""

from __future__ import annotations

import json
import sys

from core.settings import get_settings
from core.storage import get_db
from trading.oms.factory import build_service, run
from trading.oms.service import OrderRequest
from trading.types import OrderType, Side


def main(mode: str) -> int:
    settings = get_settings()
    db = get_db(settings)
    service = build_service(settings, db)
    if mode == "submit":
        run(service.refresh_market(["BTC/USDT"]))
        result = service.propose(OrderRequest("BTC/USDT", Side.BUY, 0.01, OrderType.MARKET), "U1", source="test")
        assert result.order is not None, result.to_dict()
        order_id = result.order["_id"]
        print(json.dumps({"proposed": result.to_dict()}, default=str), flush=True)
        print("SENDING", flush=True)
        run(service.approve(str(order_id), "U2"))  # blocks in create_order until the test kills us
        print("RETURNED", flush=True)
        return 0
    if mode == "recover":
        for _ in range(2):  # reconcile twice more: a repeated reconcile must change nothing
            run(service.reconcile())
        out = {
            "orders": [{k: d.get(k) for k in ("_id", "state", "filled_qty")} for d in db["orders"].find({})],
            "children": [
                {k: d.get(k) for k in ("_id", "state", "filled", "acked")} for d in db["child_orders"].find({})
            ],
            # a fill's identity in the store is its _id: "<client order id>:<cumulative filled after it>"
            "fills": [
                {k: d.get(k) for k in ("_id", "order_id", "client_order_id", "qty")} for d in db["fills"].find({})
            ],
        }
        print(json.dumps(out, default=str), flush=True)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
