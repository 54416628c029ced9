"""adversary_dynamics: the dynamics of first-order adversaries (Deng, He, Huang & Su, ICML 2020).

Reference implementation of "Towards Understanding the Dynamics of the First-Order Adversaries":
projected gradient ascent (PGA) on input perturbations in the l2 ball of radius eps = ratio x input
scale, adversarial training, and the paper's measurements. The package is laid out by layer:

* ``attack``   the attack core: threat model (projection, random start, step), the PGA driver
               (one loop, with hooks), the two-layer fast paths, the local-maximum certificate and
               the distinct-maxima counter;
* ``learning`` models, losses, data (input scale, datasets as tensors) and adversarial training;
* ``figures``  one module per figure family: ``simulated`` (paper Fig. 1), ``escape`` (Figs. 2-3),
               ``landscape`` and ``tables`` (the extensions' probes and tables), ``theory``
               (Theorem 3.1's setting), ``plotting`` (the figures' shared style);
* ``stats``    resampling, rank correlation, power-law fits, thresholds, interval verdicts;
* ``claims``   the paper's statements T1-T7 and our extensions E1-E4: rules, statements, report;
* ``storage``  atomic run I/O and provenance (``runio``), the dataset file readers (``datasets``);
* ``pipeline`` configuration and validation, the stage registry, the launcher, CLI helpers, devices.

Importing the package does no work: ``adversary_dynamics.models`` and the like (the short names of
:data:`LAYOUT`) import their module on first use.
"""

__version__ = "0.1.0"

#: short name -> the module it names (``from adversary_dynamics import models`` is
#: ``adversary_dynamics.learning.models``)
LAYOUT = {
    "attack": "attack", "claims": "claims", "stats": "stats",
    "models": "learning.models", "losses": "learning.losses", "data": "learning.data",
    "training": "learning.training",
    "simulated": "figures.simulated", "escape": "figures.escape", "landscape": "figures.landscape",
    "theory": "figures.theory", "tables": "figures.tables", "plotting": "figures.plotting",
    "runio": "storage.runio", "datasets": "storage.datasets",
    "config": "pipeline.config", "stages": "pipeline.stages", "launcher": "pipeline.launcher",
    "cli": "pipeline.cli", "devices": "pipeline.devices",
}
__all__ = sorted(LAYOUT)


def __getattr__(name):
    if name in LAYOUT:
        import importlib

        return importlib.import_module(f"{__name__}.{LAYOUT[name]}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
