"""Point labels that do not overlap each other, the markers or the axes' edge: a greedy choice of positions.

Each label tries eight positions around its point (right first) and keeps the first whose box
overlaps no marker and no label placed before it and stays inside the axes; when none is free,
the least overlapping one. Call after the axes' limits are final (the figure is drawn once to measure).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from matplotlib.axes import Axes
from matplotlib.text import Text
from matplotlib.transforms import Bbox

MARKER_RADIUS_PT = 3.5
# leader lines from label to point; patchA None skips clipping the line to the text box (slow, and not needed)
LEADER = {"arrowstyle": "-", "lw": 0.4, "color": "0.45", "shrinkA": 0, "shrinkB": 3, "patchA": None}
OFFSETS_PT = [(6, 3), (6, -9), (-6, 3), (-6, -9), (0, 9), (0, -14), (12, 12), (-12, -16)]


def _overlap(a: Bbox, b: Bbox) -> float:
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(0.0, width) * max(0.0, height)


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
    radius = MARKER_RADIUS_PT * renderer.points_to_pixels(1.0)
    anchors = [(x, y) for x, y, _ in points] + list(obstacles)
    placed: list[Bbox] = []
    for px, py in ax.transData.transform(anchors) if anchors else []:
        placed.append(Bbox.from_extents(px - radius, py - radius, px + radius, py + radius))
    for x, y, text in points:
        best = None
        for dx, dy in OFFSETS_PT:
            ha = "left" if dx > 0 else "right" if dx < 0 else "center"
            note = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize,
                               ha=ha, va="bottom", color=colour, annotation_clip=True, arrowprops=LEADER)  # fmt: skip
            note.update_positions(renderer)
            box = Text.get_window_extent(note, renderer)  # the text alone, not its leader line
            outside = box.x0 < frame.x0 or box.x1 > frame.x1 or box.y0 < frame.y0 or box.y1 > frame.y1
            cost = sum(_overlap(box, other) for other in placed) + (1e6 if outside else 0.0)
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, note, box)
            else:
                note.remove()
            if cost == 0:
                break
        placed.append(best[2])


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
