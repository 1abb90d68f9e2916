"""Continuous monitoring of a deployed model: prediction store, drift per window, reports, alerts."""
