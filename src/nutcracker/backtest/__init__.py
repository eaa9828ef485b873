"""The backtester: the engine's pulse over SimExchange with a simulated clock, metrics and reports."""
