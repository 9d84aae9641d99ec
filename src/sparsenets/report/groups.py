"""Runs → sections: repeated runs of one experiment aggregated, the lead experiment first, each with a headline.

Both rules are data, not page code: `LEAD` names the experiments that open the page (the comparison), and
`HEADLINES` names each experiment's headline metrics (shell patterns over the flattened metric keys).
"""

from __future__ import annotations

import fnmatch
import json
import statistics
from dataclasses import dataclass

from sparsenets.report.runs import Run
from sparsenets.report.safe import slug

LEAD: dict[str, str] = {"compare": "The comparison"}
"""Experiments that open the page, in this order, with the title they get there (`compare` sets methods side
by side); every other experiment follows by name."""

HEADLINES: dict[str, tuple[str, ...]] = {
    "compare": (),
    "wgsef-*": (
        "wgsef.accuracy_mean",
        "dense.accuracy_mean",
        "measure.flops_reduction",
        "measure.speedup_b64",
    ),
    "grokking-tickets": ("speedup_t_gen", "mean.ticket.t_gen", "mean.dense.t_gen", "mean.ticket.final_test"),
    "grokking-tickets-sweep": ("best_rate_wd", "best_t_gen_wd", "speedup_at_best"),
    "grokking-tickets-*": (
        "t_gen_mean.ticket",
        "t_gen_mean.dense",
        "speedup.ticket",
        "test_at_matched_steps.*",
    ),
    "giorom-2d": ("*_speedup_nm16", "*_speedup_nm32", "*_mse_vs_gns_nm16"),
    "giorom-*": ("speedup_nm16", "speedup_nm32", "mse_vs_gns_nm16", "mse_vs_static_A"),
    "turbovbi-*": (
        "turbo-mrf2d.test_err_mean",
        "turbo-mrf2d.compression_mean",
        "sparse-vd.test_err_mean",
        "sparse-vd.compression_mean",
    ),
    "mlp-mnist": ("test_accuracy", "test_loss"),
    "sparsey-mechanics": ("sisc_spearman_alt", "capacity_min_alt", "novelty_auc"),
    "sparsey-mnist": ("n*_label_nodes", "n*_best_readout", "n*_knn1_pixels"),
    "sparsey-sequences": ("capacity_sequences",),
    "sst-charlm": ("gap_closed_r*", "bpc_sst_r*", "bpc_full_r*"),
    "sst-hyperbolic-graph": ("*_gap_closed", "*_sst"),
    "sst-translation": ("bleu_*_sst", "bleu_*_full"),
}
"""Experiment name pattern → metric-key patterns of its headline, most telling first (the first experiment
pattern that matches wins; an experiment with no entry, or an empty one, shows its first numeric metrics)."""

MAX_HEADLINE = 4
"""At most this many headline metrics per experiment (the overview is one line per experiment)."""


@dataclass
class Group:
    """The runs of one experiment at one size (full or `--quick`): one section of the page.

    Attributes:
        experiment: the experiment name.
        quick: True for smoke runs.
        runs: its runs, by seed then folder.
    """

    experiment: str
    quick: bool
    runs: list[Run]
    variant: int = 0  # 1, 2, ... when one experiment ran with several configs (each its own section)

    @property
    def first(self) -> Run:
        """The run whose fragment and figures the section shows (the lowest seed)."""
        return self.runs[0]

    @property
    def lead(self) -> bool:
        """True when this experiment opens the page (`LEAD`)."""
        return self.experiment in LEAD

    @property
    def kind(self) -> str:
        """'smoke run' or 'full run' (the label of its section and its overview row)."""
        return "smoke run" if self.quick else "full run"

    @property
    def anchor(self) -> str:
        """The section's HTML id (letters, digits and '-' only)."""
        return slug(
            f"{self.experiment}-{'smoke' if self.quick else 'full'}"
            + (f"-{self.variant}" if self.variant else "")
        )


def _order(group: Group) -> tuple[int, str, bool, int]:
    """Lead experiments first (in `LEAD` order), then by name; a full run before its smoke run."""
    lead = list(LEAD).index(group.experiment) if group.lead else len(LEAD)
    return lead, group.experiment, group.quick, group.variant


def group_runs(runs: list[Run]) -> list[Group]:
    """One group per (experiment, quick, config): runs that differ only in their seed are aggregated, runs of one
    experiment with different configs get a section each. Ordered for the page (`LEAD` first)."""
    by_key: dict[tuple[str, bool, str], list[Run]] = {}
    for run in runs:
        config = json.dumps(run.config, sort_keys=True, default=str)
        by_key.setdefault((run.experiment, run.quick, config), []).append(run)
    variants: dict[tuple[str, bool], int] = {}
    groups = []
    for (name, quick, _), rs in by_key.items():
        n = variants[(name, quick)] = variants.get((name, quick), 0) + 1
        ordered = sorted(rs, key=lambda r: (r.seed if r.seed is not None else 1 << 62, str(r.path)))
        groups.append(Group(name, quick, ordered, n - 1))
    return sorted(groups, key=_order)


def _numeric(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def headline_keys(group: Group) -> list[str]:
    """The headline metric keys of `group` (`HEADLINES`, else its first numeric metrics), at most `MAX_HEADLINE`."""
    seen: dict[str, None] = {}
    for run in group.runs:
        seen.update({k: None for k, v in run.metrics.items() if _numeric(v)})
    keys = list(seen)
    wanted = next(
        (pats for exp, pats in HEADLINES.items() if fnmatch.fnmatchcase(group.experiment, exp)), None
    )
    if not wanted:  # an experiment without declared headline metrics: its first numeric ones
        return keys[:MAX_HEADLINE]
    # declared but absent (e.g. t_gen of a run that never generalized): no headline rather than a stray metric
    picked = [k for pat in wanted for k in keys if fnmatch.fnmatchcase(k, pat)]
    return list(dict.fromkeys(picked))[:MAX_HEADLINE]


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarize(values: list[float | int | str]) -> str:
    """One table cell for the same metric over several runs: 'mean ± std' of numbers, else the distinct values."""
    nums = [float(v) for v in values if _numeric(v)]
    if nums and len(nums) == len(values):
        if len(nums) == 1:
            return f"{nums[0]:.4g}"
        m, s = mean_std(nums)
        return f"{m:.4g} ± {s:.2g}"
    distinct = list(dict.fromkeys(str(v) for v in values))
    return " / ".join(distinct)


def headline(group: Group) -> list[tuple[str, str]]:
    """(metric key, value) pairs of the group's headline; several runs give 'mean ± std'."""
    out = []
    for key in headline_keys(group):
        values = [r.metrics[key] for r in group.runs if key in r.metrics]
        out.append((key, summarize(values)))
    return out


def differing_config(group: Group) -> list[str]:
    """Config keys whose value differs between the group's runs (shown beside each seed)."""
    keys = list(dict.fromkeys(k for r in group.runs for k in r.config))
    return [k for k in keys if len({repr(r.config.get(k)) for r in group.runs}) > 1]
