"""adversary_dynamics: the dynamics of first-order adversaries on two-layer networks.

Reference implementation for Deng, He, Huang & Su, "Towards Understanding the Dynamics of
the First-Order Adversaries" (ICML 2020): two-layer networks, projected gradient ascent on
input perturbations in the l2 ball of radius eps = ratio x scale, adversarial training, and
landscape probes. Importing the package does no work: submodules are imported lazily.
"""

__version__ = "0.1.0"

__all__ = ["attack", "data", "datasets", "landscape", "losses", "models", "runio", "theory", "training"]


def __getattr__(name):
    if name in __all__:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
