"""agents.pdm_closed: the planner's 10 Hz plan at the env's 0.5 s poses."""

import numpy as np
import pytest

from agents.pdm_closed import PDMClosedAgent
from envs.sim.pdm_closed import pdm_closed_plan


def test_pdm_closed_agent_takes_every_fifth_planner_pose(scenes, obs):
    plans = PDMClosedAgent().act(obs, scenes=scenes)
    result = pdm_closed_plan(scenes)
    assert plans.shape == (2, 8, 3) and plans.dtype == np.float32
    for b in range(2):
        # planner poses at t = 0.1 .. 5 s: indices 4, 9, .., 39 are t = 0.5 .. 4 s
        np.testing.assert_allclose(plans[b], result.plans[b].poses[4:40:5], atol=1e-5)
    assert plans[:, -1, 0].min() > plans[:, 0, 0].max()         # it moves forward


def test_pdm_closed_agent_needs_scenes(obs):
    with pytest.raises(ValueError, match="privileged"):
        PDMClosedAgent().act(obs)
