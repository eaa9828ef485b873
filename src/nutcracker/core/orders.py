"""Deterministic client order ids and the slot each of our orders fills.

An id is ``{prefix}-{slot}-{seq}``: the prefix names the engine and symbol (restart
reconciliation adopts open orders by it), the slot the ladder level or exit the order serves
(``B3`` buy level 3, ``S3`` the exit of level 3's lot, ``SP`` the pooled exit) and ``seq`` a
counter kept in the strategy state. Binance allows 36 characters.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_ID_LENGTH = 36
POOLED_EXIT = "SP"


@dataclass(frozen=True, slots=True)
class Slot:
    kind: str  # "B" buy level, "S" per-lot exit, "SP" pooled exit
    level: int  # ladder level; -1 for the pooled exit

    def __str__(self) -> str:
        return POOLED_EXIT if self.kind == POOLED_EXIT else f"{self.kind}{self.level}"


def buy_slot(level: int) -> Slot:
    return Slot("B", level)


def exit_slot(level: int) -> Slot:
    return Slot("S", level)


POOLED_SLOT = Slot(POOLED_EXIT, -1)


def format_order_id(prefix: str, slot: Slot, seq: int) -> str:
    """Return the client order id of the ``seq``-th order this engine places for ``slot``."""
    order_id = f"{prefix}-{slot}-{seq:x}"
    if len(order_id) > MAX_ID_LENGTH:
        raise ValueError(f"client order id {order_id!r} is longer than {MAX_ID_LENGTH} characters")
    return order_id


def parse_slot(prefix: str, order_id: str) -> Slot | None:
    """Return the slot of one of our order ids, or None when the id is not ours."""
    if not order_id.startswith(prefix + "-"):
        return None
    parts = order_id[len(prefix) + 1 :].split("-")
    if len(parts) != 2:
        return None
    slot = parts[0]
    if slot == POOLED_EXIT:
        return POOLED_SLOT
    kind, digits = slot[:1], slot[1:]
    if kind not in ("B", "S") or not digits.isdigit():
        return None
    return Slot(kind, int(digits))
