"""Built-in synthetic NAVSIM-style splits: scene ids per split (family, seed), generated on first use and
cached as scene/1 files; navhard as two-stage groups (`scenarios.two_stage`).

Cache layout: `<root>/<split>/<GENERATOR_VERSION>/<family>-<seed>.json` (navhard: one folder per group
with an `index.json` written last). `<root>` is `cache_dir`, else `$ROADLOOP_CACHE/splits`, else
`~/.cache/roadloop/splits`. A new generator version gets a new folder, so stale files are never read.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from envs.scene_file import load_scene, save_scene
from envs.sim.scene import Scene
from scenarios import SCENARIOS, build_scene
from scenarios.family import PLANNERS
from scenarios.two_stage import Perturbation, TwoStageGroup, build_group

GENERATOR_VERSION = "gen-2"
"""Bump whenever any family's output changes: cached scenes of other versions are ignored."""
POOL_THRESHOLD = 16
"""Missing scenes (groups) above which generation runs in a pool of POOL_WORKERS processes."""
POOL_WORKERS = 2
SEED_STRIDE = 10_000_000
"""Seed range of one split; split k starts at k * SEED_STRIDE."""

ORDINARY = (("urban_drive", 0.30), ("following", 0.08), ("lane_change", 0.10), ("intersection", 0.12))
"""Everyday driving: 60% of navtrain and navtest."""
LONG_TAIL = tuple((name, 0.40 / 9) for name in (
    "cut_in", "hard_brake", "jaywalker", "occluded_pedestrian", "red_light_runner", "blocked_lane",
    "unprotected_left", "merge", "construction_zone"))
"""The nine long-tail families, 40% of navtrain and navtest in equal shares."""
HARD = (("lane_change", 0.06), ("intersection", 0.09)) + tuple((name, 0.85 / 9) for name, _ in LONG_TAIL)
"""navhard: 85% long tail (every family there needs a drive planner)."""
FAMILY_SETS = {"long_tail": tuple(name for name, _ in LONG_TAIL), "ordinary": tuple(name for name, _ in ORDINARY)}
"""Names that stand for several families in a `families` filter."""
MINI = tuple((name, 1.0) for name in (
    "urban_drive", "following", "lane_change", "intersection", *(name for name, _ in LONG_TAIL)))
"""navmini: every family about equally."""


@dataclass(frozen=True)
class SplitSpec:
    """A built-in split: how many scenes (groups for navhard), which families in what shares, and the
    first seed of each family (ranges of different splits never overlap)."""

    name: str
    size: int
    mix: tuple[tuple[str, float], ...]
    """(family, weight); counts are weight shares of `size`, rounded by largest remainder."""
    seed_base: int
    """Family f's j-th scene has seed seed_base + j."""
    two_stage: bool = False

    def __post_init__(self):
        unknown = [name for name, _ in self.mix if name not in SCENARIOS]
        if unknown:
            raise ValueError(f"mix={unknown!r}: unknown families (valid: {', '.join(sorted(SCENARIOS))})")
        if self.size > SEED_STRIDE:
            raise ValueError(f"size={self.size}: at most {SEED_STRIDE} (seed ranges would overlap)")
        unplanned = [name for name, _ in self.mix if self.two_stage and name not in PLANNERS]
        if unplanned:
            raise ValueError(f"mix={unplanned!r}: two-stage families need a drive planner "
                             f"(valid: {', '.join(sorted(PLANNERS))})")

SPLITS: dict[str, SplitSpec] = {spec.name: spec for spec in (
    SplitSpec("navtrain", 10_000, ORDINARY + LONG_TAIL, 0 * SEED_STRIDE),
    SplitSpec("navtest", 1_000, ORDINARY + LONG_TAIL, 1 * SEED_STRIDE),
    SplitSpec("navmini", 64, MINI, 2 * SEED_STRIDE),
    SplitSpec("navhard", 200, HARD, 3 * SEED_STRIDE, two_stage=True),
)}
"""The built-in splits by name (sizes: NAVSIM's navtrain 103k, navtest 12k, navhard 225 groups)."""


def _spec(name: str) -> SplitSpec:
    if name not in SPLITS:
        raise ValueError(f"name={name!r}: unknown split (valid: {', '.join(SPLITS)})")
    return SPLITS[name]


def family_counts(name: str) -> dict[str, int]:
    """Scenes (groups) per family in a split: weight shares of its size, largest remainder rounding."""
    spec = _spec(name)
    weights = np.array([w for _, w in spec.mix], np.float64)
    exact = spec.size * weights / weights.sum()
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts), kind="stable")[:spec.size - counts.sum()]:
        counts[i] += 1
    return {family: int(c) for (family, _), c in zip(spec.mix, counts)}


def split_scene_ids(name: str) -> list[tuple[str, int]]:
    """(family, seed) of every scene (group) of a split, in a fixed shuffled order (so any prefix is
    a mix); deterministic, generates nothing."""
    spec = _spec(name)
    ids = [(family, spec.seed_base + j) for family, count in family_counts(name).items() for j in range(count)]
    key = int.from_bytes(hashlib.sha256(f"{name}|{GENERATOR_VERSION}".encode()).digest()[:8], "little")
    order = np.random.default_rng(key).permutation(len(ids))
    return [ids[i] for i in order]


def expand_families(families) -> frozenset[str] | None:
    """A `families` filter (names, `long_tail` / `ordinary` for their sets) -> the family names; None: no filter."""
    if families is None:
        return None
    if isinstance(families, str):
        families = (families,)
    names = [member for name in families for member in FAMILY_SETS.get(name, (name,))]
    unknown = sorted({name for name in names if name not in SCENARIOS})
    if unknown or not names:
        raise ValueError(f"families={list(families)!r}: unknown {unknown or 'empty'} "
                         f"(valid: {', '.join(sorted(SCENARIOS) + sorted(FAMILY_SETS))})")
    return frozenset(names)


def _filtered_ids(name: str, families, max_items: int | None) -> list[tuple[str, int]]:
    keep = expand_families(families)
    ids = [(family, seed) for family, seed in split_scene_ids(name) if keep is None or family in keep]
    if not ids:
        raise ValueError(f"families={sorted(keep)!r}: split {name!r} has no scenes of these families")
    return ids[:max_items]


def split_folder(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where a split's files live (see the module docstring)."""
    _spec(name)
    if cache_dir is not None:
        root = Path(cache_dir)
    elif os.environ.get("ROADLOOP_CACHE"):
        root = Path(os.environ["ROADLOOP_CACHE"]) / "splits"
    else:
        root = Path("~/.cache/roadloop/splits").expanduser()
    return root / name / GENERATOR_VERSION


def _scene_file(folder: Path, family: str, seed: int) -> Path:
    return folder / f"{family}-{seed}.json"


def _init_worker() -> None:
    # scene tensors are tiny: intra-op threads only add synchronisation
    torch.set_num_threads(1)


def _write_scene(job: tuple[str, int, str]) -> None:
    family, seed, folder = job
    save_scene(build_scene(family, None, seed), _scene_file(Path(folder), family, seed))


def _write_group(job: tuple[str, int, str]) -> None:
    family, seed, folder = job
    save_group(build_group(family, seed), Path(folder) / f"{family}-{seed}")


def _run_jobs(work, jobs: list[tuple[str, int, str]], progress: bool, desc: str) -> None:
    """Run the jobs: in a spawn pool of POOL_WORKERS when many, else here (1 torch thread)."""
    bar = tqdm(total=len(jobs), desc=desc, unit="scene", disable=not progress or not jobs)
    if len(jobs) > POOL_THRESHOLD:
        with multiprocessing.get_context("spawn").Pool(POOL_WORKERS, initializer=_init_worker) as pool:
            for _ in pool.imap_unordered(work, jobs, chunksize=4):
                bar.update()
    else:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for job in jobs:
                work(job)
                bar.update()
        finally:
            torch.set_num_threads(threads)
    bar.close()


def _checked_max(max_items: int | None, field: str) -> None:
    if max_items is not None and (not isinstance(max_items, int) or isinstance(max_items, bool) or max_items < 0):
        raise ValueError(f"{field}={max_items!r}: must be None or an int >= 0")


def load_split(name: str, cache_dir: str | os.PathLike | None = None, max_scenes: int | None = None,
               progress: bool = True, families=None) -> list[Scene]:
    """The scenes of a split (its first `max_scenes`, of `families` only when given: `expand_families`),
    generating and caching the missing ones.

    navhard gives its stage-1 scenes (`load_navhard` for the groups).
    """
    _checked_max(max_scenes, "max_scenes")
    if _spec(name).two_stage:
        return [group.now for group in load_navhard(cache_dir, max_scenes, progress, families)]
    folder = split_folder(name, cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    ids = _filtered_ids(name, families, max_scenes)
    missing = [(family, seed, str(folder)) for family, seed in ids if not _scene_file(folder, family, seed).exists()]
    _run_jobs(_write_scene, missing, progress, f"{name} scenes")
    return [load_scene(_scene_file(folder, family, seed)) for family, seed in ids]


def load_navhard(cache_dir: str | os.PathLike | None = None, max_groups: int | None = None,
                 progress: bool = True, families=None) -> list[TwoStageGroup]:
    """The navhard two-stage groups (their first `max_groups`, of `families` only when given), generating
    and caching the missing ones."""
    _checked_max(max_groups, "max_groups")
    folder = split_folder("navhard", cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    ids = _filtered_ids("navhard", families, max_groups)
    missing = [(family, seed, str(folder)) for family, seed in ids
               if not (folder / f"{family}-{seed}" / "index.json").exists()]
    _run_jobs(_write_group, missing, progress, "navhard groups")
    return [load_group(folder / f"{family}-{seed}") for family, seed in ids]


# --------------------------------------------------------------------------- group folders


def save_group(group: TwoStageGroup, folder: str | os.PathLike) -> None:
    """Write a group as scene/1 files plus `index.json` (written last: its presence marks a complete group)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_scene(group.now, folder / "now.json")
    save_scene(group.prev, folder / "prev.json")
    follow_ups = []
    for i, (now, prev, p) in enumerate(zip(group.syn_now, group.syn_prev, group.perturbations)):
        save_scene(now, folder / f"syn_now_{i:02d}.json")
        save_scene(prev, folder / f"syn_prev_{i:02d}.json")
        follow_ups.append({"now": f"syn_now_{i:02d}.json", "prev": f"syn_prev_{i:02d}.json",
                           "lateral": p.lateral, "heading": p.heading, "speed_factor": p.speed_factor})
    index = {"format": "two-stage-group/1", "family": group.family, "seed": group.seed, "now": "now.json",
             "prev": "prev.json", "follow_ups": follow_ups}
    tmp = folder / "index.json.tmp"
    tmp.write_text(json.dumps(index, indent=1) + "\n")
    os.replace(tmp, folder / "index.json")


def load_group(folder: str | os.PathLike) -> TwoStageGroup:
    """Read a group written by `save_group`."""
    folder = Path(folder)
    try:
        index = json.loads((folder / "index.json").read_text())
        follow_ups = index["follow_ups"]
        return TwoStageGroup(
            family=index["family"], seed=int(index["seed"]), now=load_scene(folder / index["now"]),
            prev=load_scene(folder / index["prev"]),
            syn_now=tuple(load_scene(folder / f["now"]) for f in follow_ups),
            syn_prev=tuple(load_scene(folder / f["prev"]) for f in follow_ups),
            perturbations=tuple(Perturbation(float(f["lateral"]), float(f["heading"]), float(f["speed_factor"]))
                                for f in follow_ups),
        )
    except (OSError, KeyError, TypeError, json.JSONDecodeError) as error:
        raise ValueError(f"folder={str(folder)!r}: not a readable two-stage group ({error})") from None
