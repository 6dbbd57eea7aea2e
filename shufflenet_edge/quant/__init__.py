"""int8 tools beyond the export recipes: cross-CPU checks, per-layer sensitivity, mixed precision."""
