"""Portfolio rails: symbols sharing one quote budget never overspend it together."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from engine_world import BTC, ETH, PRECISIONS, falling, make_world, params_for, replay_commitment

from nutcracker.core.units import Precision
from nutcracker.engine.portfolio import PortfolioRails
from nutcracker.engine.runtime import Engine, EngineSettings
from nutcracker.exchange.simulated import Faults

BUDGET = Decimal(650)  # each symbol alone wants 5 x 100 USDT of buys
PREFIXES = {BTC: params_for(BTC).order_id_prefix, ETH: params_for(ETH).order_id_prefix}


def race(budget: Decimal | None, rounds: int = 30, reasons: list[str] | None = None) -> list[Decimal]:
    """Pulse BTC/USDT and ETH/USDT concurrently (with exchange latency) through a falling market."""
    world = make_world((BTC, ETH), faults=Faults(latency_ms=1))
    engine = Engine(
        [params_for(BTC), params_for(ETH)],
        world.sim,
        world.journal,
        world.clock,
        settings=EngineSettings(monitor_interval_s=None),
        portfolio_budgets={"USDT": budget} if budget is not None else None,
    )
    if reasons is not None:
        engine.add_observer(lambda report: reasons.extend(report.reasons))
    btc = falling(world.last(BTC), rounds, step=3_000)
    eth = falling(world.last(ETH), rounds, step=200)

    async def main() -> None:
        for i in range(rounds):
            world.advance_with(BTC, btc[i])
            world.advance_with(ETH, eth[i])
            await engine.pulse_all(concurrently=True)

    asyncio.run(main())
    return replay_commitment(world.engine.events, PREFIXES, PRECISIONS)


def test_two_symbols_racing_for_one_quote_budget_never_exceed_it_together() -> None:
    reasons: list[str] = []
    committed = race(BUDGET, reasons=reasons)
    assert committed, "orders were placed"
    assert any("portfolio quote budget is spent" in r for r in reasons)
    assert max(committed) <= BUDGET
    assert max(committed) > BUDGET - 110  # and the budget was used, not starved


def test_without_the_shared_budget_the_same_race_would_overspend_it() -> None:
    assert max(race(None)) > BUDGET


def test_allowance_is_the_budget_less_every_commitment_in_each_symbols_own_units() -> None:
    rails = PortfolioRails({"USDT": Decimal(1000)})
    btc, eth = PRECISIONS[BTC], PRECISIONS[ETH]
    rails.register(BTC, "USDT", btc)
    rails.register(ETH, "USDT", eth)
    rails.register("BTC/EUR", "EUR", Precision(Decimal("0.01"), Decimal("0.00001")))
    assert rails.allowance(BTC, 0) == 0  # ETH's commitment is not known yet
    assert rails.allowance("BTC/EUR", 0) is None  # no budget for EUR
    assert rails.lock_for("BTC/EUR") is None
    rails.reserve(ETH, eth.quote_to_qu(Decimal(300)))
    assert rails.allowance(BTC, btc.quote_to_qu(Decimal(200))) == btc.quote_to_qu(Decimal(500))
    rails.reserve(BTC, btc.quote_to_qu(Decimal(700)))
    assert rails.allowance(ETH, eth.quote_to_qu(Decimal(300))) == 0
    (usdt,) = rails.budgets()
    assert (usdt.committed, usdt.available, usdt.unknown) == (Decimal(1000), Decimal(0), ())


def test_a_symbol_registered_twice_or_a_negative_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="budget"):
        PortfolioRails({"USDT": Decimal(-1)})
    rails = PortfolioRails({"USDT": Decimal(1)})
    rails.register(BTC, "USDT", PRECISIONS[BTC])
    with pytest.raises(ValueError, match="already"):
        rails.register(BTC, "USDT", PRECISIONS[BTC])
