"""Paper Fig. 1 (adversary_dynamics.figures.simulated, scripts/paper_fig1.py, the notebook): the disk landscape
against the network called point by point, the input-scale rescaling, the PGD trajectory (ball,
losses, update rule), maxima counts on hand-built landscapes with known maxima, and a papermill run
of the notebook on tables the script wrote from a tiny configuration."""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from adversary_dynamics.figures import simulated as S

ROOT = Path(__file__).resolve().parents[1]
F64 = torch.float64

TINY = dict(scales=[0.01, 100.0], ratios=[0.1, 10.0], width=8, seed=3, n_points=16, data_seed=5, label_rule="sign",
            example=2, grid=15, steps=10, step_size=0.1, init_seed=0, maxima_ratios=[0.1, 10.0], maxima_examples=2,
            restarts=8, maxima_steps=40, maxima_phases=2, maxima_step_fraction=0.05, cos_threshold=0.99,
            circle_points=360)


def direct_loss(net, x, y, delta) -> float:
    """(y − f(x + δ))² with the network called on ONE point, by hand from its weights (numpy, float64)."""
    W = net.W.detach().numpy().astype(np.float64)
    a = net.A.detach().numpy().astype(np.float64)[0]
    z = np.asarray(x, dtype=np.float64) + np.asarray(delta, dtype=np.float64)
    h = W @ z
    # softplus as torch defines it: log(1 + e^h), and h itself above the threshold 20 (an error < 2e-9)
    f = float(a @ np.where(h > 20.0, h, np.logaddexp(0.0, np.minimum(h, 20.0))))
    return (float(y) - f) ** 2


def sample_and_network(seed=3, data_seed=5, n=16, width=8):
    net = S.theory_network(width=width, generator=torch.Generator().manual_seed(seed))
    x, y = S.make_simulated(n=n, generator=torch.Generator().manual_seed(data_seed))
    return net, x, y


# ---- the network, the sample, the rescaling ------------------------------------------------------
def test_theory_network_is_the_papers():
    net = S.theory_network(width=400, generator=torch.Generator().manual_seed(0))
    assert net.W.shape == (400, 2) and net.A.shape == (1, 400) and net.b is None and net.activation == "softplus"
    assert torch.allclose(net.A.abs(), torch.full_like(net.A, 1 / math.sqrt(400)))
    assert abs(float(net.W.detach().var()) - 0.5) < 0.06  # w_r ~ N(0, I/d), d = 2


def test_rescaling_gives_requested_mean_norm():
    from adversary_dynamics.learning import data

    _, x, _ = sample_and_network()
    for s in (0.01, 1.0, 100.0):
        xs = data.rescale_to_scale(x, scale=s, reference=x)
        norms = np.linalg.norm(xs.numpy(), axis=1)
        assert norms.mean() == pytest.approx(s, rel=1e-12)
        # one global factor: every direction kept, every norm scaled alike
        ratio = norms / np.linalg.norm(x.numpy(), axis=1)
        assert np.allclose(ratio, ratio[0], rtol=1e-12)


def test_make_simulated_labels_and_errors():
    x, y = S.make_simulated(n=50, generator=torch.Generator().manual_seed(1))
    assert x.shape == (50, 2) and x.dtype == F64
    assert torch.equal(y, torch.where(x[:, 0] >= 0, 1.0, -1.0).to(F64))
    _, yt = S.make_simulated(n=50, label_rule="teacher", generator=torch.Generator().manual_seed(1))
    assert set(yt.tolist()) == {-1.0, 1.0}
    with pytest.raises(ValueError, match="label_rule"):
        S.make_simulated(n=5, label_rule="xor")
    with pytest.raises(ValueError, match="n must"):
        S.make_simulated(n=0)


# ---- the disk landscape ------------------------------------------------------------------------
def test_disk_landscape_equals_pointwise_network():
    net, x, y = sample_and_network()
    x0 = x[0] * 3.0
    eps = 2.5
    land = S.disk_landscape(net, x0, y[0], eps=eps, resolution=21)
    c = np.linspace(-eps, eps, 21)
    assert np.allclose(land.coords.numpy(), c, rtol=0, atol=1e-15)
    L = land.loss.numpy()
    inside = c[None, :] ** 2 + c[:, None] ** 2 <= eps**2 * (1 + 1e-12)
    assert np.array_equal(np.isfinite(L), inside)  # NaN exactly outside the disk
    rng = np.random.default_rng(0)
    ii, jj = np.nonzero(inside)
    for k in rng.choice(len(ii), 40, replace=False):
        i, j = ii[k], jj[k]
        assert L[i, j] == pytest.approx(direct_loss(net, x0, y[0], (c[j], c[i])), rel=1e-12)


def test_fig1_tables_grid_and_panels_equal_direct_evaluation():
    out = S.fig1_tables(**TINY)
    net, x, y = sample_and_network()
    xn = x.numpy()
    mean = np.linalg.norm(xn, axis=1).mean()
    G = TINY["grid"]
    assert len(out["grid"]) == len(TINY["scales"]) * len(TINY["ratios"]) * G * G
    rng = np.random.default_rng(1)
    rows = [r for r in out["grid"] if math.isfinite(r["loss"])]
    for k in rng.choice(len(rows), 60, replace=False):
        r = rows[k]
        xe = xn[TINY["example"]] * r["scale"] / mean
        assert r["eps"] == pytest.approx(r["ratio"] * r["scale"], rel=1e-15)
        assert r["delta1"] ** 2 + r["delta2"] ** 2 <= r["eps"] ** 2 * (1 + 1e-9)
        assert r["loss"] == pytest.approx(direct_loss(net, xe, y[TINY["example"]], (r["delta1"], r["delta2"])),
                                          rel=1e-11)
    for p in out["panels"]:
        xe = xn[TINY["example"]] * p["scale"] / mean
        assert p["x_norm"] == pytest.approx(np.linalg.norm(xe), rel=1e-12)
        assert p["loss_at_zero"] == pytest.approx(direct_loss(net, xe, y[TINY["example"]], (0, 0)), rel=1e-11)
        g = [r["loss"] for r in out["grid"] if (r["scale"], r["ratio"]) == (p["scale"], p["ratio"])
             and math.isfinite(r["loss"])]
        assert p["z_min"] == -max(g) and p["z_max"] == -min(g)  # the paper's sign: z = −loss


def test_fig1_tables_deterministic_and_checked():
    a, b = S.fig1_tables(**TINY), S.fig1_tables(**TINY)
    for k in a:
        assert a[k] == b[k] or all((np.isnan(u["loss"]) and np.isnan(v["loss"])) or u == v
                                   for u, v in zip(a[k], b[k]))
    with pytest.raises(ValueError, match="example"):
        S.fig1_tables(**{**TINY, "example": 16})
    with pytest.raises(ValueError, match="maxima_examples"):
        S.fig1_tables(**{**TINY, "maxima_examples": 17})
    with pytest.raises(ValueError, match="ratios"):
        S.fig1_tables(**{**TINY, "ratios": [0.0, 1.0]})


# ---- the PGD trajectory ---------------------------------------------------------------------------
def test_trajectory_stays_in_ball_losses_match_and_follows_the_update():
    net, x, y = sample_and_network()
    scales = torch.tensor([0.01, 1.0, 100.0], dtype=F64)
    X = x[:3] * (scales / x[:3].norm(dim=-1)).unsqueeze(-1)
    E = scales * torch.tensor([10.0, 1.0, 0.1], dtype=F64)
    eta, T = 0.3, 25
    tr = S.pgd_trajectory(net, X, y[:3], eps=E, step_size=eta, steps=T, generator=torch.Generator().manual_seed(2))
    assert tr.deltas.shape == (T + 1, 3, 2) and tr.losses.shape == (T + 1, 3)
    norms = tr.deltas.norm(dim=-1)
    assert bool((norms <= E * (1 + 1e-12)).all())
    assert bool((norms[-1] >= E * (1 - 1e-9)).all())  # all three reach the sphere with this eta
    for t in range(T + 1):
        for b in range(3):
            assert float(tr.losses[t, b]) == pytest.approx(direct_loss(net, X[b], y[b], tr.deltas[t, b]), rel=1e-11)
    # the paper's update, with the gradient from autograd: δ_{t+1} = Π(δ_t + η ∇ℓ(δ_t))
    for t in range(T):
        d = tr.deltas[t].clone().requires_grad_(True)
        ell = ((y[:3] - net(X + d).squeeze(-1)) ** 2).sum()
        (g,) = torch.autograd.grad(ell, d)
        step = (tr.deltas[t] + eta * g).detach()
        n = step.norm(dim=-1, keepdim=True)
        want = step * torch.clamp(E.unsqueeze(-1) / n, max=1.0)
        assert torch.allclose(tr.deltas[t + 1], want, rtol=1e-10, atol=1e-14 * float(E.max()))
    # the start is uniform in the ball: inside, not on the sphere (with probability 1)
    assert bool((norms[0] < E).all())


def test_escape_step():
    L = torch.tensor([[1.0, 5.0, 2.0], [1.5, 5.0, 1.0], [2.9, 5.0, 0.0], [3.0, 5.0, 0.0]], dtype=F64)
    assert S.escape_step(L).tolist() == [2, -1, -1]


# ---- maxima counts on landscapes with known maxima ---------------------------------------------------
class Poly(nn.Module):
    """f(z) = z₁ (2 maxima of f² on a disk around 0, 1 far from 0) or Re((z₁ + i z₂)³) (6 maxima)."""

    def __init__(self, kind):
        super().__init__()
        self.kind = kind

    def forward(self, z):
        a, b = z[..., 0], z[..., 1]
        f = a if self.kind == "linear" else a**3 - 3 * a * b**2
        return f.unsqueeze(-1)


@pytest.mark.parametrize("kind,x0,expected,angles", [
    ("linear", (0.0, 0.0), 2, [0.0, math.pi]),  # ℓ = δ₁²: maxima at (±ε, 0)
    ("linear", (5.0, 0.0), 1, [0.0]),  # ℓ = (5 + δ₁)²: one maximum at (ε, 0)
    ("cubic", (0.0, 0.0), 6, [k * math.pi / 3 for k in range(6)]),  # ℓ = r⁶ cos²(3θ)
])
def test_count_maxima_on_hand_built_landscapes(kind, x0, expected, angles):
    model = Poly(kind)
    x = torch.tensor([x0], dtype=F64)
    y = torch.zeros(1, dtype=F64)
    eps = 0.7
    mc = S.count_maxima(model, x, y, eps=eps, restarts=48, steps=400, step_fraction=0.05, phases=4,
                        generator=torch.Generator().manual_seed(0))
    assert int(mc.distinct_maxima[0]) == expected and int(mc.distinct_on_sphere[0]) == expected
    assert float(mc.frac_on_sphere[0]) == 1.0 and float(mc.frac_settled[0]) == 1.0
    # every final iterate sits at one of the known maxima
    th = torch.atan2(mc.deltas[:, 0, 1], mc.deltas[:, 0, 0]) % (2 * math.pi)
    dist = torch.stack([torch.remainder(th - a + math.pi, 2 * math.pi) - math.pi for a in angles]).abs().min(0).values
    assert float(dist.max()) < 1e-2
    # the circle count agrees, and every circle maximum is also a maximum over the ball
    ang, on, inside = S.circle_losses(model, x[0], y[0], eps=eps, n_angles=720)
    cm = S.cyclic_local_maxima(on)
    assert int(cm.sum()) == expected and int((cm & (on >= inside)).sum()) == expected


class Dome(nn.Module):
    """f(z) = 1 − |z|² + 0.1 z₁: with y = 0, ℓ = f² has its only maximum inside the ball, at z = (0.05, 0)."""

    def forward(self, z):
        return (1.0 - (z * z).sum(-1) + 0.1 * z[..., 0]).unsqueeze(-1)


def test_interior_maximum_and_circle_maxima_that_are_not_ball_maxima():
    x, y, eps = torch.zeros(1, 2, dtype=F64), torch.zeros(1, dtype=F64), 0.5
    # along the circle f = 0.75 + 0.05 cos θ: one maximum of ℓ at θ = 0, but ℓ falls outwards there
    ang, on, inside = S.circle_losses(Dome(), x[0], y[0], eps=eps, n_angles=360)
    cm = S.cyclic_local_maxima(on)
    assert int(cm.sum()) == 1 and float(ang[cm][0]) == 0.0
    assert int((cm & (on >= inside)).sum()) == 0  # not a maximum over the ball
    mc = S.count_maxima(Dome(), x, y, eps=eps, restarts=24, steps=400, step_fraction=0.05,
                        generator=torch.Generator().manual_seed(1))
    assert int(mc.distinct_maxima[0]) == 1 and int(mc.distinct_on_sphere[0]) == 0
    assert float(mc.frac_on_sphere[0]) == 0.0
    assert torch.allclose(mc.deltas[:, 0], torch.tensor([0.05, 0.0], dtype=F64), atol=2e-3)
    land = S.disk_landscape(Dome(), x[0], y[0], eps=eps, resolution=41)  # grid step 0.025: (0.05, 0) on it
    assert S.grid_interior_maxima(land.loss) == 1


def test_cyclic_and_grid_maxima_counting():
    v = torch.tensor([0.0, 1.0, 1.0, 0.0, 2.0, 0.0, 3.0])  # plateau at 1 counts once; 2 and 3 (cyclic)
    assert S.cyclic_local_maxima(v).tolist() == [False, True, False, False, True, False, True]
    assert int(S.cyclic_local_maxima(torch.ones(5)).sum()) == 0
    g = np.linspace(-1, 1, 31)
    U, V = np.meshgrid(g, g)
    Z = -((U - 0.3) ** 2 + V**2) * ((U + 0.3) ** 2 + V**2)  # two bumps at (±0.3, 0)
    Z = np.where(U**2 + V**2 <= 1, Z, np.nan)
    assert S.grid_interior_maxima(torch.tensor(Z)) == 2
    assert S.grid_interior_maxima(torch.tensor(np.where(U**2 + V**2 <= 1, U, np.nan))) == 0  # a plane: none inside


def test_count_maxima_rejects_bad_input():
    net, x, y = sample_and_network()
    with pytest.raises(ValueError, match="cos_threshold"):
        S.count_maxima(net, x[:1], y[:1], eps=1.0, restarts=2, steps=4, step_fraction=0.1, cos_threshold=1.5)
    with pytest.raises(ValueError, match="steps"):
        S.count_maxima(net, x[:1], y[:1], eps=1.0, restarts=2, steps=2, step_fraction=0.1, phases=4)
    with pytest.raises(ValueError, match="eps"):
        S.disk_landscape(net, x[0], y[0], eps=0.0, resolution=5)
    with pytest.raises(ValueError, match="step_size"):
        S.pgd_trajectory(net, x[:1], y[:1], eps=1.0, step_size=-1.0, steps=3)


# ---- the script and the notebook -----------------------------------------------------------------
def _script_args(out: Path) -> list[str]:
    t = TINY
    j = lambda xs: ",".join(repr(float(v)) for v in xs)  # noqa: E731
    return [sys.executable, str(ROOT / "scripts" / "paper_fig1.py"), "--out-dir", str(out),
            "--scales", j(t["scales"]), "--ratios", j(t["ratios"]), "--width", str(t["width"]),
            "--seed", str(t["seed"]),
            "--n-points", str(t["n_points"]), "--data-seed", str(t["data_seed"]), "--example", str(t["example"]),
            "--grid", str(t["grid"]), "--steps", str(t["steps"]), "--step-size", str(t["step_size"]),
            "--maxima-ratios", j(t["maxima_ratios"]), "--maxima-examples", str(t["maxima_examples"]),
            "--restarts", str(t["restarts"]), "--maxima-steps", str(t["maxima_steps"]),
            "--maxima-phases", str(t["maxima_phases"]), "--maxima-step-fraction", str(t["maxima_step_fraction"]),
            "--circle-points", str(t["circle_points"]), "--config-json", '{"name": "tiny"}']


def test_script_tables_and_papermill_notebook(tmp_path):
    papermill = pytest.importorskip("papermill")
    out = tmp_path / "tables"
    subprocess.run(_script_args(out), check=True, capture_output=True, text=True, cwd=ROOT)
    names = ("grid", "traj", "panels", "rim", "maxima")
    for n in names:
        assert (out / f"{n}.csv").stat().st_size > 100
    assert (out / "provenance.json").exists()
    # the script's tables are the library's (values written exactly)
    ref = S.fig1_tables(**TINY)
    with open(out / "traj.csv") as fh:
        traj = list(csv.DictReader(fh))
    assert [float(r["loss"]) for r in traj] == [r["loss"] for r in ref["traj"]]
    params = {n: str(out / f"{n}.csv") for n in names}
    params |= {"out_pdf": str(tmp_path / "fig" / "f.pdf"), "out_png": str(tmp_path / "fig" / "f.png"),
               "config_name": "tiny"}
    papermill.execute_notebook(str(ROOT / "notebooks" / "paper_fig1_landscapes.ipynb"), str(tmp_path / "run.ipynb"),
                               parameters=params, kernel_name="python3", progress_bar=False, cwd=str(ROOT))
    for ext in ("pdf", "png"):
        assert (tmp_path / "fig" / f"f.{ext}").stat().st_size > 1000


def test_script_takes_the_workflows_params_document(tmp_path):
    """The workflow's call: one typed --params document (the registry's arguments of the stage
    paper_fig1_landscapes_tables and its record, _stage), which the provenance keeps."""
    import json

    from adversary_dynamics.pipeline import stages

    st = stages.STAGES["paper_fig1_landscapes_tables"]
    doc = {**st.args(stages.Declared(st.name, {"paper_fig1": TINY, "precision": "fp32"})), "_stage": {"stage": st.name, "key": "0" * 12}}
    out = tmp_path / "tables"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "paper_fig1.py"), "--params", json.dumps(doc),
                    "--out-dir", str(out)], check=True, capture_output=True, text=True, cwd=ROOT)
    ref = S.fig1_tables(**TINY)
    with open(out / "traj.csv") as fh:
        traj = list(csv.DictReader(fh))
    assert [float(r["loss"]) for r in traj] == [r["loss"] for r in ref["traj"]]
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["config"]["stage"] == st.name and prov["config"]["key"] == "0" * 12, prov["config"]
    assert prov["config"]["arguments"]["seed"] == TINY["seed"]
