"""Every CLI (sub)command, given bad input, exits 2 with an `error:` message on stderr and no traceback.

The command list is walked from the parser, so a new command without a case here fails the test: the documented
exit codes (README, agent/cli/__init__.py) hold for each command, not only for the ones someone remembered.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from agent.cli import build_parser, main

BAD_CSV = "timestamp_ms,open,high,low,close,volume\n1704067200000,1,2,x,1,1\nnot,a,csv\n"


def leaf_commands() -> set[str]:
    out: set[str] = set()

    def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            out.add(prefix)
        for action in subs:
            for name, child in action.choices.items():
                walk(child, f"{prefix} {name}".strip())

    walk(build_parser(), "")
    return out


def cases(tmp: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    """command -> (argv with a bad value, environment overrides). Commands that take no values get a bad setting:
    a setting is input too, and it must read as clearly as a bad argument."""
    bad_csv = tmp / "bad.csv"
    bad_csv.write_text(BAD_CSV)
    titles = tmp / "titles.csv"
    titles.write_text("title\nBitcoin rallies\n")
    return {
        "serve": (["serve", "--port", "0"], {}),
        "doctor": (["doctor"], {"PORT": "0"}),
        "apikey create": (["apikey", "create", "--scopes", "read,root"], {}),
        "apikey list": (["apikey", "list"], {"MONGO_DB": ""}),
        "apikey revoke": (["apikey", "revoke", "k1"], {"MONGO_DB": "a.b"}),
        "ask": (["ask", "   "], {}),
        "analyze": (["analyze", "not a pair"], {}),
        "strategy run": (["strategy", "run", "nosuch", "--symbol", "BTC/USDT"], {}),
        "strategy auto-approve": (["strategy", "auto-approve", "bogus", "on", "--operator", "ops"], {}),
        "train": (["train", "--symbol", "BTC/USDT", "--epochs", "-1"], {}),
        "forecast": (["forecast", "--symbol", "BTC/USDT", "--data", str(bad_csv)], {}),
        "backtest": (["backtest", "--strategy", "trend", "--symbol", "BTC/USDT", "--data", str(bad_csv)], {}),
        "data download": (["data", "download", "--symbol", "BTC/USDT", "--since", "yesterday"], {}),
        "data import": (["data", "import", str(bad_csv)], {}),
        "data export": (["data", "export", "--exchange", "x", "--symbol", "BTC/USDT", "--since", "soon"], {}),
        "data list": (["data", "list"], {"APPROVAL_TTL_S": "5"}),
        "option price": (["option", "price", "--type", "call", "--underlying", "-1", "--strike", "1", "--days", "1",
                          "--vol", "1"], {}),
        "option greeks": (["option", "greeks", "--type", "call", "--underlying", "1", "--strike", "1", "--days",
                           "-5", "--vol", "1"], {}),
        "option iv": (["option", "iv", "--type", "call", "--underlying", "1", "--strike", "1", "--days", "1",
                       "--price", "-1"], {}),
        "option surface": (["option", "surface", "--chain", str(tmp / "missing.csv")], {}),
        "option surface-eval": (["option", "surface-eval", str(tmp / "missing")], {}),
        "desk": (["desk", "status"], {"RISK_MAX_LEVERAGE": "-2"}),
        "orders": (["orders", "propose", "--symbol", "BTC/USDT", "--qty", "-1"], {}),
        "news ingest": (["news", "ingest", "--feed", "x=ftp://a"], {}),
        "news search": (["news", "search", "bitcoin", "-k", "0"], {}),
        "news sentiment": (["news", "sentiment", "--file", str(titles), "--column", "nope"], {}),
        "news train-sentiment": (["news", "train-sentiment", "--data", str(tmp / "missing.csv")], {}),
        "news events": (["news", "events", "--limit", "0"], {}),
        "news impact": (["news", "impact", "--hours", "-1"], {}),
        "audit export": (["audit", "export", "--since", "yesterday-ish"], {}),
        "slack socket": (["slack", "socket"], {}),
        "slack manifest": (["slack", "manifest", "--url", "not a url"], {}),
    }


def test_every_command_has_a_bad_input_case(tmp_path: Path) -> None:
    missing = leaf_commands() - set(cases(tmp_path))
    assert not missing, f"add a bad-input case for {sorted(missing)}"


@pytest.mark.parametrize("command", sorted(leaf_commands()))
def test_bad_input_exits_2_with_a_message(
    command: str, isolated_settings: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from core.settings import reset_settings

    argv, env = cases(tmp_path)[command]
    monkeypatch.chdir(tmp_path)  # no .env from the checkout
    for name in ("SLACK_APP_TOKEN", "SLACK_BOT_TOKEN", "LLM_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_settings()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse refuses the value itself (usage + error)
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, (argv, code, err[-400:])
    assert "error:" in err and "Traceback" not in err, (argv, err[-400:])


@pytest.mark.parametrize(
    "argv",
    [
        ["orders", "list", "--limit", "-1"],
        ["news", "ingest", "--lookback-hours", "-1"],
        ["news", "ingest", "--retention-days", "-3"],
        ["strategy", "run", "trend", "--symbol", "BTC/USDT", "--warmup", "-1"],
        ["strategy", "run", "trend", "--symbol", "BTC/USDT", "--poll-s", "0"],
        ["data", "download", "--symbol", "BTC/USDT", "--since", "2024-01-01", "--page-limit", "-5"],
        ["backtest", "--strategy", "trend", "--symbol", "BTC/USDT", "--folds", "0"],
        ["train", "--symbol", "BTC/USDT", "--limit", "-1"],
        ["forecast", "--symbol", "BTC/USDT", "--horizon", "501"],
        ["serve", "--port", "70000"],
    ],
)
def test_out_of_range_numbers_are_refused_before_anything_runs(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A negative limit, page size or poll interval used to run (or fail later with exit 1)."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2 and "error: argument" in err and "Traceback" not in err, (argv, err)
