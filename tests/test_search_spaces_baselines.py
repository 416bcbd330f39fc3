"""The fixed baselines: names, sizes, round trips, and MACs cross-checked between fvcore and thop."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

from common.errors import UserError
from search_spaces import create_search_space, get_baseline, list_baselines, profile
from search_spaces.profile import count_macs

N_CLASSES = 12  # keyword spotting (Speech Commands 12-class), where DS-CNN comes from
SHAPE = (1, 40, 101)
MB = 1e6


def test_names():
    assert list_baselines() == ["tiny", "small", "medium", "dscnn"]


def test_unknown_baseline_lists_known_ones():
    with pytest.raises(UserError, match=r"unknown baseline 'huge'.*tiny, small, medium, dscnn"):
        get_baseline("huge")


@pytest.mark.parametrize("name", list_baselines())
def test_baselines_are_genomes_of_mel2d(name):
    space = create_search_space("mel2d")
    spec = get_baseline(name)
    assert spec.space == "mel2d"
    assert space.parse(str(spec)) == spec
    assert space.decode(space.encode(spec)) == spec


@pytest.mark.parametrize(("name", "target_mb"), [("tiny", 0.50), ("small", 1.25), ("medium", 2.84), ("dscnn", 0.09)])
def test_baseline_sizes_as_documented(name, target_mb):
    """The deployable fp32 sizes quoted in search_spaces/baselines.py (BatchNorm folded)."""
    size_mb = profile(get_baseline(name), N_CLASSES, SHAPE).size_kb * 1024 / MB
    assert size_mb == pytest.approx(target_mb, rel=0.02)


def test_dscnn_has_the_hello_edge_structure():
    """Stem 64 x (4x10) then 4 DS blocks of 64: counted by hand (no conv bias, BN = 2 per channel)."""
    stem = 4 * 10 * 64 + 2 * 64
    ds_block = (3 * 3 * 64 + 2 * 64) + (64 * 64 + 2 * 64)
    classifier = 64 * N_CLASSES + N_CLASSES
    result = profile(get_baseline("dscnn"), N_CLASSES, SHAPE)
    assert result.params == stem + 4 * ds_block + classifier
    # the reference Keras DS-CNN-S (same layers plus conv biases) has 23,756 trainable parameters
    assert result.params == pytest.approx(23_756, rel=0.15)


def _thop_ops_by_kind(model: nn.Module) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # thop's distutils LooseVersion
        from thop import profile as thop_profile

    model = copy.deepcopy(model).eval()  # thop adds (and in some versions leaves) total_ops buffers
    _, _, layers = thop_profile(model, inputs=(torch.zeros(1, *SHAPE),), verbose=False, ret_layer_info=True)
    ops = {"conv_linear": 0.0, "bn": 0.0}

    def walk(info: dict, prefix: str) -> None:
        for name, (layer_ops, _, children) in info.items():
            module = model.get_submodule(prefix + name)
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                ops["conv_linear"] += layer_ops
            elif isinstance(module, nn.BatchNorm2d):
                ops["bn"] += layer_ops
            walk(children, f"{prefix}{name}.")

    walk(layers, "")
    return ops


@pytest.mark.parametrize("name", list_baselines())
def test_fvcore_and_thop_agree_on_conv_and_linear_macs(name):
    from fvcore.nn import FlopCountAnalysis

    model = create_search_space("mel2d").build(get_baseline(name), N_CLASSES, SHAPE).eval()
    thop_ops = _thop_ops_by_kind(model)
    assert count_macs(model, SHAPE) == thop_ops["conv_linear"]
    assert "total_ops" not in str(model.state_dict().keys())  # profiled a copy
    # the documented difference: batch-norm is 1 op per element in fvcore, 2 in thop (we count neither)
    fv_bn = FlopCountAnalysis(model, torch.zeros(1, *SHAPE)).unsupported_ops_warnings(False).by_operator()["batch_norm"]
    assert thop_ops["bn"] == 2 * fv_bn
