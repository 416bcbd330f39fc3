"""Point labels on crowded panels: inside the axes, clear of each other, and nearer to their own point than to
any other labelled one (a reader takes a label for the nearest labelled marker's)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.text import Text

from reports.label_layout import _foreign, place_labels


def _spread(rng: np.random.Generator, n: int, apart: float) -> np.ndarray:
    """``n`` points in [1, 9]^2 at least ``apart`` from each other (survivors are thinned by crowding distance)."""
    points: list[np.ndarray] = []
    while len(points) < n:
        p = rng.uniform(1, 9, 2)
        if all(np.hypot(*(p - q)) >= apart for q in points):
            points.append(p)
    return np.array(points)


def _scene(seed: int, apart: float = 1.5):
    """A 3.4 x 2.7 in panel (axes 0..10) of 40 faint candidates and 6 labelled survivors, as in pareto_frontier.

    ``apart``: the least distance between survivors (1.5 is about 25 pt; 0 lets them cluster).
    """
    rng = np.random.default_rng(seed)
    fig, ax = plt.subplots(figsize=(3.4, 2.7), dpi=100)
    background, labelled = rng.uniform(0, 10, (40, 2)), _spread(rng, 6, apart)
    ax.scatter(*background.T, s=14)
    ax.scatter(*labelled.T, s=70, marker="*")
    ax.set(xlim=(-0.5, 10.5), ylim=(-0.5, 10.5))
    points = [(x, y, f"nas-{i:06d}") for i, (x, y) in enumerate(labelled)]
    place_labels(ax, points, fontsize=6.5, obstacles=[tuple(p) for p in background])
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [Text.get_window_extent(note, renderer) for note in ax.texts]
    anchors = [tuple(p) for p in ax.transData.transform(labelled)]
    frame = ax.get_window_extent(renderer)
    return fig, boxes, anchors, frame


@pytest.mark.parametrize("seed", range(8))
def test_each_label_is_inside_the_axes_clear_of_the_others_and_nearest_its_own_point(seed):
    fig, boxes, anchors, frame = _scene(seed)
    try:
        assert len(boxes) == len(anchors) == 6
        for box, own in zip(boxes, anchors, strict=True):
            assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            assert not _foreign(box, own, anchors), "a label sits nearer to another labelled point than to its own"
        for i, a in enumerate(boxes):
            assert not any(a.overlaps(b) for b in boxes[i + 1 :]), "two labels overlap"
    finally:
        plt.close(fig)


@pytest.mark.parametrize("seed", range(4))
def test_clustered_survivors_labels_stay_inside_and_apart(seed):
    fig, boxes, _, frame = _scene(seed, apart=0.0)  # five stars within 12 pt cannot all be labelled unambiguously
    try:
        for i, box in enumerate(boxes):
            assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            assert not any(box.overlaps(b) for b in boxes[i + 1 :]), "two labels overlap"
    finally:
        plt.close(fig)


def test_a_free_spot_beside_the_point_is_taken_without_a_leader_line():
    fig, ax = plt.subplots(figsize=(3.4, 2.7), dpi=100)
    ax.scatter([5], [5])
    ax.set(xlim=(0, 10), ylim=(0, 10))
    place_labels(ax, [(5, 5, "alone")])
    (note,) = ax.texts
    assert note.get_position() == (6, 3) and note.get_horizontalalignment() == "left"  # the first, nearest spot
    plt.close(fig)
