"""Experiment scripts and the tasks of the paper (environments, data)."""
