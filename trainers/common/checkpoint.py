"""Training checkpoints: atomic writes, the latest one of a run, every RNG state needed for an exact
resume (style rule 16), and a Ctrl-C guard that lets a loop stop at a step boundary and save."""

from __future__ import annotations

import os
import random
import re
import signal
from pathlib import Path
from typing import Any

import numpy as np
import torch

CHECKPOINT_DIR = "checkpoints"
"""Sub-folder of a run folder that holds `step_XXXXXXXX.pt` files."""
_NAME = re.compile(r"^step_(\d+)\.pt$")


def checkpoint_path(run_dir: str | Path, step: int) -> Path:
    """`{run_dir}/checkpoints/step_{step:08d}.pt`."""
    if step < 0:
        raise ValueError(f"step={step}: must be >= 0")
    return Path(run_dir) / CHECKPOINT_DIR / f"step_{step:08d}.pt"


def save_atomic(state: dict, path: str | Path) -> Path:
    """torch.save `state` to a temporary file in the same folder, then os.replace it onto `path`.

    A crash or Ctrl-C mid-write leaves the previous file (if any) intact and no partial file behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)  # atomic on POSIX and Windows when both live on one filesystem
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """Path of the highest-step checkpoint of a run, or None (temporary files are ignored)."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return None
    steps = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return max(steps)[1] if steps else None


def load_latest(run_dir: str | Path, map_location: Any = "cpu") -> dict | None:
    """The latest checkpoint of a run (see `latest_checkpoint`), loaded, or None when there is none."""
    path = latest_checkpoint(run_dir)
    if path is None:
        return None
    state = torch.load(path, map_location=map_location, weights_only=False)
    if not isinstance(state, dict) or "step" not in state:
        raise ValueError(f"checkpoint={str(path)!r}: not a training checkpoint (no 'step')")
    return state


def rng_state(generators: dict[str, np.random.Generator | torch.Generator] | None = None) -> dict:
    """Every RNG state: python `random`, numpy's global RNG, torch CPU (and all CUDA devices when
    available), plus the named numpy / torch generators passed in."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "generators": {},
    }
    for name, gen in (generators or {}).items():
        if isinstance(gen, np.random.Generator):
            state["generators"][name] = ("numpy", gen.bit_generator.state)
        elif isinstance(gen, torch.Generator):
            state["generators"][name] = ("torch", gen.get_state())
        else:
            raise ValueError(f"generators[{name!r}]={type(gen).__name__}: expected a numpy or torch Generator")
    return state


def set_rng_state(state: dict, generators: dict[str, np.random.Generator | torch.Generator] | None = None) -> None:
    """Restore what `rng_state` captured; the named generators are restored in place."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    saved = state.get("generators", {})
    for name, gen in (generators or {}).items():
        if name not in saved:
            raise ValueError(f"generators[{name!r}]: not in the checkpoint (saved: {sorted(saved)})")
        kind, value = saved[name]
        if isinstance(gen, np.random.Generator) and kind == "numpy":
            gen.bit_generator.state = value
        elif isinstance(gen, torch.Generator) and kind == "torch":
            gen.set_state(value)
        else:
            raise ValueError(f"generators[{name!r}]={type(gen).__name__}: the checkpoint holds a {kind} generator")


class StopRequest:
    """Context manager: the first Ctrl-C (SIGINT) only sets `requested`, so the loop can finish its
    step, save a checkpoint and return; a second Ctrl-C raises KeyboardInterrupt at once.

    Outside the main thread (where signal handlers cannot be set) it does nothing.
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nCtrl-C: stopping after this step and saving a checkpoint (Ctrl-C again to abort)", flush=True)

    def __enter__(self) -> "StopRequest":
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread
            self._previous = None
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
