"""Configuration: layered, validated, hot-reloaded trees (the seed's ConfigurationManager).

Modules: :mod:`~cfgcore.config.manager` (the manager: lock, validate, swap, publish),
:mod:`~cfgcore.config.builder` (files, profiles and variables into one tree),
:mod:`~cfgcore.config.files`, :mod:`~cfgcore.config.tree`,
:mod:`~cfgcore.config.environ` (``CFGCORE__`` variables and ``${VAR}`` references),
:mod:`~cfgcore.config.provenance`, :mod:`~cfgcore.config.transforms`,
:mod:`~cfgcore.config.profiles`, :mod:`~cfgcore.config.schema`,
:mod:`~cfgcore.config.checks` (the validation gate), :mod:`~cfgcore.config.reload` and
:mod:`~cfgcore.config.watcher` (hot reload).
"""
