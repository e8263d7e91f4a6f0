"""One run folder and its logs (style rule 15): `runs/{algo}__{env}__{seed}__{YYYYmmdd-HHMMSS}/` with
the resolved config (`config.yaml`), TensorBoard scalars under namespaced tags (`losses/`, `score/`,
`charts/`, `rollout/`), a `scalars.jsonl` mirror, an hparams table, and images under `media/`."""

from __future__ import annotations

import json
import math
import time
from enum import Enum
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

TAG_NAMESPACES = ("losses", "score", "charts", "rollout")
"""Allowed first parts of a scalar tag."""


def run_name(algo: str, env: str, seed: int, when: float | None = None) -> str:
    """`{algo}__{env}__{seed}__{YYYYmmdd-HHMMSS}` (local time `when`, default now)."""
    for name, value in (("algo", algo), ("env", env)):
        if not value or "__" in value or "/" in value:
            raise ValueError(f"{name}={value!r}: must be non-empty without '__' or '/'")
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if when is None else when))
    return f"{algo}__{env}__{int(seed)}__{stamp}"


def flatten_config(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as {"dotted.key": value}."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_config(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def hparams_markdown(config: Mapping[str, Any]) -> str:
    """A `|param|value|` markdown table of a nested config, keys dotted (CleanRL's hyperparameters text)."""
    rows = [f"|{key}|{value}|" for key, value in flatten_config(config).items()]
    return "|param|value|\n|-|-|\n" + "\n".join(rows)


class RunLogger:
    """Writes one run's logs; `config` is the resolved config as a plain nested dict.

    `config.yaml` and the hparams table are written once, when the folder has no config yet, so a
    resumed run keeps its original files and appends to the same event stream.
    """

    def __init__(self, run_dir: str | Path, config: Mapping[str, Any]):
        from torch.utils.tensorboard import SummaryWriter  # tensorboard loads late (rule 20)

        self.run_dir = Path(run_dir)
        self.media_dir = self.run_dir / "media"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.writer = SummaryWriter(log_dir=str(self.run_dir))
        config_path = self.run_dir / "config.yaml"
        if not config_path.exists():
            import yaml

            config_path.write_text(yaml.safe_dump(_plain(config), sort_keys=False))
            self.writer.add_text("hyperparameters", hparams_markdown(config))
        self._jsonl = open(self.run_dir / "scalars.jsonl", "a", encoding="utf-8")

    def log_scalars(self, scalars: Mapping[str, float], step: int) -> None:
        """Write `{tag: value}` at `step`; tags must start with a namespace in TAG_NAMESPACES."""
        row: dict[str, float] = {}
        for tag, value in scalars.items():
            if tag.split("/", 1)[0] not in TAG_NAMESPACES or "/" not in tag:
                raise ValueError(f"tag={tag!r}: must be '<namespace>/<name>' with namespace in {TAG_NAMESPACES}")
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"{tag}={value}: not finite at step {step}")
            self.writer.add_scalar(tag, value, step)
            row[tag] = value
        self._jsonl.write(json.dumps({"step": int(step), **row}) + "\n")
        self._jsonl.flush()

    def log_image(self, tag: str, rgb_hwc_uint8: np.ndarray, step: int) -> Path:
        """An (H, W, 3) uint8 RGB image to TensorBoard and to `media/{tag}_{step:08d}.png` (slashes -> '_')."""
        import cv2

        image = np.asarray(rgb_hwc_uint8)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image.shape={image.shape}, dtype={image.dtype}: expected (H, W, 3) uint8 RGB")
        self.writer.add_image(tag, image, step, dataformats="HWC")
        self.media_dir.mkdir(exist_ok=True)
        path = self.media_dir / f"{tag.replace('/', '_')}_{int(step):08d}.png"
        cv2.imwrite(str(path), image[..., ::-1])  # cv2 writes BGR
        return path

    def flush(self) -> None:
        self.writer.flush()
        self._jsonl.flush()

    def close(self) -> None:
        self.writer.close()
        self._jsonl.close()

    def __enter__(self) -> "RunLogger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class PhaseClock:
    """Wall time of one training step split into named phases: `lap(phase)` adds the time since the
    previous lap (or the start) to `seconds[phase]`; CUDA work is synchronised first so it is counted
    in the phase that queued it."""

    def __init__(self, phases: tuple[str, ...], device: torch.device | str = "cpu"):
        self.seconds = {phase: 0.0 for phase in phases}
        self.is_cuda = torch.device(device).type == "cuda"
        self.device = device
        self._tick = time.perf_counter()

    def lap(self, phase: str) -> None:
        if phase not in self.seconds:
            raise ValueError(f"phase={phase!r}: not one of {tuple(self.seconds)}")
        if self.is_cuda:
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        self.seconds[phase] += now - self._tick
        self._tick = now


def read_scalars(run_dir: str | Path) -> dict[int, dict[str, float]]:
    """`scalars.jsonl` of a run as {step: {tag: value}}; a step logged twice (a resumed run redoing
    steps after its last checkpoint) keeps its latest values."""
    table: dict[int, dict[str, float]] = {}
    path = Path(run_dir) / "scalars.jsonl"
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            table.setdefault(row.pop("step"), {}).update(row)
    return table


def _plain(value: Any) -> Any:
    """Enums, tuples and paths as YAML-safe values."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Enum):
        return _plain(value.value)
    if isinstance(value, Path):
        return str(value)
    return value
