"""The Turbo-VBI rounds: the Trainer callback on sklearn digits down to a compacted model, the plain step() API,
the spec's initialisation and switches, and bad input."""

from __future__ import annotations

import math

import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F

from sparsenets.compact import compact
from sparsenets.errors import ConfigError, SparsenetsError
from sparsenets.train import TensorBatches, Trainer
from sparsenets.turbovbi import TurboVBI, TurboVBICallback, TurboVBIConfig, convert, layer_stats, prune
from sparsenets.turbovbi.model import update_layer


def _digits() -> tuple[torch.Tensor, ...]:
    d = load_digits()
    x, y = torch.tensor(d.data, dtype=torch.float32) / 16, torch.tensor(d.target)
    return x[:1400], y[:1400], x[1400:], y[1400:]


def _mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model.eval()(x).argmax(1) == y).float().mean())


def _ce(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    return F.cross_entropy(model(batch[0]), batch[1])


def test_callback_drives_rounds_to_a_sparse_model_whose_compacted_outputs_match() -> None:
    torch.manual_seed(0)
    xtr, ytr, xte, yte = _digits()
    batches = TensorBatches(xtr, ytr, batch_size=100, seed=0)
    model = _mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    Trainer(model, opt, batches, _ce, steps=20 * 14, device="cpu", progress=False).fit()  # dense warm-up
    dense_acc = _accuracy(model, xte, yte)
    config = TurboVBIConfig(rounds=9, epochs_per_round=2)
    convert(model, config)
    cb = TurboVBICallback(model, config, n_train=1400, steps_per_epoch=batches.steps_per_epoch)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    Trainer(
        model, opt, batches, _ce, steps=cb.vbi.total_steps, callbacks=[cb], device="cpu", progress=False
    ).fit()
    assert cb.vbi.done and len(cb.vbi.history) == 9
    assert [h["beta"] for h in cb.vbi.history[:4]] == pytest.approx([1 / 3, 2 / 3, 1.0, 1.0])
    plain, _ = prune(model, config, xtr[:1])
    total = layer_stats(plain)[-1]
    assert total["compression"] > 4.0  # measured 5.8× at 86.6% vs 90.2% dense (18 epochs; 10× after 24)
    assert _accuracy(plain, xte, yte) > dense_acc - 0.05
    small = compact(plain, xtr[:1])
    assert small[0].out_features < 64 and small[2].out_features < 32  # whole neurons removed
    assert torch.allclose(small(xte), plain(xte), atol=1e-5)


def test_plain_step_api_runs_rounds_at_their_steps_and_resumes() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
    config = TurboVBIConfig(rounds=3, epochs_per_round=2, kl_anneal=0.0)
    model = convert(nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3)), config)
    vbi = TurboVBI(model, config, n_train=64, steps_per_epoch=4)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    ended = []
    for i in range(vbi.total_steps + 3):  # steps past the last round end no further round
        loss = F.cross_entropy(model(x[i % 4 * 16 :][:16]), y[i % 4 * 16 :][:16]) + vbi.kl_loss()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if vbi.step():
            ended.append(i + 1)
    assert ended == [8, 16, 24] and vbi.done and vbi.beta == 1.0
    assert vbi.kl_loss().item() == pytest.approx(vbi.kl().item() / 64)
    again = TurboVBI(model, config, n_train=64, steps_per_epoch=4)
    again.load_state_dict(vbi.state_dict())
    assert again.round == 3 and again.steps == vbi.steps and again.history == vbi.history


def test_initialisation_and_the_module_b_switches() -> None:
    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(10, 8))
    w = base[0].weight.detach().clone()
    s2 = float(w.double().pow(2).mean())
    layer = convert(base, TurboVBIConfig())[0]
    # π = ½, π̃ = 0.1, E[ρ] = 10ρ* with ρ* = a ln(b/b̄)/(b − b̄) on tables b = s², b̄ = 0.01 s²
    rho_star = math.log(100) / (0.99 * s2)
    assert torch.allclose(1 / layer.prior_var, torch.full_like(w, 10 * rho_star), rtol=1e-5)
    assert torch.allclose(layer.pi_tilde, torch.full_like(w, 0.1)) and (layer.prior_logodds == 0).all()
    iid = convert(nn.Sequential(nn.Linear(10, 8)), TurboVBIConfig(support="iid", p01=0.2, p10=0.6))[0]
    update_layer(iid, "0", TurboVBIConfig(support="iid", p01=0.2, p10=0.6))
    assert torch.allclose(iid.prior_logodds, torch.full_like(w, math.log(0.2 / 0.6)))  # π = λ
    ard = convert(nn.Sequential(nn.Linear(10, 8)), TurboVBIConfig(support="off"))[0]
    update_layer(ard, "0", TurboVBIConfig(support="off"))
    m2 = ard.weight.detach() ** 2 + ard.sigma2().detach()
    s2_ard = float(ard.scale2)
    assert torch.allclose(ard.prior_var, (s2_ard + m2 / 2) / 1.5, rtol=1e-5)  # ARD: b̃/ã = (b + m2/2)/(a + ½)
    ext, mar = (
        convert(nn.Sequential(nn.Linear(10, 8)), TurboVBIConfig(messages=m))
        for m in ("extrinsic", "marginal")
    )
    with torch.no_grad():
        mar[0].weight.copy_(ext[0].weight)
        mar[0].bias.copy_(ext[0].bias)
    update_layer(ext[0], "0", TurboVBIConfig())
    update_layer(mar[0], "0", TurboVBIConfig(messages="marginal"))
    assert not torch.allclose(
        ext[0].prior_logodds, mar[0].prior_logodds
    )  # the demo's double counting differs


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"p01": 0.0}, "p01=0.0 must lie strictly between 0 and 1"),
        ({"p10": 1.0}, "p10=1.0 must lie strictly between 0 and 1"),
        ({"layer_p": {"0": (0.5, 1.5)}}, "p10=1.5 must lie strictly"),
        ({"b_bar": 0.0}, "b_bar=0.0 must be a finite number > 0"),
        ({"a": -1.0}, "a=-1.0 must be a finite number > 0"),
        ({"support": "hmm"}, "support must be one of"),
        ({"damping": 1.0}, "damping must be in"),
        ({"rounds": 0}, "rounds must be an integer >= 1"),
        ({"support": "iid", "messages": "marginal"}, "needs support 'mrf2d' or 'chain'"),
    ],
)
def test_bad_config_is_one_clear_error(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        TurboVBIConfig(**kwargs)
    assert "\n" not in str(err.value)


def test_nan_in_the_posterior_is_one_clear_error() -> None:
    model = convert(nn.Sequential(nn.Linear(4, 3)))
    vbi = TurboVBI(model, TurboVBIConfig(), n_train=10, steps_per_epoch=1)
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")
    with pytest.raises(SparsenetsError, match=r"posterior of layer '0' .* holds NaN/inf") as err:
        vbi.end_round()
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="n_train must be a positive integer"):
        TurboVBI(model, TurboVBIConfig(), n_train=0, steps_per_epoch=1)
    with pytest.raises(ConfigError, match="needs a converted model"):
        TurboVBI(nn.Sequential(nn.Linear(2, 2)), TurboVBIConfig(), n_train=1, steps_per_epoch=1)


def test_the_package_docstring_example_runs() -> None:
    import sparsenets.turbovbi

    code = sparsenets.turbovbi.__doc__.split("```python\n")[1].split("```")[0]
    scope: dict = {}
    exec(compile(code, "sparsenets.turbovbi docstring", "exec"), scope)
    assert scope["small"](scope["x"]).shape == (256, 3)
    assert set(scope["masks"]) >= {"0.weight", "2.weight"}


def test_add_kl_grad_is_the_gradient_of_kl_loss() -> None:
    torch.manual_seed(0)
    config = TurboVBIConfig(rounds=4)
    model = convert(nn.Sequential(nn.Conv2d(1, 3, 3), nn.Flatten(), nn.Linear(12, 2)), config)
    vbi = TurboVBI(model, config, n_train=50, steps_per_epoch=1)
    vbi.end_round()  # a non-trivial prior and β = ½
    vbi.kl_loss().backward()
    auto = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    model.zero_grad(set_to_none=True)
    vbi.add_kl_grad()
    closed = [p.grad for p in model.parameters() if p.grad is not None]
    assert len(auto) == len(closed) == 4  # μ and log σ² of both layers (biases carry no KL)
    for a, c in zip(auto, closed):
        assert torch.allclose(a, c, atol=1e-7, rtol=1e-5)
