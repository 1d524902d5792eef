"""Batch prediction on one device and the in-process scoring engine."""
