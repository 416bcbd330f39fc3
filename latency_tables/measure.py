"""End-to-end latency of a whole model: ONNX export, then ONNX Runtime (and optionally torch eager)."""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from common.onnx_export import export_onnx
from latency_tables.ort_timing import Timing, TimingConfig, time_model


def measure_onnx_latency(module: nn.Module, input_shape: tuple[int, ...], cfg: TimingConfig) -> Timing:
    """Latency of ``module`` at batch 1 in ONNX Runtime (CPU provider, full graph optimisation).

    Args:
        module: The model; exported in eval mode.
        input_shape: Per-example input shape, e.g. (1, 40, 101).
        cfg: Threads, warm-up and number of fresh sessions; at least 50 timed runs per session.
    """
    return time_model(export_onnx(module, input_shape), cfg.end_to_end(), optimization="all")


def measure_torch_latency(module: nn.Module, input_shape: tuple[int, ...], cfg: TimingConfig) -> Timing:
    """Latency of ``module`` at batch 1 in torch eager mode on the CPU (``cfg.threads`` threads)."""
    module = module.eval()
    previous = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    x = torch.randn(1, *input_shape)
    medians, p90s = [], []
    try:
        with torch.inference_mode():
            for _ in range(cfg.sessions):
                for _ in range(cfg.warmup):
                    module(x)
                times = np.empty(cfg.runs)
                for i in range(cfg.runs):
                    start = time.perf_counter_ns()
                    module(x)
                    times[i] = (time.perf_counter_ns() - start) / 1e6
                medians.append(float(np.median(times)))
                p90s.append(float(np.percentile(times, 90)))
    finally:
        torch.set_num_threads(previous)
    best = int(np.argmin(medians))
    return Timing(medians[best], float(np.median(medians)), p90s[best], tuple(medians))
