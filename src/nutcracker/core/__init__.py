"""The pure decision core: values in, intents out.

Forbidden here: clocks, randomness, I/O, asyncio and every other ``nutcracker`` package.
Prices are integer ticks, quantities integer lots and money integer quote units (see ``units``).
"""
