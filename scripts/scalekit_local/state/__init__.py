"""The state: one store (store.py) of records (records.py), filled from the seed (seed.py) and kept
across restarts with --persist (persistence.py)."""
