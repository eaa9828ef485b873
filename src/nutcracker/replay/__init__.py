"""Replay: the live engine over SimExchange on historical or synthetic candles, paced for a person."""
