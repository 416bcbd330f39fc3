"""``size_kb`` is the deployable fp32 size: the weights after every BatchNorm is folded into its conv."""

from __future__ import annotations

import importlib
import itertools
import random

import numpy as np
import onnx
import pytest
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from search_spaces import (
    build_unit,
    create_search_space,
    deployable_size_kb,
    folded_param_count,
    get_baseline,
    list_baselines,
    list_search_spaces,
    profile,
    trace,
)

N_CLASSES = 12
INPUT_SHAPES = {"logmel": (1, 40, 101), "waveform": (1, 16000)}
CONVS = (nn.Conv1d, nn.Conv2d)
profile_mod = importlib.import_module("search_spaces.profile")  # the package's ``profile`` is the function
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def _cases() -> list[tuple[str, int | str]]:
    return [("mel2d", name) for name in list_baselines()] + [
        (space, i) for space in list_search_spaces() for i in range(20)
    ]


def _spec(space_name: str, case: int | str):
    if isinstance(case, str):
        return get_baseline(case)
    return create_search_space(space_name).sample(random.Random(f"{space_name}-{case}"))


def _randomise_batch_norms(model: nn.Module, seed: int) -> None:
    """Non-trivial running statistics and affine parameters, so a wrong fold would show."""
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, BATCH_NORMS):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
            module.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            module.bias.data.copy_(torch.randn(n, generator=gen) * 0.1)


def _fold_batch_norms(module: nn.Module) -> int:
    """Fold every BatchNorm into the conv just before it (torch's fuse_conv_bn_eval), in place."""
    folded = 0
    children = list(module.named_children())
    for (conv_name, conv), (bn_name, bn) in itertools.pairwise(children):
        if isinstance(conv, CONVS) and isinstance(bn, BATCH_NORMS):
            setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
            setattr(module, bn_name, nn.Identity())
            folded += 1
    for _, child in module.named_children():
        folded += _fold_batch_norms(child)
    return folded


def _cheap(spec, shape: tuple[int, ...]) -> bool:
    """Whether a forward pass is cheap (some random specs take seconds on this machine)."""
    return sum(u.macs for u in trace(spec, N_CLASSES, shape)) < 30e6


@pytest.fixture
def no_fvcore(monkeypatch):
    """profile() without its fvcore MAC count (0.1-2 s per spec; tested elsewhere): size_kb is untouched."""
    monkeypatch.setattr(profile_mod, "count_macs", lambda model, input_shape: 0)


@pytest.mark.parametrize(("space_name", "case"), _cases())
def test_size_kb_counts_the_weights_after_batch_norm_folding(space_name, case, no_fvcore):
    space = create_search_space(space_name)
    spec = _spec(space_name, case)
    shape = INPUT_SHAPES[space.input_kind]
    model = space.build(spec, N_CLASSES, shape).eval()
    _randomise_batch_norms(model, seed=len(str(spec)))
    n_batch_norms = sum(isinstance(m, BATCH_NORMS) for m in model.modules())
    check_outputs = _cheap(spec, shape)
    x = torch.randn(1, *shape)
    with torch.no_grad():
        expected_out = model(x) if check_outputs else None
        assert _fold_batch_norms(model) == n_batch_norms > 0
        assert not any(isinstance(m, BATCH_NORMS) for m in model.modules())
        if check_outputs:
            torch.testing.assert_close(model(x), expected_out, rtol=1e-4, atol=1e-4)  # a real fold
    folded = sum(p.numel() for p in model.parameters())

    result = profile(spec, N_CLASSES, shape)
    assert result.size_kb * 1024 / 4 == folded
    units = trace(spec, N_CLASSES, shape)
    assert deployable_size_kb(units) == result.size_kb
    assert sum(u.folded_params for u in units) == folded
    assert result.params == sum(u.params for u in units) > folded
    assert result.checkpoint_kb > result.size_kb  # the torch.save size is kept, under its own name
    assert folded_param_count(space.build(spec, N_CLASSES, shape)) == folded


@pytest.mark.parametrize("name", list_search_spaces())
def test_folded_params_match_each_unit_folded_alone(name):
    space = create_search_space(name)
    shape = INPUT_SHAPES[space.input_kind]
    for unit in trace(space.sample(random.Random(3)), N_CLASSES, shape):
        module = build_unit(unit).eval()
        _fold_batch_norms(module)
        assert sum(p.numel() for p in module.parameters()) == unit.folded_params, unit.key
        assert unit.size_bytes == 4 * unit.folded_params


def _onnx_float_initializers(model: nn.Module, shape: tuple[int, ...]) -> int:
    from latency_tables.layout import export_onnx  # TorchScript exporter, eval mode: Conv+BN folded

    graph = onnx.load_from_string(export_onnx(model, shape)).graph
    floats = [t for t in graph.initializer if t.data_type == onnx.TensorProto.FLOAT]
    return sum(int(np.prod(t.dims)) for t in floats)


def _onnx_cases() -> list[tuple[str, int | str]]:
    """The baselines and the first 4 random specs per space that are cheap to export (a traced forward)."""
    cases = [c for c in _cases() if isinstance(c[1], str)]
    for space in list_search_spaces():
        shape = INPUT_SHAPES[create_search_space(space).input_kind]
        cases += [c for c in _cases() if c[0] == space and c[1] in range(20) and _cheap(_spec(*c), shape)][:4]
    return cases


@pytest.mark.parametrize(("space_name", "case"), _onnx_cases())
def test_size_kb_equals_the_exported_onnx_weights(space_name, case):
    space = create_search_space(space_name)
    spec = _spec(space_name, case)
    shape = INPUT_SHAPES[space.input_kind]
    model = space.build(spec, N_CLASSES, shape)
    _randomise_batch_norms(model, seed=1)  # the exporter merges equal initializers (e.g. all-zero folded biases)
    size_kb = deployable_size_kb(trace(spec, N_CLASSES, shape))
    assert _onnx_float_initializers(model, shape) == size_kb * 1024 / 4


def test_an_unfoldable_batch_norm_is_refused():
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    with pytest.raises(ValueError, match="BatchNorm '1' does not follow a convolution"):
        folded_param_count(model)
    biased = nn.Sequential(nn.Conv2d(1, 3, 3, bias=True), nn.BatchNorm2d(3))
    assert folded_param_count(biased) == 9 * 3 + 3  # the conv's own bias absorbs the shift
