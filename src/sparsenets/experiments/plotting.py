"""Figure helpers the experiments share (the report embeds their figures as they are, so they must read well)."""

from __future__ import annotations

import math
from typing import Any


def plain_log_ticks(axis: Any) -> None:
    """Readable labels on a log axis: plain numbers (0.95, 30, 2000), never 3×10^1 or 1e+00, few enough that
    they never collide. Call it after the data is drawn: the ticks follow the span shown then.

    Within half a decade the ticks are evenly spaced round numbers, within one 1-2-3-5 × 10^k, up to three
    decades 1-2-5 × 10^k, beyond that the decades alone.

    Args:
        axis: a matplotlib axis with a log scale (`ax.xaxis` or `ax.yaxis`).
    """
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    lo, hi = sorted(axis.axes.get_xlim() if axis.axis_name == "x" else axis.axes.get_ylim())
    decades = math.log10(hi / lo) if lo > 0 and hi > 0 else math.inf
    if decades < 0.5:  # nearly linear here: evenly spaced round numbers
        axis.set_major_locator(MaxNLocator(nbins=4))
    elif decades < 1:
        axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 3.0, 5.0)))
    elif decades <= 3:
        axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    else:
        axis.set_major_locator(LogLocator())
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())
