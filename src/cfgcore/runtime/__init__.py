"""Runtime plumbing: change events, the audit log, atomic writes, fork handling and the
flag stores (a file on one machine, Redis for a fleet)."""
