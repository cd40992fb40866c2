"""Feature flags and experiments for applications (the seed's DynamicConfigurationManager).

Modules: :mod:`~cfgcore.experiments.dynamic` (the manager and its flag API),
:mod:`~cfgcore.experiments.abtest` (A/B tests), :mod:`~cfgcore.experiments.layers`
(layers and holdouts), :mod:`~cfgcore.experiments.exposures`,
:mod:`~cfgcore.experiments.metrics`, :mod:`~cfgcore.experiments.analysis`,
:mod:`~cfgcore.experiments.guardrails` and :mod:`~cfgcore.experiments.stats`.
"""
