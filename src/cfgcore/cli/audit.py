"""``cfgcore audit verify [PATH]``: check the hash chain of an audit log.

PATH defaults to ``$CFGCORE_AUDIT_LOG``. The rotated files (``PATH.1``, ``PATH.2``...)
are checked with it, oldest first, and ``PATH.head`` (the writer's record of the last
entry) against its end. Prints ``ok`` and the entry count, or the file, line and the
first entry edited, removed (a rotated file, or entries at the start or the end),
reordered or cut short, and exits 1. With ``CFGCORE_AUDIT_KEY`` (or
``CFGCORE_AUDIT_KEY_FILE``) set, every entry and the ``.head`` record must carry a
valid HMAC of one of those keys. ``--checkpoint FILE`` (default
``$CFGCORE_AUDIT_CHECKPOINT``; keep it where whoever writes the log cannot) records the
last entry verified and fails a later verify of a log rolled back behind it (an older
copy of the log and its head put back, or entries cut from the end). Without it, a log
emptied together with its ``PATH.head`` fails only with the key set (a signed log
always has a head); without the key it reads as a log never written. See
:func:`cfgcore.runtime.audit.verify`.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from cfgcore.errors import ConfigError, printable_name


def register(subparsers: Any) -> None:
    """Add the ``audit`` command group."""
    p = subparsers.add_parser("audit", help="audit log: verify its hash chain")
    sub = p.add_subparsers(dest="audit_command", metavar="SUBCOMMAND")
    v = sub.add_parser("verify", help="report the first edited/removed/reordered entry")
    v.add_argument("path", nargs="?", help="audit log (default: $CFGCORE_AUDIT_LOG)")
    v.add_argument("--checkpoint", metavar="FILE",
                   help="record of the last entry verified, checked then moved forward "
                   "(default: $CFGCORE_AUDIT_CHECKPOINT; keep it away from the log)")  # fmt: skip
    v.set_defaults(func=_verify)
    p.set_defaults(func=lambda _args: (p.print_help(sys.stderr), 2)[1])  # usage: exit 2


def _verify(args: Any) -> int:
    from cfgcore.runtime.audit import verify

    path = args.path or os.environ.get("CFGCORE_AUDIT_LOG")
    if not path:
        raise ConfigError("no audit log: pass PATH or set CFGCORE_AUDIT_LOG")
    checkpoint = args.checkpoint or os.environ.get("CFGCORE_AUDIT_CHECKPOINT") or None
    result = verify(path, checkpoint=checkpoint)
    print(printable_name(result))  # one line: the log's name escaped, as it was given
    return 0 if result.ok else 1
