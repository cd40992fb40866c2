"""Plumbing shared by every capability: change events and listeners, the audit log,
redaction, atomic writes, the one fork registry, and the flag store with the live flag
set both managers share."""
