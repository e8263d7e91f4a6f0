"""Scene sources other than the built-in generators: real datasets and their maps (OpenScene/NAVSIM logs
with nuPlan GPKG maps in `openscene` / `nuplan_map` / `gpkg`; Bench2Drive routes and towns)."""
