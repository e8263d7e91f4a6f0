"""CenterlineGrid: per-scene cells of centerline segments, batched and split, and the point lookup."""

from __future__ import annotations

import torch

from envs.metrics.centerline_grid import REACH, CenterlineGrid, segment_boxes

F64 = torch.float64


def _one_segment() -> CenterlineGrid:
    # one 2 m segment along +x: its box grown by ~0.5 m spans cells x 0..3, y 0..1 from its low corner
    line = torch.tensor([[[0.0, 0.0], [2.0, 0.0], [0.0, 0.0]]], dtype=F64)
    return CenterlineGrid.build(line, torch.tensor([[True, True, False]]))


def test_rows_are_the_cells_of_each_grown_box_sorted_by_key():
    grid = _one_segment()
    assert torch.allclose(grid.origin, torch.tensor([[-REACH, -REACH]], dtype=F64))
    assert grid.size.tolist() == [5]                    # highest cell 3, plus the spare
    assert grid.key.tolist() == [0, 1, 2, 3, 5, 6, 7, 8]   # cy * 5 + cx
    assert grid.segment.tolist() == [0] * 8 and grid.count.tolist() == [8]


def test_two_scenes_cat_split_and_lookup():
    # scene 1: two 1 m segments going up x = 10 (vertices (10, 0), (10, 1), (10, 2))
    line = torch.tensor([[[10.0, 0.0], [10.0, 1.0], [10.0, 2.0]]], dtype=F64)
    second = CenterlineGrid.build(line, torch.ones(1, 3, dtype=torch.bool))
    both = CenterlineGrid.cat([_one_segment(), second])
    assert both.count.tolist() == [8, second.key.shape[0]]
    points = torch.tensor([[[1.0, 0.2], [10.0, 10.0]], [[10.2, 1.5], [-3.0, 0.0]]], dtype=F64)
    point, scene, segment = both.candidates(points)
    pairs = sorted(zip(point.tolist(), scene.tolist(), segment.tolist()))
    # (1.0, 0.2) in scene 0: segment 0; (10, 10) and (-3, 0) off their grids; (10.2, 1.5): both boxes of
    # scene 1 reach y = 1.5 (the lower one up to 1.5 m), and its cell holds both
    assert pairs == [(0, 0, 0), (2, 1, 0), (2, 1, 1)]
    parts = both.split()
    assert [p.key.tolist() for p in parts] == [_one_segment().key.tolist(), second.key.tolist()]


def test_a_scene_without_segments_has_an_empty_grid():
    grid = CenterlineGrid.build(torch.zeros(1, 3, 2, dtype=F64), torch.tensor([[True, False, False]]))
    assert grid.size.tolist() == [1] and grid.key.shape == (0,) and grid.count.tolist() == [0]
    point, _, _ = grid.candidates(torch.zeros(1, 4, 2, dtype=F64))
    assert point.numel() == 0


def test_segment_boxes_grow_by_the_reach():
    low, high = segment_boxes(torch.tensor([2.0, -1.0], dtype=F64), torch.tensor([0.0, 3.0], dtype=F64))
    assert torch.allclose(low, torch.tensor([-REACH, -1 - REACH], dtype=F64))
    assert torch.allclose(high, torch.tensor([2 + REACH, 3 + REACH], dtype=F64))
