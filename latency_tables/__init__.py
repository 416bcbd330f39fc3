"""Latency on devices: op keys, per-device lookup tables, end-to-end measurement and validated prediction."""
