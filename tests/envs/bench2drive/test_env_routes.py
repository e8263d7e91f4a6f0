"""envs.bench2drive.env_routes: single-route tables stacked into a batch equal the batch built directly, rows
replaced in place, and the route set's id checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from envs.bench2drive import criteria
from envs.bench2drive.env import Bench2DriveConfig
from envs.bench2drive.env_routes import RouteSource, builtin_route, put_rows
from envs.bench2drive.observation import ObservationConfig, route_table


def test_stacked_contexts_equal_a_batched_context():
    prepared = [builtin_route(r, ObservationConfig(), "cpu", 0.05) for r in (0, 5)]
    stacked = put_rows(None, [p.context for p in prepared], None)
    _assert_same(stacked, criteria.criteria_context([p.scenario for p in prepared]))
    # replacing row 0 of the batch with route 5 gives the context of (5, 5)
    swapped = put_rows(stacked, [prepared[1].context], [0])
    _assert_same(swapped, criteria.criteria_context([prepared[1].scenario] * 2))


def _assert_same(a, b):
    for name in a.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        if hasattr(x, "__dataclass_fields__"):
            _assert_same(x, y)
        elif isinstance(x, torch.Tensor):
            assert x.shape == y.shape, name
            torch.testing.assert_close(x, y, msg=name)
        else:
            assert x == y, name


def test_put_rows_in_place_writes_into_the_batch_when_the_rows_fit():
    prepared = [builtin_route(r, ObservationConfig(), "cpu", 0.05) for r in (0, 5)]
    batch = put_rows(None, [p.context for p in prepared], None)
    assert batch.route_xy.data_ptr() != prepared[0].context.route_xy.data_ptr()    # the batch owns its tensors
    route_xy = batch.route_xy
    same = put_rows(batch, [prepared[1].context], [0], inplace=True)                # route 5 fits its own padding
    assert same.route_xy is route_xy and same.lanes.candidates is batch.lanes.candidates
    _assert_same(same, criteria.criteria_context([prepared[1].scenario] * 2))
    assert same.route_xy_c.data_ptr() == route_xy.data_ptr()                         # derived views follow
    # a single-route batch is too small for route 5 (other padded sizes): re-padded, the old batch untouched
    small = put_rows(None, [prepared[0].context], None)
    before = small.route_xy.clone()
    grown = put_rows(small, [prepared[1].context], [0], inplace=True)
    assert grown.route_xy is not small.route_xy and torch.equal(small.route_xy, before)
    _assert_same(grown, criteria.criteria_context([prepared[1].scenario]))


def test_stacked_route_tables_pad_their_routes():
    prepared = [builtin_route(r, ObservationConfig(), "cpu", 0.05) for r in (0, 5)]
    stacked = put_rows(None, [p.table for p in prepared], None)
    direct = route_table([p.scenario for p in prepared])
    assert stacked.targets.shape == direct.targets.shape
    for name in ("targets", "target_command", "speed_limit", "light_valid", "stop_valid"):
        torch.testing.assert_close(getattr(stacked, name), getattr(direct, name), msg=name)


def test_route_source_checks_and_draws_ids():
    source = RouteSource(Bench2DriveConfig(routes=(3, 4)))
    assert source.check(4) == 4 and len(source) == 2
    with pytest.raises(ValueError, match="route_id=5"):
        source.check(5)
    assert set(source.draw(np.random.default_rng(0), 20)) == {3, 4}
    with pytest.raises(ValueError, match="routes=\\[999\\]"):
        RouteSource(Bench2DriveConfig(routes=(1, 999)))
