"""Storage: atomic run I/O, provenance, and the readers of the dataset files.

Nothing happens at import: import the modules themselves."""
