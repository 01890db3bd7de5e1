"""A compact finance and crypto sentiment lexicon with negation, intensity and direction rules.

Financial news carries sentiment mostly through direction: "operating profit rose" is good, "losses widened" is
bad, "costs fell" is good. So besides polar words the scorer pairs direction words (rose, fell, ...) with the
nearest metric and flips the sign for metrics where more is worse (loss, costs, debt, outflows). Negators within
three tokens flip a term; intensifiers scale it. `lexicon_features` feeds the offline classifier.
"""

from __future__ import annotations

import re

import numpy as np
from numpy.typing import NDArray

UP = frozenset(
    "rise rises rose risen rising increase increased increases increasing grew grow grows growing growth up gain "
    "gains gained climb climbed climbs jump jumped jumps surge surged surges soar soared soars rally rallied rallies "
    "improve improved improves improving improvement higher high boost boosted expand expanded expands expansion "
    "double doubled doubles tripled advance advanced rebound rebounded recover recovered recovery strengthen "
    "strengthened widen widened widening accelerate accelerated peak record top topped exceed exceeded exceeds "
    "outpace outpaced spike spiked skyrocket skyrocketed".split()
)
DOWN = frozenset(
    "fall falls fell fallen falling decline declined declines declining decrease decreased decreases decreasing "
    "drop dropped drops dropping down lower lowered slump slumped slumps plunge plunged plunges tumble tumbled "
    "tumbles weaken weakened weakens shrink shrank shrunk shrinks contract contracted contraction slide slid slides "
    "sink sank sinks crash crashed crashes halve halved dip dipped dips slip slipped slips narrow narrowed narrowing "
    "decelerate slowed slow slowing reduce reduced reduces reduction cut cuts retreat retreated erode eroded low "
    "deteriorate deteriorated worsen worsened shed".split()
)
GOOD_METRIC = frozenset(
    "sales revenue revenues profit profits earnings income margin margins ebit ebitda orders order demand share "
    "price prices dividend dividends turnover eps result results profitability output production volume volumes "
    "deliveries value valuation capitalization cap market tvl adoption inflows inflow hashrate users customers "
    "backlog bookings growth rating ratings outlook guidance forecast cash liquidity return returns stake holdings "
    "market-cap subscribers traffic efficiency performance productivity".split()
)
BAD_METRIC = frozenset(
    "loss losses costs cost expenses expense debt debts unemployment layoffs outflows outflow liabilities "
    "impairment impairments deficit churn writedown write-down writedowns provisions risk risks delinquencies "
    "defaults inventory inventories charges charge redundancies headcount volatility fees".split()
)
POSITIVE = {
    "win": 1.0, "wins": 1.0, "won": 1.0, "award": 0.8, "awarded": 1.0, "strong": 1.0, "stronger": 1.0,
    "strongest": 1.0, "robust": 0.9, "success": 1.0, "successful": 1.0, "successfully": 0.8, "profitable": 1.0,
    "upgrade": 1.0, "upgraded": 1.0, "approve": 0.6, "approved": 0.8, "approval": 0.8, "bullish": 1.2,
    "beat": 0.9, "beats": 0.9, "outperform": 1.0, "outperformed": 1.0, "optimistic": 1.0, "breakthrough": 1.0,
    "positive": 0.9, "good": 0.8, "excellent": 1.2, "favorable": 0.9, "favourable": 0.9, "solid": 0.7,
    "healthy": 0.7, "benefit": 0.7, "benefits": 0.7, "boosts": 0.9, "gains": 0.8, "rally": 1.0, "surge": 1.0,
    "milestone": 0.8, "expands": 0.6, "opportunity": 0.5, "opportunities": 0.5, "confident": 0.8,
    "innovative": 0.5, "leading": 0.4, "secured": 0.7, "secures": 0.7, "wins contract": 1.0, "recovered": 0.7,
    "adoption": 0.5, "upbeat": 1.0, "all-time": 0.8, "rebound": 0.8, "inflows": 0.6, "launches": 0.3,
    "partnership": 0.4, "attractive": 0.7, "improvement": 0.9, "exceeded": 0.9, "higher-than-expected": 1.0,
    "moon": 0.8, "soars": 1.2, "skyrockets": 1.2, "jumps": 1.0, "climbs": 0.9, "record-high": 1.0,
    # crypto news: what usually moves a token up
    "buyback": 0.8, "buybacks": 0.8, "listing": 0.5, "lists": 0.5, "listed": 0.4, "partners": 0.4,
    "partnerships": 0.4, "integrates": 0.4, "integration": 0.3, "mainnet": 0.3, "airdrop": 0.4, "etf": 0.3,
    "accumulate": 0.6, "accumulating": 0.6, "accumulation": 0.6, "breakout": 0.8, "pump": 0.6, "pumps": 0.7,
    "recovers": 0.8, "recovery": 0.7, "bulls": 0.8, "uptrend": 0.8, "greenlight": 0.8, "green-lights": 0.8,
    "victory": 1.0, "inflow": 0.6, "all-time-high": 1.0, "ath": 0.9, "adopts": 0.6,
}
NEGATIVE = {
    "loss": 1.0, "losses": 1.0, "lawsuit": 1.0, "layoff": 1.0, "layoffs": 1.0, "laid": 0.6, "weak": 1.0,
    "weaker": 1.0, "weakness": 1.0, "warn": 1.0, "warns": 1.0, "warning": 1.0, "downgrade": 1.0,
    "downgraded": 1.0, "bankrupt": 1.3, "bankruptcy": 1.3, "insolvency": 1.2, "fraud": 1.3, "hack": 1.2,
    "hacked": 1.3, "exploit": 1.2, "exploited": 1.2, "crash": 1.2, "bearish": 1.2, "default": 1.0,
    "concern": 0.8, "concerns": 0.8, "fine": 0.5, "fined": 1.0, "penalty": 1.0, "delay": 0.8, "delayed": 0.8,
    "negative": 1.0, "problem": 0.9, "problems": 0.9, "closure": 0.9, "shut": 0.8, "redundancies": 1.0,
    "dismiss": 0.6, "decline": 1.0, "plunge": 1.2, "slump": 1.1, "fear": 0.9, "fears": 0.9, "panic": 1.2,
    "sell-off": 1.0, "selloff": 1.0, "liquidation": 0.9, "liquidations": 0.9, "ban": 0.9, "banned": 1.0,
    "crackdown": 1.0, "scam": 1.3, "stolen": 1.2, "theft": 1.2, "outage": 1.0, "halted": 0.8, "suspend": 0.7,
    "suspended": 0.8, "delist": 1.0, "delisted": 1.0, "sued": 1.0, "charged": 0.8, "probe": 0.8,
    "investigation": 0.7, "difficult": 0.8, "uncertainty": 0.7, "uncertain": 0.7, "lower-than-expected": 1.0,
    "disappointing": 1.1, "disappointed": 1.0, "worse": 1.0, "worst": 1.1, "poor": 1.0, "impairment": 0.9,
    "unprofitable": 1.0, "deficit": 0.8, "recession": 1.0, "collapse": 1.3, "collapsed": 1.3, "dump": 1.0,
    "plummets": 1.3, "plummeted": 1.3, "tumbles": 1.1, "slides": 0.9, "drops": 0.9, "falls": 0.9,
    "rug": 1.0, "vulnerability": 0.8, "attack": 0.9, "drained": 1.1, "insolvent": 1.2, "cuts": 0.6,
    "negatively": 1.0, "hurt": 1.0, "hit": 0.5, "struggle": 0.9, "struggles": 0.9, "pressure": 0.6,
    "terminated": 0.8, "termination": 0.8, "cancelled": 0.8, "canceled": 0.8, "lost": 0.9,
    # crypto news: what usually moves a token down
    "sues": 1.0, "delisting": 1.0, "delists": 1.0, "depeg": 1.2, "depegs": 1.2, "depegged": 1.2,
    "exploiter": 1.0, "hacker": 1.0, "hackers": 1.0, "drain": 1.0, "drains": 1.1, "liquidated": 1.0,
    "outflow": 0.6, "outflows": 0.6, "bears": 0.8, "downtrend": 0.8, "capitulation": 1.0, "contagion": 1.1,
    "freezes": 0.9, "frozen": 0.9, "halts": 0.9, "insolvencies": 1.2, "fud": 0.6, "dumping": 1.0,
    "dumps": 1.0, "rekt": 1.0, "subpoena": 0.8, "indicted": 1.1, "arrested": 1.0, "ponzi": 1.3,
}
NEGATORS = frozenset("not no never without n't neither nor cannot fail fails failed unable lack lacks".split())
INTENSIFIERS = {
    "significantly": 1.5, "sharply": 1.6, "substantially": 1.5, "strongly": 1.4, "considerably": 1.4,
    "slightly": 0.5, "marginally": 0.5, "somewhat": 0.7, "massive": 1.5, "huge": 1.4, "record": 1.3,
    "very": 1.3, "dramatically": 1.6, "steeply": 1.5, "modestly": 0.6, "nearly": 0.9, "almost": 0.9,
}
_TOKEN = re.compile(r"[a-z]+(?:[-'][a-z]+)*|\d+(?:[.,]\d+)*%?")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_COMPARE = re.compile(
    r"(\d+(?:[.,]\d+)*)\s*(?:[a-z%$€]+\s*){0,3}\b(?:from|compared (?:to|with)|versus|vs\.?|against|up from|"
    r"down from|in comparison with)\b\s*(?:[a-z%$€]+\s*){0,6}?(\d+(?:[.,]\d+)*)",
    re.IGNORECASE,
)
_FIELDS = 10


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower().replace("’", "'"))


def _num(text: str) -> float | None:
    try:
        return float(text.replace(",", "")) if text.count(",") and "." in text else float(text.replace(",", "."))
    except ValueError:
        return None


def _metric_polarity(tokens: list[str], i: int, window: int = 6) -> int:
    """+1 when the nearest metric around position i is good-when-up, -1 bad-when-up, 0 when none."""
    best: tuple[int, int] | None = None
    for j in range(max(0, i - window), min(len(tokens), i + window + 1)):
        if j == i:
            continue
        t = tokens[j]
        pol = 1 if t in GOOD_METRIC else -1 if t in BAD_METRIC else 0
        if pol and (best is None or abs(j - i) < best[0] or (abs(j - i) == best[0] and j < i)):
            best = (abs(j - i), pol)
    return best[1] if best else 0


def lexicon_features(text: str) -> NDArray[np.float64]:
    """[pos, neg, net, direction_pos, direction_neg, compare_sign, negations, has_number, n_tokens/50, bias]."""
    tokens = _tokens(text)
    pos = neg = dpos = dneg = 0.0
    negations = 0
    for i, tok in enumerate(tokens):
        if tok in NEGATORS or tok.endswith("n't"):
            negations += 1
            continue
        flip = any(t in NEGATORS or t.endswith("n't") for t in tokens[max(0, i - 3) : i])
        scale = 1.0
        if i > 0 and tokens[i - 1] in INTENSIFIERS:
            scale = INTENSIFIERS[tokens[i - 1]]
        elif i + 1 < len(tokens) and tokens[i + 1] in INTENSIFIERS:
            scale = INTENSIFIERS[tokens[i + 1]]
        sign = -1.0 if flip else 1.0
        if tok in UP or tok in DOWN:
            pol = _metric_polarity(tokens, i)
            if pol:
                direction = (1 if tok in UP else -1) * pol * sign * scale
                if direction > 0:
                    dpos += direction
                else:
                    dneg -= direction
                continue
        w = POSITIVE.get(tok)
        if w is not None:
            if sign > 0:
                pos += w * scale
            else:
                neg += w * scale * 0.8
            continue
        w = NEGATIVE.get(tok)
        if w is not None:
            if sign > 0:
                neg += w * scale
            else:
                pos += w * scale * 0.5
    compare = 0.0
    for m in _COMPARE.finditer(text):
        a, b = _num(m.group(1)), _num(m.group(2))
        if a is None or b is None or a == b:
            continue
        window_tokens = _tokens(text[max(0, m.start() - 80) : m.start()])
        pol = 0
        for t in reversed(window_tokens):
            if t in GOOD_METRIC:
                pol = 1
                break
            if t in BAD_METRIC:
                pol = -1
                break
        compare += (1.0 if a > b else -1.0) * pol
    has_number = 1.0 if _NUMBER.search(text) else 0.0
    return np.array(
        [pos, neg, pos - neg, dpos, dneg, float(np.clip(compare, -2, 2)), float(negations), has_number,
         len(tokens) / 50.0, 1.0],
        dtype=np.float64,
    )


def lexicon_score(text: str) -> float:
    """A score in [-1, 1] from the lexicon alone (direction terms weigh double)."""
    f = lexicon_features(text)
    raw = f[2] + 2.0 * (f[3] - f[4]) + 1.5 * f[5]
    return float(np.tanh(raw / 2.0))


def lexicon_label(text: str, threshold: float = 0.3) -> str:
    score = lexicon_score(text)
    return "positive" if score >= threshold else "negative" if score <= -threshold else "neutral"


N_FEATURES = _FIELDS
