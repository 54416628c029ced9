"""The models, losses, data and adversarial training (the networks the paper's adversaries attack).

Nothing happens at import: import the modules themselves."""
