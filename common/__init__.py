"""Leaf utilities shared by every stage: user-facing errors, atomic file writes, stable hashing, config I/O."""
