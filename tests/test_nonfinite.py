"""Issue 19, fault 2: a NaN (or ±inf) loss is never a result. No example whose loss is not finite
is converged (pga), certified (local_max_certificate, escape.min_certificate), escaped
(escape.escape_time), reached/refined (theory.pga_to_sphere) or counted as a maximum
(landscape.distinct_maxima); the raw and figure tables carry a ``finite`` column, and the claims
leave non-finite rows out and count them (``details["nonfinite"]``, a line of claims.md).

Every test plants non-finite examples next to finite ones and checks (a) the non-finite ones are
never counted and (b) the finite ones get exactly the numbers they get without the others."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from adversary_dynamics import claims
from adversary_dynamics.figures import escape, landscape, tables, theory
from adversary_dynamics.attack import local_max_certificate, pga

F64 = torch.float64


class NaNWhere(nn.Module):
    """A linear model (d -> K) whose outputs are ``value`` (NaN by default) for the inputs with
    x[..., 0] > ``threshold``: their loss is NaN and their input gradient 0 (torch.where passes no
    gradient to the unselected branch), so PGA does not move them."""

    def __init__(self, d=4, k=3, *, value=math.nan, threshold=5.0, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.lin = nn.Linear(d, k, dtype=F64)
        with torch.no_grad():
            self.lin.weight.copy_(torch.randn(k, d, generator=g, dtype=F64))
            self.lin.bias.copy_(torch.randn(k, generator=g, dtype=F64))
        self.value, self.threshold = value, threshold

    def forward(self, x):
        out = self.lin(x)
        return torch.where(x[..., :1] > self.threshold, torch.full_like(out, self.value), out)


def _data(n=6, bad=2, d=4, seed=1):
    """x (n, d) with the first ``bad`` rows in the model's NaN region (x_0 = 10), labels y (n,)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, d, generator=g, dtype=F64)
    x[:bad, 0] = 10.0
    y = torch.randint(0, 3, (n,), generator=g)
    return x, y


# ---- attacks ---------------------------------------------------------------------------------
@pytest.mark.parametrize("criterion", ["loss", "movement"])
@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_pga_never_converges_a_nonfinite_loss(criterion, value):
    model = NaNWhere(value=value)
    x, y = _data()
    kw = dict(loss="quadratic", eps=0.2, steps=40, step_size=0.05, tol=1e-6, patience=5, criterion=criterion)
    res = pga(model, x, y, **kw)
    assert not bool(torch.isfinite(res.losses[:, :2]).any())  # the planted examples are not finite
    assert res.converged_at[:2].tolist() == [-1, -1]
    assert res.finite.tolist() == [False, False, True, True, True, True]
    # the finite examples: the same numbers as a run without the others
    ref = pga(model, x[2:], y[2:], **kw)
    assert torch.equal(res.converged_at[2:], ref.converged_at)
    assert torch.equal(res.losses[:ref.losses.shape[0], 2:], ref.losses)


class TurnsNaN(nn.Module):
    """A constant model (loss constant, gradient 0: converged at t = 0 under the loss criterion)
    whose output for example 0 becomes NaN from its ``after``-th call on."""

    def __init__(self, after):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(4, 3, dtype=F64))
        self.calls, self.after = 0, after

    def forward(self, x):
        self.calls += 1
        out = x @ self.w + 1.0
        if self.calls >= self.after:
            mask = torch.zeros(out.shape[:-1], dtype=torch.bool)
            mask[..., 0] = True
            out = torch.where(mask.unsqueeze(-1), torch.full_like(out, math.nan), out)
        return out


def test_pga_example_converged_before_its_loss_turns_nan_is_not_converged():
    x, y = _data(n=3, bad=0)
    res = pga(TurnsNaN(after=8), x, y, loss="quadratic", eps=0.2, steps=30, step_size=0.05, tol=1e-6, patience=3)
    assert math.isnan(float(res.losses[-1, 0])) and bool(torch.isfinite(res.losses[:, 1:]).all())
    assert res.converged_at.tolist() == [-1, 0, 0]
    assert res.finite.tolist() == [False, True, True]


def test_certificate_never_certifies_a_nonfinite_loss():
    model = NaNWhere()
    x, y = _data()
    delta = torch.zeros_like(x)
    g = torch.Generator().manual_seed(3)
    cert = local_max_certificate(model, x, y, delta, loss="quadratic", eps=0.2, generator=g)
    for f in ("is_local_max", "flat", "constant"):
        assert not bool(getattr(cert, f)[:2].any()), f
    assert cert.finite.tolist() == [False, False, True, True, True, True]
    # the finite examples: as without the others (same probe directions: drawn per example row)
    ref = local_max_certificate(model, x[2:], y[2:], delta[2:], loss="quadratic", eps=0.2,
                                generator=torch.Generator().manual_seed(3))
    assert ref.finite.all()
    for f in ("tangent_grad_norm", "kkt_residual", "on_sphere"):
        assert torch.equal(getattr(cert, f)[2:], getattr(ref, f)), f


def test_probe_restarts_counts_no_nonfinite_restart():
    model = NaNWhere()
    x, y = _data(n=4, bad=1)
    pr = landscape.probe_restarts(model, x, y, loss="quadratic", eps=0.2, restarts=3, steps=30, step_size=0.05,
                                  tol=1e-6, patience=5, generator=torch.Generator().manual_seed(0))
    assert pr.finite.shape == (3, 4)
    assert not bool(pr.finite[:, 0].any()) and bool(pr.finite[:, 1:].all())
    assert bool((pr.converged_at[:, 0] == -1).all())
    assert not bool(pr.is_local_max[:, 0].any()) and not bool(pr.flat[:, 0].any())


def test_distinct_maxima_leaves_out_nonfinite_rows():
    d = torch.tensor([[1.0, 0.0], [math.nan, math.nan], [0.0, math.inf], [1.0, 1e-9]], dtype=F64)
    assert landscape.distinct_maxima(d) == 1
    assert math.isnan(landscape.distinct_maxima(d[1:3]))


# ---- escape ----------------------------------------------------------------------------------
def test_escape_time_never_escapes_a_nonfinite_curve():
    L = torch.tensor([[0.0, 0.0, 0.0], [-math.inf, 1.0, math.nan], [1.0, 2.0, 1.0], [2.0, 2.0, 2.0]], dtype=F64)
    t, esc, _ = escape.escape_time(L)
    assert esc.tolist() == [False, True, False]
    assert math.isnan(float(t[0])) and float(t[1]) == 1.0 and math.isnan(float(t[2]))


def test_min_certificate_never_certifies_a_nonfinite_loss():
    model = NaNWhere()
    x, y = _data()
    e = torch.full((6,), 0.2, dtype=F64)
    rho, stat, n_imp, conv = escape.min_certificate(model, x, y, torch.zeros_like(x), loss="quadratic", eps=e,
                                                    grad_ref=torch.ones(6, dtype=F64),
                                                    loss_ref=torch.ones(6, dtype=F64),
                                                    generator=torch.Generator().manual_seed(0))
    assert not bool(conv[:2].any()) and not bool(stat[:2].any())


def test_escape_rows_have_a_finite_column_and_nonfinite_runs_count_nothing():
    model = NaNWhere()
    x, y = _data(n=3, bad=1)
    starts = escape.unit_ball_starts(3, 4, generator=torch.Generator().manual_seed(0), dtype=F64)
    pr = escape.probe_escape(model, x, y, ratios=[0.1, 0.2], scale=1.0, loss="quadratic", step_size=0.01, steps=10,
                             starts=starts, descent=dict(steps=8, stages=2, directions=4),
                             generator=torch.Generator().manual_seed(1))
    rows = escape.run_rows(pr, scale=1.0, ratios=[0.1, 0.2], eta=0.01, seed=0, checkpoint=0, labels=y)
    assert "finite" in escape.ESCAPE_COLUMNS and set(rows[0]) == set(escape.ESCAPE_COLUMNS)
    for r in rows:
        bad = r["input"] == 0
        assert r["finite"] is (not bad)
        if bad:
            assert not r["escaped"] and not r["flat"] and not r["descent_converged"]
            assert not r["descent_stationary"]


# ---- theory ----------------------------------------------------------------------------------
def test_pga_to_sphere_reports_finite_and_never_reaches_with_nan():
    g = torch.Generator().manual_seed(0)
    T, J, d, m = 3, 2, 3, 8
    W = torch.randn(T, m, d, generator=g, dtype=F64) / math.sqrt(d)
    a = (2.0 * torch.randint(0, 2, (T, m), generator=g).to(F64) - 1) / math.sqrt(m)
    x = torch.randn(T, d, generator=g, dtype=F64)
    y = torch.tensor([1.0, 1.0, -1.0], dtype=F64)
    W[1, 0, 0] = math.nan  # trial 1's network is broken (labels and inputs are checked up front)
    eps = 0.5
    d0 = theory._uniform_ball((T, J), d, generator=g, dtype=F64, device="cpu") * eps
    out = theory.pga_to_sphere(W, a, x, y, d0, eps=eps, eta=torch.tensor([0.05, 0.02], dtype=F64),
                               activation="softplus", max_steps=300, refine_factor=1.0, refine_tol=0.5)
    assert out["finite"].tolist() == [[True, True], [False, False], [True, True]]
    for k in ("reached", "refined", "on_sphere"):
        assert not bool(out[k][1].any()), k
    assert bool(torch.isnan(out["distance"][1]).all())
    assert bool(out["reached"][0].all())  # the finite trials still work


def test_theory_run_pga_table_has_a_finite_column():
    res = theory.theory_run(dims=[3], width_powers=[2.5], contrast_activation=None, scales=[1.0], eps_factor=0.5,
                            eta_fractions=[0.5], trials=2, max_steps=50, refine_factor=1.0, refine_tol=0.5,
                            maxima_dims=[], maxima_ratios=[0.1], maxima_trials=1, maxima_restarts=2, maxima_steps=5,
                            maxima_step=0.1, maxima_tol=0.1, maxima_merge=0.1, hessian_descent=False)
    assert all(r["finite"] is True for r in res["pga"])
    assert list(res["pga"][0])[-1] == "finite"  # appended: the other columns keep their order


# ---- tables ----------------------------------------------------------------------------------
def _probe_run(path, L, *, finite_column):
    """A probe run folder: curves.npz with epoch_0 = L (T+1, R, N) and restarts.csv."""
    path.mkdir(parents=True)
    T1, R, N = L.shape
    rows = []
    for r in range(R):
        for i in range(N):
            row = {"checkpoint": 0, "input": i, "restart": r, "converged": True, "iterations": 3, "on_sphere": True,
                   "local_max": True, "flat": False, "constant": False, "initial_loss": float(L[0, r, i]),
                   "final_loss": float(L[-1, r, i]), "norm_ratio": 1.0}
            if finite_column:
                row["finite"] = bool(np.isfinite(L[:, r, i]).all())
            rows.append(row)
    pd.DataFrame(rows).to_csv(path / "restarts.csv", index=False)
    np.savez(path / "curves.npz", epoch_0=L.astype(np.float32))


def test_pga_convergence_tables_leave_out_nonfinite_curves_and_carry_finite(tmp_path):
    L = np.stack([np.linspace(0, 1, 5)] * 4, 1).reshape(5, 2, 2) * np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 2, 2)
    L[2, 0, 0] = np.nan  # one curve NaN in the middle only (its ends are finite)
    _probe_run(tmp_path / "a", L, finite_column=False)  # an old run without the column
    _probe_run(tmp_path / "b", L, finite_column=True)
    out = tables.pga_convergence_tables([tables.Run(1.0, 0, tmp_path / "a"), tables.Run(1.0, 1, tmp_path / "b")],
                                        max_steps=4)
    fin = out["final"]
    assert "finite" in fin
    # from the column (run b) and, for run a, from the finite ends only (the middle NaN is in curves.npz)
    assert fin["finite"].tolist() == [True, True, True, True, False, True, True, True]
    # the NaN curve is left out at every step, not only at t = 2
    assert out["curves"]["n"].tolist() == [6] * 5
    A = tables.normalised_ascent(L)
    assert np.isnan(A[:, 0, 0]).all() and np.isfinite(A[:, 1:]).all()


# ---- claims ----------------------------------------------------------------------------------
RULES = {**claims.DEFAULT_RULES, "bootstrap": 200}


def _fig1_final(seeds=(0, 1, 2), scales=(0.5, 1.0, 2.0), n_inputs=6, restarts=3):
    rows = []
    for s in scales:
        for k in seeds:
            for i in range(n_inputs):
                for r in range(restarts):
                    rows.append({"scale": s, "seed": k, "checkpoint": 0, "input": i, "restart": r, "converged": True,
                                 "iterations": int(10 * s) + r, "on_sphere": True, "local_max": True, "flat": False,
                                 "constant": False, "initial_loss": 0.5, "final_loss": 0.6, "norm_ratio": 1.0,
                                 "finite": True})
    return pd.DataFrame(rows)


def _with_nonfinite(df, n, **bad):
    """df plus n copies of its first rows turned into non-finite runs (finite False, columns ``bad``)."""
    extra = df.iloc[:n].copy()
    extra["finite"] = False
    for k, v in bad.items():
        extra[k] = v
    return pd.concat([df, extra], ignore_index=True)


def _same_verdict_numbers(a, b):
    assert a["verdict"] == b["verdict"] and a["value"] == b["value"] and a["interval"] == b["interval"]


@pytest.mark.parametrize("fn", [claims.claim_pga_converges, claims.claim_pga_iterations_vs_scale,
                                lambda df, r: claims.claim_on_sphere(df, None, r)])
def test_probe_claims_leave_out_nonfinite_rows_and_count_them(fn):
    clean = _fig1_final()
    dirty = _with_nonfinite(clean, 20, converged=False, local_max=False, on_sphere=False, iterations=200,
                            final_loss=math.nan)
    a, b = fn(clean, RULES), fn(dirty, RULES)
    _same_verdict_numbers(a, b)
    assert a["details"]["nonfinite"] == 0 and b["details"]["nonfinite"] == 20
    # rows whose loss is NaN count even without the column (tables written before it existed)
    c = fn(_with_nonfinite(clean, 5, final_loss=math.nan).drop(columns="finite"), RULES)
    assert c["details"]["nonfinite"] == 5


def _escape(seeds=(0, 1), scales=(0.1, 10.0, 1000.0), n_inputs=4, checkpoints=(0,)):
    rows = []
    for s in scales:
        for c in checkpoints:
            for k in seeds:
                for i in range(n_inputs):
                    rows.append({"scale": s, "ratio": 1.0, "eps": s, "eta": 1.0, "seed": k, "input": i,
                                 "checkpoint": c, "loss_clean": 1.0, "loss_ball": 1.0, "loss_start": 1.0,
                                 "loss_end": 1.5, "loss_max": 1.5, "loss_rise": 0.5,
                                 "escaped": True, "escape_time": 10.0 * (4 + math.log10(s)) + i + 100 * c,
                                 "relative_step": 1.0 / s, "descent_converged": True, "finite": True})
    return pd.DataFrame(rows)


def test_escape_claims_leave_out_nonfinite_rows_and_count_them():
    clean = _escape()
    # NaN runs at the smallest scale would rank last (+inf, "never escaped") and flip T5 if counted
    dirty = _with_nonfinite(clean, 8, escaped=False, escape_time=math.nan, loss_end=math.nan, loss_max=math.nan)
    a, b = claims.claim_t5_escape_by_scale(clean, cfg=RULES), claims.claim_t5_escape_by_scale(dirty, cfg=RULES)
    assert a["verdict"] == claims.SUPPORTED
    _same_verdict_numbers(a, b)
    assert b["details"]["nonfinite"] == 8 and a["details"]["nonfinite"] == 0
    clean6 = _escape(scales=(0.1,), checkpoints=(0, 10, 100))
    dirty6 = _with_nonfinite(clean6, 4, escape_time=math.nan, loss_end=math.nan)
    a, b = claims.claim_t6_escape_during_training(clean6, cfg=RULES), claims.claim_t6_escape_during_training(dirty6, cfg=RULES)
    _same_verdict_numbers(a, b)
    assert b["details"]["nonfinite"] == 4


def _theory_runs(trials=6):
    rows = []
    for t in range(trials):
        for f in (0.8, 0.4, 0.2):
            eta = f * 0.01
            rows.append({"activation": "softplus", "d": 4, "m": 32, "width_power": 2.5, "regime": "theorem",
                         "scale": 1.0, "eps": 0.1, "eta": eta, "eta_over_eps2": f, "trial": t, "reached": True,
                         "iterations": int(round((1 + 0.1 * t) * eta ** -1.1)), "distance": (1 + 0.1 * t) * eta ** 0.5,
                         "refined": True, "interior_steps": 3, "min_rate": 0.5, "on_sphere": True,
                         "loss_start": 0.3, "loss_final": 0.9, "finite": True})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("fn", [claims.claim_t1_theorem31, claims.claim_t2_interior_ascent])
def test_theory_claims_leave_out_nonfinite_rows_and_count_them(fn):
    clean = _theory_runs()
    dirty = _with_nonfinite(clean, 3, reached=False, refined=False, on_sphere=False, iterations=10 ** 6,
                            min_rate=math.nan, loss_final=math.nan, distance=math.nan)
    a, b = fn(clean, RULES), fn(dirty, RULES)
    _same_verdict_numbers(a, b)
    assert a["details"]["nonfinite"] == 0 and b["details"]["nonfinite"] == 3


def test_claims_md_names_nonfinite_rows_only_when_there_are_some():
    clean = _fig1_final()
    a = claims.claim_pga_converges(clean, RULES)
    b = claims.claim_pga_converges(_with_nonfinite(clean, 7, final_loss=math.nan), RULES)
    md_a, md_b = claims.render_markdown([a], "x", RULES), claims.render_markdown([b], "x", RULES)
    assert "nonfinite" not in md_a
    assert "- nonfinite: 7 rows left out" in md_b
