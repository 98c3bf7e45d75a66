"""Atelier core: datasets, checkpoints, jobs, models and playground, free of any UI code."""
