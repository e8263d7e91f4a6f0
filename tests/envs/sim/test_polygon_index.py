"""PolygonIndex: strict-interior point-in-polygon (shapely `contains_xy` semantics) over batches of scenes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from envs.sim.polygon_index import IndexStore, PolygonIndex, pack_slots, unpack_slots

F64 = torch.float64
SQUARE = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=float)
L_SHAPE = np.array([[0, 0], [4, 0], [4, 1], [1, 1], [1, 4], [0, 4]], dtype=float)
DIAMOND = np.array([[0, -1], [1, 0], [0, 1], [-1, 0]], dtype=float)


def contains(polygons, points, **kwargs) -> list:
    """Single-scene helper: polygons list, points (N, 2) -> (N, M) nested lists."""
    index = PolygonIndex.build([polygons], **kwargs)
    return index.contains(torch.tensor([points], dtype=F64))[0].tolist()


@pytest.mark.parametrize("strip_height", [0.3, 2.0, 100.0])
def test_square_boundary_is_outside(strip_height):
    nudge = 1e-9
    points = [[0.5, 0.5], [0.5, 0.0], [1.0, 0.5], [0.0, 0.0], [1.0, 1.0],   # centre, edges, vertices
              [nudge, 0.5], [-nudge, 0.5], [0.5, 1 - nudge], [0.5, 1 + nudge], [0.5, 7.0], [0.5, -3.0]]
    out = contains([SQUARE], points, strip_height=strip_height)
    assert [row[0] for row in out] == [True, False, False, False, False, True, False, True, False, False, False]


def test_ray_through_a_vertex_counts_once():
    # points level with the diamond's left/right vertices: the ray from (0.2, 0) leaves through (1, 0)
    out = contains([DIAMOND], [[0.2, 0.0], [-0.5, 0.0], [-1.5, 0.0], [1.0, 0.0], [0.0, 0.5], [1.5, 0.0]])
    assert [row[0] for row in out] == [True, True, False, False, True, False]


def test_l_shape_notch_and_reflex_corner():
    out = contains([L_SHAPE], [[2.5, 2.5], [0.5, 3.0], [3.0, 0.5], [1.0, 1.0], [1.0, 2.5], [2.5, 1.0],
                               [0.999, 1.001], [1.001, 1.001]])
    assert [row[0] for row in out] == [False, True, True, False, False, False, True, False]


def test_point_exactly_on_a_diagonal_edge_is_outside():
    # (1.5, 0.5) lies exactly on the edge (0, 0) -> (3, 1); the float orientation determinant is not
    # trustworthy there, so this exercises the exact fallback. Its neighbours one ulp away are decided too.
    triangle = np.array([[0, 0], [3, 1], [0, 1]], dtype=float)
    above, below = np.nextafter(0.5, 1.0), np.nextafter(0.5, 0.0)
    out = contains([triangle], [[1.5, 0.5], [1.5, above], [1.5, below]])
    assert [row[0] for row in out] == [False, True, False]


def test_holes_count_by_parity():
    shell = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], dtype=float)
    hole = np.array([[4, 4], [6, 4], [6, 6], [4, 6]], dtype=float)
    out = contains([[shell, hole], SQUARE], [[5, 5], [2, 2], [4, 5], [0.5, 0.5]])
    assert out == [[False, False], [True, False], [False, False], [True, True]]


def test_scenes_with_different_polygon_counts_and_an_empty_scene():
    index = PolygonIndex.build([[SQUARE, SQUARE + 2.0, L_SHAPE], [], [SQUARE + 10.0]])
    assert index.num_polygons.tolist() == [3, 0, 1]
    assert index.polygon_valid.tolist() == [[True, True, True], [False, False, False], [True, False, False]]
    points = torch.tensor([[[0.5, 0.5], [2.5, 2.5], [0.5, 3.5]],
                           [[0.5, 0.5], [2.5, 2.5], [0.5, 3.5]],
                           [[10.5, 10.5], [0.5, 0.5], [11.0, 10.5]]], dtype=F64)
    out = index.contains(points)
    assert out.shape == (3, 3, 3)
    assert out.tolist() == [[[True, False, True], [False, True, False], [False, False, True]],
                            [[False] * 3] * 3,
                            [[True, False, False], [False, False, False], [False, False, False]]]
    mask = torch.tensor([[False, True, True], [True, True, True], [True, False, False]])
    assert index.contains_any(points, mask).tolist() == [[True, True, True], [False] * 3, [True, False, False]]


def test_all_scenes_empty():
    index = PolygonIndex.build([[], []])
    out = index.contains(torch.zeros(2, 4, 2, dtype=F64))
    assert out.shape == (2, 4, 0)
    assert index.contains_any(torch.zeros(2, 4, 2, dtype=F64), torch.zeros(2, 0, dtype=torch.bool)).tolist() \
        == [[False] * 4] * 2


def test_explicit_closing_vertex_and_float32_index():
    closed = np.vstack([L_SHAPE, L_SHAPE[:1]])
    points = [[0.5, 3.0], [2.5, 2.5], [1.0, 2.0]]
    assert contains([closed], points) == [[True], [False], [False]]
    assert contains([L_SHAPE], points, dtype=torch.float32) == [[True], [False], [False]]


def test_bad_input_is_rejected_by_name():
    with pytest.raises(ValueError, match=r"polygons\[0\]\[1\]"):
        PolygonIndex.build([[SQUARE, SQUARE[:2]]])
    with pytest.raises(ValueError, match="finite"):
        PolygonIndex.build([[np.array([[0, 0], [1, 0], [np.nan, 1]])]])
    with pytest.raises(ValueError, match="strip_height"):
        PolygonIndex.build([[SQUARE]], strip_height=0.0)
    index = PolygonIndex.build([[SQUARE]])
    with pytest.raises(ValueError, match="points.shape"):
        index.contains(torch.zeros(2, 3, 2, dtype=F64))
    with pytest.raises(ValueError, match="finite"):
        index.contains(torch.tensor([[[math.inf, 0.0]]], dtype=F64))
    with pytest.raises(ValueError, match="mask"):
        index.contains_any(torch.zeros(1, 3, 2, dtype=F64), torch.ones(1, 2, dtype=torch.bool))


def _random_scene(rng, count):
    """Star-shaped polygons plus axis-aligned ones on a 0.5 m grid (many exactly-on-edge queries)."""
    scene = []
    for k in range(count):
        if k % 3 == 0:
            x0, y0 = rng.integers(-20, 20, 2) / 2
            w, h = rng.integers(1, 12, 2) / 2
            scene.append(np.array([[x0, y0], [x0 + w, y0], [x0 + w, y0 + h], [x0, y0 + h]]))
        else:
            angle = np.sort(rng.uniform(0, 2 * np.pi, rng.integers(3, 40)))
            radius = rng.uniform(0.3, 1.0, len(angle)) * rng.uniform(2, 10)
            center = rng.uniform(-10, 10, 2)
            scene.append(np.stack([center[0] + radius * np.cos(angle), center[1] + radius * np.sin(angle)], 1))
    return scene


def _query_points(rng, scene, count):
    points = np.concatenate([rng.uniform(-15, 15, (count, 2)), rng.integers(-30, 30, (count, 2)) / 2])
    for polygon in scene:
        points = np.concatenate([points, polygon, (polygon + np.roll(polygon, -1, 0)) / 2])
    return points


@pytest.mark.parametrize("merge_pairs", [0, 1 << 30])   # chunks split at every doubling / all merged
@pytest.mark.parametrize("strip_height", [0.1, 2.0, 1000.0])
def test_matches_shapely_contains_xy(strip_height, merge_pairs, monkeypatch):
    shapely = pytest.importorskip("shapely")
    monkeypatch.setattr("envs.sim.polygon_index._MERGE_PAIRS", merge_pairs)
    rng = np.random.default_rng(3)
    scenes = [_random_scene(rng, count) for count in (6, 0, 9, 1)]
    queries = [_query_points(rng, scene, 300) for scene in scenes]
    num_points = max(len(q) for q in queries)
    points = np.stack([np.concatenate([q, np.full((num_points - len(q), 2), 99.0)]) for q in queries])
    out = PolygonIndex.build(scenes, strip_height=strip_height).contains(torch.tensor(points)).numpy()
    assert out.shape == (4, num_points, 9)
    for b, scene in enumerate(scenes):
        assert not out[b, :, len(scene):].any()
        for m, polygon in enumerate(scene):
            expected = shapely.contains_xy(shapely.Polygon(polygon), points[b, :, 0], points[b, :, 1])
            np.testing.assert_array_equal(out[b, :, m], expected)


@pytest.mark.parametrize("merge_pairs", [0, 1 << 30])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_rotated_index_matches_shapely_also_on_edges_and_vertices(dtype, merge_pairs, monkeypatch):
    # every scene in its own rotated frame, at map-scale coordinates: points on edges and vertices (exact in the
    # map frame, rounded in the rotated one) are re-tested in map coordinates, so the answers stay exact
    shapely = pytest.importorskip("shapely")
    monkeypatch.setattr("envs.sim.polygon_index._MERGE_PAIRS", merge_pairs)
    rng = np.random.default_rng(5)
    scenes = [[p + 4e5 for p in _random_scene(rng, count)] for count in (7, 0, 5)]
    queries = [_query_points(rng, scene, 150) + 4e5 for scene in scenes]
    num_points = max(len(q) for q in queries)
    points = np.stack([np.concatenate([q, np.full((num_points - len(q), 2), 4e5)]) for q in queries])
    points = points.astype(np.float32).astype(np.float64) if dtype == torch.float32 else points
    index = PolygonIndex.build(scenes, dtype=dtype, strip_height=0.25, align=[0.3, -2.0, 1.2])
    assert index.tolerance[0] > 0 and index.tolerance[1] == 0       # scene 1 is empty: nothing to rotate
    out = index.contains(torch.tensor(points)).numpy()
    for b, scene in enumerate(scenes):
        for m, polygon in enumerate(scene):
            ring = polygon.astype(np.float32).astype(np.float64) if dtype == torch.float32 else polygon
            expected = shapely.contains_xy(shapely.Polygon(ring), points[b, :, 0], points[b, :, 1])
            np.testing.assert_array_equal(out[b, :, m], expected)


def test_rotated_square_keeps_its_boundary_outside():
    index = PolygonIndex.build([[SQUARE]], align=[math.pi / 6])
    points = [[0.5, 0.5], [0.5, 0.0], [1.0, 0.5], [0.0, 0.0], [1.0, 1.0], [1e-9, 0.5], [-1e-9, 0.5], [0.5, 1.5]]
    out = index.contains(torch.tensor([points], dtype=F64))[0, :, 0]
    assert out.tolist() == [True, False, False, False, False, True, False, False]


def test_align_zero_is_the_map_frame_index():
    plain = PolygonIndex.build([[SQUARE, L_SHAPE], [DIAMOND]])
    zero = PolygonIndex.build([[SQUARE, L_SHAPE], [DIAMOND]], align=torch.zeros(2))
    assert torch.equal(plain.row_bounds, zero.row_bounds) and torch.equal(plain.tolerance, torch.zeros(2, dtype=F64))
    assert plain.frame.tolist() == [[0.0, 0.0, 1.0, 0.0]] * 2


def test_pack_slots_layout_and_round_trip():
    flags = torch.zeros(3, 70, dtype=torch.bool)      # 70 slots: two 64-bit words, 16 bytes
    flags[0, 0] = True                                 # byte 0, bit 0
    flags[1, 17] = True                                # slot 17 = 16 * 1 + 1: byte 1, bit 1
    flags[2, [3, 69]] = True                           # byte 3 bit 0; slot 69 = 16 * 4 + 5: byte 5, bit 4
    bits = pack_slots(flags)
    assert bits.shape == (3, 2)
    assert bits.tolist() == [[1, 0], [2 << 8, 0], [(1 << 24) | (16 << 40), 0]]
    flags = torch.zeros(3, 128, dtype=torch.bool)
    flags[0, 8] = flags[1, 127] = flags[2, 16 * 3 + 15] = True   # bytes 8 and 15 are in the second word
    assert pack_slots(flags).tolist() == [[0, 1], [0, -(1 << 63)], [0, 8 << 56]]   # bit 63: the sign bit
    random = torch.rand(4, 5, 130) < 0.3
    assert torch.equal(unpack_slots(pack_slots(random), 130), random)
    assert pack_slots(torch.zeros(2, 0, dtype=torch.bool)).shape == (2, 1)


def test_contains_bits_match_contains_with_many_polygons():
    polygons = [SQUARE + [k, 0.0] for k in range(70)]     # unit squares side by side, slots 0..69
    points = torch.tensor([[[0.5, 0.5], [65.5, 0.5], [69.5, 0.5], [70.5, 0.5], [3.0, 0.5]]], dtype=F64)
    index = PolygonIndex.build([polygons])
    bits = index.contains_bits(points)
    assert bits.shape == (1, 5, 2)
    inside = unpack_slots(bits, 70)[0]
    assert [row.nonzero().flatten().tolist() for row in inside] == [[0], [65], [69], [], []]
    assert torch.equal(index.contains(points)[0], inside)


def test_align_is_checked():
    with pytest.raises(ValueError, match="align"):
        PolygonIndex.build([[SQUARE], [SQUARE]], align=[0.1])
    with pytest.raises(ValueError, match="align"):
        PolygonIndex.build([[SQUARE]], align=[math.nan])


def test_to_keeps_values():
    index = PolygonIndex.build([[SQUARE]])
    moved = index.to("cpu")
    assert moved.row_bounds.device.type == "cpu" and torch.equal(moved.row_bounds, index.row_bounds)
    assert index.to(None) is index


def _four_scenes():
    """Scenes with 3, 0, 1 and 2 polygons (two rotated frames), query points inside, outside and on edges
    ((1, 0.5) is on the unit square's edge but inside the L; (7, 10) on the big L's inner edge)."""
    scenes = [[SQUARE, SQUARE + 2.0, L_SHAPE], [], [SQUARE * 30 + 5], [L_SHAPE * 7, SQUARE]]
    points = torch.tensor([[[0.5, 0.5], [2.5, 2.5], [0.5, 3.5], [1.0, 0.5], [20.0, 20.0]],
                           [[0.5, 0.5], [2.5, 2.5], [0.5, 3.5], [1.0, 0.5], [20.0, 20.0]],
                           [[20.0, 20.0], [5.0, 20.0], [34.9, 34.9], [35.0, 20.0], [0.5, 0.5]],
                           [[3.5, 3.5], [0.5, 0.5], [10.0, 10.0], [7.0, 10.0], [3.5, 24.5]]], dtype=F64)
    expected = [[[True, False, True], [False, True, False], [False, False, True], [False, False, True],
                 [False, False, False]],
                [[False] * 3] * 5,
                [[True, False, False], [False, False, False], [True, False, False], [False, False, False],
                 [False, False, False]],
                [[True, False, False], [True, True, False], [False, False, False], [False, False, False],
                 [True, False, False]]]
    return scenes, [0.3, 0.0, -1.2, 0.0], points, expected


def test_cat_and_split_answer_like_one_build():
    scenes, align, points, expected = _four_scenes()
    whole = PolygonIndex.build(scenes, align=align)
    assert whole.contains(points).tolist() == expected
    parts = [PolygonIndex.build(scenes[k : k + 1], align=align[k : k + 1]) for k in range(4)]
    for index in (PolygonIndex.cat(parts), PolygonIndex.cat([parts[0], PolygonIndex.cat(parts[1:])]),
                  PolygonIndex.cat(whole.split())):
        assert index.store is not None and index.polygon_valid.tolist() == whole.polygon_valid.tolist()
        assert index.contains(points).tolist() == expected
    # a split part is that scene's own index, here reading the whole batch's rows
    third = whole.split()[3]
    assert third.polygon_valid.shape == (1, 2) and third.num_strips.tolist() == whole.num_strips[3:].tolist()
    assert third.contains(points[3:]).tolist() == [[row[:2] for row in expected[3]]]
    with pytest.raises(ValueError, match="strip_height"):
        PolygonIndex.cat([parts[0], PolygonIndex.build([[SQUARE]], strip_height=1.0)])
    with pytest.raises(ValueError, match="indexes"):
        PolygonIndex.cat([])


def test_store_shares_rows_and_grows_without_changing_answers():
    scenes, align, points, expected = _four_scenes()
    store = IndexStore()
    first = store.add(PolygonIndex.build(scenes[:2], align=align[:2]))
    rows_before = first.row_bounds
    many = [store.add(PolygonIndex.build([[SQUARE + k]])) for k in range(300)]   # forces the arrays to grow
    later = store.add(PolygonIndex.build(scenes[2:], align=align[2:]))
    assert store.num_scenes == 304 and first.row_bounds is rows_before       # earlier indexes keep their arrays
    assert later.row_bounds.data_ptr() != rows_before.data_ptr()
    batch = PolygonIndex.cat([first, later])
    assert batch.row_bounds is later.row_bounds                               # no row copied
    assert batch.contains(points).tolist() == expected
    inside_and_on_edge = torch.tensor([[[123.5, 123.5], [123.0, 123.5]]], dtype=F64)
    assert many[123].contains(inside_and_on_edge).tolist() == [[[True], [False]]]
    # a scene's rows are one run of places, sentinels included. Unit square, 0.25 m strips 0..4 (closed extents):
    # strips 0 and 4 hold a horizontal edge and both vertical ones (3 rows -> 4 places), strips 1..3 the 2 vertical
    first_row, count = many[0].row_ranges()
    assert count.tolist() == [4 + 3 * 2 + 4]
    with pytest.raises(ValueError, match="store"):
        store.add(PolygonIndex.build([[SQUARE]], dtype=torch.float32))


def test_index_without_polygons_answers_all_false():
    index = PolygonIndex.build([[], []], align=[0.5, 0.0])
    assert index.contains_bits(torch.zeros(2, 3, 2, dtype=F64)).tolist() == [[[0]] * 3] * 2


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    rng = np.random.default_rng(4)
    scenes = [_random_scene(rng, 7), _random_scene(rng, 3)]
    points = torch.tensor(np.stack([_query_points(rng, scene, 200)[:250] for scene in scenes]))
    index = PolygonIndex.build(scenes)
    expected = index.contains(points)
    out = index.to("cuda").contains(points.cuda())
    assert out.device.type == "cuda" and torch.equal(out.cpu(), expected)
