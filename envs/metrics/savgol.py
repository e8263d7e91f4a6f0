"""Savitzky-Golay filters as cached (n, n) matrices, equal to scipy `savgol_filter(mode="interp")`.

The filter is linear in the signal, so it is built once with scipy on the identity and applied in torch.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from scipy.signal import savgol_filter
from torch import Tensor


def _check_args(n: int, window: int, polyorder: int, deriv: int, delta: float) -> None:
    for name, value in (("n", n), ("window", window), ("polyorder", polyorder), ("deriv", deriv)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise ValueError(f"{name}={value!r}: must be an int")
    if n < 1:
        raise ValueError(f"n={n!r}: the signal needs at least one sample")
    if not 1 <= window <= n:
        # mode="interp" fits the edges inside one window, so the window cannot exceed the signal
        raise ValueError(f"window={window!r}: must be in [1, n={n}] for mode='interp'")
    if not 0 <= polyorder < window:
        raise ValueError(f"polyorder={polyorder!r}: must be in [0, window={window})")
    if deriv < 0:
        raise ValueError(f"deriv={deriv!r}: must be >= 0")
    if not (isinstance(delta, (int, float)) and math.isfinite(delta) and delta > 0):
        raise ValueError(f"delta={delta!r}: must be a positive finite number")


@functools.lru_cache(maxsize=256)
def _matrix_cpu(n: int, window: int, polyorder: int, deriv: int, delta: float) -> Tensor:
    # Row i of the filtered identity is the response to a unit impulse at i, i.e. column i of M.
    response = savgol_filter(np.eye(n), window, polyorder, deriv=deriv, delta=delta, axis=-1, mode="interp")
    return torch.from_numpy(np.ascontiguousarray(response.T))


def savgol_matrix(n: int, window: int, polyorder: int, deriv: int = 0, delta: float = 1.0) -> Tensor:
    """(n, n) float64 M with `x @ M.T == savgol_filter(x, window, polyorder, deriv, delta, mode="interp")`.

    Built once per argument tuple with scipy and cached; the returned tensor is shared, do not modify it.
    """
    _check_args(n, window, polyorder, deriv, delta)
    return _matrix_cpu(int(n), int(window), int(polyorder), int(deriv), float(delta))


@functools.lru_cache(maxsize=256)
def _matrix_on(device: str, n: int, window: int, polyorder: int, deriv: int, delta: float) -> Tensor:
    return _matrix_cpu(n, window, polyorder, deriv, delta).to(device)


def savgol(x: Tensor, window: int, polyorder: int, deriv: int = 0, delta: float = 1.0) -> Tensor:
    """Savitzky-Golay filter along the last dim of x (..., n), float64, on x's device.

    Same result as scipy's `savgol_filter(x, window, polyorder, deriv, delta, axis=-1, mode="interp")`
    up to float rounding; the caller clips `window` to n where NAVSIM does (`min(w, n)`).
    """
    if not isinstance(x, Tensor) or x.ndim < 1:
        raise ValueError(f"x={type(x).__name__}: expected a tensor of shape (..., n)")
    n = x.shape[-1]
    _check_args(n, window, polyorder, deriv, delta)
    matrix = _matrix_on(str(x.device), int(n), int(window), int(polyorder), int(deriv), float(delta))
    return x.to(torch.float64) @ matrix.T
