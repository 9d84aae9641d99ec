"""WGSEF study options: fine-tune schedule, rounding, distillation, precision, compacted fine-tune, warm starts."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from sparsenets import runs
from sparsenets.compact import load_compact
from sparsenets.errors import ConfigError
from tests.wgsef.wgsef_helpers import first_seed, run_killed


def _last_train_record(run_dir, method: str, phase: str) -> dict:
    """The last train record of a method's phase in seed 0 (`phase` may be a glob; metrics.jsonl outlives the
    phase's checkpoints)."""
    folder = next(p for p in (run_dir / "seed-0").glob(f"train-{method}-{phase}") if p.is_dir())
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    return [json.loads(ln) for ln in lines if json.loads(ln)["split"] == "train"][-1]


def _last_lr(run_dir, method: str) -> float:
    """The lr logged at the last step of a method's fine-tune."""
    return _last_train_record(run_dir, method, "tune*")["lr"]


def test_wgsef_cosine_fine_tune_anneals_every_method_to_zero_and_bad_schedule_is_one_error(tmp_path) -> None:
    """Dense fine-tunes with a plain SGD, the others the compacted model with a plain SGD (or, with
    finetune_compact=false, the masked one through `ProxOptimizer.hold_mask`): all get the schedule."""
    sets = ["train_limit=256", "test_limit=200", "latency_repeat=3", "seeds=1", "finetune_epochs=2"]
    sets.append('methods=["dense","wgsef","magnitude"]')
    const, _ = runs.execute("wgsef-lenet5-mnist", quick=True, out=tmp_path / "c", sets=sets)
    cosine = [*sets, "finetune_schedule=cosine"]
    cos, _ = runs.execute("wgsef-lenet5-mnist", quick=True, out=tmp_path / "k", sets=cosine)
    masked, _ = runs.execute(
        "wgsef-lenet5-mnist", quick=True, out=tmp_path / "m", sets=[*cosine, "finetune_compact=false"]
    )
    for method in ("dense", "wgsef", "magnitude"):
        assert _last_lr(const, method) == pytest.approx(0.01), method
        assert _last_lr(cos, method) == pytest.approx(0.0, abs=1e-12), method
        assert _last_lr(masked, method) == pytest.approx(0.0, abs=1e-12), method
    assert (masked / "seed-0" / "train-wgsef-tune").is_dir() and (
        cos / "seed-0" / "train-wgsef-tune-compact"
    ).is_dir()
    rows = [json.loads((d / "per_seed.json").read_text())[0] for d in (const, cos, masked)]
    assert rows[0]["wgsef"]["kept"] == rows[1]["wgsef"]["kept"] == rows[2]["wgsef"]["kept"]  # the mask stays
    w = [load_compact(d / "seed-0" / "wgsef-compact").state_dict() for d in (const, cos)]
    assert any(not torch.equal(w[0][k], w[1][k]) for k in w[0])  # ... but the schedule changes the weights
    assert "(cosine fine-tune lr)" in (cos / "report.md").read_text()
    with pytest.raises(ConfigError, match="finetune_schedule must be one of"):
        runs.execute(
            "wgsef-lenet5-mnist", quick=True, out=tmp_path / "x", sets=[*sets, "finetune_schedule=step"]
        )


def test_wgsef_study_round_to_makes_every_method_keep_multiples() -> None:
    from sparsenets.experiments.wgsef.lenet5_mnist import Config
    from sparsenets.experiments.wgsef.report import _rounding
    from sparsenets.models.cnn import LeNet5
    from sparsenets.pruning import coupled_blocks, group_lasso_blocks, magnitude_blocks

    sample = torch.randn(1, 1, 28, 28)
    for blocks in (
        coupled_blocks(LeNet5(width=0.5), sample, 0.5, 0.005, round_to=8),
        group_lasso_blocks(LeNet5(width=0.5), sample, 0.5, 0.005, round_to=8),
        magnitude_blocks(LeNet5(width=0.5), sample, 0.5, round_to=8),  # magnitude and TP's final selection
    ):
        assert [b.k for b in blocks] == [
            8,
            16,
            128,
        ]  # (10, 25, 250) groups: round(keep·m) = (5, 12, 125) → ×8
    assert [b.k for b in coupled_blocks(LeNet5(width=0.5), sample, 0.5, 0.005)] == [5, 12, 125]
    assert (
        _rounding(Config(round_to=8)) == " (counts rounded to multiples of 8)" and _rounding(Config()) == ""
    )


def test_wgsef_study_rejects_a_bad_round_to_or_keep_before_any_training(tmp_path) -> None:
    from sparsenets.errors import SparsenetsError

    for bad, message in (
        ("round_to=0", "round_to must be an integer"),
        ("keep=1.5", "keep ratio must be in"),
    ):
        with pytest.raises(SparsenetsError, match=message):
            runs.execute("wgsef-lenet5-mnist", quick=True, out=tmp_path / bad, sets=[bad, "seeds=1"])
        assert not list((tmp_path / bad).glob("seed-*")), "nothing trained"


def test_wgsef_distill_jobs_wait_for_their_seeds_dense() -> None:
    from sparsenets.experiments.wgsef.study import _job_order

    methods = ("dense", "wgsef", "group_lasso", "magnitude")
    order, after = _job_order([1, 2], methods, all_need_dense=False)
    assert order[:3] == [(1, "dense"), (1, "wgsef"), (1, "group_lasso")] and order[-1] == (2, "magnitude")
    assert [order[a[0]] for a, (s, m) in zip(after, order) if a] == [(1, "dense"), (2, "dense")]
    order, after = _job_order([1, 2], methods, all_need_dense=True)
    assert order[:3] == [(1, "dense"), (1, "wgsef"), (1, "group_lasso")]  # one worker finishes seed 1 first
    for (s, m), waits in zip(order, after):
        assert [order[i] for i in waits] == ([] if m == "dense" else [(s, "dense")])


def test_wgsef_distilled_fine_tune_follows_the_teacher(tmp_path) -> None:
    """With weight 1 the fine-tune sees only the teacher: a teacher that always says class 3 wins over labels."""
    from sparsenets.experiments.wgsef.lenet5_mnist import Config
    from sparsenets.experiments.wgsef.methods import _fit
    from sparsenets.models.cnn import LeNet5
    from sparsenets.train import teacher_logits

    class Always3(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.one_hot(torch.full((len(x),), 3), 10).float() * 20.0

    torch.manual_seed(0)
    x, y = torch.randn(256, 1, 28, 28), torch.randint(0, 10, (256,))
    cfg = Config(distill=1.0, distill_temperature=1.0, finetune_epochs=3, finetune_lr=0.05, width=0.5)
    model = LeNet5(width=0.5)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.finetune_lr, momentum=0.9)
    soft = teacher_logits(Always3(), x, torch.device("cpu"), None, batch_size=100)
    assert torch.equal(soft, Always3()(x))  # batched, in order, whatever the remainder
    with pytest.raises(ConfigError, match="batch_size must be >= 1"):
        teacher_logits(Always3(), x, torch.device("cpu"), None, batch_size=0)
    _fit(model, opt, (x, y), cfg, 0, torch.device("cpu"), None, "wgsef", "tune-compact", soft=soft)
    with torch.no_grad():
        assert float((model(x).argmax(1) == 3).float().mean()) > 0.95


def test_wgsef_distill_needs_dense_and_bad_settings_fail_before_training(tmp_path) -> None:
    from sparsenets.errors import SparsenetsError
    from sparsenets.experiments.wgsef.lenet5_mnist import Config
    from sparsenets.experiments.wgsef.methods import run_seed
    from sparsenets.models.cnn import LeNet5

    data = (torch.zeros(8, 1, 28, 28), torch.zeros(8, dtype=torch.long))
    with pytest.raises(SparsenetsError, match=r"distillation \(distill=0.5\) needs dense run first"):
        run_seed(Config(distill=0.5), LeNet5, data, data, 0, print, save_dir=tmp_path, only=["wgsef"])
    with pytest.raises(ConfigError, match="distill must be a weight"):
        runs.execute("wgsef-lenet5-mnist", quick=True, out=tmp_path / "x", sets=["distill=2", "seeds=1"])
    assert not list((tmp_path / "x").glob("seed-*")), "nothing trained"


def test_wgsef_distilled_study_resumes_with_the_teacher_from_its_file(tmp_path) -> None:
    """A seed killed after dense: the resumed sparse methods load dense-final and the report says distilled."""
    out = tmp_path / "run"
    sets = ["train_limit=256", "test_limit=200", "latency_repeat=3", "seeds=1", "distill=0.5"]
    sets.append('methods=["dense","wgsef","magnitude"]')
    runs.execute("wgsef-lenet5-mnist", quick=True, out=out, sets=sets)
    first = json.loads((out / "per_seed.json").read_text())[0]
    assert (out / "seed-0" / "dense-final.safetensors").exists()
    assert "distilled from dense, weight 0.5" in (out / "report.md").read_text()
    for name in ("per_seed.json", "result.json", "seed-0/method-wgsef.json", "seed-0/method-magnitude.json"):
        (out / name).unlink()
    for path in (out / "seed-0").glob("train-*"):
        if "dense" not in path.name:
            shutil.rmtree(path)
    runs.execute("wgsef-lenet5-mnist", quick=True, out=out, sets=sets)
    again = json.loads((out / "per_seed.json").read_text())[0]
    for method in ("wgsef", "magnitude"):  # same teacher from the file as in memory: the same CPU result
        assert again[method]["accuracy"] == first[method]["accuracy"], method


def test_wgsef_study_in_bf16_autocast_trains_every_method_and_says_so(tmp_path) -> None:
    sets = ["train_limit=256", "test_limit=200", "latency_repeat=3", "seeds=1", "precision=bf16"]
    sets.append('methods=["dense","wgsef","magnitude"]')
    row = first_seed(tmp_path / "b", sets)
    for method in ("wgsef", "magnitude"):
        assert row[method]["kept"] == [5, 12, 125] and row[method]["max_abs_diff"] <= 1e-4  # fp32 evaluation
    assert "in bf16 autocast" in (tmp_path / "b" / "report.md").read_text()
    with pytest.raises(ConfigError, match="precision must be one of"):
        runs.execute("wgsef-lenet5-mnist", quick=True, out=tmp_path / "x", sets=["precision=fp16", "seeds=1"])
    assert not list((tmp_path / "x").glob("seed-*")), "nothing trained"


def test_wgsef_fine_tuning_the_compacted_model_equals_fine_tuning_the_masked_one(tmp_path) -> None:
    """The same SGD steps (momentum, weight decay, cosine lr) on the compacted model as on the masked model with
    its mask held: afterwards the compacted masked model gives the same outputs as the fine-tuned small one."""
    from sparsenets.compact import compact
    from sparsenets.experiments.wgsef.methods import _fit, _sgd
    from sparsenets.experiments.wgsef.vgg_fmnist import Config
    from sparsenets.models.cnn import VGG16BN
    from sparsenets.optim import ProxOptimizer
    from sparsenets.pruning import magnitude_blocks

    torch.manual_seed(0)
    x, y = torch.randn(192, 1, 28, 28), torch.randint(0, 10, (192,))
    cfg = Config(finetune_epochs=2, batch_size=64, finetune_lr=0.05, finetune_schedule="cosine", keep=0.3)
    masked = VGG16BN(width=0.0625)
    opt = ProxOptimizer(_sgd(masked, 0.05), magnitude_blocks(masked, x[:1], cfg.keep))
    opt.hold_mask(_sgd(masked, cfg.finetune_lr, cfg.weight_decay))
    small = compact(masked.eval(), x[:1]).train()
    with torch.no_grad():
        before = masked(x)
    masked.train()
    cpu = torch.device("cpu")
    _fit(masked, opt, (x, y), cfg, 0, cpu, None, "wgsef", "tune")
    _fit(
        small,
        _sgd(small, cfg.finetune_lr, cfg.weight_decay),
        (x, y),
        cfg,
        0,
        cpu,
        None,
        "wgsef",
        "tune-compact",
    )
    masked.eval(), small.eval()
    again = compact(masked, x[:1])  # tracing needs autograd on
    with torch.no_grad():
        assert float((masked(x) - before).abs().max()) > 1e-2  # it did train
        assert float((small(x) - masked(x)).abs().max()) <= 1e-4
        assert float((again(x) - small(x)).abs().max()) <= 1e-4


def test_wgsef_compacted_fine_tune_killed_mid_way_resumes_to_the_same_model(tmp_path, monkeypatch) -> None:
    """A kill in WGSEF's fine-tune (on the compacted model) keeps its epoch-1 checkpoint; the re-run selects and
    compacts the same model again, loads that checkpoint into it and ends as an uninterrupted run."""
    sets = [
        "train_limit=256",
        "test_limit=200",
        "latency_repeat=3",
        "seeds=1",
        "epochs=3",
        "finetune_epochs=2",
    ]
    sets.append('methods=["dense","wgsef"]')
    full = first_seed(tmp_path / "a", sets)
    real_step, calls = torch.optim.SGD.step, []

    def step(self, closure=None):  # dense 6 + 4, WGSEF 6, then its fine-tune: die in its second epoch
        calls.append(1)
        if len(calls) == 19:
            raise KeyboardInterrupt
        return real_step(self, closure)

    out = tmp_path / "b"
    run_killed(out, sets, monkeypatch, torch.optim.SGD, "step", step)
    tune = out / "seed-0" / "train-wgsef-tune-compact" / "checkpoints"
    assert sorted(p.name for p in tune.glob("*.json"))[-1].startswith("ckpt-000000002")
    again = first_seed(out, sets)
    assert again["wgsef"]["accuracy"] == full["wgsef"]["accuracy"]
    assert again["wgsef"]["kept"] == full["wgsef"]["kept"] == full["wgsef"]["k"]


def _last_step(run_dir, method: str, phase: str) -> int:
    """The last step a method's training phase logged."""
    return _last_train_record(run_dir, method, phase)["step"]


def test_wgsef_penalties_from_the_dense_snapshot_train_as_many_epochs_as_every_other_method(
    tmp_path, monkeypatch
) -> None:
    """prox_from_dense=P: wgsef, group lasso and TP start from the dense snapshot (the very weights magnitude
    prunes) and train P epochs with their penalty, then fine-tune F; dense and magnitude fine-tune P + F."""
    from safetensors.torch import load_file

    from sparsenets.experiments.wgsef import methods as wgsef_methods

    starts: dict[str, dict[str, torch.Tensor]] = {}
    decays: dict[str, dict[str, float]] = {}  # the penalty phase's weight decay per parameter name
    fit = wgsef_methods._fit

    def recording_fit(model, opt, data, cfg, seed, device, save_dir, method, phase, *args, **kwargs):
        if phase in ("train", "prox"):
            starts[f"{method}-{phase}"] = {k: v.clone() for k, v in model.state_dict().items()}
            wd = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
            decays[method] = {n: wd[id(p)] for n, p in model.named_parameters()}
        return fit(model, opt, data, cfg, seed, device, save_dir, method, phase, *args, **kwargs)

    monkeypatch.setattr(wgsef_methods, "_fit", recording_fit)
    sets = [
        "train_limit=256",
        "test_limit=200",
        "latency_repeat=3",
        "seeds=1",
        "epochs=1",
        "finetune_epochs=1",
    ]
    run_dir, _ = runs.execute(
        "wgsef-lenet5-mnist", quick=True, out=tmp_path / "w", sets=[*sets, "prox_from_dense=2"]
    )
    monkeypatch.undo()
    assert sorted(starts) == ["dense-train", "group_lasso-prox", "tp_groupnorm-prox", "wgsef-prox"]
    # the spec: no weight decay on WGSEF's tensors; the output bias (in no group) and the others keep 5e-4
    assert {n for n, wd in decays["wgsef"].items() if wd != 0.0} == {"9.bias"}
    assert decays["wgsef"]["9.bias"] == 5e-4
    for method in ("dense", "group_lasso", "tp_groupnorm"):
        assert set(decays[method].values()) == {5e-4}, method
    snapshot = load_file(str(run_dir / "seed-0" / "dense-snapshot.safetensors"))
    for name in ("wgsef-prox", "group_lasso-prox", "tp_groupnorm-prox"):
        assert all(torch.equal(starts[name][k], snapshot[k]) for k in snapshot), name
    per_epoch = _last_step(run_dir, "dense", "train")  # epochs=1
    assert _last_step(run_dir, "wgsef", "prox") == 2 * per_epoch
    assert _last_step(run_dir, "wgsef", "tune-compact") == per_epoch
    assert (
        _last_step(run_dir, "dense", "tune")
        == _last_step(run_dir, "magnitude", "tune-compact")
        == 3 * per_epoch
    )
    row = json.loads((run_dir / "per_seed.json").read_text())[0]
    for method in ("wgsef", "group_lasso", "magnitude", "tp_groupnorm"):
        assert row[method]["kept"] == [5, 12, 125], method
    assert "then 2 with each penalty from the dense snapshot" in (run_dir / "report.md").read_text()
    with pytest.raises(ConfigError, match="prox_from_dense must be a whole number"):
        runs.execute("wgsef-lenet5-mnist", quick=True, out=tmp_path / "x", sets=[*sets, "prox_from_dense=-1"])
    assert not list((tmp_path / "x").glob("seed-*")), "nothing trained"
