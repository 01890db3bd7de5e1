"""Symbol-first read access to stored candles, for backtests and models (`trading.backtest.data.load_mongo`).

The full store (writes, series, validation) is `trading.market_data.candles.CandleStore`.
"""

from __future__ import annotations

from typing import Any

from pymongo.database import Database

from trading.market_data import candles
from trading.types import Candle


class CandleStore:
    def __init__(self, db: Database[dict[str, Any]]) -> None:
        self.raw = candles.CandleStore(db)

    def exchanges_for(self, symbol: str, timeframe: str) -> list[str]:
        """Venues holding this series, the one with the most candles first."""
        rows = [s for s in self.raw.series() if s["symbol"] == symbol and s["timeframe"] == timeframe]
        return [s["exchange"] for s in sorted(rows, key=lambda s: -int(s["count"]))]

    def load(self, symbol: str, timeframe: str, exchange: str | None = None, limit: int | None = None,
             start_ms: int | None = None, end_ms: int | None = None) -> list[Candle]:
        """Oldest first. Without `exchange`, the venue with the most candles; with `limit` and no `start_ms`,
        the most recent `limit` candles."""
        if exchange is None:
            venues = self.exchanges_for(symbol, timeframe)
            if not venues:
                return []
            exchange = venues[0]
        return self.raw.load(exchange, symbol, timeframe, start_ms=start_ms, end_ms=end_ms, limit=limit,
                             newest=limit is not None and start_ms is None)
