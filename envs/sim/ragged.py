"""Batching of per-scene tensors of uneven sizes: concatenate along the batch and pad the ragged dims.

Per-scene results (map indexes, objects, red lights) are made once and batched often, so the batching is
a few tensor ops whatever the number of scenes.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np
import torch
from torch import Tensor
from torch._utils import _flatten_dense_tensors


@lru_cache(maxsize=4096)
def _places(shape: tuple[int, ...], widths: tuple[int, ...]) -> np.ndarray:
    """Flat positions, in a (shape[0], *widths) array, of every cell of an array of `shape`, in C order."""
    return np.ravel_multi_index(np.indices(shape).reshape(len(shape), -1), (shape[0], *widths))


def cat_padded(values: Sequence[Tensor], padded_dims: int = 1, fill: float | bool | Tensor = 0) -> Tensor:
    """Concatenate (B_i, D_1i, ..., D_ki, *rest) tensors along dim 0, padding dims 1..k (k = padded_dims)
    of each to the widest -> (sum B_i, max D_1i, ..., max D_ki, *rest). Padding cells hold `fill`: a
    number, or a tensor of shape `rest` (e.g. the corners of a padding box).

    All must share dtype, device and `rest`.
    """
    values = list(values)
    if not values:
        raise ValueError("values=[]: nothing to concatenate")
    first = values[0]
    if padded_dims < 1 or first.dim() <= padded_dims:
        raise ValueError(f"padded_dims={padded_dims!r}: must be >= 1 and below the values' number of dims")
    widths, num_scenes, index = _layout(tuple(v.shape[: padded_dims + 1] for v in values), first.device)
    if index is None:
        return torch.cat(values)
    rest = first.shape[padded_dims + 1:]
    shape = (num_scenes * int(np.prod(widths)), *rest)
    if isinstance(fill, Tensor):
        out = fill.to(dtype=first.dtype, device=first.device).expand(shape).contiguous()
    else:
        out = torch.full(shape, fill, dtype=first.dtype, device=first.device)
    flat = _flatten_dense_tensors(values).view(-1, *rest)   # every value's cells in turn, one copy
    out.index_copy_(0, index, flat)
    return out.view(num_scenes, *widths, *rest)


@lru_cache(maxsize=8)   # a batch's fields come grouped by shape; each entry holds an index of its cells
def _layout(lead: tuple[torch.Size, ...], device: torch.device) -> tuple[tuple[int, ...], int, Tensor | None]:
    """Padded widths, total rows and the flat positions (in the padded array) of every value's cells in turn,
    for values of leading shapes `lead` (None: no padding needed). Batching several fields of the same
    scenes (objects' corners, centres, flags) finds it here after the first."""
    sizes = np.array(lead, dtype=np.int64).reshape(len(lead), -1)
    widths = tuple(sizes[:, 1:].max(0).tolist())
    num_scenes = int(sizes[:, 0].sum())
    if (sizes[:, 1:] == widths).all():
        return widths, num_scenes, None
    cells = [_places(tuple(shape), widths) for shape in lead]
    stride = int(np.prod(widths))
    offsets = np.cumsum(sizes[:, 0]) - sizes[:, 0]
    index = np.concatenate(cells) + np.repeat(offsets * stride, [c.size for c in cells])
    return widths, num_scenes, torch.as_tensor(index, device=device)
