"""`sparsenets report`: run folders → one Markdown page and one static HTML page with tables and plots.

Inside: `runs` (find and read finished run folders), `groups` (runs of one experiment aggregated; the lead
experiment and each experiment's headline metrics), `fragments` (an experiment's report.md and figures arranged:
claim table and main figure first, no verdict for smoke runs), `plots` (learning curves), `safe` (run text
escaped, never HTML), `page` (HTML page and style), `render` (the page: overview and sections).
"""

from sparsenets.report.groups import HEADLINES, LEAD, Group, group_runs
from sparsenets.report.plots import plot_curves
from sparsenets.report.render import write_report
from sparsenets.report.runs import Run, find_runs, flatten, load_run, read_jsonl

__all__ = [
    "HEADLINES",
    "LEAD",
    "Group",
    "Run",
    "find_runs",
    "flatten",
    "group_runs",
    "load_run",
    "plot_curves",
    "read_jsonl",
    "write_report",
]
