"""`sparsenets report`: run folders → one Markdown page and one static HTML page with tables and plots.

Inside: `runs` (find finished run folders, flatten metrics, read logs), `plots` (learning curves), `render`
(the page: sections per run, Markdown and HTML).
"""

from sparsenets.report.plots import plot_curves
from sparsenets.report.render import write_report
from sparsenets.report.runs import find_runs, flatten, read_jsonl

__all__ = ["find_runs", "flatten", "plot_curves", "read_jsonl", "write_report"]
