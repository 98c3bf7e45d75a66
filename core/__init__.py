"""Atelier core: datasets, checkpoints, jobs, models and playground, free of any UI code."""
import os

# torch's CPU threads (OpenMP) spin while they wait for each other by default. The app trains in one
# thread while another renders the Playground, beside a browser, on a laptop: with more busy threads
# than cores, spinning made steps 5-50x slower (docs/benchmarks.md, "threads on a shared CPU").
# Sleeping instead costs about a quarter on an idle 2-core machine (a dedicated training machine may
# set OMP_WAIT_POLICY=ACTIVE). Set before torch loads; a user's own OMP_WAIT_POLICY wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
