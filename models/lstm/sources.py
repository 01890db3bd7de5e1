"""Where candles come from when no file is given: the market-data layer (trading.exchanges' MarketSource: the
configured venue, or the simulated venue when it cannot be reached). The reply always says which source answered
and whether the data is simulated."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from core.clock import now_ms as clock_now_ms
from models.lstm.data import CANDLE_COLUMNS, DataError, load_csv, normalise_candles

PAGE = 1000  # candles per request (binance's maximum)


class CandleSourceUnavailable(DataError):
    """No candle source could answer (and no file was given)."""


@dataclass(frozen=True)
class CandleBatch:
    candles: pd.DataFrame
    source: str  # "file:<path>" or "exchange:<id>"
    simulated: bool = False
    note: str | None = None

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "simulated": self.simulated, "n_candles": len(self.candles)}
        if self.note:
            out["note"] = self.note
        return out


def from_file(path: str) -> CandleBatch:
    return CandleBatch(load_csv(path), f"file:{path}")


def from_market(symbol: str, timeframe: str, limit: int, exchange: str | None = None) -> CandleBatch:
    """The latest `limit` candles from the market-data layer, paging back in time as needed."""
    try:
        from trading.exchanges import ExchangeError, get_market_source
        from trading.exchanges.base import timeframe_ms
    except ImportError as exc:  # the market-data layer is optional for this engine
        raise CandleSourceUnavailable(
            f"no candle source available ({exc}); pass a CSV file of candles (--data FILE.csv)"
        ) from exc
    try:
        source = get_market_source(None, exchange)
        step = timeframe_ms(timeframe)
        rows: dict[int, list[float]] = {}
        since = clock_now_ms() - (limit + 1) * step
        for _page in range((limit // PAGE) + 2):
            batch = source.fetch_ohlcv(symbol, timeframe, since, min(PAGE, limit))
            if not batch:
                break
            for c in batch:
                rows[c.timestamp_ms] = [c.timestamp_ms, c.open, c.high, c.low, c.close, c.volume]
            nxt = batch[-1].timestamp_ms + step
            if nxt <= since or len(batch) < min(PAGE, limit):
                break
            since = nxt
    except ExchangeError as exc:
        raise CandleSourceUnavailable(f"cannot fetch {symbol} {timeframe} candles: {exc}") from exc
    except ValueError as exc:  # unknown timeframe or symbol
        raise CandleSourceUnavailable(f"cannot fetch {symbol} {timeframe} candles: {exc}") from exc
    # the newest candle is usually still forming: its "close" is the current price and its range and volume are
    # partial, unlike every candle the model was trained on
    now_ms = clock_now_ms()
    done = [r for ts, r in sorted(rows.items()) if ts + step <= now_ms]
    if not done:
        raise CandleSourceUnavailable(f"the market source returned no complete {symbol} {timeframe} candles")
    frame = normalise_candles(pd.DataFrame(done, columns=list(CANDLE_COLUMNS))).iloc[-limit:]
    return CandleBatch(
        frame.reset_index(drop=True),
        f"exchange:{source.exchange_id}",
        simulated=bool(source.simulated),
        note=source.fallback_reason,
    )
