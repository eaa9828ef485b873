"""Translate ccxt's exceptions into Nutcracker's hierarchy, once, at the adapter edge.

``ccxt_errors(venue, placing=...)`` is the only place that knows ccxt's exception classes; the
connector wraps every ccxt call in it. The table (checked top to bottom: subclasses before their
parents; ccxt 4.5.90 class tree, ``reference/exchanges.md`` §1.6 and §3.5):

==========================================================  =====================================
ccxt exception                                              Nutcracker error
==========================================================  =====================================
``OrderImmediatelyFillable``                                ``PostOnlyRejectedError``
``DuplicateOrderId``, ``InvalidOrder("Duplicate order       ``AmbiguousOrderError``: an order with
sent.")``                                                   this client id is live; resolve by id
``OrderNotFound``                                           ``OrderNotFoundError``
``InsufficientFunds``                                       ``InsufficientFundsError``
``InvalidOrder``, ``BadRequest`` (``BadSymbol``; Binance    ``InvalidOrderError``
reports the NOTIONAL filter as ``BadRequest``)
``OperationRejected`` (``MarketClosed``, ...)               ``OrderRejectedError``
``AuthenticationError`` (``PermissionDenied``,              ``AuthenticationError``
``AccountSuspended``)
``InvalidNonce``, ``DDoSProtection``,                       ``ExchangeUnavailableError``: refused
``RateLimitExceeded``                                       before the matching engine, even when
                                                            placing
``NetworkError`` (``RequestTimeout``,                       placing: ``AmbiguousOrderError``;
``ExchangeNotAvailable``, connection errors),               otherwise ``ExchangeUnavailableError``
``OperationFailed`` (``BadResponse``, ...)
``NotSupported``, ``ArgumentsRequired``,                    ``ExchangeError``: refused by ccxt
``InvalidProxySettings``, ``ExchangeClosedByUser``          itself, nothing was sent
``ExchangeError`` (bare: an unmapped code, or a loopback    placing: ``AmbiguousOrderError``;
fallback such as -1008) and any other ``BaseError``         otherwise ``ExchangeUnavailableError``
==========================================================  =====================================

So a placement ends in exactly one of three classes of outcome: **rejected** (an
``OrderRejectedError``: nothing rests), **live** (``ExchangeUnavailableError``: nothing was placed,
a data-stall; or our ``AuthenticationError``) or **unknown** (``AmbiguousOrderError``: the request
may have reached the matching engine; never resend blindly, look the client order id up first).

Every translated error is chained to the ccxt one (``raise ... from e``). Messages carry the venue
and ccxt's text (the exchange's code and message); ccxt never puts the API key or secret there.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import ccxt

from nutcracker.errors import (
    AmbiguousOrderError,
    AuthenticationError,
    ExchangeError,
    ExchangeUnavailableError,
    InsufficientFundsError,
    InvalidOrderError,
    OrderNotFoundError,
    OrderRejectedError,
    PostOnlyRejectedError,
)

DUPLICATE_ORDER_MESSAGE = "Duplicate order sent."

# ccxt refuses these itself, before anything goes on the wire: never ambiguous.
_CLIENT_SIDE = (
    ccxt.NotSupported,
    ccxt.ArgumentsRequired,
    ccxt.InvalidProxySettings,
    ccxt.ExchangeClosedByUser,
)
# Refused before the matching engine (reference §3.5); NetworkError subclasses, so caught first.
_REFUSED_BEFORE_MATCHING = (ccxt.InvalidNonce, ccxt.DDoSProtection, ccxt.RateLimitExceeded)


@contextmanager
def ccxt_errors(venue: str, *, placing: bool = False) -> Iterator[None]:
    """Translate the ccxt exceptions raised inside the block into Nutcracker's errors.

    Args:
        venue: the exchange id, for the messages.
        placing: the block sends a new order; errors whose outcome is unknown become
            ``AmbiguousOrderError`` instead of ``ExchangeUnavailableError``.
    """
    try:
        yield
    except ccxt.OrderImmediatelyFillable as e:
        raise PostOnlyRejectedError(f"{venue}: post-only order would have crossed the book: {e}") from e
    except ccxt.DuplicateOrderId as e:
        raise _duplicate(venue, e) from e
    except ccxt.OrderNotFound as e:
        raise OrderNotFoundError(f"{venue}: order not found: {e}") from e
    except ccxt.InsufficientFunds as e:
        raise InsufficientFundsError(f"{venue}: insufficient balance: {e}") from e
    except ccxt.InvalidOrder as e:
        if DUPLICATE_ORDER_MESSAGE in str(e):
            raise _duplicate(venue, e) from e
        raise InvalidOrderError(f"{venue}: invalid order: {e}") from e
    except ccxt.BadRequest as e:
        raise InvalidOrderError(f"{venue}: request refused: {e}") from e
    except ccxt.OperationRejected as e:
        raise OrderRejectedError(f"{venue}: operation rejected: {e}") from e
    except ccxt.AuthenticationError as e:
        raise AuthenticationError(f"{venue}: authentication failed: {e}") from e
    except _REFUSED_BEFORE_MATCHING as e:
        raise ExchangeUnavailableError(
            f"{venue}: refused before matching, rate limit or clock skew ({type(e).__name__}): {e}"
        ) from e
    except (ccxt.NetworkError, ccxt.OperationFailed) as e:
        if placing:
            raise AmbiguousOrderError(
                f"{venue}: the order was sent but its outcome is unknown ({type(e).__name__}): {e}"
            ) from e
        raise ExchangeUnavailableError(f"{venue}: unavailable ({type(e).__name__}): {e}") from e
    except _CLIENT_SIDE as e:
        raise ExchangeError(f"{venue}: refused by ccxt before sending ({type(e).__name__}): {e}") from e
    except ccxt.BaseError as e:  # a bare ExchangeError: an unmapped code, or a loopback fallback
        if placing:
            raise AmbiguousOrderError(
                f"{venue}: unrecognised answer to an order, outcome unknown ({type(e).__name__}): {e}"
            ) from e
        raise ExchangeUnavailableError(f"{venue}: unrecognised error ({type(e).__name__}): {e}") from e


def _duplicate(venue: str, e: Exception) -> AmbiguousOrderError:
    return AmbiguousOrderError(
        f"{venue}: an order with this client order id is already live ({e}); look it up before resending"
    )


__all__ = ["DUPLICATE_ORDER_MESSAGE", "ccxt_errors"]
