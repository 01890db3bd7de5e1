"""A small labelled seed set written for this project (finance and crypto news sentences).

Hand-written sentences plus template expansions of the patterns financial news uses most (a metric moving in a
direction, contracts and deals, neutral reporting). No external data set is copied here; the offline classifier
learns only from this file, so evaluation on the Financial PhraseBank stays out-of-sample.
"""

from __future__ import annotations

import random

POSITIVE = [
    "Bitcoin rallies to a new all-time high as institutional demand accelerates",
    "The company reported record quarterly revenue, beating analyst expectations",
    "Ethereum upgrade completed successfully, lowering fees for users",
    "Shares jumped after the firm raised its full-year guidance",
    "The exchange secured a license to operate in the European Union",
    "Net profit more than doubled thanks to strong demand in Asia",
    "Analysts upgraded the stock to buy, citing improving margins",
    "Spot bitcoin ETFs recorded their largest weekly inflows since launch",
    "The group won a major contract to supply equipment to the national grid",
    "Operating margin improved significantly on lower input costs",
    "The startup closed an oversubscribed funding round led by top investors",
    "Solana's network activity hit a record as new users flocked to the chain",
    "The bank expects earnings to grow strongly next year",
    "Order intake increased sharply and the backlog is at an all-time high",
    "The court dismissed the lawsuit against the exchange, a clear win for the industry",
    "Regulators approved the merger without conditions",
    "The token soared after a major exchange announced support for it",
    "Cash flow from operations turned positive in the second quarter",
    "The company's market share grew in all its key markets",
    "Investors cheered the better-than-expected jobs report and risk assets rallied",
    "The firm signed a multi-year agreement worth 200 million dollars with a global retailer",
    "Dividend raised by 20 percent after a strong year",
    "Hashrate reached a new record, strengthening the network's security",
    "The project's total value locked surged past 5 billion dollars",
    "Losses narrowed considerably compared with the previous year",
    "Costs fell by 12 percent thanks to the efficiency programme",
    "Debt was reduced substantially, improving the balance sheet",
    "The company returned to profit after two years of losses",
    "Sales volumes grew by 8 percent and prices held firm",
    "The partnership is expected to boost revenue significantly in the coming years",
]
NEGATIVE = [
    "Bitcoin plunged below 20,000 dollars as liquidations swept the market",
    "The exchange was hacked and attackers drained 100 million dollars from its hot wallet",
    "The company swung to a net loss as sales collapsed",
    "Shares tumbled after the firm cut its profit forecast",
    "The SEC sued the exchange for offering unregistered securities",
    "Operating profit fell sharply due to higher raw material costs",
    "The lender filed for bankruptcy protection after a run on deposits",
    "Revenue declined for the third consecutive quarter",
    "The group will lay off 500 employees and close two plants",
    "A critical vulnerability was exploited, and user funds were stolen",
    "The stablecoin lost its peg and crashed to 10 cents",
    "Analysts downgraded the stock, warning of weak demand",
    "The network suffered a seven-hour outage and block production halted",
    "Regulators banned crypto trading, sending prices sharply lower",
    "Losses widened as costs rose faster than revenue",
    "The company warned that earnings will be significantly lower than expected",
    "Order intake decreased and the outlook remains uncertain",
    "Investors pulled billions from funds amid fears of a recession",
    "The project was a rug pull and the token collapsed to zero",
    "Margins deteriorated because of intense price competition",
    "The deal was cancelled, a blow to the company's growth plans",
    "Net sales dropped by 15 percent compared with the previous year",
    "Withdrawals were frozen as the platform faced a liquidity crisis",
    "The firm was fined 50 million dollars for compliance failures",
    "Demand weakened and inventories piled up at distributors",
    "Debt rose to an unsustainable level, raising default risk",
    "The token was delisted from major exchanges after the fraud probe",
    "The company did not reach its targets and profitability worsened",
    "Outflows from crypto funds hit a record as sentiment soured",
    "The miner's production decreased and costs increased",
]
NEUTRAL = [
    "The company has about 3,000 employees in 20 countries",
    "The annual general meeting will be held on 15 March",
    "Bitcoin traded at 43,000 dollars on Tuesday afternoon",
    "The exchange supports more than 200 tokens",
    "The agreement was signed in Helsinki on Monday",
    "The company is headquartered in Singapore",
    "The transaction is expected to close in the second quarter, subject to approvals",
    "The report covers the period from January to June",
    "The firm's chief executive will present the results at a conference call",
    "Ethereum uses a proof-of-stake consensus mechanism",
    "The company operates factories in Finland, Sweden and Poland",
    "Trading volume on the exchange totalled 2 billion dollars yesterday",
    "The board proposes a dividend of 0.50 euro per share",
    "The new office will open in Berlin next year",
    "The token has a maximum supply of 21 million units",
    "Financial details of the deal were not disclosed",
    "The company will publish its interim report on 28 April",
    "The central bank will announce its rate decision on Wednesday",
    "Net sales totalled 120 million euros in 2023",
    "The product range includes software, hardware and services",
    "The stake corresponds to 5 percent of the shares and votes",
    "The developer released the code on GitHub",
    "The bill will be debated in the Senate next week",
    "The fund holds bitcoin in cold storage with a custodian",
    "Blockchain data shows the wallet moved 1,000 BTC to an exchange",
    "The validator set consists of 100 nodes",
    "The company was founded in 1998 and listed in 2005",
    "Orders are delivered within two weeks of confirmation",
    "Analysts will be watching the inflation data due on Thursday",
    "The whitepaper describes a layer-two scaling design",
]

_COMPANIES = [
    "The company", "The group", "Nordic Steel", "Acme Bank", "The exchange", "The miner", "Helios Energy",
    "The retailer", "BlockTech", "The fund", "Finnair Cargo", "The lender", "Coinbase", "MetsaTech", "The insurer",
]
_GOOD = ["net sales", "operating profit", "revenue", "net profit", "earnings per share", "order intake",
         "operating margin", "sales", "turnover", "EBITDA", "trading volume", "deposits", "cash flow"]
_BAD = ["operating loss", "net loss", "costs", "expenses", "debt", "outflows", "losses", "impairment charges"]
_UP = ["rose", "increased", "grew", "climbed", "jumped", "improved", "surged", "went up"]
_DOWN = ["fell", "decreased", "declined", "dropped", "slumped", "went down", "shrank", "contracted"]
_PERIODS = ["in the first quarter", "in 2023", "in January-June", "in the third quarter", "last year",
            "in the fiscal year", "in the review period", "year-on-year"]
_UNITS = ["EUR", "USD", "million euros", "mn", "percent"]


def _num(rng: random.Random) -> str:
    return f"{rng.uniform(1, 900):.1f}"


def _templates(rng: random.Random, n: int) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for _ in range(n):
        c, p = rng.choice(_COMPANIES), rng.choice(_PERIODS)
        kind = rng.randrange(9)
        a, b = sorted([float(_num(rng)), float(_num(rng))])
        unit = rng.choice(_UNITS)
        if kind == 0:
            out.append((f"{c}'s {rng.choice(_GOOD)} {rng.choice(_UP)} to {unit} {b} mn from {unit} {a} mn {p}",
                        "positive"))
        elif kind == 1:
            out.append((f"{c}'s {rng.choice(_GOOD)} {rng.choice(_DOWN)} to {unit} {a} mn from {unit} {b} mn {p}",
                        "negative"))
        elif kind == 2:
            out.append((f"{rng.choice(_BAD).capitalize()} {rng.choice(_UP)} to {unit} {b} mn {p}, {c} said",
                        "negative"))
        elif kind == 3:
            out.append((f"{c} said its {rng.choice(_BAD)} {rng.choice(_DOWN)} by {a} percent {p}", "positive"))
        elif kind == 4:
            out.append((f"{c}'s {rng.choice(_GOOD)} totalled {unit} {b} mn {p}", "neutral"))
        elif kind == 5:
            out.append((f"{c} will report its {rng.choice(_GOOD)} for the period {p}", "neutral"))
        elif kind == 6:
            where = rng.choice(["Germany", "Asia", "the US"])
            out.append((f"{c} won an order worth {unit} {b} mn from a customer in {where}", "positive"))
        elif kind == 7:
            out.append((f"{c} will cut {int(b)} jobs and close its plant {p}", "negative"))
        else:
            out.append((f"{c} has {int(b)} employees and operates in {int(a) % 40 + 2} countries", "neutral"))
    return out


def seed_examples(n_templates: int = 360, seed: int = 7) -> list[tuple[str, str]]:
    """(text, label) pairs: the hand-written sentences plus `n_templates` template expansions."""
    rng = random.Random(seed)
    data = [(s, "positive") for s in POSITIVE] + [(s, "negative") for s in NEGATIVE] + [
        (s, "neutral") for s in NEUTRAL
    ]
    data += _templates(rng, n_templates)
    return data
