"""Atomic checkpoint writes, latest-checkpoint lookup, RNG round trips and the Ctrl-C stop request."""

from __future__ import annotations

import os
import random
import signal

import numpy as np
import pytest
import torch

from trainers.common import checkpoint as ckpt
from trainers.common.checkpoint import (
    StopRequest, checkpoint_path, latest_checkpoint, load_latest, rng_state, save_atomic, set_rng_state,
)


def test_checkpoint_path_is_zero_padded(tmp_path):
    assert checkpoint_path(tmp_path, 42) == tmp_path / "checkpoints" / "step_00000042.pt"
    with pytest.raises(ValueError, match="step=-1"):
        checkpoint_path(tmp_path, -1)


def test_save_atomic_round_trip(tmp_path):
    path = save_atomic({"step": 3, "w": torch.arange(4.0)}, tmp_path / "a" / "x.pt")
    state = torch.load(path, weights_only=False)
    assert state["step"] == 3 and torch.equal(state["w"], torch.tensor([0.0, 1.0, 2.0, 3.0]))
    assert os.listdir(path.parent) == ["x.pt"]


def test_interrupted_save_leaves_old_file_and_no_partial(tmp_path, monkeypatch):
    path = tmp_path / "x.pt"
    save_atomic({"step": 1}, path)

    def failing_save(obj, target):
        with open(target, "wb") as handle:  # a partial write, then the interruption
            handle.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt.torch, "save", failing_save)
    with pytest.raises(KeyboardInterrupt):
        save_atomic({"step": 2}, path)
    assert sorted(os.listdir(tmp_path)) == ["x.pt"]
    assert torch.load(path, weights_only=False)["step"] == 1


def test_latest_checkpoint_picks_highest_step_and_ignores_temporaries(tmp_path):
    assert latest_checkpoint(tmp_path) is None and load_latest(tmp_path) is None
    for step in (2, 10, 9):
        save_atomic({"step": step}, checkpoint_path(tmp_path, step))
    (tmp_path / "checkpoints" / ".step_00000099.pt.tmp1").write_bytes(b"junk")
    assert latest_checkpoint(tmp_path).name == "step_00000010.pt"
    assert load_latest(tmp_path)["step"] == 10


def test_load_latest_rejects_non_training_payload(tmp_path):
    save_atomic({"weights": 1}, checkpoint_path(tmp_path, 1))
    with pytest.raises(ValueError, match="no 'step'"):
        load_latest(tmp_path)


def _draw(np_gen, torch_gen):
    return (random.random(), float(np.random.rand()), float(torch.rand(1)), float(np_gen.random()),
            float(torch.rand(1, generator=torch_gen)))


def test_rng_round_trip_restores_every_stream():
    np_gen, torch_gen = np.random.default_rng(5), torch.Generator().manual_seed(7)
    named = {"data": np_gen, "noise": torch_gen}
    state = rng_state(named)
    first = _draw(np_gen, torch_gen)
    _draw(np_gen, torch_gen)  # move every stream on
    set_rng_state(state, named)
    assert _draw(np_gen, torch_gen) == first


def test_rng_state_survives_torch_save(tmp_path):
    np_gen = np.random.default_rng(1)
    save_atomic({"step": 0, "rng": rng_state({"data": np_gen})}, tmp_path / "s.pt")
    expected = np_gen.random()
    fresh = np.random.default_rng(999)
    set_rng_state(torch.load(tmp_path / "s.pt", weights_only=False)["rng"], {"data": fresh})
    assert fresh.random() == expected


def test_set_rng_state_names_a_missing_or_mismatched_generator():
    state = rng_state({"data": np.random.default_rng(0)})
    with pytest.raises(ValueError, match=r"generators\['other'\]"):
        set_rng_state(state, {"other": np.random.default_rng(0)})
    with pytest.raises(ValueError, match="numpy generator"):
        set_rng_state(state, {"data": torch.Generator()})
    with pytest.raises(ValueError, match="expected a numpy or torch Generator"):
        rng_state({"bad": random.Random()})


def test_stop_request_first_sigint_sets_flag_second_raises():
    before = signal.getsignal(signal.SIGINT)
    with StopRequest() as stop:
        assert not stop.requested
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before
