"""Data: canonical tables, the embedded default world, splits, the torch Dataset."""
