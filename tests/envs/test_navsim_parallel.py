"""envs.navsim_parallel: rows split over worker processes score exactly as the native batched env."""

import numpy as np
import pytest

from envs.navsim import NavsimVectorEnv
from envs.navsim_parallel import NavsimProcessVectorEnv
from envs.scene_file import save_scene
from scenarios import build_scene

OBS = {"cameras": ()}


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scenes")
    for seed, family in enumerate(["following", "cut_in", "jaywalker"]):
        scene = build_scene(family, None, seed)
        save_scene(scene, folder / f"{scene.token}.json")
    return folder


def cruise(obs, scale=1.0):
    speed = np.hypot(obs["ego_status"][:, -1, 3], obs["ego_status"][:, -1, 4]) * scale
    plans = np.zeros((len(speed), 8, 3), np.float32)
    plans[..., 0] = speed[:, None] * 0.5 * np.arange(1, 9)
    return plans


def test_process_rows_score_like_the_native_env(scene_dir):
    parallel = NavsimProcessVectorEnv(3, processes=2, data="files", split=str(scene_dir), obs=OBS)
    native = NavsimVectorEnv(num_envs=3, data="files", split=str(scene_dir), obs=OBS)
    try:
        assert parallel.sizes == [2, 1] and parallel.observation_space == native.observation_space
        obs, info = parallel.reset(seed=4)
        tokens = list(info["scene_token"])
        assert len(tokens) == 3 and obs["ego_status"].shape == (3, 4, 7)
        # the native env scoring the same scenes (in the same rows) gives the same rewards and sub-scores
        by_token = {}
        for seed in range(200):
            _, native_info = native.reset(seed=seed)
            for row, token in enumerate(native_info["scene_token"]):
                by_token.setdefault(token, (seed, row))
            if set(tokens) <= set(by_token):
                break
        group = np.stack([cruise(obs, s) for s in (0.5, 1.0, 1.5)], 1)            # (3, G=3, 8, 3)
        totals, subs = parallel.score_group(group)
        assert totals.shape == (3, 3) and subs["nc"].shape == (3, 3)
        for row, token in enumerate(tokens):
            seed, native_row = by_token[token]
            native.reset(seed=seed)
            plans = np.repeat(group[row][None], 3, 0)
            expected, expected_subs = native.score_group(plans)
            np.testing.assert_array_equal(totals[row], expected[native_row])
            np.testing.assert_array_equal(subs["ep"][row], expected_subs["ep"][native_row])
        next_obs, reward, terminated, truncated, step_info = parallel.step(group[:, 1])
        np.testing.assert_array_equal(reward, totals[:, 1])
        assert terminated.all() and not truncated.any() and next_obs["ego_status"].shape == (3, 4, 7)
        with pytest.raises(ValueError, match=r"plans.shape=\(2, 3, 8, 3\)"):
            parallel.score_group(group[:2])
        bad = group[:, 1].copy()
        bad[2, 3, 0] = np.nan                                   # row 2 lives in worker 1
        with pytest.raises(ValueError, match=r"^worker 1 \(rows 2..2\): action"):
            parallel.step(bad)
        assert parallel.step(group[:, 1])[2].all()             # the workers carry on after a refused action
    finally:
        parallel.close()
        native.close()


def test_bad_arguments_are_named(scene_dir, tmp_path):
    with pytest.raises(ValueError, match=r"^worker 0 \(rows 0..0\): split=.*no scene/1 \*.json files"):
        NavsimProcessVectorEnv(2, processes=2, data="files", split=str(tmp_path), obs=OBS)    # an empty folder
    with pytest.raises(ValueError, match="processes=4"):
        NavsimProcessVectorEnv(3, processes=4, data="files", split=str(scene_dir), obs=OBS)
    with pytest.raises(ValueError, match="version=3"):
        NavsimProcessVectorEnv(3, version=3)
