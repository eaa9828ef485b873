"""Portfolio rails (the in-process ``ports.QuoteBudget``): symbols on one quote asset share a budget.

Each configured quote asset (``[portfolio.USDT] max_quote = 8000``) has a budget in that asset and
an ``asyncio.Lock``. A symbol's *commitment* is the quote it has tied up: the cost of the lots it
holds plus the notional of its open buys (and of buys whose placement is not answered yet). Every
worker reports its commitment after each pulse (``reserve``); before deciding, a worker takes the
lock of its quote asset and is granted

    quote_allowance = budget - (commitments of every symbol on that asset, its own included)

in its own quote units, floored. ``decide`` spends the allowance on new buys only (kept orders
are already in the commitment), and the worker records its new commitment, new placements
included, *before* the lock is released, so two symbols can never both spend the same rest of the
budget. A re-priced buy is conservative: its old notional is still counted until the next pulse.

A symbol whose commitment is not known yet (before its first hydrate after a start) makes the
allowance of every other symbol on its asset 0: its resting orders might already use the budget.

Amounts are exact ``Decimal``s of the quote asset (symbols on one asset may have different
quote units); an asset without a budget has no lock and no allowance (``None``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Context, Decimal

from nutcracker.core.units import Precision

__all__ = ["BudgetView", "PortfolioRails"]

_EXACT = Context(prec=80)  # sums of quote amounts never round


@dataclass(frozen=True, slots=True)
class BudgetView:
    """One quote asset's budget and what its symbols committed (for status views)."""

    asset: str
    max_quote: Decimal
    committed: Decimal
    unknown: tuple[str, ...]  # symbols whose commitment is not known yet

    @property
    def available(self) -> Decimal:
        return max(Decimal(0), _EXACT.subtract(self.max_quote, self.committed))


@dataclass(slots=True)
class _Member:
    quote: str
    precision: Precision
    committed_qu: int | None  # None: unknown until the symbol's first hydrate


class PortfolioRails:
    """The shared quote budgets of one engine, by quote asset: the in-process ``ports.QuoteBudget``."""

    def __init__(self, budgets: Mapping[str, Decimal]) -> None:
        for asset, amount in budgets.items():
            if not amount.is_finite() or amount < 0:
                raise ValueError(f"portfolio budget of {asset} must be a finite amount >= 0, got {amount}")
        self._budgets = dict(budgets)
        self._locks = {asset: asyncio.Lock() for asset in budgets}
        self._members: dict[str, _Member] = {}

    def register(self, symbol: str, quote: str, precision: Precision) -> None:
        """Add a symbol; its commitment is unknown until its first ``reserve``."""
        if symbol in self._members:
            raise ValueError(f"{symbol} is already registered with the portfolio")
        self._members[symbol] = _Member(quote, precision, None)

    def has_budget(self, symbol: str) -> bool:
        """Return whether the symbol's quote asset has a shared budget."""
        return self._members[symbol].quote in self._budgets

    def lock_for(self, symbol: str) -> asyncio.Lock | None:
        """Return the lock of the symbol's quote asset, None when that asset has no budget."""
        return self._locks.get(self._members[symbol].quote)

    def hold(self, symbol: str) -> AbstractAsyncContextManager[None]:
        """Return the atomic section of ``allowance`` then ``reserve``: the asset's lock, or a no-op."""
        lock = self.lock_for(symbol)
        return lock if lock is not None else contextlib.nullcontext()

    def allowance(self, symbol: str, own_committed_qu: int) -> int | None:
        """Return the quote units ``symbol`` may newly commit, given its own current commitment.

        Call it holding ``lock_for(symbol)`` and record the result of the decision with ``reserve``
        before releasing the lock.
        """
        member = self._members[symbol]
        budget = self._budgets.get(member.quote)
        if budget is None:
            return None
        committed = _quote(member.precision, own_committed_qu)
        for other_symbol, other in self._members.items():
            if other_symbol == symbol or other.quote != member.quote:
                continue
            if other.committed_qu is None:
                return 0  # its resting orders may already use the budget
            committed = _EXACT.add(committed, _quote(other.precision, other.committed_qu))
        left = _EXACT.subtract(budget, committed)
        if left <= 0:
            return 0
        return int(_EXACT.divide(left, member.precision.quote_unit).to_integral_value(rounding=ROUND_FLOOR))

    def reserve(self, symbol: str, committed_qu: int) -> None:
        """Record the symbol's commitment in its own quote units (held cost + open and sent buys)."""
        if committed_qu < 0:
            raise ValueError(f"{symbol}: a commitment cannot be negative ({committed_qu})")
        self._members[symbol].committed_qu = committed_qu

    def committed_qu(self, symbol: str) -> int | None:
        """Return the last recorded commitment of ``symbol`` (None: not known yet)."""
        return self._members[symbol].committed_qu

    def budgets(self) -> tuple[BudgetView, ...]:
        """Return every budget with its current commitments, by asset."""
        out = []
        for asset in sorted(self._budgets):
            committed = Decimal(0)
            unknown = []
            for symbol, member in self._members.items():
                if member.quote != asset:
                    continue
                if member.committed_qu is None:
                    unknown.append(symbol)
                else:
                    committed = _EXACT.add(committed, _quote(member.precision, member.committed_qu))
            out.append(BudgetView(asset, self._budgets[asset], committed, tuple(unknown)))
        return tuple(out)


def _quote(precision: Precision, qu: int) -> Decimal:
    """Return ``qu`` quote units as an exact amount of the quote asset."""
    return _EXACT.multiply(Decimal(qu), precision.quote_unit)
