"""The error hierarchy. Library errors are translated once, at the adapter edge, into these."""

from __future__ import annotations

from typing import Final

EXIT_CONFIG: Final = 2  # every command's exit code for bad input: config, data file or option


class NutcrackerError(Exception):
    """Base of every error Nutcracker raises on purpose."""


class ConfigError(NutcrackerError):
    """The user's configuration is invalid; the message names the field and the fix."""


class DataError(NutcrackerError, ValueError):
    """A market data file is malformed; the message names the file, the line and the fix."""


class CheckInputError(NutcrackerError, ValueError):
    """The checker cannot run: a file is missing, has the wrong header, or a symbol has no candles."""


class SecretsError(NutcrackerError):
    """A secret could not be stored or read; the message never contains the secret."""


class ExchangeError(NutcrackerError):
    """Something went wrong talking to an exchange."""


class ExchangeUnavailableError(ExchangeError):
    """Network, timeout, rate limit or maintenance: a data-stall, retry next pulse."""


class AmbiguousOrderError(ExchangeUnavailableError):
    """The order was sent but no answer came: it may or may not rest on the book."""


class AuthenticationError(ExchangeError):
    """Bad key, or a key the permission guard refuses: never trade with it."""


class PermissionRefusedError(AuthenticationError):
    """The key can withdraw or transfer, or its permissions cannot be read."""


class OrderRejectedError(ExchangeError):
    """The exchange refused the order as sent; not retryable unchanged."""


class PostOnlyRejectedError(OrderRejectedError):
    """The maker-only order would have crossed the book; re-price next pulse."""


class InsufficientFundsError(OrderRejectedError):
    """The account lacks the free balance the order needs."""


class InvalidOrderError(OrderRejectedError):
    """Price, quantity or notional breaks the market's tick, lot or minimum notional."""


class OrderNotFoundError(ExchangeError):
    """The exchange does not know the order (already gone, or never placed)."""


class ForbiddenCallError(NutcrackerError):
    """Code tried to call a ccxt method outside the connector's allow-list; nothing was sent.

    Not an ``ExchangeError``: it is a bug in our code, never a condition to retry past.
    """


class JournalError(NutcrackerError):
    """The journal could not read or write its store; the message names the file, the fault and the fix."""


class RecoveryNeededError(JournalError):
    """The exchange knows orders of this engine that the journal does not: ``nutcracker recover`` first."""


class ReconciliationError(NutcrackerError):
    """Local and exchange state disagree in a way that needs a halt of that symbol."""


class AdvisorError(NutcrackerError):
    """The advisor failed: drop its advice and trade on the configured defaults."""
