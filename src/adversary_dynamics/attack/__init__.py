r"""The attack core: projected gradient ascent (PGA) on input perturbations, and what is built on it.

The adversary's problem (the paper's inner maximisation, Sec. 3), per example (x, y)::

    maximise   ℓ(F(x + δ), y)   over   δ ∈ S,
    S = { δ : ‖δ‖₂ ≤ ε }   ("l2", the paper's ball)   or   { δ : ‖δ‖_∞ ≤ ε }   ("linf").

PGA iterates, from δ₀ given by ``init``::

    δ_{t+1} = Π_S( δ_t + η · D(∇_δ ℓ(F(x + δ_t), y)) ).

Layout, by concern (each module's docstring has its part of the mathematics):

* :mod:`.checks` — argument checks (once per call, before any step), shapes ``(*batch, *event)``,
  eval mode for the attack;
* :mod:`.threat` — the threat model: S, the projection :func:`project`, random starts
  :func:`random_init`, the step rules D (raw, normalised, sign);
* :mod:`.driver` — :func:`pga`, the one PGA loop (convergence criteria, hooks ``record=`` and
  ``step_schedule=``), :func:`input_gradient`;
* :mod:`.two_layer` — the TwoLayerNet fast paths (analytic gradient, implicit Gram path);
* :mod:`.certificate` — :func:`local_max_certificate`;
* :mod:`.maxima` — :func:`count_distinct`, the one counter of distinct maxima (cosine or distance
  merge rule).
"""

from adversary_dynamics.attack.certificate import Certificate, local_max_certificate
from adversary_dynamics.attack.driver import CRITERIA, TORCHATTACKS_NORMALIZE_EPS, PGAResult, PGAState, input_gradient, pga
from adversary_dynamics.attack.maxima import count_distinct
from adversary_dynamics.attack.threat import GRADIENTS, INITS, NORMS, project, random_init

__all__ = [
    "NORMS",
    "GRADIENTS",
    "INITS",
    "CRITERIA",
    "TORCHATTACKS_NORMALIZE_EPS",
    "PGAResult",
    "PGAState",
    "Certificate",
    "pga",
    "project",
    "random_init",
    "input_gradient",
    "local_max_certificate",
    "count_distinct",
]
