"""Shared vocabulary of postop: metric catalogue, wire format, flags and settings.

Every other folder may import this one; it imports nothing of ours.
"""
