"""Benchmarks behind `eat-curate bench`: each prints figures and a ratio to a baseline run in the same process."""
