"""progress.py: raw progress along the centerline and NAVSIM's EP normalisation (v1.1 / v2)."""

import pytest
import torch

from envs.metrics.progress import normalized_progress, raw_progress, start_arc


def f64(values):
    return torch.tensor(values, dtype=torch.float64)


def straight_line(length=100.0):
    """(1, 4, 2) centerline along +x from 0 to `length` (3 valid vertices + 1 padding slot)."""
    line = f64([[[0.0, 0.0], [40.0, 0.0], [length, 0.0], [0.0, 0.0]]])
    valid = torch.tensor([[True, True, True, False]])
    return line, valid


def centers(*paths):
    """(1, P, T=41, 2) box centres moving linearly from (x0, y0) to (x1, y1) for each path."""
    s = torch.linspace(0.0, 1.0, 41, dtype=torch.float64)[:, None]
    tracks = [f64(start) + s * (f64(end) - f64(start)) for start, end in paths]
    return torch.stack(tracks)[None]


def test_raw_progress_along_a_straight_centerline():
    line, valid = straight_line()
    xy = centers(
        ((10.0, 0.0), (30.0, 0.0)),  # 20 m forward
        ((10.0, 1.5), (30.0, -2.0)),  # lateral offsets do not count: still 20 m
        ((30.0, 0.0), (10.0, 0.0)),  # reversing: clipped to 0
        ((10.0, 0.0), (130.0, 0.0)),  # overshooting the end: capped at the line end (90 m)
    )
    torch.testing.assert_close(raw_progress(xy, line, valid), f64([[20.0, 20.0, 0.0, 90.0]]))


def test_raw_progress_only_uses_first_and_last_state():
    line, valid = straight_line()
    xy = centers(((10.0, 0.0), (30.0, 0.0)))
    xy[0, 0, 20] = torch.tensor([90.0, 0.0], dtype=torch.float64)  # a detour mid-way changes nothing
    assert raw_progress(xy, line, valid).tolist() == [[20.0]]


def test_raw_progress_rejects_bad_shape():
    line, valid = straight_line()
    with pytest.raises(ValueError, match="center_xy.shape"):
        raw_progress(torch.zeros(1, 41, 2, dtype=torch.float64), line, valid)


# columns: [reference (PDM-Closed), agent]


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_half_the_reference_progress_is_half_ep(version):
    ep = normalized_progress(f64([20.0, 10.0]), f64([1.0, 1.0]), version)
    assert ep.tolist() == [1.0, 0.5]


def test_below_five_metres_everyone_gets_one():
    assert normalized_progress(f64([4.0, 3.0]), f64([1.0, 1.0]), "v1").tolist() == [1.0, 1.0]
    assert normalized_progress(f64([4.0, 3.0]), f64([1.0, 1.0]), "v2").tolist() == [1.0, 1.0]
    # v1 still zeroes a proposal whose multiplicative metrics failed; v2 does not
    assert normalized_progress(f64([4.0, 3.0]), f64([1.0, 0.0]), "v1").tolist() == [1.0, 0.0]
    assert normalized_progress(f64([4.0, 3.0]), f64([1.0, 0.0]), "v2").tolist() == [1.0, 1.0]
    # the threshold is strict: exactly 5 m is still "below"
    assert normalized_progress(f64([5.0, 2.5]), f64([1.0, 1.0]), "v1").tolist() == [1.0, 1.0]


def test_v1_colliding_reference_is_ignored_agent_normalised_by_itself():
    ep = normalized_progress(f64([30.0, 12.0]), f64([0.0, 1.0]), "v1")
    assert ep.tolist() == [0.0, 1.0]


def test_v1_agent_with_nc_half_gets_half_ep():
    # same raw progress as the reference, but NC = 0.5 halves the masked progress
    ep = normalized_progress(f64([20.0, 20.0]), f64([1.0, 0.5]), "v1")
    assert ep.tolist() == [1.0, 0.5]


def test_v2_does_not_mask_the_agent():
    assert normalized_progress(f64([20.0, 20.0]), f64([1.0, 0.5]), "v2").tolist() == [1.0, 1.0]
    assert normalized_progress(f64([20.0, 20.0]), f64([1.0, 0.0]), "v2").tolist() == [1.0, 1.0]
    # the norm still comes from masked progress: a failing agent that drove further is clipped to 1
    assert normalized_progress(f64([20.0, 30.0]), f64([1.0, 0.0]), "v2").tolist() == [1.0, 1.0]
    # and a failing reference does not set the norm
    assert normalized_progress(f64([30.0, 15.0]), f64([0.0, 1.0]), "v2").tolist() == [1.0, 1.0]


def test_agent_beyond_reference_sets_the_norm():
    ep = normalized_progress(f64([10.0, 15.0]), f64([1.0, 1.0]), "v2")
    torch.testing.assert_close(ep, f64([10.0 / 15.0, 1.0]))


def test_normalises_over_the_last_dim_only():
    raw = f64([[[20.0, 10.0], [20.0, 40.0]], [[3.0, 1.0], [8.0, 2.0]]])  # (B=2, P=2, K=2)
    ep = normalized_progress(raw, torch.ones_like(raw), "v1")
    torch.testing.assert_close(ep, f64([[[1.0, 0.5], [0.5, 1.0]], [[1.0, 1.0], [1.0, 0.25]]]))


@pytest.mark.parametrize(
    "raw, mult, version, match",
    [
        ([1.0, 2.0], [1.0, 1.0], "v3", "version='v3'"),
        ([-1.0, 2.0], [1.0, 1.0], "v1", "raw"),
        ([float("nan"), 2.0], [1.0, 1.0], "v1", "raw"),
        ([1.0, 2.0], [1.0, 1.5], "v2", "multiplier"),
        ([1.0, 2.0], [1.0], "v2", "multiplier.shape"),
    ],
)
def test_rejects_bad_input(raw, mult, version, match):
    with pytest.raises(ValueError, match=match):
        normalized_progress(f64(raw), f64(mult), version)


def test_raw_progress_from_a_given_start_arc():
    # a straight 100 m centerline along x; both proposals start at x = 10 (arc 10), end at x = 30 and x = 5
    line = torch.tensor([[[0.0, 0.0], [100.0, 0.0]]], dtype=torch.float64)
    valid = torch.ones(1, 2, dtype=torch.bool)
    xy = torch.zeros(1, 2, 3, 2, dtype=torch.float64)
    xy[0, :, 0, 0] = 10.0
    xy[0, 0, -1, 0], xy[0, 1, -1, 0] = 30.0, 5.0
    arc = start_arc(xy[:, 0, 0], line, valid)
    assert arc.tolist() == [10.0]
    assert raw_progress(xy, line, valid, arc).tolist() == [[20.0, 0.0]] == raw_progress(xy, line, valid).tolist()
    with pytest.raises(ValueError, match="start_arc"):
        raw_progress(xy, line, valid, torch.zeros(2, dtype=torch.float64))
