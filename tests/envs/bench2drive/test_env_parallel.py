"""envs.bench2drive.env_parallel: a batch split over worker processes steps like the native batched env."""

from __future__ import annotations

import numpy as np
import pytest

from envs.bench2drive.env import Bench2DriveVectorEnv
from envs.bench2drive.env_parallel import Bench2DriveProcessVectorEnv
from envs.process_vector import concat_rows


def test_concat_fills_keys_missing_from_a_worker():
    first = {"tick": np.array([3, 4]), "record": np.array([None, {"a": 1}], dtype=object),
             "_record": np.array([False, True]), "terms": {"progress": np.array([0.5, 0.25])}}
    second = {"tick": np.array([7]), "terms": {"progress": np.array([1.0])}}
    merged = concat_rows([first, second], [2, 1])
    assert merged["tick"].tolist() == [3, 4, 7]
    assert merged["record"].tolist() == [None, {"a": 1}, None] and merged["_record"].tolist() == [False, True, False]
    assert merged["terms"]["progress"].tolist() == [0.5, 0.25, 1.0]


def test_two_processes_step_like_the_native_batch():
    ids = [0, 5, 10]
    native = Bench2DriveVectorEnv(num_envs=3, routes=tuple(ids))
    parallel = Bench2DriveProcessVectorEnv(3, processes=2, routes=tuple(ids))
    try:
        assert parallel.sizes == [2, 1] and parallel.observation_space == native.observation_space
        obs_a, info_a = native.reset(seed=0, options={"route_ids": ids})
        obs_b, info_b = parallel.reset(seed=0, options={"route_ids": ids})
        assert info_b["route_id"].tolist() == ids
        action = np.tile(np.array([[0.0, 0.4, 0.0]], np.float32), (3, 1))
        for _ in range(5):
            obs_a, rew_a, term_a, trunc_a, info_a = native.step(action)
            obs_b, rew_b, term_b, trunc_b, info_b = parallel.step(action)
        for key in ("ego", "target_points", "command"):
            np.testing.assert_array_equal(obs_a[key], obs_b[key])
        np.testing.assert_array_equal(rew_a, rew_b)
        assert info_a["tick"].tolist() == info_b["tick"].tolist() == [5, 5, 5]
        with pytest.raises(ValueError, match="route_ids"):
            parallel.reset(options={"route_ids": [0]})
    finally:
        native.close()
        parallel.close()
