"""Per-scene metric-cache pieces: batching (`cat`) and splitting (`split`) of map contexts and observations,
and the per-scene `SceneCache`, on the hand-built straight road of tests/scene_builders.py."""

from __future__ import annotations

import math
from dataclasses import fields

import pytest
import torch

from envs.metrics.context import (
    MapContext,
    Observation,
    SceneCache,
    bounding_circles,
    build_map_context,
    build_observation,
    scene_route,
)
from envs.scene_file import scene_from_dict
from tests.scene_builders import add_box, straight_road_dict


def _scenes():
    """Three scenes: 2 cars; none and a red light at the intersection; 1 car (different widths everywhere)."""
    a = add_box(add_box(straight_road_dict(), "A", "vehicle", 30.0, 0.0, speed=5.0), "B", "vehicle", 60.0, 3.5)
    b = straight_road_dict(with_intersection=True, ego_x=100.0)
    b["traffic_lights"] = [{"lane_connector_id": "Ca", "states": [{"t": round(0.1 * k, 1), "status": "red"}
                                                                  for k in range(41)]}]
    c = add_box(straight_road_dict(with_oncoming=True), "C", "pedestrian", 40.0, 1.0, length=0.5, width=0.5)
    return [scene_from_dict({**d, "token": token}) for d, token in zip((a, b, c), ("sceneA", "sceneB", "sceneC"))]


def _assert_same(x, y):
    for f in fields(x):
        u, v = getattr(x, f.name), getattr(y, f.name)
        assert u.shape == v.shape and u.dtype == v.dtype and torch.equal(u, v), f.name


@pytest.mark.parametrize("v2", [False, True])
def test_observation_split_and_cat_equal_the_batched_build(v2):
    scenes = _scenes()
    routes = [scene_route(s) for s in scenes]
    batched = build_observation(scenes, routes, remove_initial_overlaps=v2)
    alone = [build_observation([s], [r], remove_initial_overlaps=v2) for s, r in zip(scenes, routes)]
    assert [o.valid.shape[2] for o in alone] == [2, 1, 1]            # the empty scene keeps one padding slot
    assert alone[1].red_light_polygons.shape[1] == 1 and alone[1].red_light_vertex_valid.any()
    _assert_same(Observation.cat(alone), batched)
    for part, own in zip(batched.split([s.agents.num_agents for s in scenes]), alone):
        _assert_same(part, own)
    # padding objects are 1 m x 1 m boxes at the origin, whatever the order of the parts
    swapped = Observation.cat([alone[1], alone[0]])
    expected = torch.tensor([[0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5], [0.5, -0.5]], dtype=torch.float64)
    torch.testing.assert_close(swapped.corners[0, 0, 1], expected)
    assert not swapped.valid[0, :, 1].any()
    # ... and their bounding circles are that box's: centre 0, radius sqrt(0.5 ** 2 + 0.5 ** 2)
    assert swapped.circle_center[0, 0, 1].tolist() == [0.0, 0.0]
    assert swapped.circle_radius[0, 0, 1].item() == pytest.approx(math.sqrt(0.5), abs=1e-15)


def test_observation_keeps_the_bounding_circles_of_its_boxes():
    # a 4 m x 2 m box centred at (10, 5), heading 0: circle centre (10, 5), radius sqrt(2 ** 2 + 1 ** 2)
    corners = torch.tensor([[[[[12.0, 6.0], [8.0, 6.0], [8.0, 4.0], [12.0, 4.0]]]]], dtype=torch.float64)
    center, radius = bounding_circles(corners)
    assert center.tolist() == [[[[10.0, 5.0]]]] and radius.item() == pytest.approx(math.sqrt(5.0), abs=1e-14)
    scenes = _scenes()
    obs = build_observation(scenes, [scene_route(s) for s in scenes], remove_initial_overlaps=False)
    center, radius = bounding_circles(obs.corners)
    assert torch.equal(obs.circle_center, center) and torch.equal(obs.circle_radius, radius)
    # car A of scene A: 30 m ahead on the road, so its circle is centred there
    assert obs.circle_center[0, 0, 0, 0].item() == pytest.approx(30.0, abs=3.0)


def test_map_context_split_and_cat_answer_like_the_batched_build():
    scenes = _scenes()
    routes = [scene_route(s) for s in scenes]
    batched = build_map_context(scenes, routes)
    alone = [build_map_context([s], [r]) for s, r in zip(scenes, routes)]
    again = MapContext.cat(alone)
    for name in ("lane_on_route", "centerline", "centerline_valid"):
        assert torch.equal(getattr(again, name), getattr(batched, name)), name
    # points on the ego lane, the opposite lane, the oncoming road and off the road, in every scene
    points = torch.tensor([[[20.0, 0.0], [20.0, 3.5], [20.0, -3.5], [20.0, 9.0]]] * 3, dtype=torch.float64)
    for name in ("drivable", "lanes", "intersections"):
        assert torch.equal(getattr(again, name).contains(points), getattr(batched, name).contains(points)), name
    assert batched.lanes.contains(points)[2].any(-1).tolist() == [True, True, True, False]   # LO on scene 3
    for part, own in zip(batched.split(), alone):
        assert torch.equal(part.lane_on_route, own.lane_on_route) and torch.equal(part.centerline, own.centerline)
        assert torch.equal(part.lanes.contains(points[:1]), own.lanes.contains(points[:1]))


def test_stored_contexts_batch_without_copying_rows():
    scenes = _scenes()
    cache = SceneCache()
    parts = [build_map_context([s], [scene_route(s)]).stored(cache) for s in scenes]
    assert parts[0].stored(cache) is parts[0]                        # already there: unchanged
    batch = MapContext.cat(parts)
    assert batch.lanes.row_bounds is parts[2].lanes.row_bounds      # the store's arrays, shared
    assert batch.lanes.store is cache.index_store("lanes", parts[0].lanes)


def test_scene_cache_serves_the_same_scene_object_only_and_drops_the_least_recent():
    first, second, third = _scenes()
    cache = SceneCache(max_scenes=2)
    assert cache.get(first, "x") is None and cache.misses == 1
    cache.put(first, "x", 1)
    cache.put(second, "x", 2)
    assert cache.get(first, "x") == 1 and cache.get(first, "y") is None and cache.hits == 1
    reloaded = scene_from_dict({**straight_road_dict(), "token": "sceneA"})   # same token, another object
    assert reloaded.token == first.token and cache.get(reloaded, "x") is None
    cache.put(third, "x", 3)                                         # drops `second`, used least recently
    assert len(cache) == 2 and cache.get(second, "x") is None and cache.get(first, "x") == 1
    with pytest.raises(ValueError, match="max_scenes"):
        SceneCache(max_scenes=0)
