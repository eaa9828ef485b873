"""The permission guard's transport: ask the exchange, through the guarded ccxt client, what a key may do.

``secrets.permissions`` parses and decides; this module only performs the probe request with the
allow-listed implicit ccxt method of the exchange (``PROBE_METHODS``, e.g. Binance's
``sapi_get_account_apirestrictions`` for ``GET /sapi/v1/account/apiRestrictions``), its errors
translated by ``ccxt_errors``.

- ``verify_key(credentials)``: the verifier of ``make_keys_app(verifier=...)`` (``keys add`` and
  ``keys verify``); opens a connector for the key, probes, closes.
- ``require_trade_only_key(exchange)``: the live start-up guard; raises ``PermissionRefusedError``
  unless the key can trade spot and cannot withdraw or transfer.
"""

from __future__ import annotations

from pydantic import SecretStr

from nutcracker.errors import ForbiddenCallError
from nutcracker.exchange.ccxt_errors import ccxt_errors
from nutcracker.exchange.ccxt_exchange import PROBE_METHODS, CcxtExchange, CcxtGuard
from nutcracker.secrets.permissions import (
    KeyPermissions,
    PermissionProbe,
    Request,
    probe_permissions,
    require_safe,
)
from nutcracker.secrets.store import ApiCredentials


def permission_request(client: CcxtGuard) -> Request:
    """Return the transport ``probe_permissions`` needs: the probe's signed GET through ``client``."""

    async def request(probe: PermissionProbe) -> object:
        method = PROBE_METHODS.get(probe.exchange_id)
        if method is None:
            raise ForbiddenCallError(f"no allow-listed ccxt method probes {probe.exchange_id} keys")
        call = getattr(client, method)  # the guard refuses anything off the allow-list
        with ccxt_errors(probe.exchange_id):
            response: object = await call()
        return response

    return request


async def probe_key(exchange: CcxtExchange, *, api_key: str | SecretStr | None = None) -> KeyPermissions:
    """Return what the key of ``exchange`` may do, as its exchange reports it (never raises a refusal).

    ``api_key`` is needed for Gate only (its endpoint lists every key of the account, masked).
    """
    return await probe_permissions(
        exchange.exchange_id, permission_request(exchange.ccxt_client), api_key=api_key
    )


async def require_trade_only_key(
    exchange: CcxtExchange, *, api_key: str | SecretStr | None = None
) -> KeyPermissions:
    """Return the key's permissions; raise ``PermissionRefusedError`` unless it is safe to trade with."""
    return require_safe(await probe_key(exchange, api_key=api_key))


async def verify_key(credentials: ApiCredentials) -> KeyPermissions:
    """Probe the permissions of the key in ``credentials`` (at its ``exchange_url`` when set)."""
    async with CcxtExchange.from_credentials(credentials) as exchange:
        return await probe_key(exchange, api_key=credentials.api_key)


__all__ = ["permission_request", "probe_key", "require_trade_only_key", "verify_key"]
