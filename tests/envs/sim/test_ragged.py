"""cat_padded: per-scene tensors of uneven sizes batched into one padded tensor."""

from __future__ import annotations

import pytest
import torch

from envs.sim.ragged import cat_padded


def test_rows_of_different_lengths_are_right_padded():
    a = torch.tensor([[1, 2, 3]])
    b = torch.tensor([[4], [5]])
    assert cat_padded([a, b]).tolist() == [[1, 2, 3], [4, 0, 0], [5, 0, 0]]
    assert cat_padded([a, b], fill=-1).tolist() == [[1, 2, 3], [4, -1, -1], [5, -1, -1]]


def test_two_padded_dims_and_trailing_dims_kept():
    a = torch.arange(1, 7, dtype=torch.float64).view(1, 1, 3, 2)   # one scene, 1 x 3 cells of 2 values
    b = torch.tensor([[[[7.0, 8.0]], [[9.0, 10.0]]]])               # one scene, 2 x 1 cells
    out = cat_padded([a, b], 2)
    assert out.shape == (2, 2, 3, 2)
    assert out[0].tolist() == [[[1, 2], [3, 4], [5, 6]], [[0, 0], [0, 0], [0, 0]]]
    assert out[1].tolist() == [[[7, 8], [0, 0], [0, 0]], [[9, 10], [0, 0], [0, 0]]]


def test_equal_shapes_are_a_plain_cat_and_bool_pads_false():
    flags = [torch.tensor([[True, False]]), torch.tensor([[False, True]])]
    assert cat_padded(flags).tolist() == [[True, False], [False, True]]
    assert cat_padded([torch.tensor([[True]]), torch.zeros(1, 0, dtype=torch.bool)]).tolist() == [[True], [False]]


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="values"):
        cat_padded([])
    with pytest.raises(ValueError, match="padded_dims"):
        cat_padded([torch.zeros(2, 3)], padded_dims=2)
