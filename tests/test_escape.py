"""Escape probes of the paper's Figs. 2-3 (adversary_dynamics.figures.escape): the descent stage ends at an
approximate local minimum (checked against an exact trust-region solution and independent probes),
escape time on hand-made curves, the batched (ratio x input) call against a loop over ratios, the
trajectory's first loss against the descent's end point, the tables and the command line."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from adversary_dynamics.figures import escape
from adversary_dynamics.learning.losses import squared_error
from adversary_dynamics.learning.models import CNN, StackedCNN

ROOT = Path(__file__).resolve().parents[1]


class Linear(nn.Module):
    """F(x) = W x + b: the squared error is a convex quadratic in δ, so min over the ball is a
    trust-region problem with a closed-form solution (used as the independent reference)."""

    def __init__(self, W: torch.Tensor, b: torch.Tensor) -> None:
        super().__init__()
        self.W, self.b = nn.Parameter(W), nn.Parameter(b)

    def forward(self, x):
        return x @ self.W.t() + self.b


class Softplus2(nn.Module):
    """A smooth non-convex network (softplus hidden layer), so minima are critical points."""

    def __init__(self, d, m, k, gen):
        super().__init__()
        self.W = nn.Parameter(torch.randn(m, d, generator=gen) / math.sqrt(d))
        self.A = nn.Parameter(torch.randn(k, m, generator=gen) * 2.0 / math.sqrt(m))

    def forward(self, x):
        return nn.functional.softplus(x @ self.W.t()) @ self.A.t()


def trust_region_min(J: np.ndarray, c: np.ndarray, eps: float) -> float:
    """min ‖J δ + c‖² over ‖δ‖ ≤ eps (float64): the least-norm least-squares solution if it fits,
    else δ(λ) = −(JᵀJ + λI)⁻¹Jᵀc with ‖δ(λ)‖ = eps (bisection on λ)."""
    d = J.shape[1]
    dl = -np.linalg.pinv(J) @ c
    if np.linalg.norm(dl) <= eps:
        return float(np.sum((J @ dl + c) ** 2))
    lo, hi = 0.0, 1.0
    H, g = J.T @ J, J.T @ c
    while np.linalg.norm(np.linalg.solve(H + hi * np.eye(d), -g)) > eps:
        hi *= 2
    for _ in range(200):
        lam = 0.5 * (lo + hi)
        if np.linalg.norm(np.linalg.solve(H + lam * np.eye(d), -g)) > eps:
            lo = lam
        else:
            hi = lam
    delta = np.linalg.solve(H + hi * np.eye(d), -g)
    return float(np.sum((J @ delta + c) ** 2))


DESCENT = dict(steps=400, step_size=0.1, stages=8, directions=32, radius=1e-2, gtol=0.05, ftol=1e-4)


def test_descent_reaches_the_trust_region_minimum_of_a_linear_model():
    gen = torch.Generator().manual_seed(0)
    d, K, N = 12, 3, 6
    W, b = torch.randn(K, d, generator=gen), torch.randn(K, generator=gen)
    model = Linear(W, b)
    x = torch.randn(N, d, generator=gen)
    y = torch.randint(0, K, (N,), generator=gen)
    # small balls (minimum on the sphere) and large ones (interior minimum, loss 0)
    eps = torch.tensor([0.05, 0.3, 1.0, 3.0, 10.0, 30.0]).double()
    x, model = x.double(), model.double()
    z = escape.unit_ball_starts(N, d, generator=gen, dtype=torch.float64)
    res = escape.descend(model, x, y, loss="squared_error", eps=eps, start=eps.unsqueeze(-1) * z,
                         generator=torch.Generator().manual_seed(1), **DESCENT)
    Wn, bn = W.double().numpy(), b.double().numpy()
    for i in range(N):
        c = Wn @ x[i].numpy() + bn - np.eye(K)[int(y[i])]
        best = trust_region_min(Wn, c, float(eps[i]))
        ref = float(res.loss_ball[i])
        assert float(res.loss[i]) <= best + 1e-4 * ref + 1e-9, (i, float(res.loss[i]), best)
        assert float(torch.linalg.vector_norm(res.delta[i])) <= float(eps[i]) * (1 + 1e-9)
    assert bool(res.converged.all()) and bool(res.stationary.all())
    # the loss at δ* is the model's loss there (independent evaluation)
    torch.testing.assert_close(res.loss, squared_error(model(x + res.delta), y))


def _smooth_problem():
    """A softplus network in float64, N = 8 inputs in d = 10, ε = 2; the generator continues."""
    gen = torch.Generator().manual_seed(3)
    d, N = 10, 8
    model = Softplus2(d, 32, 4, gen).double()
    x = torch.randn(N, d, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 4, (N,), generator=gen)
    eps = torch.full((N,), 2.0, dtype=torch.float64)
    return gen, d, N, model, x, y, eps


def test_descent_ends_at_an_approximate_local_minimum_of_a_smooth_network():
    gen, d, N, model, x, y, eps = _smooth_problem()
    z = escape.unit_ball_starts(N, d, generator=gen, dtype=torch.float64)
    res = escape.descend(model, x, y, loss="squared_error", eps=eps, start=eps.unsqueeze(-1) * z,
                         generator=torch.Generator().manual_seed(1), **DESCENT)
    assert bool(res.converged.all()) and bool(res.stationary.all())
    # independent first-order check: the KKT residual of min over the ball, relative to the start gradient
    xa = (x + res.delta).requires_grad_(True)
    (g,) = torch.autograd.grad(squared_error(model(xa), y).sum(), xa)
    dn = torch.linalg.vector_norm(res.delta, dim=-1)
    u = res.delta / dn.unsqueeze(-1)
    gu = (g * u).sum(-1)
    tang = torch.linalg.vector_norm(g - gu.unsqueeze(-1) * u, dim=-1)
    on_sphere = dn >= eps * (1 - 1e-6)
    # minimum on the sphere: −∇ℓ points outward (g·u ≤ 0) and no tangential part; inside: ∇ℓ ≈ 0
    kkt = torch.where(on_sphere, torch.sqrt(tang ** 2 + gu.clamp(min=0) ** 2), torch.linalg.vector_norm(g, dim=-1))
    assert bool((kkt <= 0.05 * res.grad_ball).all()), (kkt / res.grad_ball).tolist()
    # no improving feasible direction among many fresh random ones, at two probe lengths
    g2 = torch.Generator().manual_seed(99)
    for r in (1e-2, 1e-3):
        v = torch.randn(256, N, d, generator=g2, dtype=torch.float64)
        v = v / torch.linalg.vector_norm(v, dim=-1, keepdim=True)
        cand = res.delta + r * eps.unsqueeze(-1) * v
        cand = cand * torch.clamp(eps.unsqueeze(-1) / torch.linalg.vector_norm(cand, dim=-1, keepdim=True), max=1)
        with torch.no_grad():
            ell = squared_error(model(x + cand), y.expand(256, N))
        assert bool((ell >= res.loss - 1e-4 * res.loss_ball).all())


def test_the_check_can_fail():
    """The uniform start itself is not a local minimum: the certificate must say so."""
    gen, d, N, model, x, y, eps = _smooth_problem()
    start = eps.unsqueeze(-1) * escape.unit_ball_starts(N, d, generator=gen, dtype=torch.float64)
    ell, g = escape._grad(model, x, y, start, "squared_error")
    rho, stat, n_imp, ok = escape.min_certificate(model, x, y, start, loss="squared_error", eps=eps,
                                                   grad_ref=torch.linalg.vector_norm(g, dim=-1), loss_ref=ell)
    assert not bool(ok.any()) and not bool(stat.any())
    assert bool((n_imp >= 1).all())


@pytest.mark.parametrize("curve,expected", [
    ([0, 0, 0, 1, 1, 1], 3.0),                # a step
    (list(range(11)), 5.0),                   # a ramp: half of the rise at step 5
    ([0, 1, 2, 3, 4, 1, 1], 2.0),             # rises to 4 then falls: half of the total rise (4) = 2 at step 2
    ([5, 5, 5.5, 6, 9, 9], 4.0),              # half of 4 reached first at step 4 (9 >= 7)
    ([-3, -3, -2.9, -1, -1], 3.0),            # negative levels
])
def test_escape_time_on_hand_made_curves(curve, expected):
    t, esc, rise = escape.escape_time(torch.tensor(curve, dtype=torch.float64))
    assert bool(esc) and float(t) == expected
    assert float(rise) == pytest.approx(max(curve) - curve[0])


def test_escape_time_flags_flat_and_nan_curves_and_keeps_batch_shape():
    L = torch.zeros(6, 2, 3, dtype=torch.float64)
    L[:, 0, 0] = torch.tensor([1, 1, 1, 1, 1, 1.0])               # flat
    L[:, 0, 1] = torch.tensor([1, 1, 1, 1, 1, 1 + 1e-9])          # a rise of 1e-9: below rtol
    L[:, 0, 2] = torch.tensor([1, 2, math.nan, 2, 2, 2])          # NaN: not finite
    L[:, 1, 0] = torch.tensor([0, 0, 0, 0, 0, 1e-3])              # tiny in absolute terms, but from 0
    L[:, 1, 1] = torch.tensor([0, 0, 0, 0, 0, 1e-3])              # ... below rtol of a reference level 10
    L[:, 1, 2] = torch.tensor([1, 3, 3, 3, 3, 3.0])
    ref = torch.tensor([[1.0, 1.0, 1.0], [0.0, 1e4, 0.0]], dtype=torch.float64)
    t, esc, rise = escape.escape_time(L, rtol=1e-6, reference=ref)
    assert t.shape == esc.shape == rise.shape == (2, 3)
    assert esc.tolist() == [[False, False, False], [True, False, True]]
    assert math.isnan(float(t[0, 0])) and math.isnan(float(t[1, 1]))
    assert float(t[1, 0]) == 5.0 and float(t[1, 2]) == 1.0
    with pytest.raises(ValueError, match="rtol"):
        escape.escape_time(L, rtol=-1.0)


def _cnn(seed=0):
    return CNN(input_shape=(1, 8, 8), channels=(4, 8), hidden=16, n_outputs=10,
               generator=torch.Generator().manual_seed(seed))


def _inputs(N=5, scale=10.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(N, 64, generator=g)
    x = x * (scale / torch.linalg.vector_norm(x, dim=-1).mean())
    return x, torch.randint(0, 10, (N,), generator=g), escape.unit_ball_starts(N, 64, generator=g)


SMALL = dict(steps=20, step_size=0.1, stages=2, directions=8)


def test_batched_ratio_by_input_call_equals_a_loop_over_ratios():
    model, (x, y, z) = _cnn(), _inputs()
    ratios = [0.01, 0.1, 1.0]
    kw = dict(scale=10.0, loss="squared_error", step_size=0.5, steps=15, starts=z, descent=SMALL)
    both = escape.probe_escape(model, x, y, ratios=ratios, generator=torch.Generator().manual_seed(5), **kw)
    assert both.losses.shape == (16, 3, 5)
    for i, r in enumerate(ratios):
        one = escape.probe_escape(model, x, y, ratios=[r], generator=torch.Generator().manual_seed(5), **kw)
        torch.testing.assert_close(both.losses[:, i], one.losses[:, 0], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(both.eps[i], one.eps[0])
        torch.testing.assert_close(both.relative_step[i], one.relative_step[0], rtol=1e-3, atol=1e-6)


def test_stacked_cnn_equals_its_models():
    models = [_cnn(k) for k in range(3)]
    st = StackedCNN(models)
    x = torch.rand(3, 2, 4, 64, generator=torch.Generator().manual_seed(0))
    out = st(x)
    assert out.shape == (3, 2, 4, 10)
    for i, m in enumerate(models):
        torch.testing.assert_close(out[i], m(x[i]), rtol=1e-5, atol=1e-6)
    # input gradients too (pga differentiates through the stack), and the weights are copies
    xg = x.clone().requires_grad_(True)
    st(xg).square().sum().backward()
    for i, m in enumerate(models):
        xi = x[i].clone().requires_grad_(True)
        m(xi).square().sum().backward()
        torch.testing.assert_close(xg.grad[i], xi.grad, rtol=1e-4, atol=1e-6)
    with torch.no_grad():
        models[0].fc2.bias.add_(1.0)
    torch.testing.assert_close(st(x), out)
    with pytest.raises(ValueError, match="architecture"):
        StackedCNN([_cnn(0), CNN(input_shape=(1, 8, 8), channels=(4, 8), hidden=8)])
    with pytest.raises(ValueError, match="non-empty list of CNN"):
        StackedCNN([])
    with pytest.raises(ValueError, match="non-empty list of CNN"):
        StackedCNN([_cnn(0), nn.Linear(64, 10)])
    with pytest.raises(ValueError, match=r"x must have shape \(3, \*batch, 64\)"):
        st(torch.zeros(2, 4, 64))
    assert escape.StackedCNN is StackedCNN  # the old import path still works


def test_trajectory_starts_at_the_descent_end_point():
    model, (x, y, z) = _cnn(), _inputs()
    pr = escape.probe_escape(model, x, y, ratios=[0.1, 1.0], scale=10.0, loss="squared_error", step_size=0.5,
                             steps=10, starts=z, descent=SMALL)
    torch.testing.assert_close(pr.losses[0], pr.descent.loss, rtol=1e-6, atol=1e-7)
    with torch.no_grad():  # the loss at δ* evaluated directly
        direct = squared_error(model(x.expand(2, 5, 64) + pr.descent.delta), y.expand(2, 5))
    torch.testing.assert_close(pr.losses[0], direct, rtol=1e-5, atol=1e-6)
    # the relative step at the start is η‖∇ℓ(δ*)‖/ε
    ell, g = escape._grad(model, x.expand(2, 5, 64), y.expand(2, 5), pr.descent.delta, "squared_error")
    torch.testing.assert_close(pr.relative_step, 0.5 * torch.linalg.vector_norm(g, dim=-1) / pr.eps,
                               rtol=1e-4, atol=1e-7)


def test_probe_is_deterministic_and_rejects_bad_input():
    model, (x, y, z) = _cnn(), _inputs()
    kw = dict(scale=10.0, loss="squared_error", step_size=0.5, steps=5, starts=z, descent=SMALL)
    a = escape.probe_escape(model, x, y, ratios=[1.0], generator=torch.Generator().manual_seed(1), **kw)
    b = escape.probe_escape(model, x, y, ratios=[1.0], generator=torch.Generator().manual_seed(1), **kw)
    assert torch.equal(a.losses, b.losses) and torch.equal(a.descent.n_improving, b.descent.n_improving)
    with pytest.raises(ValueError, match="ratios"):
        escape.probe_escape(model, x, y, ratios=[0.0], **kw)
    with pytest.raises(ValueError, match="scale"):
        escape.probe_escape(model, x, y, ratios=[1.0], **{**kw, "scale": -1.0})
    with pytest.raises(ValueError, match="starts"):
        escape.probe_escape(model, x, y, ratios=[1.0], **{**kw, "starts": z[:2]})
    with pytest.raises(ValueError, match="stages"):
        escape.probe_escape(model, x, y, ratios=[1.0], **{**kw, "descent": {**SMALL, "stages": 0}})


def test_unit_ball_starts_and_input_scaled():
    z = escape.unit_ball_starts(4000, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    r = torch.linalg.vector_norm(z, dim=-1)
    assert bool((r <= 1).all())
    assert float((r ** 8).mean()) == pytest.approx(0.5, abs=0.02)  # r^d ~ U(0, 1) in the uniform ball
    m = _cnn()
    x = torch.rand(3, 64)
    torch.testing.assert_close(escape.InputScaled(m, scale=50.0)(x * 50.0), m(x), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="scale"):
        escape.InputScaled(m, scale=0.0)


def test_rows_and_tables(tmp_path):
    model, (x, y, z) = _cnn(), _inputs(N=3)
    pr = escape.probe_escape(model, x, y, ratios=[0.1, 1.0], scale=10.0, loss="squared_error", step_size=0.5,
                             steps=150, starts=z, descent=SMALL)
    rows = escape.run_rows(pr, scale=10.0, ratios=[0.1, 1.0], eta=0.5, seed=0, checkpoint=0, labels=y)
    assert len(rows) == 6 and set(rows[0]) == set(escape.ESCAPE_COLUMNS)
    assert rows[4]["ratio"] == 1.0 and rows[4]["input"] == 1
    assert rows[4]["loss_start"] == pytest.approx(float(pr.losses[0, 1, 1]))
    from adversary_dynamics.storage import runio

    run = tmp_path / "run"
    runio.write_csv_atomic(run / "escape.csv", rows, escape.ESCAPE_COLUMNS)
    np.savez(run / "curves.npz", losses=pr.losses.reshape(151, -1).t().numpy())
    paths = escape.write_tables([run], out_dir=tmp_path / "tables", config={"x": 1}, points=10)
    esc = pd.read_csv(paths["escape"])
    cur = pd.read_csv(paths["curves"])
    assert {"scale", "ratio", "eps", "eta", "seed", "input", "checkpoint", "loss_start", "loss_end", "loss_rise",
            "escape_time", "relative_step", "descent_converged"} <= set(esc.columns)
    steps = sorted(cur["step"].unique())
    assert steps == sorted(set(range(21)) | {15 * k for k in range(11)})
    got = cur[(cur["ratio"] == 1.0) & (cur["input"] == 2)].set_index("step")["loss"]
    np.testing.assert_allclose(got.loc[steps].to_numpy(), pr.losses[steps, 1, 2].numpy(), rtol=1e-6)
    prov = json.loads(paths["provenance"].read_text())
    assert prov["config"] == {"x": 1} and "code" in prov and prov["runs"][0]["path"] == str(run)


def test_command_line_run_and_tables(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, str(ROOT / "scripts" / "escape.py"), "run", "--figure", "fig2", "--out-dir", str(out),
           "--n-test", "20", "--architecture", "cnn", "--cnn-channels", "4,8", "--cnn-hidden", "16",
           "--loss", "squared_error", "--scales", "0.1,1000", "--ratios", "0.01,1", "--seeds", "0",
           "--n-inputs", "2", "--steps", "10", "--step-size", "1", "--descent-steps", "6", "--descent-stages", "2",
           "--check-directions", "4"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    esc = pd.read_csv(out / "escape.csv")
    assert len(esc) == 2 * 2 * 2 and set(esc["eps"].round(6)) == {0.001, 0.1, 10.0, 1000.0}
    lev = pd.read_csv(out / "levels.csv")
    # the input-normalised variant sees x / s: the same clean loss at every scale
    sc = lev[lev["input_normalization"] == "scale"]["loss_clean_mean"].to_numpy()
    assert sc.max() - sc.min() < 1e-4 * sc.max()
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "escape.py"), "tables", "--runs", str(out),
                          "--out-dir", str(tmp_path / "t")], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    assert {p.name for p in (tmp_path / "t").iterdir()} == {"escape.csv", "curves.csv", "survival.csv", "levels.csv",
                                                            "escape_replica.csv", "provenance.json"}
    # the default replica (--replica-ulps 1 in the configuration; none given here): an empty table
    assert len(pd.read_csv(tmp_path / "t" / "escape_replica.csv")) == 0


@pytest.mark.slow
def test_escape_benchmark_quick_run_prints_json():
    res = subprocess.run([sys.executable, str(ROOT / "bench" / "escape_speed.py"), "--quick"], capture_output=True,
                         text=True, timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["quick"] is True and summary["bench"] == "escape_speed"
    assert all(v > 0 for v in summary["cnn_step"]["ms_per_step"].values())


def _run_notebook(name: str, params: dict) -> None:
    """Execute a figure notebook's code cells in this process, the parameters cell replaced."""
    nb = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text(encoding="utf-8"))
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    ns: dict = {}
    for c in nb["cells"]:
        if c["cell_type"] != "code":
            continue
        src = "".join(c["source"])
        if c is tagged[0]:
            defaults = {}
            exec(src, defaults)
            assert set(params) == {k for k in defaults if not k.startswith("__")}, sorted(defaults)
            src = "\n".join(f"{k} = {v!r}" for k, v in params.items())
        exec(compile(src, name, "exec"), ns)


def test_figure_notebooks_run_on_small_tables(tmp_path):
    """Both notebooks on tables of a tiny run: two scales, a NaN escape time (a flat curve), one seed."""
    from adversary_dynamics.storage import runio

    model, (x, y, z) = _cnn(), _inputs(N=2)
    rows, curves, levels = [], [], []
    for s in (0.1, 1000.0):
        xs = x * (s / 10.0)
        for k, m in ((0, model), (2, _cnn(1))):
            pr = escape.probe_escape(m, xs, y, ratios=[0.1, 1.0], scale=s, loss="squared_error", step_size=0.5,
                                     steps=30, starts=z, descent=SMALL)
            rows += escape.run_rows(pr, scale=s, ratios=[0.1, 1.0], eta=0.5, seed=0, checkpoint=k, labels=y)
            curves.append(pr.losses.reshape(31, -1).t().numpy())
        levels += [{"scale": s, "seed": 0, "input_normalization": v, "used": v == "none", "loss_clean_mean": 1.0,
                    "loss_clean_median": 1.0} for v in ("none", "scale")]
    rows[0]["escaped"], rows[0]["escape_time"] = False, math.nan
    for fig, keep in (("paper_fig2_escape_by_scale", lambda r: r["checkpoint"] == 0),
                      ("paper_fig3_escape_during_training", lambda r: True)):
        run = tmp_path / fig
        sel = [i for i, r in enumerate(rows) if keep(r)]
        runio.write_csv_atomic(run / "escape.csv", [rows[i] for i in sel], escape.ESCAPE_COLUMNS)
        np.savez(run / "curves.npz", losses=np.concatenate(curves)[sel])
        if fig.startswith("paper_fig2"):
            runio.write_csv_atomic(run / "levels.csv", levels)
        paths = escape.write_tables([run], out_dir=tmp_path / "tables" / fig, points=10)
        params = {k: str(p) for k, p in paths.items() if k != "provenance"}
        params.update(out_pdf=str(tmp_path / f"{fig}.pdf"), out_png=str(tmp_path / f"{fig}.png"), config_name="t")
        _run_notebook(fig, params)
        assert (tmp_path / f"{fig}.png").stat().st_size > 10_000


class Constant(nn.Module):
    """An output that does not depend on the input (a collapsed network): a flat landscape."""

    def forward(self, x):
        return torch.zeros(*x.shape[:-1], 10, dtype=x.dtype) + 0.1 + 0.0 * x[..., :1]


def test_flat_landscape_is_flagged_and_not_counted_as_stuck():
    (x, y, z), m = _inputs(N=3), Constant()
    pr = escape.probe_escape(m, x, y, ratios=[0.1, 1.0], scale=10.0, loss="squared_error", step_size=0.5,
                             steps=20, starts=z, descent=SMALL)
    assert not bool(pr.escaped.any()) and bool(pr.flat.all()) and bool(pr.escape_time.isnan().all())
    torch.testing.assert_close(pr.losses, torch.full_like(pr.losses, 0.9))
    # a real network at its exact start is not flat
    pr = escape.probe_escape(_cnn(), x, y, ratios=[0.1], scale=10.0, loss="squared_error", step_size=0.5,
                             steps=20, starts=z, descent=SMALL)
    assert not bool(pr.flat.any())


# ---- censoring (issue 18): a half-rise step that the step budget decides is censored, escape time > T -----------
T_CENSOR = 1000


def _hand_curves(T=T_CENSOR):
    """(T+1, 4) curves and the first-order range ε‖∇ℓ(δ_u)‖ of each: a clean rise; a creep of 2·10⁻⁶ of the level
    (crosses half of its tiny rise at T/2); a late mover from an exact minimum (only starts to move at the end);
    a run with a real first rise that is still rising at T (55 % of its rise in the last 5 % of the steps)."""
    t = torch.arange(T + 1, dtype=torch.float64)
    clean = 1 + (1 - torch.exp(-t / 20))
    creep = 1 + 2e-6 * t / T
    late = 1e-5 + 0.04 * torch.exp((t - T) / 30)
    second = 1 + 0.45 * (1 - torch.exp(-t / 20)) + 0.55 * torch.clamp((t - 950) / 50, min=0)
    return torch.stack([clean, creep, late, second], 1), torch.tensor([0.6, 0.6, 12.0, 0.6], dtype=torch.float64)


def test_censoring_rules_on_hand_made_curves():
    L, fo = _hand_curves()
    half, rose, _ = escape.escape_time(L, rtol=1e-6)
    # the raw half-rise steps, which the old code reported as escape times: the creep "escapes" at T/2
    assert half[0] == 14.0 and 499 <= half[1] <= 501 and half[2] > 950 and half[3] > 950 and rose.all()
    ratio, share, c_rise, c_late = escape.censoring(L, first_order=fo, min_rise=0.1, tail=0.1, tail_rise=0.25)
    assert c_rise.tolist() == [False, True, True, False]  # (a) no departure: creep and late mover
    assert c_late.tolist() == [False, False, True, True]  # (b) still rising at T: late mover and second rise
    assert ratio[0] == pytest.approx(1 / 0.6, rel=1e-6) and ratio[1] < 1e-4 and ratio[2] < 0.01
    assert share[0] == 0 and share[2] > 0.9 and share[3] == pytest.approx(0.55, abs=1e-3)
    # the rule's thresholds: a linear rise puts 10 % of its rise in the last 10 % of the steps
    lin = torch.linspace(0, 1, T_CENSOR + 1, dtype=torch.float64).unsqueeze(1)
    assert escape.censoring(lin, first_order=1.0, tail=0.1, tail_rise=0.25)[3].tolist() == [False]
    assert escape.censoring(lin, first_order=1.0, tail=0.1, tail_rise=0.05)[3].tolist() == [True]
    bad = torch.cat([L[:, :1], torch.full((T_CENSOR + 1, 1), math.nan, dtype=torch.float64)], 1)
    assert escape.censoring(bad, first_order=0.6)[2].tolist() == [False, False]  # non-finite: never censored
    for kw in ({"min_rise": -1.0}, {"tail": 0.0}, {"tail": 1.0}, {"tail_rise": 1.0}):
        with pytest.raises(ValueError, match=next(iter(kw))):
            escape.censoring(L, first_order=fo, **kw)


def _fake_probe(monkeypatch, L, first_order, *, loss_ball=1.0):
    """probe_escape with its descent and PGA replaced by hand-made curves L (T+1, R, N) and a given ε‖∇ℓ(δ_u)‖
    (R, N) at ε = ratio · scale = 1, so that the classification of the runs can be checked exactly."""
    import types

    T1, R, N = L.shape

    def fake_descend(model, x, y, *, eps, start, **kw):
        z = torch.zeros((R, N), dtype=torch.float64)
        return escape.DescentResult(delta=start, loss=L[0].clone(), loss_ball=z + loss_ball,
                                    grad_ball=first_order.clone(), mapping=z, stationary=z == 0,
                                    n_improving=z.long(), converged=z == 0)

    def fake_ascend(model, x, y, delta0, *, steps, **kw):
        return types.SimpleNamespace(losses=L, grad_norm=torch.ones_like(L))

    monkeypatch.setattr(escape, "descend", fake_descend)
    monkeypatch.setattr(escape, "ascend", fake_ascend)
    x = torch.randn(N, 4, dtype=torch.float64)
    model = nn.Linear(4, 3).double()
    return escape.probe_escape(model, x, torch.zeros(N, dtype=torch.long), ratios=[1.0] * R, scale=1.0,
                               loss="squared_error", step_size=1.0, steps=T1 - 1, starts=torch.zeros_like(x),
                               rtol=1e-6), model


def test_probe_censors_creep_and_late_movers_not_a_clean_rise(monkeypatch):
    L, fo = _hand_curves()
    pr, _ = _fake_probe(monkeypatch, L.unsqueeze(1), fo.unsqueeze(0))
    assert pr.censored[0].tolist() == [False, True, True, True]
    assert pr.escaped[0].tolist() == [True, False, False, False] and not pr.flat.any()
    assert pr.censored_rise[0].tolist() == [False, True, True, False]
    assert pr.censored_late[0].tolist() == [False, False, True, True]
    assert pr.escape_time[0].tolist() == [14.0, math.inf, math.inf, math.inf]  # censored: > T
    assert 499 <= pr.half_rise_step[0, 1] <= 501  # the raw crossing is kept
    rows = escape.run_rows(pr, scale=1.0, ratios=[1.0], eta=1.0, seed=0, checkpoint=0, labels=torch.zeros(4))
    assert [r["censored"] for r in rows] == [False, True, True, True]
    assert set(rows[0]) == set(escape.ESCAPE_COLUMNS)
    with pytest.raises(ValueError, match="censor"):
        escape.probe_escape(nn.Linear(4, 3).double(), torch.zeros(1, 4, dtype=torch.float64),
                            torch.zeros(1, dtype=torch.long), ratios=[1.0], scale=1.0, loss="squared_error",
                            step_size=1.0, steps=5, starts=torch.zeros(1, 4, dtype=torch.float64),
                            censor={"min_ris": 0.1})


def test_probe_no_rise_is_censored_flat_is_not(monkeypatch):
    """Every finite run is exactly one of escaped, censored, flat: no rise with a gradient in the ball is
    censored (stuck, > T); no rise without one is flat (escape time NaN, left out)."""
    T = 50
    L = torch.ones((T + 1, 1, 3), dtype=torch.float64)
    L[:, 0, 2] = 1 + (1 - torch.exp(-torch.arange(T + 1, dtype=torch.float64) / 5))
    pr, _ = _fake_probe(monkeypatch, L, torch.tensor([[0.5, 0.0, 0.5]], dtype=torch.float64))
    assert pr.censored[0].tolist() == [True, False, False] and pr.flat[0].tolist() == [False, True, False]
    assert pr.escaped[0].tolist() == [False, False, True]
    t = pr.escape_time[0].tolist()
    assert t[0] == math.inf and math.isnan(t[1]) and t[2] == 4.0
    assert (pr.escaped.int() + pr.censored.int() + pr.flat.int() == 1).all()


def test_censor_defaults_match_config_and_schema():
    import yaml

    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["paper_escape"]
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    props = schema["properties"]["paper_escape"]["properties"]
    for k, v in escape.CENSOR_DEFAULTS.items():
        assert cfg[f"censor_{k}"] == v and props[f"censor_{k}"]["default"] == v, k
        assert props[f"censor_{k}"]["description"]


def test_survival_table_on_hand_made_runs():
    """Escape times 1, 3, 3 and one censored run (> T); a flat and a non-finite run are left out."""
    esc = pd.DataFrame({"scale": 1.0, "ratio": [1.0] * 6 + [2.0], "checkpoint": 0,
                        "escape_time": [3.0, 1.0, math.inf, 3.0, math.nan, math.nan, math.inf],
                        "flat": [False, False, False, False, True, False, False],
                        "finite": [True, True, True, True, True, False, True]})
    s = escape.survival_table(esc, T=10)
    g = s[s["ratio"] == 1.0]
    assert g["step"].tolist() == [0, 1, 3, 10]
    assert g["survival"].tolist() == [1.0, 0.75, 0.25, 0.25]
    assert g["escaped"].tolist() == [0, 1, 3, 3]
    assert set(g["runs"]) == {4} and set(g["censored"]) == {1}
    h = s[s["ratio"] == 2.0]  # every run censored: S = 1 up to T
    assert h["step"].tolist() == [0, 10] and h["survival"].tolist() == [1.0, 1.0] and set(h["censored"]) == {1}
    with pytest.raises(ValueError, match="budget"):
        escape.survival_table(esc.assign(escape_time=esc["escape_time"] * 10), T=10)
    with pytest.raises(ValueError, match="escape_time"):
        escape.survival_table(esc.drop(columns="escape_time"), T=10)


def test_escape_summary_median_is_censored_when_most_runs_are():
    esc = pd.DataFrame({"scale": 1.0, "ratio": [1.0] * 4 + [2.0] * 4,
                        "escape_time": [5.0, math.inf, math.inf, math.inf, 2.0, 4.0, 6.0, math.inf],
                        "escaped": [True, False, False, False, True, True, True, False],
                        "censored": [False, True, True, True, False, False, False, True],
                        "flat": False})
    s = escape.escape_summary(esc, ["scale", "ratio"]).set_index("ratio")
    assert s.loc[1.0, "median_escape"] == math.inf and s.loc[1.0, "censored"] == 0.75
    assert s.loc[2.0, "median_escape"] == 5.0 and s.loc[2.0, "censored"] == 0.25
