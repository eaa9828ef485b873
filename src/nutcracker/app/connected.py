"""Paper and live sessions: the engine on the wall clock, connected to an exchange through ccxt.

Part of the composition root (``app.kernel`` builds the engine): it picks the concrete adapters.
Live mode fetches the key just in time from the secret store, refuses it unless the exchange says
it can only trade spot (the withdrawal guard, fail closed), checks that the config's market rules
are the exchange's, and only then starts the engine; nothing is placed with a refused key. Paper
mode reads public market data through ccxt and fills orders on a local matching engine.

Commission. At every live start, and at a paper start given ``--key``, the account's own maker fee
is read from the exchange (Binance: ``GET /sapi/v1/asset/tradeFee`` via ccxt's
``fetch_trading_fee``): a config fee below it is refused (the strategy would size every profit on a
fee it does not pay), a config fee at or above it is used (the higher of the two). Paper mode
without a key cannot read the account: the config's fee is used and one line says it was not checked.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from nutcracker.app.kernel import build_engine, symbol_params
from nutcracker.config import NutcrackerConfig, starting_balances
from nutcracker.engine.ports import Exchange, HistoryExchange
from nutcracker.engine.reports import PulseReport
from nutcracker.engine.runtime import SHUTDOWN_CANCEL_S, Engine, EngineSettings, WallClock
from nutcracker.errors import ConfigError
from nutcracker.exchange.ccxt_exchange import CcxtExchange
from nutcracker.exchange.key_probe import require_trade_only_key
from nutcracker.exchange.paper import PaperExchange
from nutcracker.exchange.paper_store import PaperStore, paper_state_path
from nutcracker.recover import Rebuilt, open_for_recovery, recover_journal, require_known_history
from nutcracker.secrets.cli_keys import open_secret_store
from nutcracker.secrets.redaction import install_redaction
from nutcracker.store.sqlite import SqliteJournal


async def check_markets(config: NutcrackerConfig, exchange: Exchange) -> None:
    """Refuse to start when the config's tick or lot size differ from what the exchange says.

    The fee is not compared here: ``check_fees`` runs before it at every start and refuses a config
    fee below the account's (an exchange's market data holds no account fee to compare).
    """
    for symbol in config.symbols:
        m = symbol.market
        info = await exchange.market(m.symbol)
        if info.tick_size != m.tick_size or info.lot_size != m.lot_size:
            raise ConfigError(
                f"{m.symbol}: the config says tick_size {m.tick_size}, lot_size {m.lot_size} but "
                f"{m.exchange} says {info.tick_size}, {info.lot_size}; set market.tick_size and "
                "market.lot_size to the exchange's values"
            )


def _bps(value: Decimal) -> str:
    return f"{value.normalize():f}"


async def check_fees(
    config: NutcrackerConfig, source: CcxtExchange, notice: Callable[[str], None]
) -> dict[str, Decimal]:
    """Return the maker fee (a fraction) to trade each symbol at: the config's, checked when possible.

    Raises:
        ConfigError: the config's ``market.maker_fee_bps`` is below the account's maker fee.
    """
    fees: dict[str, Decimal] = {}
    unchecked = []
    for symbol in config.symbols:
        m = symbol.market
        configured = m.maker_fee_bps
        rates = await source.trading_fee(m.symbol)
        if rates is None:
            unchecked.append(f"{m.symbol} {_bps(configured)} bps")
        else:
            account_bps = rates[0] * 10_000
            if configured < account_bps:
                raise ConfigError(
                    f"{m.symbol}: market.maker_fee_bps = {_bps(configured)} is below the account's maker "
                    f"fee on {m.exchange}, {_bps(account_bps)} bps; set market.maker_fee_bps to at least "
                    f"{_bps(account_bps)}"
                )
        fees[m.symbol] = configured / 10_000
    if unchecked:
        reason = (
            "the exchange does not report it"
            if source.authenticated
            else "no key; give --key NAME to check it"
        )
        notice(
            f"note: the account's commission was not checked ({reason}): trading at the config's "
            f"market.maker_fee_bps ({', '.join(unchecked)})"
        )
    return fees


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def exchange_of(config: NutcrackerConfig) -> str:
    """Return the one exchange the config trades on; an engine talks to one exchange."""
    exchange_ids = {s.market.exchange for s in config.symbols}
    if len(exchange_ids) != 1:
        raise ConfigError(
            f"one exchange per engine, the config names {sorted(exchange_ids)}: run one engine each"
        )
    return exchange_ids.pop()


def _api_options(config: NutcrackerConfig, exchange_url: str | None) -> dict[str, str]:
    url = exchange_url or next((s.market.api_url for s in config.symbols if s.market.api_url), None)
    return {"api_url": url} if url else {}


def keyed_source(
    config: NutcrackerConfig, key_name: str, keystore: Path | None, vault: bool, exchange_url: str | None
) -> CcxtExchange:
    """Return the config's exchange through the stored key ``key_name`` (a key of another exchange
    is refused)."""
    exchange_id = exchange_of(config)
    credentials = open_secret_store(keystore, vault).get(key_name)
    if credentials.exchange_id != exchange_id:
        raise ConfigError(
            f"key {key_name!r} is for {credentials.exchange_id}, the config trades on {exchange_id}"
        )
    return CcxtExchange.from_credentials(credentials, **_api_options(config, exchange_url))


async def run_recover(
    config: NutcrackerConfig,
    *,
    journal_path: Path,
    exchange_url: str | None,
    key_name: str | None,
    keystore: Path | None,
    vault: bool,
) -> tuple[list[Rebuilt], Path | None]:
    """Connect with the key as ``run --mode live`` does (reads only) and rebuild the journal."""
    install_redaction()
    if key_name is None:
        raise ConfigError("recover reads the account's history: pass --key NAME (as for run --mode live)")
    async with keyed_source(config, key_name, keystore, vault, exchange_url) as source:
        journal, aside = open_for_recovery(journal_path)
        try:
            return await recover_journal(config, source, journal), aside
        finally:
            journal.close()


async def run_connected(
    config: NutcrackerConfig,
    *,
    mode: str,
    journal_path: Path,
    exchange_url: str | None,
    key_name: str | None,
    keystore: Path | None,
    vault: bool,
    pulse_interval_s: float | None,
    pulses: int | None,
    on_report: Callable[[PulseReport], None],
    on_notice: Callable[[str], None] = _stderr,
    cancel_timeout_s: float | None = None,
    on_engine: Callable[[Engine, SqliteJournal], None] | None = None,
    wrap_exchange: Callable[[HistoryExchange], HistoryExchange] | None = None,
) -> None:
    """Run the engine in ``paper`` or ``live`` mode until SIGINT/SIGTERM or ``pulses`` pulses per symbol.

    ``on_engine`` is handed the engine and its journal once built, before it runs (``serve`` attaches
    the API to them); ``wrap_exchange`` puts an adapter between the engine and the exchange.
    """
    install_redaction()
    exchange_id = exchange_of(config)
    source: CcxtExchange
    exchange: HistoryExchange
    paper_store: PaperStore | None = None
    if mode == "live":
        if key_name is None:
            raise ConfigError("--mode live needs --key NAME: a key stored with `nutcracker keys add`")
        source = keyed_source(config, key_name, keystore, vault, exchange_url)
    else:
        paper_store = open_paper_store(journal_path)  # the session resumes exactly after a restart
        if key_name is not None:  # only to read the account's commission: paper places nothing there
            source = keyed_source(config, key_name, keystore, vault, exchange_url)
        else:
            source = CcxtExchange.public(exchange_id, **_api_options(config, exchange_url))
    exchange = source
    async with source:
        if mode == "live":
            await require_trade_only_key(source)  # raises PermissionRefusedError: nothing is placed
        fees = await check_fees(config, source, on_notice)
        if mode != "live":
            # Paper fills pay the fee the strategy assumes (the checked config fee), when one for all.
            same = set(fees.values())
            exchange = PaperExchange(
                source,
                [s.market.symbol for s in config.symbols],
                starting_balances(config),
                store=paper_store,
                **({"maker_fee": same.pop()} if len(same) == 1 else {}),
            )
        await check_markets(config, exchange)
        params = symbol_params(config)
        settings = EngineSettings(
            pulse_interval_s=pulse_interval_s or float(config.engine.pulse_interval_s),
            cancel_on_shutdown=config.engine.cancel_on_shutdown,
            shutdown_cancel_s=cancel_timeout_s or SHUTDOWN_CANCEL_S,
        )
        journal_path.parent.mkdir(parents=True, exist_ok=True)
        journal = SqliteJournal(journal_path)
        try:
            # a lost or rolled-back journal would forget fills and reuse ids: refuse, name the fix
            await require_known_history(params, exchange, journal, journal_path)
            port = wrap_exchange(exchange) if wrap_exchange is not None else exchange
            engine = build_engine(config, params, port, journal, WallClock(), settings)
            if on_engine is not None:
                on_engine(engine, journal)
            counts: dict[str, int] = {}

            def observe(report: PulseReport) -> None:
                on_report(report)
                counts[report.symbol] = counts.get(report.symbol, 0) + 1
                if pulses is not None and all(counts.get(p.market.symbol, 0) >= pulses for p in params):
                    engine.request_stop(f"--pulses {pulses} reached")

            engine.add_observer(observe)
            await engine.run()
        finally:
            journal.close()
            if paper_store is not None:
                paper_store.close()


def open_paper_store(journal_path: Path) -> PaperStore:
    """Open the paper state kept next to the journal; refuse a journal and state that do not match.

    A journal that holds a session but has no paper state (deleted, or a session from before
    paper state was kept) cannot be resumed exactly: its resting orders, fills and balances are
    gone. A paper state without its journal would show orders and fills no journal knows.
    """
    paper_path = paper_state_path(journal_path)
    if paper_path.exists() and not journal_path.exists():
        raise ConfigError(
            f"paper state {paper_path} has no journal {journal_path}: delete {paper_path} to start "
            "a new paper session, or pass the --journal it belongs to"
        )
    if journal_path.exists() and not paper_path.exists():
        with SqliteJournal(journal_path) as journal:
            held = [row.symbol for row in journal.symbols()]
        if held:
            raise ConfigError(
                f"journal {journal_path} holds a session ({', '.join(held)}) but its paper state "
                f"{paper_path} is missing, so its resting orders, fills and balances cannot be resumed: "
                "start a new paper session with another --journal"
            )
    paper_path.parent.mkdir(parents=True, exist_ok=True)
    return PaperStore(paper_path)


def run_blocking(config: NutcrackerConfig, **options: object) -> None:
    asyncio.run(run_connected(config, **options))  # type: ignore[arg-type]
