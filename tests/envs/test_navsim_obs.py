"""Batched NAVSIM observations split into per-scene rows and stacked back (what the env memoises)."""

from __future__ import annotations

import numpy as np
import pytest

from envs.navsim_obs import ObservationConfig, build_observations, observation_rows, stack_observations
from envs.scene_file import scene_from_dict
from tests.scene_builders import add_box, straight_road_dict


def test_rows_are_copies_and_stack_back_to_the_batch():
    scenes = [scene_from_dict(straight_road_dict(speed=5.0)),
              scene_from_dict(add_box(straight_road_dict(), "A", "vehicle", 30.0, 0.0))]
    config = ObservationConfig(cameras=("cam_f0",), image_width=16, image_height=8, privileged=True)
    batch = build_observations(scenes, config)
    rows = observation_rows(batch)
    assert len(rows) == 2 and rows[1]["ego_status"].shape == (4, 7)
    assert rows[0]["ego_status"][-1, 3] == pytest.approx(5.0)             # vx of the current frame
    assert rows[1]["privileged"]["agents_valid"].sum() == 1
    batch["ego_status"][0] = 99.0                                          # rows do not share the batch's memory
    assert rows[0]["ego_status"][0, 0] != 99.0
    again = stack_observations(rows)
    np.testing.assert_array_equal(again["cam_f0"], batch["cam_f0"])
    np.testing.assert_array_equal(again["privileged"]["agents"], batch["privileged"]["agents"])
    with pytest.raises(ValueError, match="rows"):
        stack_observations([])
