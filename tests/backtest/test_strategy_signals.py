"""Each strategy's signals on constructed data where the right answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trading.strategies import (
    Bars,
    DonchianBreakout,
    MACrossover,
    PairsStatArb,
    RSIReversion,
    TSMomentum,
    ZScoreReversion,
    make_strategy,
    resolve,
)
from trading.strategies.cointegration import engle_granger, half_life, johansen, kalman_hedge, rolling_hedge
from trading.types import Candle


def test_ma_crossover_turns_on_and_off_at_the_known_bars() -> None:
    close = np.concatenate([np.full(20, 10.0), 20.0 + np.arange(20.0), np.full(20, 5.0)])
    tg = MACrossover(fast=2, slow=5).targets(Bars.from_close(close))[:, 0]
    # bar 20: fast (10+20)/2 = 15 > slow (4*10+20)/5 = 12; rising keeps fast above; bar 40: fast 22 < slow 30.2
    assert tg[:20].tolist() == [0.0] * 20
    assert tg[20:40].tolist() == [1.0] * 20
    assert tg[40:].tolist() == [0.0] * 20
    short = MACrossover(fast=2, slow=5, allow_short=True).targets(Bars.from_close(close))[:, 0]
    assert short[40] == -1.0 and short[39] == 1.0
    ema = MACrossover(fast=2, slow=5, ma="ema").targets(Bars.from_close(close))[:, 0]
    assert ema[19] == 0.0 and ema[20] == 1.0 and ema[40] == 0.0


def test_ma_crossover_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="fast"):
        MACrossover(fast=50, slow=20)
    with pytest.raises(ValueError, match="above its range"):
        MACrossover(fast=5000)
    with pytest.raises(ValueError, match="unknown parameter"):
        MACrossover(speed=3)
    with pytest.raises(ValueError, match="unknown strategy"):
        resolve("astrology")
    assert resolve("trend") is MACrossover and resolve("stat_arb") is PairsStatArb


def test_donchian_breakout_enters_on_the_breakout_bar_and_exits_on_the_channel_low() -> None:
    close = np.array([100.0] * 30 + [101.0, 102.0, 103.0] + [103.0] * 5 + [90.0] * 5)
    b = Bars.from_close(close)
    tg = DonchianBreakout(entry=10, exit=5).targets(b)[:, 0]
    # bar 30: close 101 > highest high of the previous 10 bars (100)
    assert tg[29] == 0.0 and tg[30] == 1.0
    assert tg[37] == 1.0
    # bar 38: close 90 < lowest low of the previous 5 bars (103) -> flat
    assert tg[38] == 0.0


def test_ts_momentum_sign_and_volatility_target() -> None:
    n = 400
    # alternating +/- 1% log returns around a drift: realised vol is known
    r = np.where(np.arange(n) % 2 == 0, 0.012, -0.008)
    close = 100.0 * np.exp(np.concatenate([[0.0], np.cumsum(r[1:])]))
    s = TSMomentum(periods_per_year=8760, lookback=20, vol_lookback=20, target_vol=0.5, max_leverage=2.0, band=0.0)
    tg = s.targets(Bars.from_close(close))[:, 0]
    vol = 0.01 * math.sqrt(8760)  # population std of +-1% around the mean, annualised
    assert tg[-1] == pytest.approx(round(min(0.5 / vol, 2.0), 4), rel=1e-3)
    down = TSMomentum(lookback=20, vol_lookback=20, band=0.0).targets(Bars.from_close(close[::-1].copy()))[:, 0]
    assert down[-1] == 0.0  # long only: a downtrend means flat
    short = TSMomentum(lookback=20, vol_lookback=20, band=0.0, allow_short=True, target_vol=0.5)
    assert short.targets(Bars.from_close(close[::-1].copy()))[-1, 0] < 0


def test_zscore_buys_the_dip_and_exits_at_the_mean() -> None:
    close = np.array([100.0, 101.0] * 20 + [90.0] + [100.5, 100.5, 100.5] + [100.0, 101.0] * 5)
    tg = ZScoreReversion(window=20, entry_z=2.0, exit_z=0.0).targets(Bars.from_close(close))[:, 0]
    assert tg[39] == 0.0 and tg[40] == 1.0  # the dip is ~4 sigma below the mean
    assert tg[-1] == 0.0  # back above the mean -> out
    first_exit = 40 + int(np.argmax(tg[40:] == 0.0))
    assert first_exit > 40


def test_rsi_is_oversold_after_a_straight_decline() -> None:
    close = np.concatenate([np.linspace(100, 80, 30), np.linspace(80, 100, 30)])
    s = RSIReversion(period=14, lower=30, upper=70, exit_level=50)
    tg = s.targets(Bars.from_close(close))[:, 0]
    assert tg[14] == 1.0  # RSI is 0 at the first defined bar (only losses)
    assert tg[13] == 0.0  # undefined before
    assert tg[-1] == 0.0  # the recovery pushed RSI above 50


def _pair(n: int = 1500, beta: float = 1.5, phi: float = 0.9, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = 4.0 + np.cumsum(rng.normal(0, 0.01, n))
    e = np.zeros(n)
    shocks = rng.normal(0, 0.01, n)
    for i in range(1, n):
        e[i] = phi * e[i - 1] + shocks[i]
    return 0.2 + beta * x + e, x


def test_engle_granger_and_johansen_find_the_known_hedge_ratio() -> None:
    y, x = _pair()
    eg = engle_granger(y, x)
    assert eg.beta == pytest.approx(1.5, abs=0.03)
    assert eg.p_value < 0.01 and eg.cointegrated
    assert eg.half_life == pytest.approx(-math.log(2) / math.log(0.9), rel=0.35)
    jo = johansen(y, x)
    assert jo.cointegrated and jo.beta == pytest.approx(1.5, abs=0.05)
    rng = np.random.default_rng(11)
    a, b = np.cumsum(rng.normal(0, 0.01, 1500)), np.cumsum(rng.normal(0, 0.01, 1500))
    assert engle_granger(a, b).p_value > 0.05


def test_hedge_ratio_estimators_track_beta() -> None:
    y, x = _pair(beta=0.8)
    b_roll, _ = rolling_hedge(y, x, 300)
    assert np.isnan(b_roll[298]) and b_roll[-1] == pytest.approx(0.8, abs=0.1)
    b_k, _ = kalman_hedge(y, x, 1e-5, 1e-3)
    assert b_k[-1] == pytest.approx(0.8, abs=0.1)
    assert half_life(np.cumsum(np.ones(50))) == math.inf  # a trend does not revert


def test_pairs_strategy_trades_the_spread_and_stops_when_cointegration_breaks() -> None:
    y, x = _pair(n=2000)
    by, bx = Bars.from_close(np.exp(y), "ETH/USDT"), Bars.from_close(np.exp(x), "BTC/USDT")
    s = PairsStatArb(window=100, entry_z=1.5, exit_z=0.3, coint_window=400, retest_every=50)
    tg = s.targets([by, bx])
    live = tg[:, 0] != 0
    assert live.sum() > 50
    # long spread: +y, -beta x with gross 1 and beta near 1.5
    ratio = -tg[live, 1] / tg[live, 0]
    assert np.median(ratio) == pytest.approx(1.5, abs=0.2)
    assert np.allclose(np.abs(tg[live]).sum(axis=1), 1.0)
    # after the relationship breaks (y becomes an independent walk) the stop flattens and blocks entries
    rng = np.random.default_rng(5)
    y2 = y.copy()
    y2[1200:] = y[1200] + np.cumsum(rng.normal(0, 0.03, 800))
    tg2 = s.targets([Bars.from_close(np.exp(y2)), bx])
    assert (tg2[1700:, 0] != 0).mean() < 0.2
    ok = s.relationship_ok(y2, x)
    assert ok[1100] and not ok[-1]
    for name in ("kalman",):
        k = PairsStatArb(window=100, hedge=name, entry_z=1.5, exit_z=0.3, test="johansen", coint_window=400)
        assert (k.targets([by, bx])[:, 0] != 0).sum() > 20
    with pytest.raises(ValueError):
        PairsStatArb(entry_z=1.0, exit_z=2.0)


@pytest.mark.parametrize("name", ["ma_crossover", "zscore", "rsi", "donchian"])
def test_on_bar_streaming_gives_the_same_targets_as_the_history(name: str) -> None:
    from tests.backtest.conftest import wave_bars

    b = wave_bars(400)
    params = {"fast": 5, "slow": 20} if name == "ma_crossover" else {}
    hist = make_strategy(name, params).targets(b)[:, 0]
    live = make_strategy(name, params)
    streamed = []
    for i in range(len(b)):
        c = Candle(int(b.timestamp_ms[i]), float(b.open[i]), float(b.high[i]), float(b.low[i]),
                   float(b.close[i]), float(b.volume[i]))
        streamed.append(live.on_bar(c)[0])
    assert streamed == hist.tolist()
    # a redelivered candle changes nothing
    assert live.on_bar(c) == (hist[-1],)
    assert live.state.bars_seen == len(b)
