"""pdms.py: SubScores container and the v1.1 PDMS weights on hand-computed values."""

import pytest
import torch

from envs.metrics.pdms import PDMS_WEIGHTS, SubScores, pdm_score

NAMES = ("nc", "dac", "ddc", "tlc", "ep", "ttc", "c", "lk", "hc", "ec")


def scores(**values) -> SubScores:
    """SubScores of shape (1, len) from per-field lists; unspecified fields are all 1."""
    length = max((len(v) for v in values.values()), default=1)
    fields = {n: torch.tensor(values.get(n, [1.0] * length), dtype=torch.float64)[None] for n in NAMES}
    return SubScores(**fields)


def test_weights_are_navsim_v1_1():
    assert dict(PDMS_WEIGHTS) == {"ep": 5.0, "ttc": 5.0, "c": 2.0, "ddc": 0.0}
    assert sum(PDMS_WEIGHTS.values()) == 12.0


def test_hand_worked_values():
    s = scores(
        nc=[1.0, 1.0, 0.5, 0.0, 1.0, 1.0],
        dac=[1.0, 1.0, 1.0, 1.0, 0.0, 1.0],
        ttc=[0.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        ep=[0.5, 1.0, 1.0, 1.0, 1.0, 0.8],
        c=[1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
        ddc=[1.0, 0.0, 1.0, 1.0, 1.0, 1.0],  # weight 0: DDC = 0 changes nothing
        tlc=[0.0] * 6, lk=[0.0] * 6, hc=[0.0] * 6, ec=[0.0] * 6,  # v2-only metrics are ignored
    )
    expected = [
        (0.0 + 2.5 + 2.0) / 12,  # NC 1, DAC 1, TTC 0, EP 0.5, C 1
        1.0,
        0.5,  # NC 0.5 halves the score
        0.0,
        0.0,
        (4.0 + 5.0 + 0.0) / 12,
    ]
    torch.testing.assert_close(pdm_score(s), torch.tensor([expected], dtype=torch.float64))


def test_to_dict_lists_every_sub_score():
    s = scores(ep=[0.25, 0.75])
    d = s.to_dict()
    assert tuple(d) == NAMES
    assert d["ep"].tolist() == [[0.25, 0.75]]
    assert s.shape == (1, 2)


def test_rejects_mismatched_shapes():
    good = {n: torch.ones(2, 3, dtype=torch.float64) for n in NAMES}
    with pytest.raises(ValueError, match="ec.shape"):
        SubScores(**{**good, "ec": torch.ones(2, 4, dtype=torch.float64)})
    with pytest.raises(ValueError, match="nc.dtype"):
        SubScores(**{**good, "nc": torch.ones(2, 3, dtype=torch.int64)})
    with pytest.raises(ValueError, match="dac"):
        SubScores(**{**good, "dac": [[1.0]]})
