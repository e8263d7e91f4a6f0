"""RunLogger: run names, config YAML written once, namespaced scalars in TensorBoard and JSONL, images."""

from __future__ import annotations

import time
from enum import Enum

import cv2
import numpy as np
import pytest
import yaml

from trainers.common.logging import RunLogger, flatten_config, hparams_markdown, read_scalars, run_name


class Colour(str, Enum):
    red = "red"


def test_run_name_layout():
    when = time.mktime((2025, 3, 4, 5, 6, 7, 0, 0, -1))
    assert run_name("sft", "navsim", 3, when) == "sft__navsim__3__20250304-050607"
    with pytest.raises(ValueError, match="env="):
        run_name("sft", "nav__sim", 0)


def test_hparams_markdown_flattens_nested_keys():
    assert flatten_config({"a": {"b": {"c": 1}, "d": 2}, "e": [3]}) == {"a.b.c": 1, "a.d": 2, "e": [3]}
    assert hparams_markdown({"lr": 0.1, "run": {"seed": 2}}) == "|param|value|\n|-|-|\n|lr|0.1|\n|run.seed|2|"


def _events(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_logger_writes_config_scalars_events_and_images(tmp_path):
    config = {"lr": 0.5, "teacher": Colour.red, "cams": ("a", "b"), "run": {"seed": 1}}
    logger = RunLogger(tmp_path / "run", config)
    logger.log_scalars({"losses/imitation": 2.5, "score/pdms": 0.75}, step=3)
    logger.log_scalars({"losses/imitation": 1.5}, step=4)
    image = np.zeros((8, 6, 3), np.uint8)
    image[..., 0] = 200  # red in RGB
    png = logger.log_image("charts/bev_0", image, step=4)
    logger.close()

    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved == {"lr": 0.5, "teacher": "red", "cams": ["a", "b"], "run": {"seed": 1}}
    assert read_scalars(tmp_path / "run") == {3: {"losses/imitation": 2.5, "score/pdms": 0.75}, 4: {"losses/imitation": 1.5}}
    assert png == tmp_path / "run" / "media" / "charts_bev_0_00000004.png"
    assert cv2.imread(str(png))[0, 0].tolist() == [0, 0, 200]  # stored BGR

    acc = _events(tmp_path / "run")
    assert [(e.step, e.value) for e in acc.Scalars("losses/imitation")] == [(3, 2.5), (4, 1.5)]
    assert [e.value for e in acc.Scalars("score/pdms")] == [0.75]
    assert acc.Images("charts/bev_0")[0].step == 4
    assert "hyperparameters/text_summary" in acc.Tags()["tensors"]


def test_reopened_run_keeps_first_config_and_latest_value_per_step(tmp_path):
    with RunLogger(tmp_path, {"lr": 1}) as first:
        first.log_scalars({"losses/a": 1.0}, 5)
    second = RunLogger(tmp_path, {"lr": 2})
    second.log_scalars({"losses/a": 4.0}, 5)
    second.close()
    assert yaml.safe_load((tmp_path / "config.yaml").read_text()) == {"lr": 1}
    assert read_scalars(tmp_path) == {5: {"losses/a": 4.0}}


@pytest.mark.parametrize("tag, value, match", [
    ("imitation", 1.0, "namespace"),
    ("misc/x", 1.0, "namespace"),
    ("losses/x", float("nan"), "not finite"),
])
def test_bad_scalars_are_rejected_by_name(tmp_path, tag, value, match):
    logger = RunLogger(tmp_path, {})
    with pytest.raises(ValueError, match=match):
        logger.log_scalars({tag: value}, 0)
    logger.close()


def test_bad_image_is_rejected(tmp_path):
    logger = RunLogger(tmp_path, {})
    with pytest.raises(ValueError, match="uint8"):
        logger.log_image("charts/x", np.zeros((4, 4, 3), np.float32), 0)
    logger.close()


def test_phase_clock_adds_each_lap_to_its_phase(monkeypatch):
    from trainers.common import logging as run_logging

    ticks = iter([10.0, 10.5, 12.0, 12.25, 13.0])
    monkeypatch.setattr(run_logging.time, "perf_counter", lambda: next(ticks))
    clock = run_logging.PhaseClock(("env", "update"))        # starts at 10.0
    clock.lap("env")            # 10.5: env 0.5
    clock.lap("update")         # 12.0: update 1.5
    clock.lap("env")            # 12.25: env 0.75
    clock.lap("update")         # 13.0: update 2.25
    assert clock.seconds == {"env": 0.75, "update": 2.25}
    with pytest.raises(ValueError, match="phase='score'"):
        clock.lap("score")
