"""The validation engine's implementation (public entry point: :mod:`cfgcore.validation_engine`).

Modules: ``core`` (results, rule base, report), ``engine`` (the validator),
``walk`` (the shared one-pass tree walk), ``keys`` (secret/URL classification),
and one module per rule pack: ``structure``, ``security``, ``gdpr``, ``streaming``.
"""
