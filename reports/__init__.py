"""Reports: fronts, tables and plots computed from a run folder alone."""
