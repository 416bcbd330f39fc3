"""Op keys: round trip, uniqueness, coverage of every spec's ops, decomposition of each unit kind."""

from __future__ import annotations

import random

import pytest

from latency_tables.keys import OpKey, parse_op_key, space_ops, spec_ops, unit_ops
from search_spaces import UnitInfo, create_search_space, list_search_spaces

SHAPES = {"mel2d": (1, 40, 101), "wave1d": (1, 16000)}


@pytest.fixture(scope="module", params=list_search_spaces())
def space_and_ops(request):
    space = create_search_space(request.param)
    return space, SHAPES[request.param], space_ops(space, 10, SHAPES[request.param])


def test_every_key_round_trips_and_is_unique(space_and_ops):
    _, _, ops = space_and_ops
    keys = [op.key for op in ops]
    assert len(set(keys)) == len(ops)
    for op in ops:
        assert parse_op_key(op.key) == op


def test_every_op_of_random_specs_is_in_the_space_catalog(space_and_ops):
    space, shape, ops = space_and_ops
    rng = random.Random(3)
    checked = 0
    while checked < 300:
        spec = space.sample(rng)
        try:
            spec_ops_list = spec_ops(space, spec, 10, shape)
        except Exception:
            continue
        assert set(spec_ops_list) <= ops
        checked += 1
    for spec in (space.smallest(), space.largest()):
        assert set(spec_ops(space, spec, 10, shape)) <= ops


def test_unit_decomposition_matches_runtime_fusion():
    ir = UnitInfo("ir", (16, 20, 51), (16, 20, 51), (3, 3), 1, expansion=4, se=True, residual=True)
    assert [op.key for op in unit_ops(ir)] == [
        "pw_16x20x51_64_relu",
        "dw_64x20x51_k3x3_s1_relu",
        "se_64x20x51",
        "pw_64x20x51_16_linear_sum",
    ]
    ds = UnitInfo("ds", (32, 20, 51), (32, 10, 26), (5, 5), 2, se=False, residual=False)
    assert [op.key for op in unit_ops(ds)] == ["dw_32x20x51_k5x5_s2_relu", "pw_32x10x26_32_relu"]
    ds_res = UnitInfo("ds", (32, 10, 26), (32, 10, 26), (3, 3), 1, residual=True)
    assert [op.kind for op in unit_ops(ds_res)] == ["dw", "pw", "add"]  # ReLU before the add: not fusable
    conv1d = UnitInfo("conv", (16, 4000), (32, 1000), (3,), 1, pool=4)
    assert [op.key for op in unit_ops(conv1d)] == ["conv_16x4000_32_k3_s1_relu", "pool_32x4000_p4"]
    head = UnitInfo("head", (64, 5, 13), (10,), hidden=128)
    assert [op.key for op in unit_ops(head)] == ["head_64x5x13_c10_h128"]


def test_family_blanks_only_channels():
    a, b = parse_op_key("pw_16x20x51_64_relu"), parse_op_key("pw_24x20x51_96_relu")
    assert a.family == b.family and a.channel_fields == (16, 64)
    assert parse_op_key("pw_16x10x26_64_relu").family != a.family
    assert parse_op_key("head_64x5x13_c12").channel_fields == (64, 12)


@pytest.mark.parametrize(
    "bad", ["", "conv", "conv_16x20_32", "zz_1x2", "pw_16x20x51_64_relu_extra", "dw_16x20x51_k03x3_s1_relu"]
)
def test_invalid_keys_are_refused(bad):
    with pytest.raises(ValueError, match=r"valid op key|canonical op key"):
        parse_op_key(bad)


def test_unknown_kind():
    with pytest.raises(ValueError, match="unknown op kind"):
        OpKey("matmul", (1, 2))
