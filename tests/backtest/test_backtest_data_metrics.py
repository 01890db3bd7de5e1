"""Trade metrics with exact values on constructed fills, and candles loaded from the embedded Mongo candle store."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from trading.backtest.data import DataError, load_mongo
from trading.backtest.ledger import Fills, closed_trades, equity_curve
from trading.backtest.metrics import compute_metrics
from trading.market_data.candles import CandleStore
from trading.types import Candle


def test_profit_factor_exposure_and_turnover_have_exact_values() -> None:
    # buy 2 @ 10 (bar 1), sell 2 @ 12 (bar 3); buy 1 @ 12 (bar 5), sell 1 @ 9 (bar 7); fee 0.1 per fill
    fills = Fills.from_lists([1, 3, 5, 7], [0, 0, 0, 0], [2.0, -2.0, 1.0, -1.0], [10.0, 12.0, 12.0, 9.0],
                             [0.1, 0.1, 0.1, 0.1])
    closes = np.full((10, 1), 10.0)
    equity, _, pos = equity_curve(fills, closes, 100.0)
    np.testing.assert_allclose(equity, [100.0, 99.9, 99.9, 103.8, 103.8, 101.7, 101.7, 100.6, 100.6, 100.6],
                               rtol=1e-12)
    trades = closed_trades(fills, ["X/USDT"])
    assert [t.pnl for t in trades] == pytest.approx([3.8, -3.2], rel=1e-12)
    m = compute_metrics(equity, pos, closes, fills, trades, ppy=10.0)
    assert m["trades"] == 2 and m["fills"] == 4
    assert m["win_rate"] == 0.5
    assert m["profit_factor"] == pytest.approx(3.8 / 3.2, rel=1e-12)
    assert m["avg_trade_return"] == pytest.approx((3.8 / 20.0 - 3.2 / 12.0) / 2, rel=1e-12)
    assert m["exposure"] == pytest.approx(0.4, rel=1e-12)  # held at the closes of bars 1, 2, 5, 6
    assert m["turnover"] == pytest.approx(65.0 / 101.26, rel=1e-12)  # traded notional / mean equity
    assert m["turnover_per_year"] == pytest.approx(65.0 / 101.26, rel=1e-12)  # 10 bars at 10 per year
    assert m["fees"] == pytest.approx(0.4, rel=1e-12)
    assert m["final_equity"] == pytest.approx(100.6, rel=1e-12)
    # no losing trade: the profit factor is undefined, not infinite
    winners = closed_trades(fills, ["X/USDT"])[:1]
    assert compute_metrics(equity, pos, closes, fills, winners, ppy=10.0)["profit_factor"] is None


def test_a_flip_splits_its_fee_between_the_two_trades() -> None:
    # long 2 @ 10, sell 5 @ 12 (closes 2, opens 3 short; fee 0.5 split 0.2 / 0.3), buy 3 @ 11 (fee 0.3)
    f = Fills.from_lists([1, 5, 9], [0, 0, 0], [2.0, -5.0, 3.0], [10.0, 12.0, 11.0], [0.2, 0.5, 0.3])
    long_, short = closed_trades(f, ["X/USDT"])
    assert long_.fees == pytest.approx(0.2 + 0.2) and long_.pnl == pytest.approx(4.0 - 0.4)
    assert short.fees == pytest.approx(0.3 + 0.3) and short.pnl == pytest.approx(3.0 - 0.6)
    assert long_.pnl + short.pnl == pytest.approx(float(np.sum(-f.qty * f.price - f.fee)))


def _candles(start: int, n: int, px: float) -> list[Candle]:
    return [Candle(start + i * 3_600_000, px + i, px + i + 1, px + i - 1, px + i + 0.5, 10.0 + i) for i in range(n)]


def test_load_mongo_reads_the_candle_store(mongo_db: Any) -> None:
    store = CandleStore(mongo_db)
    # written out of order and on two venues: binance has more candles, so it is the default
    store.upsert("binance", "BTC/USDT", "1h", list(reversed(_candles(0, 50, 100.0))))
    store.upsert("kraken", "BTC/USDT", "1h", _candles(0, 10, 500.0))
    b = load_mongo("BTC/USDT", "1h", db=mongo_db)
    assert b.symbol == "BTC/USDT" and len(b) == 50
    assert b.timestamp_ms.tolist() == [i * 3_600_000 for i in range(50)]  # oldest first
    assert b.open[0] == 100.0 and b.high[0] == 101.0 and b.low[0] == 99.0 and b.close[-1] == 149.5
    assert b.volume[-1] == 59.0
    # limit keeps the most recent candles; exchange picks the venue
    last = load_mongo("BTC/USDT", "1h", limit=5, db=mongo_db)
    assert last.timestamp_ms.tolist() == [i * 3_600_000 for i in range(45, 50)]
    kr = load_mongo("BTC/USDT", "1h", exchange="kraken", db=mongo_db)
    assert len(kr) == 10 and kr.open[0] == 500.0
    # nothing stored: a clear error naming the series
    with pytest.raises(DataError, match="no 4h candles for BTC/USDT"):
        load_mongo("BTC/USDT", "4h", db=mongo_db)
