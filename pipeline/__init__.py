"""Orchestration: the composed pipeline config and one stage function per CLI mode."""
