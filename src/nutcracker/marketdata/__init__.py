"""Market data for the backtester and replay: candle/trade files, a synthetic market, downloads.

- ``candles``: ``CandleArrays`` / ``TradeArrays`` / ``BboArrays`` (numpy, prices in integer ticks),
  exact and fast CSV loading with validation (``DataError`` names file, line and fix), writing,
  gaps, ``Candle``s.
- ``synthetic``: a seeded synthetic market (regimes, trends, mean reversion, intrabar paths).
- ``download``: paginated, resumable, rate-limited candle download through a ccxt-like client.
"""

from nutcracker.errors import DataError
from nutcracker.marketdata.candles import (
    BBO_HEADER,
    CANDLE_HEADER,
    TRADE_HEADER,
    BboArrays,
    CandleArrays,
    TradeArrays,
    check_candles,
    gaps,
    load_bbo_csv,
    load_candles_csv,
    load_trades_csv,
    symbol_from_filename,
    timeframe_to_ms,
    to_candles,
    write_candles_csv,
)
from nutcracker.marketdata.download import OhlcvClient, download_candles
from nutcracker.marketdata.synthetic import SyntheticMarket, synthetic_candles, synthetic_market

__all__ = [
    "BBO_HEADER",
    "CANDLE_HEADER",
    "TRADE_HEADER",
    "BboArrays",
    "CandleArrays",
    "DataError",
    "OhlcvClient",
    "SyntheticMarket",
    "TradeArrays",
    "check_candles",
    "download_candles",
    "gaps",
    "load_bbo_csv",
    "load_candles_csv",
    "load_trades_csv",
    "symbol_from_filename",
    "synthetic_candles",
    "synthetic_market",
    "timeframe_to_ms",
    "to_candles",
    "write_candles_csv",
]
