"""Event detection: which kind of market-moving event an item reports, and which coins it concerns.

Rules, not a model: each event type has weighted patterns over the headline and summary; an item may carry more
than one type. Headline matches weigh more than summary matches. The coins come from `detect_symbols`, except that
an exchange listing headline names the listed coin first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from knowledge.text import detect_symbols

EVENT_TYPES: tuple[str, ...] = (
    "hack",  # hack or exploit
    "listing",
    "delisting",
    "regulation",  # regulation or enforcement
    "etf_flows",  # ETF and institutional flows
    "macro",
    "partnership",
    "outage",
    "token_unlock",
)

_RULES: dict[str, list[tuple[str, float]]] = {
    "hack": [
        (r"\bhack(ed|er|ers|s)?\b", 1.0), (r"\bexploit(ed|s|er)?\b", 1.0), (r"\bdrain(ed|s)?\b", 0.7),
        (r"\bstolen\b|\bsteal(s|ing)?\b|\btheft\b", 0.9), (r"\bflash loan attack\b", 1.0),
        (r"\brug ?pull(ed)?\b", 0.8), (r"\bbreach(ed)?\b", 0.6), (r"\battack(er|ers)?\b", 0.5),
        (r"\bcompromised\b", 0.7), (r"\bvulnerabilit(y|ies)\b", 0.4), (r"\bphishing\b", 0.6),
    ],
    "listing": [
        (r"\blist(s|ed|ing)?\b", 0.9), (r"\blaunch(es|ed)? (spot )?trading\b", 0.7),
        (r"\bwill (add|support)\b", 0.5), (r"\bnew listing\b", 1.0), (r"\badds? support for\b", 0.6),
    ],
    "delisting": [
        (r"\bdelist(s|ed|ing)?\b", 1.0), (r"\bsuspend(s|ed)? trading\b", 0.7),
        (r"\bremov(e|es|ed) .{0,20}pairs?\b", 0.6),
    ],
    "regulation": [
        (r"\bsec\b", 0.8), (r"\bcftc\b", 0.8), (r"\bregulat(or|ors|ion|ory|e|es)\b", 0.8), (r"\blawsuit\b", 0.8),
        (r"\bsue[sd]?\b", 0.7), (r"\bcharge[sd]\b", 0.5), (r"\bban(s|ned)?\b", 0.7), (r"\bcrackdown\b", 0.9),
        (r"\benforcement\b", 0.9), (r"\bfine[sd]?\b", 0.5), (r"\bsettle(s|d|ment)\b", 0.5), (r"\blegislat", 0.8),
        (r"\bbill\b", 0.4), (r"\bcongress|senat(e|or)", 0.6), (r"\bmica\b", 0.8), (r"\blicen[cs]e", 0.5),
        (r"\bsanction", 0.7), (r"\bdoj\b|department of justice", 0.8), (r"\bcompliance\b", 0.4),
        (r"\bwatchdog\b", 0.7), (r"\bsubpoena", 0.8), (r"\barrest(s|ed)?\b", 0.6),
    ],
    "etf_flows": [
        (r"\betfs?\b", 1.0), (r"\betps?\b", 0.7), (r"\binflows?\b|\boutflows?\b", 0.7), (r"\binstitution(al|s)\b", 0.7),
        (r"\bgrayscale\b|\bblackrock\b|\bfidelity\b|\bark invest", 0.6), (r"\btreasury (reserve|holdings?)\b", 0.5),
        (r"\b(buys?|bought|adds?|acquire[sd]?) [\d,.]+ ?(k )?(btc|bitcoin|eth)\b", 0.8), (r"\bmicrostrategy\b", 0.6),
    ],
    "macro": [
        (r"\bfed\b|\bfederal reserve\b|\bfomc\b", 0.9), (r"\binflation\b|\bcpi\b", 0.9), (r"\binterest rates?\b", 0.8),
        (r"\brate (hike|cut)s?\b", 1.0), (r"\brecession\b", 0.8), (r"\bjobs report\b|\bpayrolls\b", 0.8),
        (r"\bgdp\b", 0.7), (r"\bpowell\b", 0.8), (r"\btreasury yields?\b|\bbond yields?\b", 0.7),
        (r"\bdollar index\b|\bdxy\b", 0.7), (r"\bstocks?\b.*\b(sell-?off|rally)\b", 0.4),
    ],
    "partnership": [
        (r"\bpartner(s|ed|ship|ships)?\b", 1.0), (r"\bteam(s|ed)? up\b", 0.9), (r"\bcollaborat(e|es|ion)\b", 0.8),
        (r"\bintegrat(e|es|ion|ed)\b", 0.6), (r"\balliance\b", 0.7), (r"\bjoins? forces\b", 0.9),
    ],
    "outage": [
        (r"\boutage\b", 1.0), (r"\bdowntime\b", 0.9), (r"\bhalt(s|ed)?\b", 0.7), (r"\bgoes down\b|\bwent down\b", 0.8),
        (r"\bnetwork (stall|stalled|stops|stopped)\b", 1.0), (r"\bsuspend(s|ed)? (withdrawals|deposits)\b", 0.9),
        (r"\bfreez(e|es)\b.*\bwithdrawals\b|\bpaus(e|es|ed) withdrawals\b", 0.9), (r"\bcongestion\b", 0.5),
        (r"\bstopped producing blocks\b|\bbloc?k production\b", 0.8),
    ],
    "token_unlock": [
        (r"\bunlock(s|ed)?\b", 1.0), (r"\bvesting\b", 0.8), (r"\bcliff\b", 0.5), (r"\btoken release\b", 0.8),
    ],
}
_COMPILED = {t: [(re.compile(p, re.IGNORECASE), w) for p, w in rules] for t, rules in _RULES.items()}
# One search per type and text first: most items match no rule of most types, and a text matches the union of a
# type's rules exactly when it matches one of them, so the per-rule searches run only where they can score.
_ANY = {t: re.compile("|".join(f"(?:{p})" for p, _ in rules), re.IGNORECASE) for t, rules in _RULES.items()}
_EXCHANGE = re.compile(
    r"\b(binance|coinbase|kraken|okx|bybit|kucoin|bitfinex|gemini|robinhood|upbit|bithumb|huobi|htx|gate\.io)\b",
    re.IGNORECASE,
)
THRESHOLD = 0.8


@dataclass
class DetectedEvent:
    type: str
    confidence: float
    matched: list[str] = field(default_factory=list)


@dataclass
class EventResult:
    events: list[DetectedEvent]
    symbols: list[str]

    @property
    def types(self) -> list[str]:
        return [e.type for e in self.events]


def _score(text: str, weight: float, etype: str) -> tuple[float, list[str]]:
    if not _ANY[etype].search(text):
        return 0.0, []
    total = 0.0
    hits: list[str] = []
    for pattern, w in _COMPILED[etype]:
        m = pattern.search(text)
        if m:
            total += w * weight
            hits.append(m.group(0).lower())
    return total, hits


def classify_events(title: str, summary: str = "") -> list[DetectedEvent]:
    """Event types with confidence >= THRESHOLD (in [0, 1]) for one item, most confident first."""
    events: list[DetectedEvent] = []
    for etype in _COMPILED:
        s_title, h_title = _score(title, 1.0, etype)
        s_sum, h_sum = _score(summary, 0.5, etype) if summary else (0.0, [])
        score = s_title + s_sum
        if etype in ("listing", "delisting"):
            # an exchange must be named for listing events ("X lists on Binance")
            if not _EXCHANGE.search(f"{title} {summary}"):
                score *= 0.4
        if score >= THRESHOLD:
            events.append(DetectedEvent(etype, round(min(1.0, score / 2.0), 3), sorted(set(h_title + h_sum))))
    types = {e.type for e in events}
    if "delisting" in types and "listing" in types:
        events = [e for e in events if e.type != "listing"]
    events.sort(key=lambda e: -e.confidence)
    return events


def detect_events(title: str, summary: str = "") -> EventResult:
    """Event types (confidence >= THRESHOLD, in [0, 1]) and coins concerned for one item."""
    return EventResult(classify_events(title, summary), detect_symbols(f"{title}. {summary}"))
