"""The console's pure view helpers: rails as shares, the parameter patch, the API's refusals per field."""

from __future__ import annotations

import decimal
from typing import Any

import pytest

from nutcracker.api.client import ApiError, FieldError, Rail, SymbolStatus
from nutcracker.console.params import problem_lines
from nutcracker.console.symbol import decision_rows
from nutcracker.console.view import (
    STATE_COLOURS,
    as_text,
    grouped,
    money,
    overview_cards,
    overview_rows,
    patch_of,
    rail_use,
    totals,
)


def _rail(used: str, limit: str, asset: str = "USDT") -> Rail:
    return Rail(used=used, limit=limit, headroom="0", asset=asset)


@pytest.mark.parametrize(
    ("used", "limit", "share"),
    [("0", "2000", 0.0), ("500", "2000", 0.25), ("2500", "2000", 1.0), ("1", "0", 1.0), ("-1", "10", 0.0)],
)
def test_rail_use_is_a_share_clamped_to_0_1(used: str, limit: str, share: float) -> None:
    assert rail_use(_rail(used, limit)) == pytest.approx(share)


def _status(symbol: str, status: str, pnl: str, *, stalled: bool = False) -> SymbolStatus:
    return SymbolStatus(
        symbol=symbol,
        account="binance/main",
        status=status,
        reason="why",
        stalled=stalled,
        retry_in_s=None,
        price="100.5",
        inventory=_rail("0.1", "0.2", "BTC"),
        committed_quote=_rail("10", "40"),
        open_orders=3,
        realized_pnl=pnl,
        fees="0.5",
        equity_change=None,
        buy_and_hold_change="1",
        updated_ts_ms=0,
    )


def test_overview_rows_say_stalled_unless_a_person_stopped_it() -> None:
    rows = overview_rows(
        [_status("A/USDT", "trading", "1", stalled=True), _status("B/USDT", "paused", "2", stalled=True)]
    )
    assert [r["State"] for r in rows] == ["stalled", "paused"]
    assert rows[0]["Inventory"] == pytest.approx(0.5)
    assert rows[0]["Committed"] == pytest.approx(0.25)
    assert rows[0]["Equity Δ"] is None


def test_totals_sum_per_quote_asset_and_count_states() -> None:
    sums = totals([_status("A/USDT", "trading", "1.25"), _status("B/USDT", "idle", "-0.25")])
    assert str(sums["pnl"]["USDT"]) == "1.00"
    assert sums["states"] == {"trading": 1, "idle": 1}


def test_patch_has_only_what_changed_in_the_values_types() -> None:
    current: dict[str, Any] = {
        "rails": {"max_base": "0.15", "max_quote": "2000"},
        "grid": {"levels": 6, "trailing_up": True},
        "keltner": {"multiplier": 2.0},
    }
    edited = {
        "rails": {"max_base": "0.15", "max_quote": " 1500 "},
        "grid": {"levels": "8", "trailing_up": "true"},
        "keltner": {"multiplier": "2.0"},
    }
    assert patch_of(current, edited) == {"rails": {"max_quote": "1500"}, "grid": {"levels": 8}}
    assert patch_of(current, {"grid": {"levels": "lots"}}) == {"grid": {"levels": "lots"}}  # the API says why
    assert patch_of(current, {"grid": {"trailing_up": "false"}}) == {"grid": {"trailing_up": False}}
    assert as_text(True) == "true"
    assert as_text(None) == ""


def test_the_apis_refusal_is_one_line_per_field() -> None:
    detail = (
        "parameter change of BTC/USDT: 2 problems:\n"
        '  - symbol[0].rails.max_base: must be greater than 0, got "-1"\n'
        '  - symbol[0].rails.max_quote: expected a decimal number, got "lots"'
    )
    refused = ApiError(422, detail, [FieldError(field="patch", message=detail)])
    assert problem_lines(refused) == [
        'rails.max_base: must be greater than 0, got "-1"',
        'rails.max_quote: expected a decimal number, got "lots"',
    ]
    assert problem_lines(ApiError(403, "a fresh TOTP code is needed")) == ["a fresh TOTP code is needed"]


def test_the_audit_csv_reads_back_as_shown() -> None:
    import csv
    import io

    from nutcracker.api.client import AuditEntry
    from nutcracker.console.audit import audit_csv, audit_rows

    entries = [
        AuditEntry(source="journal", seq=2, ts_ms=0, actor="alice", action="kill", detail='why="a, b"\nnext'),
        AuditEntry(source="auth", seq=1, ts_ms=1000, actor="bob", action="login", detail=""),
    ]
    rows = audit_rows(entries)
    back = list(csv.DictReader(io.StringIO(audit_csv(rows))))
    assert back == [{k: str(v) for k, v in r.items()} for r in rows]
    assert back[0]["time"] == "1970-01-01 00:00:00"
    assert back[0]["detail"] == 'why="a, b"\nnext'


def test_money_is_to_the_cent_with_thousands_separated() -> None:
    assert money("17.0377268231431") == "17.04"
    assert money("-1234.565") == "-1,234.56"  # banker's rounding of the half cent, as Decimal does
    assert money("0") == "0.00"
    assert money(None) == "—"
    assert money("lots") == "—"


def test_money_rounds_the_same_whatever_decimal_context_the_caller_left() -> None:
    with decimal.localcontext(rounding=decimal.ROUND_HALF_UP):  # under xdist another test's context leaked
        assert money("-1234.565") == "-1,234.56"


def test_a_price_keeps_its_decimals_with_thousands_separated() -> None:
    assert grouped("105741.13") == "105,741.13"
    assert grouped("0.3456") == "0.3456"
    assert grouped(None) == "—"


def test_an_overview_card_says_state_why_money_and_rails_with_the_apis_text_escaped() -> None:
    hostile = _status("BTC/USDT", "trading", "1234.5")
    hostile["reason"] = "<script>alert(1)</script> rails full"
    card = overview_cards([hostile, _status("ETH/USDT", "paused", "-2", stalled=True)])
    assert "&lt;script&gt;alert(1)&lt;/script&gt; rails full" in card
    assert "<script>" not in card
    assert "PnL 1,234.50 USDT" in card
    assert "inventory 50% · committed 25% · orders 3" in card
    assert f'color:{STATE_COLOURS["paused"]}">paused' in card  # paused stays paused though stalled


def _pulse(ts_ms: int, status: str, reasons: list[str], reason: str = "") -> dict[str, Any]:
    return {"ts_ms": ts_ms, "status": status, "reasons": reasons, "reason": reason}


def test_a_run_of_pulses_with_the_same_state_and_reason_is_one_decision_row() -> None:
    newest_first = [
        _pulse(300_000, "killed", [], "killed by alice"),
        _pulse(240_000, "killed", [], "killed by alice"),
        _pulse(180_000, "killed", [], "killed by alice"),
        _pulse(120_000, "trading", ["buys rest from 100.00"]),
        _pulse(60_000, "trading", ["buys rest from 101.00"]),
    ]
    rows = decision_rows(newest_first)
    assert [(r["status"], r["pulses"], r["from"], r["to"]) for r in rows] == [
        ("killed", 3, "01-01 00:03:00", "01-01 00:05:00"),
        ("trading", 1, "01-01 00:02:00", "01-01 00:02:00"),
        ("trading", 1, "01-01 00:01:00", "01-01 00:01:00"),
    ]
    assert rows[0]["reason"] == "killed by alice"
    assert rows[1]["reason"] == "buys rest from 100.00"
