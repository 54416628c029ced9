"""The PGA driver's hooks (record=, step_schedule=) and the one distinct-maxima counter
(attack.count_distinct), against the code they replaced."""

from __future__ import annotations

import math

import pytest
import torch

from adversary_dynamics.attack import PGAState, count_distinct, pga, random_init
from adversary_dynamics.attack import two_layer
from adversary_dynamics.learning.models import TwoLayerNet

F64 = torch.float64


def _setup(d=6, m=16, n=5, dtype=F64, seed=0):
    g = torch.Generator().manual_seed(seed)
    net = TwoLayerNet(input_dim=d, width=m, n_outputs=3, activation="softplus", generator=g, dtype=dtype)
    x = torch.randn(n, d, generator=g, dtype=dtype)
    y = torch.randint(0, 3, (n,), generator=g)
    d0 = random_init((n, d), eps=0.5, norm="l2", init="uniform_ball", generator=g, dtype=dtype)
    return net, x, y, d0


@pytest.mark.parametrize("every", [1, 3])
@pytest.mark.parametrize("mode", ["never", "always"])
@pytest.mark.parametrize("gradient", ["raw", "normalized", "sign"])
def test_recorded_iterates_equal_runs_of_t_steps(monkeypatch, every, mode, gradient):
    monkeypatch.setattr(two_layer, "IMPLICIT_MODE", mode)
    net, x, y, d0 = _setup()
    T = 7
    kw = dict(loss="quadratic", eps=0.5, step_size=0.05, gradient=gradient, delta0=d0)
    res = pga(net, x, y, steps=T, record=every, **kw)
    assert res.iterate_steps.tolist() == sorted(set(range(0, T + 1, every)) | {T})
    assert res.iterates.shape == (len(res.iterate_steps), *x.shape)
    torch.testing.assert_close(res.iterates[-1], res.delta, rtol=0, atol=0)
    for i, t in enumerate(res.iterate_steps.tolist()):
        ref = pga(net, x, y, steps=t, **kw)
        torch.testing.assert_close(res.iterates[i], ref.delta, rtol=0, atol=0)
    plain = pga(net, x, y, steps=T, **kw)  # recording changes nothing else
    for f in ("delta", "losses", "norm_ratio", "grad_norm"):
        torch.testing.assert_close(getattr(res, f), getattr(plain, f), rtol=0, atol=0)
    assert plain.iterates is None and plain.iterate_steps is None


def test_record_on_image_shaped_inputs_and_an_autograd_model():
    g = torch.Generator().manual_seed(1)
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.Flatten(), torch.nn.Linear(32, 3)).double()
    x = torch.rand(2, 3, 1, 4, 4, generator=g, dtype=F64)
    y = torch.randint(0, 3, (2, 3), generator=g)
    res = pga(conv, x, y, eps=0.3, steps=4, step_size=0.1, init="uniform_ball", generator=g, event_dims=3, record=2)
    assert res.iterates.shape == (3, *x.shape) and res.iterate_steps.tolist() == [0, 2, 4]
    torch.testing.assert_close(res.iterates[-1], res.delta, rtol=0, atol=0)


def test_callable_record_sees_every_state_and_can_stop():
    net, x, y, d0 = _setup()
    seen = []

    def obs(state):
        assert isinstance(state, PGAState)
        seen.append((state.t, state.delta.clone(), state.loss.clone(), state.grad_norm.clone()))
        return state.t == 4

    res = pga(net, x, y, eps=0.5, steps=10, step_size=0.05, delta0=d0, record=obs)
    assert [s[0] for s in seen] == [0, 1, 2, 3, 4] and res.steps_run == 4
    torch.testing.assert_close(seen[-1][1], res.delta, rtol=0, atol=0)
    torch.testing.assert_close(torch.stack([s[2] for s in seen]), res.losses, rtol=0, atol=0)
    torch.testing.assert_close(torch.stack([s[3] for s in seen]), res.grad_norm, rtol=0, atol=0)
    # the plain update agrees with the algebraic one to rounding
    ref = pga(net, x, y, eps=0.5, steps=4, step_size=0.05, delta0=d0)
    torch.testing.assert_close(res.delta, ref.delta, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("gradient", ["raw", "normalized"])
def test_step_schedule_equals_the_manual_loop_it_replaces(gradient):
    """A shrinking step η_t = η z/(t + z) (theory's refinement) and its descent (negative steps),
    against the explicit loop δ ← Π(δ ± η_t D(g)) on the same gradients."""
    net, x, y, d0 = _setup()
    eps, eta, z, T = 0.5, 0.08, 3.0, 9
    for sign in (1.0, -1.0):
        sched = lambda t, state: sign * state.step_size * z / (t + z)  # noqa: E731
        res = pga(net, x, y, eps=eps, steps=T, step_size=eta, gradient=gradient, delta0=d0, step_schedule=sched)
        delta = d0.clone()
        from adversary_dynamics.attack import input_gradient
        for t in range(T):
            _, g = input_gradient(net, x + delta, y)
            gn = g.norm(dim=-1, keepdim=True)
            a = torch.full_like(gn, sign * eta * z / (t + z))
            if gradient == "normalized":
                a = torch.where(gn > 0, a / gn, 0.0)
            new = delta + a * g
            delta = new * (eps / torch.maximum(new.norm(dim=-1, keepdim=True), torch.full_like(gn, eps)))
        torch.testing.assert_close(res.delta, delta, rtol=1e-12, atol=1e-14)


def test_constant_schedule_and_phases_match_separate_calls():
    """Fig. 1's phases: one call with a per-phase schedule = one call per phase (to rounding)."""
    net, x, y, d0 = _setup(n=4)
    e = torch.full((4,), 0.5, dtype=F64)
    per, phases = 5, 3
    cur = d0
    for p in range(phases):
        cur = pga(net, x, y, eps=e, steps=per, step_size=0.1 * 4.0 ** -p * e, gradient="normalized", delta0=cur).delta
    res = pga(net, x, y, eps=e, steps=per * phases, step_size=0.1 * e, gradient="normalized", delta0=d0,
              step_schedule=lambda t, s: 0.1 * 4.0 ** -(t // per) * e, record=per)
    torch.testing.assert_close(res.delta, cur, rtol=1e-12, atol=1e-14)
    assert res.iterate_steps.tolist() == [0, 5, 10, 15]


def test_hook_arguments_are_checked():
    net, x, y, _ = _setup()
    for bad in (0, -1, 1.5, "every"):
        with pytest.raises(ValueError, match="record"):
            pga(net, x, y, eps=0.5, steps=2, step_size=0.1, record=bad)
    with pytest.raises(ValueError, match="step_schedule"):
        pga(net, x, y, eps=0.5, steps=2, step_size=0.1, step_schedule=0.1)


# ---- the one distinct-maxima counter ----------------------------------------------------------------
def _old_cosine(deltas, cos_threshold):
    """landscape.distinct_maxima before the merge (no exclude)."""
    bad = ~torch.isfinite(deltas).all(-1)
    if bool(bad.any()):
        deltas = deltas[~bad]
        if deltas.shape[0] == 0:
            return math.nan
    u = deltas / torch.linalg.vector_norm(deltas, dim=-1, keepdim=True).clamp_min(1e-30)
    centres = []
    for r in range(u.shape[0]):
        if not any(float(u[r] @ c) >= cos_threshold for c in centres):
            centres.append(u[r])
    return len(centres)


def _old_distance(points, valid, radius):
    """theory.count_distinct before the merge."""
    R = points.shape[-2]
    dist = torch.cdist(points, points)
    rad = torch.as_tensor(radius, dtype=points.dtype).expand(points.shape[:-2]).unsqueeze(-1).unsqueeze(-1)
    adj = (dist <= rad) & valid.unsqueeze(-1) & valid.unsqueeze(-2)
    reach = adj.clone()
    for _ in range(max(1, math.ceil(math.log2(max(R, 2)))) + 1):
        reach = reach | (torch.matmul(reach.to(points.dtype), reach.to(points.dtype)) > 0)
    idx = torch.arange(R)
    first = torch.where(reach, idx, R).min(dim=-1).values
    return ((first == idx) & valid).sum(-1)


def _points(seed, B=30, R=16, d=3, nan_rows=True):
    g = torch.Generator().manual_seed(seed)
    # a few cluster directions per group, jittered, so both merge rules see real clusters
    centres = torch.randn(B, 4, d, generator=g, dtype=F64)
    pick = torch.randint(0, 4, (B, R), generator=g)
    pts = torch.gather(centres, 1, pick.unsqueeze(-1).expand(B, R, d))
    pts = pts + 0.05 * torch.randn(B, R, d, generator=g, dtype=F64)
    if nan_rows:
        pts[torch.rand(B, R, generator=g) < 0.15] = math.nan
        pts[0] = math.nan  # a group with no finite row
        pts[1, 3, 0] = math.inf
    valid = torch.rand(B, R, generator=g) < 0.8
    return pts, valid


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("thr", [0.9, 0.99, 0.999])
def test_cosine_rule_reproduces_landscape_counts(seed, thr):
    pts, _ = _points(seed)
    new = count_distinct(pts, cos_threshold=thr)
    for b in range(pts.shape[0]):
        old = _old_cosine(pts[b], thr)
        assert (int(new[b]) == 0 and math.isnan(old)) or int(new[b]) == old
    from adversary_dynamics.figures import landscape
    for b in range(pts.shape[0]):
        a, o = landscape.distinct_maxima(pts[b], cos_threshold=thr), _old_cosine(pts[b], thr)
        assert (math.isnan(a) and math.isnan(o)) or a == o


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("radius", [0.01, 0.1, 0.5, 3.0])
def test_distance_rule_reproduces_theory_counts(seed, radius):
    pts, valid = _points(seed)
    rad = radius * torch.linspace(0.5, 2.0, pts.shape[0], dtype=F64)
    assert count_distinct(pts, valid, radius=rad).tolist() == _old_distance(pts, valid, rad).tolist()
    from adversary_dynamics.figures import theory
    assert theory.count_distinct(pts, valid, radius=radius).tolist() == _old_distance(pts, valid, radius).tolist()


def test_count_distinct_needs_exactly_one_rule():
    pts = torch.randn(2, 3, 2)
    for kw in ({}, {"cos_threshold": 0.9, "radius": 0.1}):
        with pytest.raises(ValueError, match="exactly one merge rule"):
            count_distinct(pts, **kw)
    with pytest.raises(ValueError, match="valid"):
        count_distinct(pts, torch.ones(3, 2, dtype=torch.bool), radius=0.1)
