"""The pipeline glue: configuration and its validation, the stage registry, the launcher, the scripts' CLI helpers, the device.

Nothing happens at import: import the modules themselves."""
