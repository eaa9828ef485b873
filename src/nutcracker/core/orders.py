"""Deterministic client order ids and the slot each of our orders fills.

An id is ``{prefix}-{slot}-{seq}``: the prefix names the engine and symbol (restart
reconciliation adopts open orders by it), the slot the ladder level or exit the order serves
(``B3`` buy level 3, ``S3`` the exit of level 3's lot, ``SP`` the pooled exit, ``B129`` the
first seeded level, ``B257`` its re-buy) and ``seq`` a
counter kept in the strategy state, in hex. Binance allows 36 characters.

Slots are plain strings: they are hashed on every pulse, and strings hash fastest.
"""

from __future__ import annotations

MAX_ID_LENGTH = 36  # Binance newClientOrderId; the one definition (config and adapters read it)
POOLED_SLOT = "SP"
# A seeded lot (``grid.seed_levels``) has level ``SEED_LEVEL + j``: the grid level j spacings above
# the price it was bought at, where its exit rests. Beyond every ladder level (the deepest is 127).
SEED_LEVEL = 128
# Once seeded lot j sold, the grid buys again one level below its sell, as a static grid does: that
# lot has level ``REBUY_LEVEL + j`` (``B257``...) and exits one spacing up. Beyond every seed (<= 228).
REBUY_LEVEL = 256


def is_seed(level: int) -> bool:
    """Return whether a level is one of the seeded grid's levels above its start (never pooled)."""
    return level > SEED_LEVEL


def is_rebuy(level: int) -> bool:
    """Return whether a level re-buys a sold seeded level (``B257``, ``S257``...)."""
    return level > REBUY_LEVEL


def seed_distance(level: int) -> int:
    """Return how many grid spacings above its buy a seeded (or re-bought) lot's exit rests."""
    return 1 if level > REBUY_LEVEL else level - SEED_LEVEL


_BUY_SLOTS = tuple(f"B{level}" for level in range(128))
_EXIT_SLOTS = tuple(f"S{level}" for level in range(128))


def buy_slot(level: int) -> str:
    return _BUY_SLOTS[level] if level < 128 else f"B{level}"


def exit_slot(level: int) -> str:
    return _EXIT_SLOTS[level] if level < 128 else f"S{level}"


def slot_level(slot: str) -> int:
    """Return the ladder level a slot serves; -1 for the pooled exit."""
    return -1 if slot == POOLED_SLOT else int(slot[1:])


def format_order_id(prefix: str, slot: str, seq: int) -> str:
    """Return the client order id of the ``seq``-th order this engine places, for ``slot``."""
    order_id = f"{prefix}-{slot}-{hex(seq)[2:]}"  # hex() formats 3x faster than {seq:x} compiled
    if len(order_id) > MAX_ID_LENGTH:
        raise ValueError(f"client order id {order_id!r} is longer than {MAX_ID_LENGTH} characters")
    return order_id


def parse_slot(prefix: str, order_id: str) -> str | None:
    """Return the slot of one of our order ids, or None when the id is not ours."""
    by_id = _SLOTS.get(prefix)
    if by_id is None or len(by_id) >= _SLOTS_KEPT:
        by_id = _SLOTS[prefix] = {}
    if order_id in by_id:  # every pulse parses the same few ids: remembered per prefix
        return by_id[order_id]
    slot = by_id[order_id] = _parse_slot(prefix, order_id)
    return slot


# A memo of a pure function (so the core stays deterministic): a dict keyed by the id string,
# whose hash Python keeps, is cheaper than ``lru_cache``'s key tuple. Bounded: reset when full.
_SLOTS: dict[str, dict[str, str | None]] = {}
_SLOTS_KEPT = 65_536


def _parse_slot(prefix: str, order_id: str) -> str | None:
    if not order_id.startswith(prefix) or order_id[len(prefix) : len(prefix) + 1] != "-":
        return None
    slot, sep, seq = order_id[len(prefix) + 1 :].partition("-")
    if not sep or not seq or "-" in seq:
        return None
    if slot == POOLED_SLOT or (slot[:1] in ("B", "S") and slot[1:].isdigit()):
        return slot
    return None
