"""result.py: MetricResult helpers (first failing step, pass/fail results)."""

import torch

from envs.metrics.result import binary_result, first_step


def test_first_step_finds_the_earliest_true_or_minus_one():
    mask = torch.tensor([[False, True, True, False], [False, False, False, False], [True, False, False, True]])
    assert first_step(mask).tolist() == [1, -1, 0]


def test_binary_result_fails_a_proposal_with_any_failing_step():
    fails = torch.zeros(2, 3, 41, dtype=torch.bool)
    fails[0, 1, 17] = fails[0, 1, 30] = True
    fails[1, 2, 40] = True
    result = binary_result(fails)
    assert result.value.dtype == torch.float64
    assert result.value.tolist() == [[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]]
    assert result.step.tolist() == [[-1, 17, -1], [-1, -1, 40]]
    assert result.agent.tolist() == [[-1, -1, -1], [-1, -1, -1]]
