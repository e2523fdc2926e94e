"""Runnable examples of the data layer."""
