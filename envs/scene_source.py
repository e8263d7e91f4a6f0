"""Where an env's scenes come from: a built-in synthetic split, a folder of scene/1 files, or
OpenScene logs. Scenes load lazily and are kept in memory once loaded (the env memoises what it derives
from each scene object: `NavsimBatch.cache`, `NavsimBatch.observations`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Protocol

from envs.sim.scene import Scene

BUILTIN_SPLITS = ("navtrain", "navtest", "navhard", "navmini")


class SceneSource(Protocol):
    def __len__(self) -> int: ...
    def scene(self, index: int) -> Scene: ...
    def group(self, index: int) -> Any: ...


class LazyScenes:
    """Scenes by index from a loader, memoised."""

    def __init__(self, count: int, load: Callable[[int], Scene], load_group: Callable[[int], Any] | None = None):
        if count < 1:
            raise ValueError("scene source: no scenes found")
        self._count, self._load, self._load_group = count, load, load_group
        self._scenes: dict[int, Scene] = {}

    def __len__(self) -> int:
        return self._count

    def scene(self, index: int) -> Scene:
        if index not in self._scenes:
            self._scenes[index] = self._load(index)
        return self._scenes[index]

    def group(self, index: int) -> Any:
        if self._load_group is None:
            raise ValueError("stage_two=official needs a two-stage split (navhard)")
        return self._load_group(index)


class FamilyScenes:
    """The scenes of another source whose `scenario_type` is in `families`, the first `limit` of them.

    Scene files and OpenScene logs only say a scene's type once it is loaded, so this loads every scene
    of the source once (built-in splits filter by their (family, seed) ids without loading)."""

    def __init__(self, source: SceneSource, families: frozenset[str], limit: int | None):
        keep = [i for i in range(len(source)) if source.scene(i).scenario_type in families]
        if not keep:
            raise ValueError(f"families={sorted(families)!r}: no scene of the source has one of these scenario types")
        self._source, self._keep = source, keep[:limit]

    def __len__(self) -> int:
        return len(self._keep)

    def scene(self, index: int) -> Scene:
        return self._source.scene(self._keep[index])

    def group(self, index: int) -> Any:
        return self._source.group(self._keep[index])


def open_scene_source(config) -> SceneSource:
    """The scene source named by a NavsimConfig (`data`, `split`, `data_root`, `max_scenes`, `families`)."""
    if config.families is not None and config.data != "builtin":
        families = frozenset(config.families)   # any labels: real logs name their own scenario types
        return FamilyScenes(open_scene_source(replace(config, families=None, max_scenes=None)), families, config.max_scenes)
    limit = config.max_scenes
    if config.data == "files":
        from envs.scene_file import load_scene

        files = sorted(Path(config.split).glob("*.json"))
        if not files:
            raise ValueError(f"split={config.split!r}: no scene/1 *.json files in that folder")
        files = files[:limit] if limit else files
        return LazyScenes(len(files), lambda i: load_scene(files[i]))
    if config.data == "openscene":
        from envs.backends.openscene import OpenSceneConfig, iter_scene_tokens, load_scenes

        if not config.data_root or not config.maps_root:
            raise ValueError("data=openscene needs data_root (OpenScene root) and maps_root (nuPlan maps)")
        oc = OpenSceneConfig(data_root=config.data_root, maps_root=config.maps_root, split=config.split)
        tokens = list(iter_scene_tokens(oc))
        tokens = tokens[:limit] if limit else tokens
        return LazyScenes(len(tokens), lambda i: load_scenes(oc, tokens=[tokens[i]])[0])
    if config.split not in BUILTIN_SPLITS:
        raise ValueError(f"split={config.split!r}: unknown built-in split (valid: {', '.join(BUILTIN_SPLITS)}); "
                         "use data=files for a folder of scene files")
    from scenarios import splits  # the scene generators live downstream of envs (style rule 1)

    if config.split == "navhard":
        groups = splits.load_navhard(cache_dir=config.data_root, max_groups=limit, families=config.families)
        return LazyScenes(len(groups), lambda i: groups[i].now, lambda i: groups[i])
    scenes = splits.load_split(config.split, cache_dir=config.data_root, max_scenes=limit, families=config.families)
    return LazyScenes(len(scenes), lambda i: scenes[i])
