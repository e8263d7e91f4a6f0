"""roadloop environments: the built-in simulator (`envs.sim`), NAVSIM scoring (`envs.metrics`),
scene files (`envs.scene_file`) and the Gymnasium envs, registered here on import:

- `roadloop/Navsim-v1`: one-shot NAVSIM pseudo-simulation scored with PDMS (v1.1);
- `roadloop/Navsim-v2`: two-stage pseudo-simulation scored with EPDMS (v2.2);
- `roadloop/Bench2Drive-v0`: Bench2Drive closed loop at 20 Hz, one route per episode, leaderboard scoring.

All have a native vector entry point: `gymnasium.make_vec(id, num_envs=B)` steps one batch.
"""

from gymnasium.envs.registration import register, registry

for _version in (1, 2):
    _id = f"roadloop/Navsim-v{_version}"
    if _id not in registry:  # importing twice is harmless
        register(
            id=_id,
            entry_point="envs.navsim:NavsimEnv",
            vector_entry_point="envs.navsim:NavsimVectorEnv",
            kwargs={"version": _version},
        )  # no max_episode_steps: episodes always end by termination (1 or 2 steps), never truncate

if "roadloop/Bench2Drive-v0" not in registry:
    register(
        id="roadloop/Bench2Drive-v0",
        entry_point="envs.bench2drive.env:Bench2DriveEnv",
        vector_entry_point="envs.bench2drive.env:Bench2DriveVectorEnv",
    )  # no max_episode_steps: the env truncates itself at its tick cap (4000, `Failed - TickRuntime`)
