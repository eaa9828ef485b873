"""``[advisor]``: what the offline advisor may search, and within which bounds (user units).

```toml
[advisor]
folds = 4                 # walk-forward folds (train -> test)
scheme = "anchored"       # "anchored": every train window starts at the first candle; "rolling"
expire_days = 7           # a suggestion nobody accepted by then expires

[advisor.tune]            # only these are searched, each within [low, high]; the rest stays as configured
"profit.min_net_bps" = ["5", "40"]
"grid.spacing_bps" = ["20", "80"]
```

Rails (``rails.*``) are never tunable: the search runs inside the user's rails, and every candidate
is validated as a whole config, so none can loosen them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from nutcracker.config.problems import _fmt, _Problems


@dataclass(frozen=True, slots=True)
class Tunable:
    """One parameter the advisor may search: its kind in the config and its search grain."""

    kind: Literal["decimal", "float", "int"]
    grain: Decimal


TUNABLES: Final[dict[str, Tunable]] = {
    "profit.min_net_bps": Tunable("decimal", Decimal(1)),
    "grid.spacing_bps": Tunable("decimal", Decimal(1)),
    "grid.spacing_atr": Tunable("float", Decimal("0.05")),
    "grid.levels": Tunable("int", Decimal(1)),
    "depth.offset_bps": Tunable("decimal", Decimal(1)),
    "keltner.multiplier": Tunable("float", Decimal("0.1")),
    "martingale.step_scale": Tunable("float", Decimal("0.05")),
    "martingale.volume_scale": Tunable("float", Decimal("0.05")),
    "cooldown.buy_s": Tunable("int", Decimal(1)),
    "cooldown.sell_s": Tunable("int", Decimal(1)),
}
MAX_FOLDS: Final = 20


class AdvisorConfig(BaseModel):
    """``[advisor]``: folds, scheme, expiry and the tunable parameters with their bounds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    folds: StrictInt = Field(default=4, ge=2, le=MAX_FOLDS)
    scheme: Literal["anchored", "rolling"] = "anchored"
    expire_days: StrictInt = Field(default=7, ge=1, le=365)
    tune: dict[str, tuple[Decimal, Decimal]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_tunables(self) -> Self:
        problems = _Problems()
        for name, (low, high) in self.tune.items():
            where = f"tune.{name}"
            if name.startswith("rails."):
                problems.add(
                    where,
                    "rails are never tuned: the advisor searches inside them; remove it from [advisor.tune]",
                )
            elif name not in TUNABLES:
                problems.add(where, f"not a tunable parameter; use one of: {', '.join(TUNABLES)}")
            elif not 0 <= low < high:
                problems.add(
                    where,
                    f"bounds [{_fmt(low)}, {_fmt(high)}] are not low < high with low >= 0; "
                    'write them as ["low", "high"]',
                )
            elif TUNABLES[name].kind == "int" and (low != int(low) or high != int(high)):
                problems.add(where, f"{name} is a whole number; give whole bounds")
        problems.raise_any()
        return self

    def toml_lines(self) -> list[str]:
        """Return this table as TOML that loads back (``NutcrackerConfig.to_toml``)."""
        lines = ["[advisor]", f"folds = {self.folds}", f'scheme = "{self.scheme}"']
        lines += [f"expire_days = {self.expire_days}", "", "[advisor.tune]"]
        lines += [f'"{name}" = ["{_fmt(lo)}", "{_fmt(hi)}"]' for name, (lo, hi) in self.tune.items()]
        return [*lines, ""]
