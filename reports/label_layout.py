"""Point labels that do not overlap each other, the markers or the axes' edge, and that belong to their point.

Each label tries positions around its point, a near ring and a farther one with a visible leader
line, and keeps the cheapest: a box cut by the axes' edge costs most, then a box nearer to another
labelled point than to its own (a reader takes a label for the nearest labelled marker's) or
covering labels placed before it, then the area of markers it covers, then its distance from the
point (near first, right first on a tie). Call
after the axes' limits are final (the figure is drawn once to measure).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from matplotlib.axes import Axes
from matplotlib.text import Text
from matplotlib.transforms import Bbox

MARKER_RADIUS_PT = 3.5
# leader lines from label to point; patchA None skips clipping the line to the text box (slow, and not needed)
LEADER = {"arrowstyle": "-", "lw": 0.4, "color": "0.45", "shrinkA": 0, "shrinkB": 3, "patchA": None}
OFFSETS_PT = [(6, 3), (6, -9), (-6, 3), (-6, -9), (0, 9), (0, -14), (12, 12), (-12, -16),
              (20, 14), (20, -22), (-20, 14), (-20, -22), (0, 24), (0, -30)]  # fmt: skip
# costs of a position, in points squared covered: a label cut by the axes' edge counts more than anything;
# covering another label (unreadable) LABEL_WEIGHT times its area, more than sitting nearer to another labelled
# point than to its own (read as that point's), more than covering a marker
OUTSIDE_COST = 1e6
LABEL_WEIGHT = 10.0
FOREIGN_COST = 150.0
DISTANCE_COST = 1.0  # per point of offset: a far position (a long leader line) only where the near ones are worse


def _overlap(a: Bbox, b: Bbox) -> float:
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(0.0, width) * max(0.0, height)


def _distance(box: Bbox, x: float, y: float) -> float:
    """Display distance from the point ``(x, y)`` to the nearest point of ``box`` (0 inside it)."""
    dx = max(box.x0 - x, 0.0, x - box.x1)
    dy = max(box.y0 - y, 0.0, y - box.y1)
    return (dx * dx + dy * dy) ** 0.5


def _foreign(box: Bbox, own: tuple[float, float], markers: Sequence[tuple[float, float]]) -> bool:
    """Whether another marker is nearer to ``box`` than its own point ``own`` (display coordinates)."""
    mine = _distance(box, *own)
    return any(_distance(box, mx, my) < mine for mx, my in markers if (mx, my) != own)


def place_labels(
    ax: Axes,
    points: Sequence[tuple[float, float, str]],
    fontsize: float = 7.0,
    colour: str = "0.1",
    obstacles: Sequence[tuple[float, float]] = (),
    drawn: bool = False,
) -> None:
    """Annotate ``(x, y, text)`` points of ``ax`` (data coordinates) without overlaps where possible.

    Args:
        ax: The axes, with final limits.
        points: Label anchors and texts.
        fontsize: Label size in points.
        colour: Label colour.
        obstacles: Other markers (data coordinates) labels should not cover; the anchors count too.
        drawn: The figure was drawn since its layout last changed (skips drawing it again to measure).
    """
    if not points:
        return
    canvas = ax.get_figure(root=True).canvas
    if not drawn:
        canvas.draw()
    renderer = canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    pt2 = renderer.points_to_pixels(1.0) ** 2  # display pixels squared per point squared
    radius = MARKER_RADIUS_PT * renderer.points_to_pixels(1.0)
    anchors = [(x, y) for x, y, _ in points] + list(obstacles)
    markers = [(float(px), float(py)) for px, py in ax.transData.transform(anchors)]
    dots = [Bbox.from_extents(px - radius, py - radius, px + radius, py + radius) for px, py in markers]
    labelled = markers[: len(points)]  # the markers a label could be taken for: the other labelled points
    boxes: list[list[Bbox]] = []  # per label, the box of each position in OFFSETS_PT
    alone: list[list[float]] = []  # per label and position, the cost that does not depend on the other labels
    for (x, y, text), own in zip(points, labelled, strict=True):
        boxes.append([]), alone.append([])
        for dx, dy in OFFSETS_PT:
            note = _annotate(ax, x, y, text, dx, dy, fontsize, colour)
            note.update_positions(renderer)
            box = Text.get_window_extent(note, renderer)  # the text alone, not its leader line
            note.remove()
            outside = box.x0 < frame.x0 or box.x1 > frame.x1 or box.y0 < frame.y0 or box.y1 > frame.y1
            cost = sum(_overlap(box, dot) for dot in dots) / pt2 + DISTANCE_COST * math.hypot(dx, dy)
            cost += (OUTSIDE_COST if outside else 0.0) + (FOREIGN_COST if _foreign(box, own, labelled) else 0.0)
            boxes[-1].append(box), alone[-1].append(cost)
    chosen = _arrange(boxes, alone, pt2)
    for (x, y, text), k in zip(points, chosen, strict=True):
        _annotate(ax, x, y, text, *OFFSETS_PT[k], fontsize, colour)


def _annotate(ax: Axes, x: float, y: float, text: str, dx: float, dy: float, fontsize: float, colour: str):
    ha = "left" if dx > 0 else "right" if dx < 0 else "center"
    return ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize, ha=ha,
                       va="bottom", color=colour, annotation_clip=True, arrowprops=LEADER)  # fmt: skip


def _arrange(boxes: list[list[Bbox]], alone: list[list[float]], pt2: float, rounds: int = 6) -> list[int]:
    """The position of each label: greedy in order, then each label in turn moved to its best given the others.

    Covering another label costs ``LABEL_WEIGHT`` times the area covered; stops when no label moves.
    """

    def cost(i: int, k: int, chosen: list[int | None]) -> float:
        others = sum(_overlap(boxes[i][k], boxes[j][c]) for j, c in enumerate(chosen) if j != i and c is not None)
        return alone[i][k] + LABEL_WEIGHT * others / pt2

    chosen: list[int | None] = [None] * len(boxes)
    for i in range(len(boxes)):
        chosen[i] = min(range(len(boxes[i])), key=lambda k: cost(i, k, chosen))
    for _ in range(rounds):
        moved = False
        for i in range(len(boxes)):
            best = min(range(len(boxes[i])), key=lambda k: cost(i, k, chosen))
            if cost(i, best, chosen) < cost(i, chosen[i], chosen):
                chosen[i], moved = best, True
        if not moved:
            break
    return [int(k) for k in chosen]


@dataclass
class LabelJob:
    """Labels to place on one axes once the figure's layout is final (after legends and colour bars).

    Attributes:
        ax: The axes.
        points: ``(x, y, text)`` in data coordinates.
        obstacles: Other markers the labels should not cover.
        fontsize: Label size in points.
    """

    ax: Axes
    points: list[tuple[float, float, str]]
    obstacles: list[tuple[float, float]] = field(default_factory=list)
    fontsize: float = 6.5


def place_all(jobs: Sequence[LabelJob]) -> None:
    """Run :func:`place_labels` for every job, in order, drawing the figure once.

    Labels stay inside their axes, so placing them does not move the layout.
    """
    jobs = [job for job in jobs if job.points]
    if jobs:
        jobs[0].ax.get_figure(root=True).canvas.draw()
    for job in jobs:
        place_labels(job.ax, job.points, fontsize=job.fontsize, obstacles=job.obstacles, drawn=True)
