"""agents.vla.codebook: segments, k-disk building, greedy encoding, decoding, files."""

import math

import pytest
import torch

from agents.vla.codebook import (
    Codebook, box_corners, build_codebook, chain_segments, corner_distance, decode_tokens, encode_plans,
    grid_codebook, load_codebook, plan_segments, save_codebook,
)


def test_box_corners_and_distance_hand_case():
    corners = box_corners(torch.tensor([1.0, 2.0, math.pi / 2], dtype=torch.float64))
    # 4.8 x 2.0 box rotated 90 degrees: front-left corner (2.4, 1.0) -> (-1.0, 2.4) + (1, 2)
    torch.testing.assert_close(corners[0], torch.tensor([0.0, 4.4], dtype=torch.float64))
    # a pure translation by 0.3 m moves every corner 0.3 m
    a, b = torch.tensor([0.0, 0.0, 0.4]), torch.tensor([0.3, 0.0, 0.4])
    assert corner_distance(a, b).item() == pytest.approx(0.3, abs=1e-6)


def test_segments_hand_case_and_inverse():
    # drive 2 m, turn left 90 degrees in place, then 1 m "forward" = +y in the ego frame
    plans = torch.tensor([[[2.0, 0.0, 0.0], [2.0, 0.0, math.pi / 2], [2.0, 1.0, math.pi / 2]]], dtype=torch.float64)
    segments = plan_segments(plans)
    torch.testing.assert_close(segments[0], torch.tensor([[2.0, 0, 0], [0, 0, math.pi / 2], [1.0, 0, 0]], dtype=torch.float64))
    torch.testing.assert_close(chain_segments(segments), plans)


def test_grid_codebook_size_and_still_token():
    for size in (1, 8, 256, 300):
        book = grid_codebook(size)
        assert len(book) == size
        assert torch.equal(book.motions[0], torch.zeros(3, dtype=torch.float64))
    book = grid_codebook(256)                # 255 = 17 lengths x 15 yaw changes
    assert (book.motions[:, 2] == 0).sum() == 1 + 17


def test_build_codebook_kdisk_hand_case():
    # 3 plans: stand still, 1 m per 0.5 s straight, and 1 m + 0.01 m (within the 0.05 m radius of the second)
    plans = torch.zeros(3, 8, 3, dtype=torch.float64)
    plans[1, :, 0] = torch.arange(1, 9)
    plans[2, :, 0] = 1.01 * torch.arange(1, 9)
    book = build_codebook(plans, size=10, gen=torch.Generator().manual_seed(0))
    assert len(book) == 2                                           # still + one cluster of 16 segments
    torch.testing.assert_close(book.motions[1], torch.tensor([1.005, 0.0, 0.0], dtype=torch.float64))
    # a size limit stops early
    assert len(build_codebook(plans, size=1)) == 1


def test_build_codebook_rejects_bad_input():
    with pytest.raises(ValueError, match="expert_plans.shape"):
        build_codebook(torch.zeros(0, 8, 3), 4)
    with pytest.raises(ValueError, match="size=0"):
        build_codebook(torch.zeros(1, 8, 3), 0)
    with pytest.raises(ValueError, match="finite"):
        build_codebook(torch.full((1, 8, 3), float("nan")), 4)


def expert_like_plans(count=200):
    """Plans with random speed, acceleration and yaw rate (constant per plan)."""
    gen = torch.Generator().manual_seed(0)
    rand = lambda: torch.rand(count, 1, generator=gen, dtype=torch.float64)
    speed, accel, yaw_rate = 2 + 12 * rand(), 2 * (rand() - 0.5), 0.3 * (rand() - 0.5)
    length = 0.5 * (speed + 0.5 * accel * torch.arange(8, dtype=torch.float64))
    motions = torch.stack([length, torch.zeros_like(length), (0.5 * yaw_rate).expand(-1, 8)], -1)
    return chain_segments(motions)


def test_encode_decode_round_trip_within_tolerance():
    plans = expert_like_plans()
    book = build_codebook(plans, size=100_000, radius=0.02, gen=torch.Generator().manual_seed(0))
    assert 100 < len(book) < 1600                # 1600 segments, many merged
    decoded = decode_tokens(book, encode_plans(book, plans))
    error = torch.linalg.vector_norm(decoded[..., :2] - plans[..., :2], dim=-1)
    assert error.mean() < 0.05 and error.max() < 0.5
    coarse = grid_codebook(256)
    error = torch.linalg.vector_norm(decode_tokens(coarse, encode_plans(coarse, plans))[..., :2] - plans[..., :2], dim=-1)
    assert error.mean() < 0.3 and error.max() < 1.5   # greedy encoding keeps the coarse grid's drift bounded


def test_encode_exact_codebook_plan():
    book = grid_codebook(64)
    tokens = torch.tensor([[1, 5, 9, 9, 0, 12, 3, 7]])
    assert torch.equal(encode_plans(book, decode_tokens(book, tokens)), tokens)
    with pytest.raises(ValueError, match="tokens"):
        decode_tokens(book, torch.tensor([64]))


def test_save_load(tmp_path):
    book = grid_codebook(16)
    save_codebook(book, tmp_path / "cb.pt")
    loaded = load_codebook(tmp_path / "cb.pt")
    assert torch.equal(loaded.motions, book.motions) and loaded.interval == 0.5
    with pytest.raises(ValueError, match="motions.shape"):
        Codebook(torch.zeros(3))
