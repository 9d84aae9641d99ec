"""Reproducible experiments: each module registers one or more with `sparsenets.runs.experiment`."""
