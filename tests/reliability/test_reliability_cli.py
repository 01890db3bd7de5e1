"""The command line under arbitrary arguments, and `crypto-agent audit export`."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def _commands() -> dict[str, argparse.ArgumentParser]:
    """Every (sub)command path of the parser, e.g. 'apikey create' -> its parser (walked, so new areas count)."""
    from agent.cli import build_parser

    out: dict[str, argparse.ArgumentParser] = {}

    def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    path = f"{prefix} {name}".strip()
                    out[path] = child
                    walk(child, path)

    walk(build_parser(), "")
    return out


TOKENS = st.one_of(
    st.sampled_from(["--json", "--help-me", "-x", "--since", "--out", "--scopes", "--symbol", "--limit", "--", "-",
                     "BTC/USDT", "0", "-1", "1e309", "nan", "", " ", "read,root", "../../etc/passwd"]),
    st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_categories=("Cs",)), max_size=20),
)


@pytest.mark.fault
def test_cli_argument_parsing_fuzz(capsys: pytest.CaptureFixture[str]) -> None:
    """Fault: arbitrary argument lists after every (sub)command the CLI has. Must hold: parsing either succeeds or
    exits with code 2 and a usage message on stderr; never a traceback or another exit code."""
    commands = _commands()
    assert {"apikey create", "audit export", "doctor"} <= set(commands)
    from agent.cli import build_parser

    parser = build_parser()

    @FUZZ
    @given(command=st.sampled_from(sorted(commands)), rest=st.lists(TOKENS, max_size=6))
    def run(command: str, rest: list[str]) -> None:
        argv = [*command.split(), *rest]
        try:
            parser.parse_args(argv)
        except SystemExit as exc:
            err = capsys.readouterr().err
            if exc.code == 0:  # --help somewhere in the tokens
                return
            assert exc.code == 2, (argv, exc.code)
            assert "usage:" in err and "Traceback" not in err, (argv, err[-300:])

    run()


@pytest.mark.fault
def test_cli_handlers_reject_bad_values_with_exit_2(
    isolated_settings: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fault: well-formed commands with bad values (unknown scopes, non-pairs, empty questions, bad --since, an
    output path in a missing directory). Must hold: exit code 2 and a one-line `error:` on stderr; no traceback."""
    from agent.cli import main

    cases = [
        ["apikey", "create", "--scopes", "read,root"],
        ["apikey", "create", "--scopes", ""],
        ["analyze", "not a pair"],
        ["ask", "   "],
        ["audit", "export", "--since", "yesterday-ish"],
        ["audit", "export", "--since", "99999999999d"],
        ["audit", "export", "--out", str(isolated_settings / "missing-dir" / "x.jsonl")],
    ]
    for argv in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error:") and "Traceback" not in err, (argv, err)


@given(text=st.text(max_size=30))
@settings(max_examples=200, deadline=None, database=None)
def test_parse_since_accepts_or_says_why(text: str) -> None:
    """Any --since text either parses to an aware datetime or raises ValueError naming the accepted forms."""
    from agent.cli.audit import parse_since

    try:
        value = parse_since(text)
    except ValueError as exc:
        assert "--since" in str(exc) or "out of range" in str(exc) or "year" in str(exc), str(exc)
    else:
        assert value.tzinfo is not None


def test_audit_export_both_record_shapes(isolated_settings: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`audit export` writes both audit shapes (AuditLog and OMS) as JSON lines, oldest first, filtered by --since
    and --event, to stdout or atomically to --out."""
    from agent.cli import main
    from core import storage
    from core.audit import AuditLog

    db = storage.get_db()
    now = datetime.now(UTC)
    log = AuditLog(db)
    db["audit_log"].insert_one({"at": now - timedelta(days=3), "action": "analyze", "actor": "old", "source": "cli",
                                "outcome": "ok", "details": {}})
    log.record("apikey_create", "admin", source="cli", token="secret-value", key_id="k1")
    db["audit_log"].insert_one({"ts_ms": int((now - timedelta(hours=1)).timestamp() * 1000), "kind": "order_submitted",
                                "actor": "U1", "order_id": "o1", "data": {"qty": 1}})
    assert main(["audit", "export"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["event"] for x in lines] == ["analyze", "order_submitted", "apikey_create"]
    assert lines[2]["details"]["token"] == "***"  # scrubbed at write time, exported as stored
    assert main(["audit", "export", "--since", "2d"]) == 0
    assert [json.loads(x)["event"] for x in capsys.readouterr().out.splitlines()] == ["order_submitted",
                                                                                      "apikey_create"]
    out = isolated_settings.parent / "audit.jsonl"
    assert main(["audit", "export", "--event", "order_submitted", "--out", str(out)]) == 0
    exported = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(exported) == 1 and exported[0]["order_id"] == "o1" and exported[0]["time"].endswith("Z")
    assert "exported 1 audit record" in capsys.readouterr().err
    assert not list(isolated_settings.parent.glob("*.partial"))
