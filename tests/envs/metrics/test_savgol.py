"""savgol.py: the cached matrices reproduce scipy's savgol_filter(mode="interp") exactly enough."""

import numpy as np
import pytest
import torch
from scipy.signal import savgol_filter

from envs.metrics.savgol import savgol, savgol_matrix

DT = float(np.diff(np.arange(41) * 0.1).mean())

# every (n, window, polyorder, deriv) NAVSIM's comfort metrics use: C (n = 41), HC (14/15 + 41),
# EC (41 - 5 = 36)
COMBOS = [
    (n, w, p, d)
    for n in (36, 41, 55, 56)
    for (w, p, d) in [(n, 2, 0), (8, 2, 0), (n, 2, 1), (15, 2, 1), (5, 3, 2), (5, 2, 1), (5, 2, 2)]
]


@pytest.mark.parametrize("n, window, polyorder, deriv", COMBOS)
def test_matches_scipy_on_random_signals(n, window, polyorder, deriv):
    rng = np.random.default_rng(n * 100 + window * 10 + deriv)
    x = rng.normal(size=(3, 2, n)) * 5.0
    expected = savgol_filter(x, window, polyorder, deriv=deriv, delta=DT, axis=-1)  # default mode interp
    got = savgol(torch.from_numpy(x), window, polyorder, deriv=deriv, delta=DT)
    assert got.dtype == torch.float64 and got.shape == x.shape
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-9)
    matrix = savgol_matrix(n, window, polyorder, deriv, DT)
    np.testing.assert_allclose((torch.from_numpy(x) @ matrix.T).numpy(), expected, rtol=0, atol=1e-9)


def test_matrix_is_cached():
    assert savgol_matrix(41, 8, 2) is savgol_matrix(41, 8, 2)


def test_quadratic_is_reproduced_and_differentiated():
    # a poly-2 fit reproduces a parabola exactly, edges included ("interp" mode fits them too)
    t = torch.arange(20, dtype=torch.float64) * 0.5
    x = 3.0 * t**2 - 2.0 * t + 1.0
    torch.testing.assert_close(savgol(x, 7, 2), x, rtol=0, atol=1e-10)
    torch.testing.assert_close(savgol(x, 7, 2, deriv=1, delta=0.5), 6.0 * t - 2.0, rtol=0, atol=1e-9)
    torch.testing.assert_close(savgol(x, 7, 2, deriv=2, delta=0.5), torch.full_like(t, 6.0), rtol=0, atol=1e-8)


def test_even_window_average_of_constant():
    # window 8 (even, NAVSIM's acceleration window) keeps a constant constant
    x = torch.full((41,), 2.5, dtype=torch.float64)
    torch.testing.assert_close(savgol(x, 8, 2), x, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(window=42, polyorder=2), "window=42"),
        (dict(window=5, polyorder=5), "polyorder=5"),
        (dict(window=5, polyorder=2, delta=0.0), "delta=0.0"),
        (dict(window=5, polyorder=2, deriv=-1), "deriv=-1"),
    ],
)
def test_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        savgol(torch.zeros(41, dtype=torch.float64), **kwargs)
