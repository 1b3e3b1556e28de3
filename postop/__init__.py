"""postop."""
