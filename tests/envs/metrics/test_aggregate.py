"""aggregate.py: benchmark means over valid scenes only, of per-scene totals."""

import pytest
import torch

from envs.metrics.aggregate import mean_over_valid
from envs.metrics.pdms import SubScores, pdm_score


def f64(values):
    return torch.tensor(values, dtype=torch.float64)


def test_invalid_scenes_are_reported_not_counted():
    nan = float("nan")
    out = mean_over_valid(
        {"pdms": f64([0.5, nan, 1.0]), "nc": f64([1.0, nan, 0.5])}, torch.tensor([True, False, True])
    )
    assert out == {"pdms": 0.75, "nc": 0.75, "num_valid": 2, "num_invalid": 1}


def test_mean_of_per_scene_totals_not_formula_of_means():
    # scene A collides (NC 0) with full progress; scene B makes no progress but is otherwise perfect
    one, zero = [1.0, 1.0], [0.0, 1.0]
    names = ("nc", "dac", "ddc", "tlc", "ep", "ttc", "c", "lk", "hc", "ec")
    values = {n: f64([one]) for n in names}
    values["nc"] = f64([zero])
    values["ep"] = f64([[1.0, 0.0]])
    s = SubScores(**values)
    per_scene = {"nc": s.nc[0], "ep": s.ep[0], "pdms": pdm_score(s)[0]}
    out = mean_over_valid(per_scene, torch.tensor([True, True]))
    assert out["pdms"] == pytest.approx((0.0 + 7.0 / 12) / 2)  # 0.2917
    formula_of_means = out["nc"] * (5 * out["ep"] + 5 + 2) / 12  # 0.396: not what NAVSIM reports
    assert out["pdms"] != pytest.approx(formula_of_means)


@pytest.mark.parametrize(
    "scores, valid, match",
    [
        ({"pdms": f64([1.0])}, torch.tensor([False]), "none of the 1 scenes"),
        ({"pdms": f64([float("nan"), 1.0])}, torch.tensor([True, True]), r"scores\['pdms'\]\[0\]"),
        ({"pdms": f64([1.0, 1.0, 1.0])}, torch.tensor([True, True]), "scores\\['pdms'\\].shape"),
        ({"num_valid": f64([1.0])}, torch.tensor([True]), "reserved"),
        ({"pdms": f64([1.0])}, torch.tensor([1]), "valid"),
    ],
)
def test_rejects_bad_input(scores, valid, match):
    with pytest.raises(ValueError, match=match):
        mean_over_valid(scores, valid)
