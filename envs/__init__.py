"""roadloop environments: the built-in simulator (`envs.sim`), NAVSIM scoring (`envs.metrics`),
and scene files (`envs.scene_file`). Gymnasium ids are registered here on import."""
