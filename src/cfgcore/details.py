"""Evaluation results, modelled on OpenFeature's resolution details.

Both evaluator implementations return these same types, so tests can compare
them field by field.
"""

from __future__ import annotations

from typing import Any

import msgspec


class Reason:
    """Why a value was served (OpenFeature reason strings)."""

    STATIC = "STATIC"  # the flag has no targeting rules: its default variant
    DEFAULT = "DEFAULT"  # rules exist but none matched: the default variant
    TARGETING_MATCH = "TARGETING_MATCH"  # a rule matched and serves a fixed variant
    SPLIT = "SPLIT"  # a rollout or weighted split assigned the variant by bucket
    DISABLED = "DISABLED"  # switched off, or outside its schedule: the off variant
    PREREQUISITE_FAILED = "PREREQUISITE_FAILED"  # a prerequisite flag did not pass: off variant
    ERROR = "ERROR"  # the caller's default was returned; see error_code


class ErrorCode:
    """Why the caller's default was returned (OpenFeature error codes)."""

    FLAG_NOT_FOUND = "FLAG_NOT_FOUND"
    TYPE_MISMATCH = "TYPE_MISMATCH"
    INVALID_CONTEXT = "INVALID_CONTEXT"
    GENERAL = "GENERAL"


# Reason codes as the evaluators produce them (index into REASONS).
REASONS = (
    Reason.STATIC,
    Reason.DEFAULT,
    Reason.TARGETING_MATCH,
    Reason.SPLIT,
    Reason.DISABLED,
    Reason.PREREQUISITE_FAILED,
    Reason.ERROR,
)


class EvaluationDetails(msgspec.Struct, frozen=True, gc=False):
    """The full answer for one flag and one context.

    ``rule_index`` is the position of the matching rule in the flag's ``rules`` list
    (None when no rule decided); ``error_code`` is set only with reason ERROR.
    """

    flag_key: str
    value: Any
    variant: str | None
    reason: str
    rule_index: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    snapshot_version: int = 0
