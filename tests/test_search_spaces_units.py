"""trace() and build_unit(): the unit list is exactly the built model, unit by unit."""

from __future__ import annotations

import itertools
import random
import re

import pytest
import torch

from search_spaces import build_unit, create_search_space, list_search_spaces, profile, trace

N_CLASSES = 5
INPUT_SHAPES = {"logmel": (1, 40, 101), "waveform": (1, 16000)}


def _specs(name: str):
    space = create_search_space(name)
    rng = random.Random(11)
    return [space.smallest(), *(space.sample(rng) for _ in range(6))]


@pytest.mark.parametrize("name", list_search_spaces())
def test_units_match_the_model(name):
    space = create_search_space(name)
    shape = INPUT_SHAPES[space.input_kind]
    for spec in _specs(name):
        units = trace(spec, N_CLASSES, shape)
        model = space.build(spec, N_CLASSES, shape)
        modules = [model.stem, *model.blocks, model.head]
        assert len(modules) == len(units)
        assert (units[0].kind, units[-1].kind) == ("stem", "head")
        assert sum(u.params for u in units) == sum(p.numel() for p in model.parameters())
        for unit, module in zip(units, modules, strict=True):
            assert repr(build_unit(unit)) == repr(module)
            assert sum(p.numel() for p in module.parameters()) == unit.params
        for a, b in itertools.pairwise(units):
            assert a.out_shape == b.in_shape


@pytest.mark.parametrize("name", list_search_spaces())
def test_each_unit_alone_gives_the_traced_shape(name):
    shape = INPUT_SHAPES[create_search_space(name).input_kind]
    for spec in _specs(name):
        for unit in trace(spec, N_CLASSES, shape):
            with torch.no_grad():
                out = build_unit(unit).eval()(torch.zeros(1, *unit.in_shape))
            assert tuple(out.shape[1:]) == unit.out_shape, unit


@pytest.mark.parametrize("name", list_search_spaces())
def test_unit_macs_sum_to_the_fvcore_count(name):
    shape = INPUT_SHAPES[create_search_space(name).input_kind]
    for spec in _specs(name)[:4]:
        analytic = sum(u.macs for u in trace(spec, N_CLASSES, shape))
        assert analytic == round(profile(spec, N_CLASSES, shape).macs_m * 1e6)


@pytest.mark.parametrize("name", list_search_spaces())
def test_unit_activations_count_the_maps_its_convolutions_write(name):
    from search_spaces.blocks import SqueezeExcite

    shape = INPUT_SHAPES[create_search_space(name).input_kind]
    for spec in _specs(name)[:4]:
        for unit in trace(spec, N_CLASSES, shape)[:-1]:  # the head writes vectors: left out
            module, written = build_unit(unit).eval(), []
            squeeze = {id(m) for se in module.modules() if isinstance(se, SqueezeExcite) for m in se.modules()}
            hooks = [
                m.register_forward_hook(lambda _m, _i, out, seen=written: seen.append(out.numel()))
                for m in module.modules()
                if isinstance(m, torch.nn.Conv1d | torch.nn.Conv2d) and id(m) not in squeeze
            ]
            with torch.no_grad():
                module(torch.zeros(1, *unit.in_shape))
            for hook in hooks:
                hook.remove()
            assert unit.activations == sum(written), unit


def test_residual_rule():
    space = create_search_space("mel2d")
    spec = space.parse("c16k3s1-ds16k3s1-ds32k3s1-ir32k3s2e4r2-c32k3s1-h0d0")
    units = trace(spec, N_CLASSES, (1, 40, 101))
    by_kind = [(u.kind, u.stride, u.residual) for u in units[1:-1]]
    assert by_kind == [("ds", 1, True), ("ds", 1, False), ("ir", 2, False), ("ir", 1, True), ("conv", 1, False)]


def test_equal_units_build_identical_structures():
    space = create_search_space("mel2d")
    spec = space.parse("c16k3s2-ir32k5s2e6r3se-ds32k3s1r2-c64k3s2-h64d10")
    units = trace(spec, N_CLASSES, (1, 40, 101))
    assert units[2] == units[3]  # the 2nd and 3rd block of stage 1
    assert units[2].key == "ir_32x10x26_32x10x26_k5x5_s1_e6_se_res"
    a, b = build_unit(units[2]), build_unit(units[3])
    assert repr(a) == repr(b)
    assert [t.shape for t in a.state_dict().values()] == [t.shape for t in b.state_dict().values()]


@pytest.mark.parametrize("name", list_search_spaces())
def test_unit_keys_identify_module_structure(name):
    space = create_search_space(name)
    shape = INPUT_SHAPES[space.input_kind]
    rng = random.Random(5)
    structure_of: dict[str, str] = {}
    for _ in range(40):
        for unit in trace(space.sample(rng), N_CLASSES, shape):
            assert all(ch.isalnum() or ch == "_" for ch in unit.key), unit.key
            module = re.sub(r"Dropout\(p=[0-9.]+", "Dropout(", repr(build_unit(unit)))  # not in the key
            structure = f"{unit.in_shape}{unit.out_shape}{module}"
            assert structure_of.setdefault(unit.key, structure) == structure
    assert len(structure_of) > 100
