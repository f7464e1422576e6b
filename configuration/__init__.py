"""Configs and command lines: key and type checks and the one error type
(config_util.ConfigError), the checks of values before any work (validate),
and what the entry points share (cli: paths, config files and flags read
with one-line errors, stop signals)."""
