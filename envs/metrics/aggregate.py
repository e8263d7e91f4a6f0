"""Benchmark averages over scenes, as the "average" row of NAVSIM's `run_pdm_score.py`.

Means over valid scenes only (failed ones are counted, not scored 0), of per-scene totals (issue #116).
"""

from __future__ import annotations

import torch
from torch import Tensor

NUM_VALID = "num_valid"
NUM_INVALID = "num_invalid"


def mean_over_valid(scores: dict[str, Tensor], valid: Tensor) -> dict[str, float | int]:
    """{name: mean over valid scenes} for every column, plus `num_valid` and `num_invalid`.

    scores: {name: (N,) per-scene values}, e.g. "nc", ..., "ec" and the totals "pdms" / "epdms";
    valid (N,) bool. Values of invalid scenes are ignored (NaN allowed there); a non-finite value in
    a valid scene is an error, as is having no valid scene at all.
    """
    if not isinstance(valid, Tensor) or valid.dtype != torch.bool or valid.ndim != 1:
        shape = tuple(valid.shape) if isinstance(valid, Tensor) else type(valid).__name__
        raise ValueError(f"valid={shape!r}: expected a bool tensor of shape (N,)")
    if not isinstance(scores, dict) or not scores:
        raise ValueError(f"scores={scores!r}: expected a non-empty dict of (N,) tensors")
    for reserved in (NUM_VALID, NUM_INVALID):
        if reserved in scores:
            raise ValueError(f"scores[{reserved!r}]: name is reserved for the scene counts")
    num_valid = int(valid.sum())
    if num_valid == 0:
        raise ValueError(f"valid: none of the {valid.shape[0]} scenes is valid, nothing to average")

    result: dict[str, float | int] = {}
    for name, value in scores.items():
        if not isinstance(value, Tensor) or tuple(value.shape) != tuple(valid.shape):
            shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise ValueError(f"scores[{name!r}].shape={shape!r}: expected ({valid.shape[0]},)")
        kept = value.to(torch.float64)[valid.to(value.device)]
        bad = ~torch.isfinite(kept)
        if bad.any():
            scene = int(valid.nonzero()[:, 0][bad.nonzero()[0, 0].cpu()])
            raise ValueError(f"scores[{name!r}][{scene}]={value[scene].item()!r}: not finite in a valid scene")
        result[name] = float(kept.mean())
    result[NUM_VALID] = num_valid
    result[NUM_INVALID] = int(valid.shape[0]) - num_valid
    return result
