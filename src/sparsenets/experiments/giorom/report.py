"""The GIOROM study's claim table, result tables, figures (error and time vs N/M, decoder time vs queries,
side-by-side rollouts) and the animated GIF, from the per-arm records that `study.py` writes."""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import numpy as np

from sparsenets.experiments.plotting import plain_log_ticks
from sparsenets.runs import RunContext, md_table

SMOKE_VERDICT = "smoke run — no verdict"
AUTHORS = (
    "Authors' figure (`Res/sparsity_loss.png`, one unnamed data set, GPU, 120-step rollouts of the same stepper at "
    "each M/N, sparse-particle error, no decoder timed): 7× at M/N = 1/16, 19× at 1/32, 37× at 1/64 against M/N = 1."
)


def _verdict(ok: bool, quick: bool) -> str:
    if quick:
        return SMOKE_VERDICT
    return "holds" if ok else "fails"


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else float("inf")


def linear_fit(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """Least-squares t = a + b·x over the points; returns (a, b, R²) (R² = 1 for a perfect line)."""
    x, y = np.asarray(xs, float), np.asarray(ys, float)
    b, a = np.polyfit(x, y, 1)
    resid = y - (a + b * x)
    ss = float(((y - y.mean()) ** 2).sum())
    return float(a), float(b), 1.0 - float((resid**2).sum()) / ss if ss > 0 else 1.0


class ClaimCheck(NamedTuple):
    """One claim row: its label, the bound as text, the measured value, that value as text, and whether it holds."""

    claim: str
    needed: str
    value: float
    text: str
    ok: bool


def claim_checks(res: dict[str, Any]) -> list[ClaimCheck]:
    """The issue's three claims at every sampled M (and N/M = 16, 32 for (2)), with (2)'s learned-dynamics
    precondition, measured on one material's results."""
    arms, n, h = res["arms"], res["N"], res["claim_horizon"]
    gns, full = arms["A"], arms["A'"]
    rows: list[ClaimCheck] = []
    for _, arm in _sparse_arms(arms):
        ratio = n // arm["M"]
        got = _ratio(full["timing"]["stepper_ms"], arm["timing"]["stepper_ms"])
        rows.append(ClaimCheck(f"(1) A′/B step time, N/M = {ratio}", f"≥ {0.5 * ratio:g}×", got, f"{got:.2f}×",
                               got >= 0.5 * ratio))  # fmt: skip
    for name, arm in _sparse_arms(arms):
        ratio = n // arm["M"]
        need = {16: 10.0, 32: 20.0}.get(ratio)
        if need is None:
            continue
        speed = _ratio(gns["timing"]["total_ms"], arm["timing"]["total_ms"])
        rows.append(ClaimCheck(f"(2) A/B end-to-end step time, N/M = {ratio}", f"≥ {need:g}×", speed,
                               f"{speed:.2f}×", speed >= need))  # fmt: skip
        mse_b, mse_a = arm["dense_mse"][str(h)], gns["dense_mse"][str(h)]
        rel = _ratio(mse_b, mse_a)
        rows.append(ClaimCheck(f"(2) dense {h}-step MSE, B ({name}) / A", "≤ 2×", rel,
                               f"{rel:.3g}× ({mse_b:.3g} vs {mse_a:.3g})", mse_b <= 2 * mse_a))  # fmt: skip
    rows += _learned_rows(res)
    for name, arm in _sparse_arms(arms):
        share = arm["timing"]["decoder_ms"] / arm["timing"]["total_ms"]
        rows.append(ClaimCheck(f"(3) decoder share of B's step ({name})", "≤ 20 %", 100 * share,
                               f"{100 * share:.1f} %", share <= 0.2))  # fmt: skip
    q = res["query_timing"]
    _, slope, r2 = linear_fit(q["n_query"], q["decoder_ms"])
    rows.append(ClaimCheck("(3) decoder time linear in N_query", "R² ≥ 0.98 (affine fit)", r2,
                           f"R² = {r2:.4f}, {1e3 * slope:.3g} µs/query", r2 >= 0.98))  # fmt: skip
    return rows


def claims(res: dict[str, Any]) -> list[list[Any]]:
    """Rows (claim, needed, ours, verdict) of `claim_checks`, the verdict withheld in a smoke run."""
    return [[c.claim, c.needed, c.text, _verdict(c.ok, res["quick"])] for c in claim_checks(res)]


def _learned_rows(res: dict[str, Any]) -> list[ClaimCheck]:
    """(2)'s precondition: A and the claim's B arms beat the better of two predictors that learn nothing
    ("particles stay put", "keep their last velocity") at the claim's horizon, else the error comparison is
    between models that learned nothing; and the same at the longest horizon, where chaotic splashes may make
    every model worse than standing still. Absent for results without the control."""
    if "no_model" not in res:
        return []
    named = [("A", res["arms"]["A"])] + [
        (n, a) for n, a in _sparse_arms(res["arms"]) if res["N"] // a["M"] in (16, 32)
    ]
    rows = []
    for h in dict.fromkeys((str(res["claim_horizon"]), str(max(res["horizons"])))):
        base_name, base = min(((k, v[h]) for k, v in res["no_model"].items()), key=lambda kv: kv[1])
        rows += [ClaimCheck(f"(2) {name} learned the dynamics: dense {h}-step MSE below '{base_name}'",
                            f"< {base:.3g}", arm["dense_mse"][h], f"{arm['dense_mse'][h]:.3g}",
                            arm["dense_mse"][h] < base)
                 for name, arm in named]  # fmt: skip
    return rows


def _sparse_arms(arms: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return sorted(((k, a) for k, a in arms.items() if a["kind"] == "giorom"), key=lambda kv: -kv[1]["M"])


def _fmt_h(d: dict[str, float] | None, horizons: list[int]) -> list[Any]:
    return [d[str(h)] if d is not None else "—" for h in horizons]


def tables(res: dict[str, Any]) -> str:
    """Markdown: the per-arm accuracy and timing tables and the 16k timing table (when measured)."""
    hs, arms = res["horizons"], res["arms"]
    acc_rows, time_rows = [], []
    for name, a in arms.items():
        acc_rows.append([name, a["label"], a["M"], f"{a['radius']:.4g}", f"{a['mean_degree']:.1f}", a["one_step_mse"],
                         *_fmt_h(a["sparse_mse"], hs), *_fmt_h(a["dense_mse"], hs), *_fmt_h(a.get("dense_mse_shepard"), hs),
                         *_fmt_h(a["chamfer"], hs), *_fmt_h(a["rel_l2"], hs)])  # fmt: skip
        t = a["timing"]
        time_rows.append([name, t["graph_ms"], t["processor_ms"], t["decoder_ms"], t["total_ms"],
                          t.get("shepard_ms", "—"), _ratio(arms["A"]["timing"]["total_ms"], t["total_ms"]),
                          a["train_seconds"], a.get("first_loss"), a.get("final_loss")])  # fmt: skip
    acc_head = ["arm", "model", "M", "R", "mean degree", "one-step MSE"]
    for what in ("sparse MSE", "dense MSE", "dense MSE (C: Shepard)", "Chamfer", "rel. L2 (u)"):
        acc_head += [f"{what} @{h}" for h in hs]
    out = [md_table(acc_head, acc_rows)]
    time_head = ["arm", "graph ms", "processor ms", "decoder ms (N_query = N)", "total ms", "Shepard ms (C)", "A / arm",
                 "train s", "first loss", "final loss"]  # fmt: skip
    out.append(md_table(time_head, time_rows))
    if res.get("timing_16k"):
        rows = [
            [k, v["M"], v["graph_ms"], v["processor_ms"], v["decoder_ms"], v["total_ms"]]
            for k, v in res["timing_16k"].items()
        ]
        out.append(f"Timing at N = {res['timing_16k_n']}, median of {res['big_repeat']} steps (untrained weights: "
                   "time does not depend on them):\n\n"
                   + md_table(["arm", "M", "graph ms", "processor ms", "decoder ms", "total ms"], rows))  # fmt: skip
    return "\n".join(out)


def _training_note(res: dict[str, Any]) -> str:
    """ ", noise σ = X per frame, the T target" when the results record them (older results do not)."""
    if "noise_std" not in res:
        return ""
    target = {"clean": "the spec's clean", "gns": "GNS's"}.get(res["target"], res["target"])
    return f", noise σ = {res['noise_std']:.2g} per frame, {target} target"


def _frame_note(res: dict[str, Any]) -> str:
    """ " (a frame every X ms: h frames = Y s)" for the report's title line."""
    dt, h = res["frame_dt"], res["claim_horizon"]
    return f" (a frame every {1e3 * dt:g} ms: {h} frames = {h * dt:g} s)"


def write_report(ctx: RunContext, res: dict[str, Any]) -> None:
    """report.md (claim table first, then the tables, the authors' figure and the notes) and every figure."""
    smoke = " (smoke run: tiny set, few steps — no verdict)" if res["quick"] else ""
    parts = [
        f"**GIOROM on MPM {res['material']} 2-D, N = {res['N']}{smoke}**" + _frame_note(res),
        md_table(["claim", "needed", "ours", "verdict"], claims(res)),
        _load_caveat(res),
        AUTHORS,
        f"A = full-order GNS ({res['arms']['A']['n_mp']} message-passing steps) on all N; A′ = GIOROM's stepper "
        "on all N; B = GIOROM-lite on M FPS-sampled particles with the kernel decoder evaluated on predicted "
        "sparse rollouts; C = B's stepper + plain Shepard. Same noise, optimiser and step budget "
        f"({res['train_steps']} steps{_training_note(res)}) for every arm. MSE = mean over the first h frames of the squared "
        f"error summed over dims; Chamfer and relative L2 of the displacement x − X at frame h; times are medians of "
        f"{res['timing_repeat']} steps at {res['timing_threads']} threads (1-minute load average of the machine "
        f"{res['load_average'][0]:.1f} before and {res['load_average'][1]:.1f} after timing, "
        "the timed threads included; see the caveat above when it exceeds the thread count).",
        tables(res),
        "Figures: `figures/main-error-time-vs-ratio.png`, `figures/decoder-time-vs-queries.png`, "
        "`figures/rollout-side-by-side.png`; animation `figures/rollout.gif`.",
    ]
    ctx.write_report("\n\n".join(parts) + "\n")
    _figure_vs_ratio(ctx, res)
    _figure_queries(ctx, res)


def _load_caveat(res: dict[str, Any]) -> str:
    """A warning when other processes loaded the machine while the steps were timed (times then mean little)."""
    load = max(res["load_average"])
    if load <= res["timing_threads"] + 0.5:
        return f"Timed on an otherwise idle machine (1-minute load average ≤ {load:.1f})."
    return (
        f"**Timing caveat:** the machine's 1-minute load average reached {load:.1f} while the steps were timed on "
        f"{res['timing_threads']} threads: other processes shared the cores, so every time (and each speed ratio) "
        "is unreliable. Rerun only the timing phase on an idle machine: delete `timing.json` and `result.json` "
        "in the run folder and run the same command again (trained models and evaluations are reused)."
    )


def _figure_vs_ratio(ctx: RunContext, res: dict[str, Any]) -> None:
    import matplotlib.pyplot as plt

    arms, n, h = res["arms"], res["N"], res["claim_horizon"]
    sparse = _sparse_arms(arms)
    ratios = [n / a["M"] for _, a in sparse]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax1.plot(ratios, [a["dense_mse"][str(h)] for _, a in sparse], "o-", label="B: kernel decoder")
    ax1.plot(ratios, [a["dense_mse_shepard"][str(h)] for _, a in sparse], "s--", label="C: Shepard")
    ax1.plot(ratios, [a["sparse_mse"][str(h)] for _, a in sparse], "^:", label="B: sparse particles")
    for key, style in (("A", "-"), ("A'", "--")):
        ax1.axhline(
            arms[key]["dense_mse"][str(h)], color="k", ls=style, lw=1, label=f"{key}: {arms[key]['label']}"
        )
    ax1.set(xscale="log", yscale="log", xlabel="N / M", ylabel=f"dense rollout MSE (first {h} frames)")
    ax2.plot(ratios, [a["timing"]["total_ms"] for _, a in sparse], "o-", label="B end to end")
    ax2.plot(ratios, [a["timing"]["stepper_ms"] for _, a in sparse], "^:", label="B stepper only")
    for key, style in (("A", "-"), ("A'", "--")):
        ax2.axhline(arms[key]["timing"]["total_ms"], color="k", ls=style, lw=1, label=key)
    ax2.set(xscale="log", yscale="log", xlabel="N / M", ylabel="ms per rollout step")
    for ax in (ax1, ax2):
        ax.legend(fontsize=7)
        plain_log_ticks(ax.xaxis)
        plain_log_ticks(ax.yaxis)  # 2 × 10^1-style labels crowd the y-label
    fig.suptitle(f"MPM {res['material']}, N = {n}: error and time vs sampling ratio")
    fig.tight_layout()
    ctx.save_figure(fig, "main-error-time-vs-ratio")


def _figure_queries(ctx: RunContext, res: dict[str, Any]) -> None:
    import matplotlib.pyplot as plt

    q = res["query_timing"]
    a, b, r2 = linear_fit(q["n_query"], q["decoder_ms"])
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(q["n_query"], q["decoder_ms"], "o", label="kernel decoder (median)")
    xs = np.linspace(0, max(q["n_query"]), 50)
    ax.plot(xs, a + b * xs, "k--", lw=1, label=f"affine fit, R² = {r2:.3f}")
    ax.set(xlabel="query points", ylabel="ms per decode", title=f"decoder time vs queries (M = {q['M']})")
    ax.legend(fontsize=8)
    ctx.save_figure(fig, "decoder-time-vs-queries")


def rollout_pictures(ctx: RunContext, frames: dict[str, np.ndarray], steps: list[int], material: str) -> None:
    """Side-by-side rollout pictures (one row per source, one column per step) and an animated GIF.

    Args:
        frames: {"ground truth" | "GNS (A)" | "GIOROM (B, M = ..)": positions [T, N, 2]} on the same frames.
        steps: frame indices to show in the still picture.
    """
    import matplotlib.pyplot as plt

    names = list(frames)
    fig, axes = plt.subplots(
        len(names), len(steps), figsize=(2.2 * len(steps), 2.2 * len(names)), squeeze=False
    )
    for r, name in enumerate(names):
        for c, t in enumerate(steps):
            ax = axes[r][c]
            x = frames[name][t]
            ax.scatter(x[:, 0], x[:, 1], s=0.3, c="tab:blue" if r == 0 else "tab:orange", linewidths=0)
            ax.set(xlim=(0, 1), ylim=(0, 1), xticks=[], yticks=[], aspect="equal")
            if r == 0:
                ax.set_title(f"step {t}", fontsize=9)
            if c == 0:
                ax.set_ylabel(name, fontsize=8)
    fig.suptitle(f"MPM {material}: test rollout, dense particles")
    ctx.save_figure(fig, "rollout-side-by-side")
    _gif(ctx, frames, names)


def _gif(ctx: RunContext, frames: dict[str, np.ndarray], names: list[str]) -> None:
    import matplotlib.pyplot as plt
    from matplotlib import animation

    if not animation.PillowWriter.isAvailable():  # pillow missing: the still picture stands alone
        ctx.log("no pillow: the rollout GIF is skipped (the side-by-side picture is written)")
        return
    fig, axes = plt.subplots(1, len(names), figsize=(2.6 * len(names), 2.8), squeeze=False)
    dots = []
    for ax, name in zip(axes[0], names):
        x = frames[name][0]
        dots.append(ax.scatter(x[:, 0], x[:, 1], s=0.3, linewidths=0))
        ax.set(xlim=(0, 1), ylim=(0, 1), xticks=[], yticks=[], aspect="equal", title=name)
    n_frames = min(len(f) for f in frames.values())

    def draw(t: int) -> list[Any]:
        for dot, name in zip(dots, names):
            dot.set_offsets(frames[name][t])
        return dots

    anim = animation.FuncAnimation(fig, draw, frames=range(0, n_frames, 2), blit=True)
    path = ctx.dir / "figures" / "rollout.gif"
    path.parent.mkdir(parents=True, exist_ok=True)
    if ctx.is_main:  # temp name + rename: a killed run never leaves half a GIF under the real name
        tmp = path.with_name(f".{path.name}.tmp.gif")
        anim.save(str(tmp), writer=animation.PillowWriter(fps=15), dpi=70)
        os.replace(tmp, path)
    plt.close(fig)
