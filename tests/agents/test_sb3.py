"""agents.sb3: SB3-style predict over contract agents."""

import numpy as np
import pytest

from agents.baselines import ConstantVelocityAgent, HumanAgent
from agents.pdm_closed import PDMClosedAgent
from agents.sb3 import SB3Policy


def test_sb3_predict_single_and_batched(obs, scenes):
    policy = SB3Policy(ConstantVelocityAgent())
    single = {k: v[0] for k, v in obs.items()}
    action, state = policy.predict(single, state="s")
    assert action.shape == (8, 3) and state == "s"
    batched, _ = policy.predict(obs)
    np.testing.assert_array_equal(batched[0], action)
    human = SB3Policy(HumanAgent(), scenes=lambda: scenes)
    np.testing.assert_array_equal(human.predict(obs)[0], HumanAgent().act(obs, scenes=scenes))
    with pytest.raises(ValueError, match="privileged"):
        SB3Policy(PDMClosedAgent())
