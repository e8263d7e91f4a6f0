"""What every trainer shares (style rule 12): evaluation rollouts, the run logger and checkpoints."""
