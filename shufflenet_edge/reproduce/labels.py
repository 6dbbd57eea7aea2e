"""Point labels that do not overlap: each label tries positions around its point, nearest
first, and takes the first whose box touches no label placed before it and no other point."""
from __future__ import annotations

# Offsets in points, nearest first: right, left, above, below, the diagonals, then further out.
_OFFSETS = [(dx * r, dy * r) for r in (1, 2, 3, 4, 6)
            for dx, dy in ((4, 3), (4, -9), (-4, 3), (-4, -9), (0, 6), (0, -12), (8, 9), (-8, 9), (8, -15), (-8, -15))]


def _overlaps(a, b, pad: float = 1.0) -> bool:
    return not (a.x1 + pad <= b.x0 or b.x1 + pad <= a.x0 or a.y1 + pad <= b.y0 or b.y1 + pad <= a.y0)


def place_labels(ax, points: list[tuple[float, float, str]], fontsize: int = 7) -> list:
    """Annotate (x, y, text) points on ``ax`` without overlaps; returns the annotations."""
    from matplotlib.transforms import Bbox

    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    marks = []
    for x, y, _ in points:  # a small box around every point: labels keep off the markers too
        px, py = ax.transData.transform((x, y))
        marks.append(Bbox.from_extents(px - 3, py - 3, px + 3, py + 3))
    placed, boxes = [], []
    for i, (x, y, text) in enumerate(points):
        best = None
        for dx, dy in _OFFSETS:
            ha = "left" if dx > 0 else "right" if dx < 0 else "center"
            ann = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize, ha=ha)
            box = ann.get_window_extent(renderer)
            clash = any(_overlaps(box, b) for b in boxes) or any(
                _overlaps(box, m, 0.0) for j, m in enumerate(marks) if j != i)
            if not clash:
                best = (ann, box)
                break
            ann.remove()
        if best is None:  # everything near is taken: the last, furthest spot, with a leader line
            dx, dy = _OFFSETS[-1]
            ann = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize,
                              arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "0.5"})
            best = (ann, ann.get_window_extent(renderer))
        placed.append(best[0])
        boxes.append(best[1])
    return placed


def label_boxes(fig) -> list:
    """Window boxes of every annotation in ``fig`` (for the no-overlap test)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    from matplotlib.text import Annotation

    return [t.get_window_extent(renderer) for ax in fig.axes for t in ax.texts if isinstance(t, Annotation)]


def any_overlap(boxes) -> list[tuple[int, int]]:
    return [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes)) if _overlaps(boxes[i], boxes[j], 0.0)]
