"""Bench2Drive's 44 scenario types re-implemented on the built-in procedural towns (from the facts of spec
bench2drive.md §2, never from its route files or code), the 220-route built-in set and its route XML.

Each type is a module-level builder registered in the shared `scenarios` registry (`benchmark="bench2drive"`,
its abilities, the map kinds it drives on); `build_route(type, seed)` gives a seeded `RouteScenario`.
"""

from __future__ import annotations

B2D_SCENARIO_TYPES: tuple[str, ...] = (
    "Accident", "AccidentTwoWays", "ParkedObstacle", "ParkedObstacleTwoWays", "ConstructionObstacle",
    "ConstructionObstacleTwoWays", "HazardAtSideLane", "HazardAtSideLaneTwoWays", "VehicleOpensDoorTwoWays",
    "ParkingCutIn", "StaticCutIn", "HardBreakRoute", "ControlLoss", "DynamicObjectCrossing",
    "ParkingCrossingPedestrian", "PedestrianCrossing", "VehicleTurningRoute", "VehicleTurningRoutePedestrian",
    "OppositeVehicleRunningRedLight", "OppositeVehicleTakingPriority", "BlockedIntersection",
    "YieldToEmergencyVehicle", "InvadingTurn", "EnterActorFlow", "HighwayExit", "MergerIntoSlowTraffic",
    "MergerIntoSlowTrafficV2", "InterurbanActorFlow", "InterurbanAdvancedActorFlow", "HighwayCutIn", "ParkingExit",
    "SequentialLaneChange", "SignalizedJunctionLeftTurn", "NonSignalizedJunctionLeftTurn",
    "SignalizedJunctionRightTurn", "NonSignalizedJunctionRightTurn", "SignalizedJunctionLeftTurnEnterFlow",
    "NonSignalizedJunctionLeftTurnEnterFlow", "CrossingBicycleFlow", "T_Junction", "VanillaNonSignalizedTurn",
    "VanillaNonSignalizedTurnEncounterStopsign", "VanillaSignalizedTurnEncounterGreenLight",
    "VanillaSignalizedTurnEncounterRedLight",
)
"""The 44 types in the order of the spec's table (§2)."""

# importing the type modules registers the 44 types
from scenarios.bench2drive import crossings, cut_ins, give_way, junction_flows  # noqa: E402,F401
from scenarios.bench2drive import merges, obstacles, turns  # noqa: E402,F401
from scenarios.bench2drive.routes import (  # noqa: E402,F401
    BuiltinRoute, build_builtin_route, build_route, builtin_route_set, write_route_xml,
)
