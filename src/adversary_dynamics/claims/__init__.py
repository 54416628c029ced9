"""Verdicts on the paper's statements (Deng et al., ICML 2020), computed from the figure tables.

The report is built around the paper's own statements T1-T7 (issue 13), each checked where the
paper makes it:

=====  ==========================  =============================================================
id     paper                       our check (table)
=====  ==========================  =============================================================
T1     Theorem 3.1                 log-log slopes of iterations and of distance to the maximum
                                   on the absolute step η (ext_theory/pga.csv)
T2     Lemma 4.1                   per-step loss increase / η inside the ball; runs ending on the
                                   sphere (ext_theory/pga.csv)
T3     Lemmas 4.3-4.4              sign pattern of the constrained Hessian at converged points
                                   (ext_theory/hessian.csv)
T4     Theorem 5.1                 single maximum below a threshold in ε (ext_theory/maxima.csv,
                                   paper_fig1_landscapes/maxima.csv)
T5     Sec. 5.1.2, Fig. 2          Spearman ρ(scale, escape time) per ratio
                                   (paper_fig2_escape_by_scale/escape.csv)
T6     Fig. 3, Sec. 6              Spearman ρ(checkpoint, escape time) per (scale, ratio)
                                   (paper_fig3_escape_during_training/escape.csv)
T7     Abstract, Sec. 6            Spearman ρ(scale, steps to the training-loss threshold)
                                   (ext_training_convergence/runs.csv)
E1-E4  our extensions              checks on trained networks (PGA reaches a certified maximum,
                                   on the sphere, iterations and landscape regularity against the
                                   scale) (ext_pga_convergence/final.csv,
                                   ext_landscape_statistics/regularity.csv)
=====  ==========================  =============================================================

Modules:

* :mod:`.rules`: the verdict rules (the configuration's ``claims:`` section: :data:`DEFAULT_RULES`,
  :func:`_rules`), how group verdicts combine, the rules' sentences, :func:`cli_flags`;
* :mod:`.statements`: the claims, each built one way (``statements._result``), the one list of
  the tables they read (:data:`TABLES`) and of the claims (:data:`CLAIMS`), :func:`evaluate_claims`;
* :mod:`.report`: claims.json (:func:`to_jsonable`, :data:`CLAIMS_JSON_SCHEMA`) and claims.md
  (:func:`render_markdown`);
* :mod:`.compare`: two claims reports compared, verdicts equal and numbers within the stated
  tolerances of rounding across CPUs (:func:`.compare.compare`; not imported here).

The statistics (bootstrap designs, Spearman's rho, power-law slopes, thresholds, interval
verdicts) are those of :mod:`adversary_dynamics.stats`.
"""

from adversary_dynamics.stats import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, VERDICTS
from adversary_dynamics.claims.report import CLAIMS_JSON_SCHEMA, render_markdown, to_jsonable
from adversary_dynamics.claims.rules import DEFAULT_RULES, E2_LEAVE_OUT, _rules, cli_flags, combine
from .statements import (CLAIMS, LOSS_COLUMNS, PAPER, TABLES, Table, claim_on_sphere, claim_pga_converges,
                         claim_pga_iterations_vs_scale, claim_regularity_vs_scale, claim_t1_theorem31,
                         claim_t2_interior_ascent, claim_t3_no_saddles, claim_t4_single_maximum,
                         claim_t5_escape_by_scale, claim_t6_escape_during_training, claim_t7_training_vs_scale,
                         evaluate_claims)

__all__ = [
    "DEFAULT_RULES",
    "E2_LEAVE_OUT",
    "SUPPORTED",
    "NOT_SUPPORTED",
    "INCONCLUSIVE",
    "VERDICTS",
    "TABLES",
    "Table",
    "CLAIMS",
    "PAPER",
    "LOSS_COLUMNS",
    "combine",
    "claim_t1_theorem31",
    "claim_t2_interior_ascent",
    "claim_t3_no_saddles",
    "claim_t4_single_maximum",
    "claim_t5_escape_by_scale",
    "claim_t6_escape_during_training",
    "claim_t7_training_vs_scale",
    "claim_pga_converges",
    "claim_on_sphere",
    "claim_pga_iterations_vs_scale",
    "claim_regularity_vs_scale",
    "evaluate_claims",
    "cli_flags",
    "render_markdown",
    "to_jsonable",
    "CLAIMS_JSON_SCHEMA",
]
