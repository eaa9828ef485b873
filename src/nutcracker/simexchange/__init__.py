"""A simulated Binance spot exchange served over HTTP on 127.0.0.1 (``nutcracker sim-exchange``).

A test and demo fixture, not an adapter: it may read the user's config format and candle files,
which is why it lives outside ``nutcracker.exchange``. It matches orders with the same
``exchange.matching`` engine the backtester and paper mode use.
"""
