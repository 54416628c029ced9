"""One module per figure family (paper Fig. 1: simulated; Figs. 2-3: escape; the extensions: landscape, theory, tables) and their shared plot style.

Nothing happens at import: import the modules themselves."""
