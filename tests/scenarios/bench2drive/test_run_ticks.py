"""Every Bench2Drive type runs in the built-in world (envs/bench2drive/world.py): 100+ ticks batched, finite,
with the Vanilla light preludes and the scenario actors behaving as their specs say."""

import numpy as np
import torch

from envs.bench2drive.route_scenario import Behaviour
from envs.bench2drive.world import world_init, world_step
from envs.sim.scene import LightStatus
from scenarios.bench2drive import B2D_SCENARIO_TYPES, build_route


def test_every_type_runs_120_ticks():
    routes = [build_route(name, 0) for name in B2D_SCENARIO_TYPES]
    static, state = world_init(routes)
    batch = len(routes)
    idle = torch.zeros(batch, 3, dtype=torch.float64)
    red_type = B2D_SCENARIO_TYPES.index("VanillaSignalizedTurnEncounterRedLight")
    red_route = routes[red_type]
    ego_light = next(i for i, light in enumerate(red_route.lights) if light.program.prelude)
    states = {}
    generator = torch.Generator().manual_seed(0)
    for tick in range(1, 121):
        state, view = world_step(static, state, idle, generator)
        assert torch.isfinite(view.ego_pose).all() and torch.isfinite(view.actor_pose).all()
        assert torch.isfinite(view.actor_speed).all()
        if tick in (60, 120):
            states[tick] = view
    assert (states[120].tick == 120).all()
    assert torch.allclose(states[120].ego_pose, static.route[:, 0])          # zero control: the ego stays
    # VanillaSignalizedTurnEncounterRedLight: red for 5 s, then green (held)
    assert states[60].light_state[red_type, ego_light] == int(LightStatus.RED)
    assert states[120].light_state[red_type, ego_light] == int(LightStatus.GREEN)
    # untriggered parked obstacles stay where they are; flows and background move
    accident = B2D_SCENARIO_TYPES.index("Accident")
    parked = [i for i, a in enumerate(routes[accident].actors) if a.behaviour == Behaviour.PARKED]
    assert (states[120].actor_speed[accident, parked] == 0).all()
    flows = B2D_SCENARIO_TYPES.index("SignalizedJunctionLeftTurn")
    moving = [i for i, a in enumerate(routes[flows].actors) if a.recycle]
    assert (states[120].actor_speed[flows, moving] > 1.0).any()


def test_a_driving_ego_triggers_the_scenarios():
    names = ("ParkingExit", "HazardAtSideLane", "HardBreakRoute")
    routes = [build_route(name, 1) for name in names]
    static, state = world_init(routes)
    drive = torch.tensor([[0.0, 0.6, 0.0]] * len(routes), dtype=torch.float64)
    active = np.zeros(len(routes), bool)
    for _ in range(200):
        state, view = world_step(static, state, drive)
        active |= view.scenario_active.numpy()
    assert active.all()                                     # every route passed its trigger point
    hazard = names.index("HazardAtSideLane")
    assert state.activated[hazard, :2].all()                # the bicycles started riding
