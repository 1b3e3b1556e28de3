"""Simulated device firmware."""
