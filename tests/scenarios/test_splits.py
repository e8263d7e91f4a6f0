"""scenarios.splits: split ids (deterministic, disjoint, mixed), the scene cache, navhard groups on disk."""

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

import scenarios.splits as splits
from envs.scene_file import scene_to_dict
from scenarios.two_stage import build_group
from scenarios.splits import (
    GENERATOR_VERSION, LONG_TAIL, SPLITS, family_counts, load_group, load_navhard, load_split, split_folder,
    split_scene_ids,
)

REPO = Path(__file__).resolve().parents[2]


def test_split_ids_sizes_and_determinism():
    sizes = {name: len(split_scene_ids(name)) for name in SPLITS}
    assert sizes == {"navtrain": 10_000, "navtest": 1_000, "navmini": 64, "navhard": 200}
    assert split_scene_ids("navtest") == split_scene_ids("navtest")
    assert sum(family_counts("navtrain").values()) == 10_000
    with pytest.raises(ValueError, match=r"^name='navsmall': unknown split"):
        split_scene_ids("navsmall")


def test_splits_never_share_a_scene_and_mix_families():
    ids = {name: set(split_scene_ids(name)) for name in SPLITS}
    names = list(ids)
    for i, a in enumerate(names):
        assert len(ids[a]) == len(split_scene_ids(a))                        # no duplicates within a split
        for b in names[:i]:
            assert not ids[a] & ids[b], (a, b)
    long_tail = {name for name, _ in LONG_TAIL}
    share = {name: sum(c for f, c in family_counts(name).items() if f in long_tail) / SPLITS[name].size
             for name in SPLITS}
    assert share["navtest"] == pytest.approx(0.40, abs=0.01) and share["navhard"] >= 0.8
    assert set(family_counts("navmini")) >= long_tail | {"urban_drive", "following", "lane_change", "intersection"}
    # any prefix is a mix: the first 40 navtest scenes come from at least 8 families
    assert len({f for f, _ in split_scene_ids("navtest")[:40]}) >= 8


def test_cache_folder_carries_the_version(tmp_path, monkeypatch):
    assert split_folder("navmini", tmp_path) == tmp_path / "navmini" / GENERATOR_VERSION
    monkeypatch.setenv("ROADLOOP_CACHE", str(tmp_path / "env"))
    assert split_folder("navtest") == tmp_path / "env" / "splits" / "navtest" / GENERATOR_VERSION
    monkeypatch.delenv("ROADLOOP_CACHE")
    assert split_folder("navtest") == Path("~/.cache/roadloop/splits/navtest").expanduser() / GENERATOR_VERSION
    with pytest.raises(ValueError, match=r"^max_scenes=-1"):
        load_split("navmini", tmp_path, max_scenes=-1)


def test_load_split_caches_and_reads_back(tmp_path, monkeypatch):
    first = load_split("navmini", cache_dir=tmp_path, max_scenes=2, progress=False)
    files = sorted((tmp_path / "navmini" / GENERATOR_VERSION).glob("*.json"))
    assert [f.name for f in files] == sorted(f"{fam}-{seed}.json" for fam, seed in split_scene_ids("navmini")[:2])

    def no_generation(*args, **kwargs):
        raise AssertionError("the second call must read the cache")

    monkeypatch.setattr(splits, "build_scene", no_generation)
    again = load_split("navmini", cache_dir=tmp_path, max_scenes=2, progress=False)
    assert [scene_to_dict(s) for s in again] == [scene_to_dict(s) for s in first]
    assert [s.scenario_type for s in again] == [fam for fam, _ in split_scene_ids("navmini")[:2]]


def test_generation_is_byte_identical_across_processes(tmp_path):
    code = ("import sys; from scenarios.splits import load_split; "
            "load_split('navtest', cache_dir=sys.argv[1], max_scenes=1, progress=False)")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "a")], cwd=REPO, env=env)
    load_split("navtest", cache_dir=tmp_path / "b", max_scenes=1, progress=False)
    assert child.wait(timeout=300) == 0
    a = sorted((tmp_path / "a" / "navtest" / GENERATOR_VERSION).iterdir())
    b = sorted((tmp_path / "b" / "navtest" / GENERATOR_VERSION).iterdir())
    assert [f.name for f in a] == [f.name for f in b] and len(a) == 1
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(a, b))


def test_navhard_groups_are_cached_as_folders(tmp_path, monkeypatch):
    # generation is tested in test_two_stage; a cheap group stands in for the split's first one here
    cheap = build_group("hard_brake", 30_000_001)
    monkeypatch.setattr(splits, "build_group", lambda family, seed: replace(cheap, family=family, seed=seed))
    groups = load_navhard(cache_dir=tmp_path, max_groups=1, progress=False)
    family, seed = split_scene_ids("navhard")[0]
    folder = tmp_path / "navhard" / GENERATOR_VERSION / f"{family}-{seed}"
    assert (folder / "index.json").exists() and (folder / "now.json").exists()
    assert len(list(folder.glob("syn_now_*.json"))) == len(groups[0].syn_now)
    monkeypatch.setattr(splits, "build_group", lambda *a: (_ for _ in ()).throw(AssertionError("cached")))
    again = load_navhard(cache_dir=tmp_path, max_groups=1, progress=False)[0]
    assert (again.family, again.seed) == (family, seed) and again.perturbations == groups[0].perturbations
    assert scene_to_dict(again.syn_prev[-1]) == scene_to_dict(groups[0].syn_prev[-1])
    stage_one = load_split("navhard", cache_dir=tmp_path, max_scenes=1, progress=False)
    assert [s.token for s in stage_one] == [again.now.token]
    with pytest.raises(ValueError, match=r"^folder=.*not a readable two-stage group"):
        load_group(tmp_path / "missing")


def test_family_filter_keeps_split_order_and_expands_sets(tmp_path):
    long_tail = {name for name, _ in LONG_TAIL}
    assert splits.expand_families(["long_tail"]) == frozenset(long_tail)
    assert splits.expand_families("cut_in") == frozenset({"cut_in"})
    assert splits.expand_families(None) is None
    with pytest.raises(ValueError, match=r"^families=\['cut_inn'\]: unknown \['cut_inn'\]"):
        splits.expand_families(["cut_inn"])
    scenes = load_split("navmini", cache_dir=tmp_path, max_scenes=3, progress=False, families=["cut_in", "merge"])
    expected = [(f, s) for f, s in split_scene_ids("navmini") if f in ("cut_in", "merge")][:3]
    assert [s.scenario_type for s in scenes] == [f for f, _ in expected]
    assert len(expected) == 3 and {f for f, _ in expected} <= {"cut_in", "merge"}
    with pytest.raises(ValueError, match=r"^families=\['urban_drive'\]: split 'navhard' has no scenes"):
        load_navhard(tmp_path, max_groups=1, progress=False, families=["urban_drive"])
