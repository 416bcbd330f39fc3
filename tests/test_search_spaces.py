"""Contract tests over every registered search space: build, forward, genome <-> spec <-> string, errors."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from deap import tools

from common.errors import UserError
from search_spaces import (
    ArchSpec,
    SearchSpace,
    create_search_space,
    list_search_spaces,
    profile,
    register_search_space,
    spec_from_dict,
)

N_CLASSES = 7
INPUT_SHAPES = {"logmel": (1, 40, 101), "waveform": (1, 16000)}
SPACES = list_search_spaces()
CASES = ["smallest", "largest", *range(20)]


def _spec(space: SearchSpace, case: str | int) -> ArchSpec:
    if case == "smallest":
        return space.smallest()
    if case == "largest":
        return space.largest()
    return space.sample(random.Random(1000 + int(case)))


def test_both_spaces_are_registered():
    assert {"mel2d", "wave1d"} <= set(SPACES)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", SPACES)
def test_build_forward_contract(name, case):
    space = create_search_space(name)
    spec = _spec(space, case)
    shape = INPUT_SHAPES[space.input_kind]
    torch.manual_seed(0)
    model = space.build(spec, N_CLASSES, shape).eval()
    with torch.no_grad():
        out = model(torch.randn(2, *shape))
    assert out.shape == (2, N_CLASSES)
    assert not torch.isnan(out).any(), f"NaN in the output of {spec}"
    assert sum(p.numel() for p in model.parameters()) == profile(spec, N_CLASSES, shape).params
    assert model.arch == str(spec)


@pytest.mark.parametrize("name", SPACES)
def test_training_step_gives_finite_gradients(name):
    space = create_search_space(name)
    shape = INPUT_SHAPES[space.input_kind]
    rng = random.Random(2)
    samples = (space.sample(rng) for _ in range(100))
    cheap = [s for s in samples if sum(u.macs for u in space.trace(s, N_CLASSES, shape)) < 30e6][:3]
    for spec in [space.smallest(), *cheap]:
        torch.manual_seed(0)
        model = space.build(spec, N_CLASSES, shape).train()
        loss = torch.nn.functional.cross_entropy(model(torch.randn(4, *shape)), torch.arange(4) % N_CLASSES)
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters()), spec


@pytest.mark.parametrize("name", SPACES)
def test_smallest_is_smaller_than_largest(name):
    space = create_search_space(name)
    shape = INPUT_SHAPES[space.input_kind]
    small, large = (
        sum(u.params for u in space.trace(s, N_CLASSES, shape)) for s in (space.smallest(), space.largest())
    )
    assert small < large
    assert space.decode([0] * len(space.genes)) is not None


@pytest.mark.parametrize("name", SPACES)
def test_string_round_trip_on_1000_random_genomes(name):
    space = create_search_space(name)
    rng = np.random.default_rng(0)
    text_of: dict[tuple[int, ...], str] = {}
    for _ in range(1000):
        genome = space.random_genome(rng)
        spec = space.decode(genome)
        text = str(spec)
        assert space.parse(text) == spec
        assert space.decode(space.encode(spec)) == spec
        assert space.canonical(genome) == space.encode(spec)
        assert all(ch.isalnum() or ch == "-" for ch in text), text
        text_of[tuple(space.canonical(genome))] = text
    assert len(set(text_of.values())) == len(text_of), "two canonical genomes share a string"


@pytest.mark.parametrize("name", SPACES)
def test_one_gene_changes_spec_iff_canonical_changes(name):
    """Changing any single gene: same canonical genome <=> same spec <=> same string."""
    space = create_search_space(name)
    rng = random.Random(1)
    for _ in range(50):
        genome = space.random_genome(rng)
        for i, bound in enumerate(space.gene_bounds):
            other = list(genome)
            other[i] = (genome[i] + rng.randint(1, bound)) % (bound + 1) if bound else 0
            same = space.canonical(other) == space.canonical(genome)
            assert (space.decode(other) == space.decode(genome)) == same
            assert (str(space.decode(other)) == str(space.decode(genome))) == same


def test_mel2d_inactive_genes_are_ignored():
    space = create_search_space("mel2d")
    names = space.gene_names
    genome = [0] * len(names)
    genome[names.index("n_stages")] = 0  # 3 stages
    genome[names.index("s1_block")] = 1  # ds: its expansion gene is inactive
    noisy = list(genome)
    for i, name in enumerate(names):
        if name.startswith(("s4_", "s5_")) or name == "s1_expansion":
            noisy[i] = space.gene_bounds[i]
    assert noisy != genome
    assert space.decode(noisy) == space.decode(genome)
    assert str(space.decode(noisy)) == str(space.decode(genome))
    assert space.canonical(noisy) == genome


@pytest.mark.parametrize("name", SPACES)
def test_deap_operators_keep_genomes_decodable(name):
    space = create_search_space(name)
    random.seed(3)
    a, b = space.random_genome(random.Random(4)), space.random_genome(random.Random(5))
    for _ in range(200):
        (a,) = tools.mutUniformInt(a, low=0, up=space.gene_bounds, indpb=0.2)
        a, b = tools.cxUniform(a, b, indpb=0.5)
        space.decode(a), space.decode(b)


@pytest.mark.parametrize("name", SPACES)
def test_sample_accepts_both_rng_kinds_deterministically(name):
    space = create_search_space(name)
    assert space.sample(random.Random(7)) == space.sample(random.Random(7))
    assert space.sample(np.random.default_rng(7)) == space.sample(np.random.default_rng(7))


def test_spec_dict_round_trip():
    space = create_search_space("wave1d")
    spec = space.sample(random.Random(0))
    assert spec_from_dict(spec.to_dict()) == spec


def test_waveform_model_takes_the_feature_layout():
    """``Features.batch`` yields (B, 1, 1, n_samples) for raw waveforms."""
    space = create_search_space("wave1d")
    spec = space.parse("c1d32k80s16p4-c1d32k3s1p4-c1d64k3s1p4-h0d20")
    assert space.trace(spec, 3, (1, 1, 16000)) == space.trace(spec, 3, (1, 16000))
    model = space.build(spec, 3, (1, 1, 16000)).eval()
    x = torch.randn(2, 1, 16000)
    assert torch.equal(model(x[:, :, None]), model(x))


# --- bad input ---------------------------------------------------------------------------------


def test_unknown_space_lists_known_ones():
    with pytest.raises(UserError, match=r"unknown search space 'nope'.*mel2d.*wave1d"):
        create_search_space("nope")


def test_registering_a_name_twice_raises():
    with pytest.raises(ValueError, match="registered twice"):

        @register_search_space
        class Again(type(create_search_space("mel2d"))):  # type: ignore[misc]
            pass


@pytest.mark.parametrize("name", SPACES)
def test_out_of_bounds_gene_names_gene_and_range(name):
    space = create_search_space(name)
    genome = [0] * len(space.genes)
    genome[2] = space.gene_bounds[2] + 1
    with pytest.raises(UserError, match=rf"gene 2 '{space.gene_names[2]}'.*range 0\.\.{space.gene_bounds[2]}"):
        space.decode(genome)
    genome[2] = -1
    with pytest.raises(UserError, match=space.gene_names[2]):
        space.decode(genome)


@pytest.mark.parametrize("name", SPACES)
def test_wrong_genome_length(name):
    space = create_search_space(name)
    with pytest.raises(UserError, match=f"has {len(space.genes)} genes, got {len(space.genes) - 1}"):
        space.decode([0] * (len(space.genes) - 1))


@pytest.mark.parametrize(
    ("shape", "axis"),
    [((1, 8, 101), "mel bins"), ((1, 40, 16), "frames")],
)
def test_mel2d_input_too_small(shape, axis):
    space = create_search_space("mel2d")
    spec = space.parse("c16k3s2-ds32k3s2-ds64k3s2-ds64k3s2-ds64k3s2-ir64k3s2e2-h0d0")  # 6 stride-2 layers
    with pytest.raises(UserError, match=rf"{axis}.*need at least 33 {axis}"):
        space.build(spec, N_CLASSES, shape)
    space.trace(spec, N_CLASSES, (1, 33, 33))  # exactly enough


def test_wave1d_input_too_small():
    space = create_search_space("wave1d")
    spec = space.parse("c1d32k80s16p4-c1d32k3s1p4-c1d64k3s1p4-h0d20")
    with pytest.raises(UserError, match=r"samples.*need at least 1008 samples"):
        space.build(spec, N_CLASSES, (1, 1000))


@pytest.mark.parametrize(("name", "shape"), [("mel2d", (1, 16000)), ("wave1d", (1, 40, 101)), ("mel2d", (1, 0, 5))])
def test_wrong_input_rank(name, shape):
    with pytest.raises(UserError, match="takes input_shape"):
        create_search_space(name).trace(create_search_space(name).smallest(), N_CLASSES, shape)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("c16k3s2-ds32k3s1r1-ds32k3s1-ds32k3s1-h0d0", "not in canonical form; write it as 'c16k3s2-ds32k3s1-"),
        ("c16k3s2-ds32k3s1e4-ds32k3s1-ds32k3s1-h0d0", "not in canonical form"),
        ("c17k3s2-ds32k3s1-ds32k3s1-ds32k3s1-h0d0", "17 is not a choice of gene 'stem_width'"),
        ("c16k3s2-ds32k3s1-ds32k3s1-h0d0", "not a choice of gene 'n_stages'"),
        ("c16k3s2-dw32k3s1-ds32k3s1-ds32k3s1-h0d0", "bad layer token 'dw32k3s1'"),
        ("c16k3s2-ds32k3s1-ds32k3s1-ds32k3s1", "must end with a head token"),
        ("c16k3s2-ds32k3s1r4-ds32k3s1-ds32k3s1-h0d0", "4 is not a choice of gene 's1_depth'"),
        ("c1d32k80s16p4-c1d32k3s1p4-c1d32k3s1p4-h0d20", "the stem must be a 'c' layer"),
    ],
)
def test_mel2d_parse_errors(text, match):
    with pytest.raises(UserError, match=match):
        create_search_space("mel2d").parse(text)


def test_wave1d_refuses_2d_layers():
    with pytest.raises(UserError, match="every layer must be a 'c1d' layer"):
        create_search_space("wave1d").parse("c16k3s2-c1d32k3s1p4-h0d0")


def test_spec_of_another_space_is_refused():
    wave = create_search_space("wave1d").smallest()
    with pytest.raises(UserError, match="belongs to space 'wave1d'"):
        create_search_space("mel2d").encode(wave)
