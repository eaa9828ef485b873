"""A journal is never silently forgotten: the start-time check and ``nutcracker recover``.

The exchange's own order and trade history is the truth a lost journal is rebuilt from. Part of
the composition root (with ``cli`` and ``connected``).

- ``require_known_history`` (every paper and live start): when the exchange lists an order with
  this engine's client order id prefix (open, or among the ``RECENT_ORDERS`` most recent of the
  symbol, filled or cancelled) that the journal never recorded, the journal was lost, truncated
  or rolled back (a deleted ``-wal`` file): starting would forget the inventory those orders
  bought, cancel the exits protecting it, reuse their client order ids and break ``max_base``.
  The start is refused with one line naming ``nutcracker recover``.
- ``recover_journal`` (``nutcracker recover``): reads every order (``allOrders``, paged) and every
  trade (``myTrades``) of the account on each symbol, keeps ours (by prefix), books our fills
  oldest first into a fresh ledger exactly as the engine does (lots, cycles, PnL), sets the client
  order id counter past every id the exchange or the journal ever saw (an id is never reused),
  records every order of ours the journal did not know as an adopted intent, and commits it all
  to the journal in one transaction per symbol; indicators and the grid anchor are kept from the
  journaled state when it can be read (else rebuilt from candles by the first pulse). It sends
  nothing. A journal that is damaged (``quick_check``) is first moved aside.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from nutcracker.config import NutcrackerConfig
from nutcracker.core.ledger import ClosedCycle, Ledger, book_fill
from nutcracker.core.model import Fill, OpenOrder, Side
from nutcracker.core.orders import parse_slot, slot_level
from nutcracker.core.params import SymbolParams
from nutcracker.core.records import ClosedCycleRecord, IntentRecord, PulseRecord
from nutcracker.core.strategy import StrategyState, initial_state
from nutcracker.engine.ports import HistoryExchange
from nutcracker.engine.worker import decode_envelope, encode_envelope
from nutcracker.errors import ReconciliationError, RecoveryNeededError
from nutcracker.store.migrations import JournalDamagedError
from nutcracker.store.sqlite import SqliteJournal

RECENT_ORDERS = 1000  # orders of a symbol the start-time check reads (Binance allOrders' maximum page)
ACTOR = "recover"


def _ours(prefix: str, client_order_id: str) -> bool:
    return parse_slot(prefix, client_order_id) is not None


def _seq(client_order_id: str) -> int:
    """Return the counter of one of our client order ids (``{prefix}-{slot}-{seq hex}``)."""
    return int(client_order_id.rsplit("-", 1)[1], 16)


async def unknown_orders(
    params: Sequence[SymbolParams], exchange: HistoryExchange, journal: SqliteJournal
) -> dict[str, list[str]]:
    """Return, by symbol, the client ids of our orders the exchange lists and the journal never recorded."""
    unknown: dict[str, list[str]] = {}
    for p in params:
        symbol, prefix = p.market.symbol, p.order_id_prefix
        recent = await exchange.fetch_orders(symbol, RECENT_ORDERS)
        resting = await exchange.fetch_open_orders(symbol)
        seen = [o.order.client_order_id for o in recent] + [o.client_order_id for o in resting]
        ours = [cid for cid in dict.fromkeys(seen) if _ours(prefix, cid)]
        if not ours:
            continue
        known = journal.known_client_order_ids(symbol)
        missing = [cid for cid in ours if cid not in known]
        if missing:
            unknown[symbol] = missing
    return unknown


async def require_known_history(
    params: Sequence[SymbolParams], exchange: HistoryExchange, journal: SqliteJournal, journal_path: Path
) -> None:
    """Refuse to start when the exchange shows orders of ours the journal does not know.

    Raises:
        RecoveryNeededError: one line: the journal, what the exchange shows, the command to run.
    """
    unknown = await unknown_orders(params, exchange, journal)
    if not unknown:
        return
    what = "; ".join(
        f"{symbol}: {len(cids)} (e.g. {', '.join(cids[:3])})" for symbol, cids in sorted(unknown.items())
    )
    raise RecoveryNeededError(
        f"{journal_path}: the exchange shows orders of this engine the journal does not know ({what}): "
        "the journal was lost, truncated or rolled back, and starting would forget their fills and "
        f"reuse their ids; run `nutcracker recover --journal {journal_path} --config FILE` with run's "
        "connection options (--key, --exchange-url...), then start again"
    )


@dataclass(frozen=True, slots=True)
class Rebuilt:
    """What ``recover_journal`` rebuilt for one symbol."""

    symbol: str
    base: str
    quote: str
    fills: int  # our fills on the exchange
    buys: int
    sells: int
    new_fills: int  # of which the journal did not hold
    lots: int  # open lots
    held: Decimal  # base held by the engine's lots
    cycles_closed: int
    realized_pnl: Decimal  # quote, net of fees
    open_orders: int  # our orders resting on the exchange, adopted
    adopted_ids: int  # our order ids the journal did not know, now recorded
    next_seq: int  # the client order id counter the engine continues from

    def line(self) -> str:
        return (
            f"{self.symbol}: {self.fills} fills ({self.buys} buys, {self.sells} sells; "
            f"{self.new_fills} new to the journal), {self.lots} lots open, {self.held} {self.base} held, "
            f"{self.cycles_closed} cycles closed (realized PnL {self.realized_pnl} {self.quote}), "
            f"{self.open_orders} open orders adopted, {self.adopted_ids} order ids recorded, "
            f"next client order id counter {self.next_seq:x}"
        )


def rebuild_ledger(
    params: SymbolParams, fills: Iterable[Fill]
) -> tuple[Ledger, list[int], list[ClosedCycle]]:
    """Book our fills, oldest first, into a fresh ledger as the engine does.

    Returns the ledger, the cycle of each fill and the cycles closed.

    Raises:
        ReconciliationError: a fill cannot be booked (a sell beyond what the history bought).
    """
    prefix, pooled = params.order_id_prefix, params.martingale.enabled
    ledger = Ledger()
    cycle_ids: list[int] = []
    closed: list[ClosedCycle] = []
    for fill in fills:
        slot = parse_slot(prefix, fill.client_order_id)
        assert slot is not None
        try:
            ledger, booking, cycle = book_fill(ledger, fill, slot_level(slot), pooled)
        except ValueError as e:
            raise ReconciliationError(
                f"{params.market.symbol}: the exchange's history of this engine's fills cannot be booked "
                f"({e}); the account's trade history may be incomplete"
            ) from e
        cycle_ids.append(booking.cycle_id)
        if cycle is not None:
            closed.append(cycle)
    return ledger, cycle_ids, closed


async def recover_symbol(
    params: SymbolParams, exchange: HistoryExchange, journal: SqliteJournal, now_ms: int
) -> Rebuilt:
    """Rebuild one symbol's journal from the exchange's history (see the module doc)."""
    market = params.market
    symbol, prefix = market.symbol, params.order_id_prefix
    orders = [o for o in await exchange.fetch_orders(symbol) if _ours(prefix, o.order.client_order_id)]
    resting = [o for o in await exchange.fetch_open_orders(symbol) if _ours(prefix, o.client_order_id)]
    fills = [f for f in await exchange.fetch_fills(symbol, 0) if _ours(prefix, f.client_order_id)]
    fills.sort(key=lambda f: f.ts_ms)  # stable: the exchange's order within a millisecond
    journaled = journal.known_trade_ids(symbol, 0)
    missing = sorted(journaled - {f.trade_id for f in fills})
    if missing:  # rebuilding would drop lots the journal holds: another account, or a partial history
        raise ReconciliationError(
            f"{symbol}: the journal holds {len(missing)} fills the exchange does not show "
            f"(e.g. trade {missing[0]}): is this the engine's key and exchange URL? nothing was changed"
        )
    ledger, cycle_ids, closed = rebuild_ledger(params, fills)

    stored = journal.load_symbol(symbol)
    base: StrategyState = initial_state()
    fills_from_ms = fills[0].ts_ms if fills else -1
    if stored is not None and stored.state_json:
        # unreadable: indicators are rebuilt from candles, the ledger comes from the exchange anyway
        with contextlib.suppress(ReconciliationError):
            base, fills_from_ms = decode_envelope(stored.state_json, symbol)
    known = journal.known_client_order_ids(symbol)
    seen = [o.order.client_order_id for o in orders] + [o.client_order_id for o in resting]
    seen += [f.client_order_id for f in fills]
    seqs = [_seq(cid) for cid in (*seen, *known) if _ours(prefix, cid)]
    next_seq = max(base.next_seq, max(seqs, default=0) + 1)
    # a ledger that changed gets its ladder hung again by the first pulse (held lots keep their
    # prices, resting buys theirs); an unchanged one keeps its frozen ladder
    ladder = base.ladder if base.ledger == ledger else ()
    state = StrategyState(base.indicators, ledger, base.anchor, ladder, next_seq)

    by_id: dict[str, tuple[OpenOrder, str]] = {o.order.client_order_id: (o.order, o.status) for o in orders}
    for order in resting:
        by_id.setdefault(order.client_order_id, (order, "open"))
    intents = tuple(
        IntentRecord(
            symbol,
            cid,
            "place",
            order.side.value,
            order.price,
            order.qty,
            "rejected" if status == "rejected" else "acked",
            f"adopted by nutcracker recover (the exchange says {status})",
            now_ms,
        )
        for cid, (order, status) in by_id.items()
        if cid not in known
    )
    new_fills = len({f.trade_id for f in fills} - journaled)
    record = PulseRecord(
        symbol,
        now_ms,
        encode_envelope(state, fills_from_ms),
        tuple(fills),
        tuple(cycle_ids),
        tuple(
            ClosedCycleRecord(c.cycle_id, c.cost, c.proceeds, c.fees, c.pnl, c.opened_ts_ms, c.closed_ts_ms)
            for c in closed
        ),
        intents,
        ("recovered from the exchange's order and trade history by nutcracker recover",),
    )
    journal.commit_pulse(record)
    if stored is not None and stored.status_reason.startswith("halted:"):
        journal.set_status(symbol, "idle", "recovered from the exchange by nutcracker recover", now_ms)
    precision = market.precision
    rebuilt = Rebuilt(
        symbol,
        market.base,
        market.quote,
        len(fills),
        sum(f.side is Side.BUY for f in fills),
        sum(f.side is Side.SELL for f in fills),
        new_fills,
        len(ledger.lots),
        precision.lots_to_qty(ledger.held),
        ledger.cycles_closed,
        precision.qu_to_quote(ledger.realized_pnl).normalize(),
        len(resting),
        len(intents),
        next_seq,
    )
    journal.audit(ACTOR, "recover", rebuilt.line(), now_ms)
    return rebuilt


def open_for_recovery(journal_path: Path) -> tuple[SqliteJournal, Path | None]:
    """Open the journal; a damaged one is moved aside (with its -wal and -shm) and a new one started.

    Returns the journal and where the damaged file went (None when it was sound).
    """
    journal_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return SqliteJournal(journal_path), None
    except JournalDamagedError:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        aside = journal_path.with_name(f"{journal_path.name}.damaged-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            part = Path(f"{journal_path}{suffix}")
            if part.exists():
                part.rename(Path(f"{aside}{suffix}"))
        return SqliteJournal(journal_path), aside


async def recover_journal(
    config: NutcrackerConfig, exchange: HistoryExchange, journal: SqliteJournal
) -> list[Rebuilt]:
    """Rebuild every symbol of ``config`` in ``journal`` from ``exchange``'s history."""
    params = [s.to_params(config.engine.id) for s in config.symbols]
    now_ms = time.time_ns() // 1_000_000
    return [await recover_symbol(p, exchange, journal, now_ms) for p in params]
