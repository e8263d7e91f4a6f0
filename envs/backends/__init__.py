"""Scene sources other than the built-in generators: real NAVSIM/OpenScene logs (`openscene`) and the
nuPlan GeoPackage maps they reference (`nuplan_map`, on top of the `gpkg` container)."""
