"""Sub-scores of one scoring pass and the NAVSIM v1.1 PDM Score (PDMS) that combines them.

PDMS = NC * DAC * (5*EP + 5*TTC + 2*C + 0*DDC) / 12 (navsim branch v1.1, `PDMScorerConfig` and
`PDMScorer._aggregate_scores`). The EPDMS (v2) combination lives in `epdms.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from types import MappingProxyType

from torch import Tensor

PDMS_MULTIPLIERS = ("nc", "dac")
"""Multiplicative metrics of v1.1 (`MultiMetricIndex` order)."""

PDMS_WEIGHTS = MappingProxyType({"ep": 5.0, "ttc": 5.0, "c": 2.0, "ddc": 0.0})
"""Weighted metrics of v1.1 in `WeightedMetricIndex` order (progress, ttc, comfortable, driving
direction). DDC became weighted with weight 0 in v1.1, so it is reported but never counts."""


@dataclass(frozen=True)
class SubScores:
    """Every NAVSIM sub-score of B scenes x P proposals; all fields float64 (B, P).

    All ten are always present so one type serves both versions. A metric a version does not use
    still has to be filled: the caller either computes it anyway (DDC, TLC, LK are cheap and are
    reported by NAVSIM v1 too for DDC) or sets it to 1 (HC and EC outside EPDMS, C inside EPDMS).
    """

    nc: Tensor = field(metadata={"dims": "B P"})
    """No at-fault collision, {0, 0.5, 1}."""
    dac: Tensor = field(metadata={"dims": "B P"})
    """Drivable area compliance, {0, 1}."""
    ddc: Tensor = field(metadata={"dims": "B P"})
    """Driving direction compliance, {0, 0.5, 1} (weight 0 in v1.1, multiplicative in v2)."""
    tlc: Tensor = field(metadata={"dims": "B P"})
    """Traffic light compliance, {0, 1} (v2)."""
    ep: Tensor = field(metadata={"dims": "B P"})
    """Ego progress, [0, 1] (normalised; see `progress.normalized_progress`)."""
    ttc: Tensor = field(metadata={"dims": "B P"})
    """Time to collision within bound, {0, 1}."""
    c: Tensor = field(metadata={"dims": "B P"})
    """Comfort (v1), {0, 1}."""
    lk: Tensor = field(metadata={"dims": "B P"})
    """Lane keeping (v2), {0, 1}."""
    hc: Tensor = field(metadata={"dims": "B P"})
    """History comfort (v2), {0, 1}."""
    ec: Tensor = field(metadata={"dims": "B P"})
    """Extended (two-frame) comfort (v2), {0, 1}; 1 where only one frame is scored."""

    def __post_init__(self):
        shape = None
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, Tensor):
                raise ValueError(f"{f.name}={type(value).__name__}: expected a torch.Tensor (B, P)")
            if shape is None:
                shape = value.shape
            if value.ndim != 2 or value.shape != shape:
                raise ValueError(f"{f.name}.shape={tuple(value.shape)!r}: expected (B, P) = {tuple(shape)}")
            if not value.is_floating_point():
                raise ValueError(f"{f.name}.dtype={value.dtype}: expected a floating dtype")

    @property
    def shape(self) -> tuple[int, int]:
        """(B, P)."""
        return tuple(self.nc.shape)

    def to_dict(self) -> dict[str, Tensor]:
        """{name: (B, P) tensor} for every sub-score, in field order (nc, dac, ddc, tlc, ep, ttc, c, lk, hc, ec)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def pdm_score(s: SubScores) -> Tensor:
    """NAVSIM v1.1 PDMS (B, P): NC * DAC * (5*EP + 5*TTC + 2*C + 0*DDC) / 12.

    Summed in NAVSIM's order (weighted terms one after another, then / sum of weights, then times
    the product of the multiplicative metrics) so results match to the last bit.
    """
    weighted = None
    for name, weight in PDMS_WEIGHTS.items():
        term = getattr(s, name) * weight
        weighted = term if weighted is None else weighted + term
    weighted = weighted / sum(PDMS_WEIGHTS.values())
    product = None
    for name in PDMS_MULTIPLIERS:
        value = getattr(s, name)
        product = value if product is None else product * value
    return product * weighted
