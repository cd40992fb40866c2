"""One shared copy of the names cfgcore serves: configuration keys, flag keys and
the attribute names flags read.

Keys decoded from a file are new string objects. The literals a service reads them with
(``cfg["audio"]["bitrate"]``, ``engine.is_enabled("new_ui", {"user_id": u})``) are
interned by the compiler, so a dict lookup matches a stored key by identity when the
stored key is the interned object too, instead of comparing characters (issue 15: about
40 instructions per level of a configuration read). :func:`intern` is what the frozen
trees (``config.tree``) and the compiled snapshot (``_eval``) store their names as.

Interning costs nothing lasting where an interned string dies with its last reference
(CPython 3.11 and 3.13+). Where it is immortal (CPython 3.12, PEP 683; the
free-threaded 3.13 build: the runtime is asked, see :data:`IMMORTAL`), interning every
name of every version made a service whose flag or configuration names change keep every
name it ever saw: 40 swaps of 2,000 new flags grew a 3.12 process by 21 MB, 40 versions
of a tree of 2,000 new keys by 10 MB. There :func:`intern`

* interns only ASCII letters, digits and underscores: the only texts the compiler
  interns among a module's string constants (``all_name_chars`` in CPython's
  ``codeobject.c``), so the only ones a literal can match by identity;
* interns texts of at most :data:`LONGEST` characters, at most :data:`BUDGET`
  distinct ones per process (with 30-character names, 1.6 MB: the strings, CPython's
  interned table and this module's; 2.3 MB at the longest), and keeps serving
  the ones it interned (a configuration reloaded from its file gets them back); a name
  past that is stored as the text it is, read by comparing characters (about 60
  instructions per level of a configuration read).

So the names a service starts with keep their identity reads, and a process that
churns names stops growing once the budget is spent. Looking a text up among the
interned strings without interning it would do better (no budget: a later name would
still find its literal), but CPython 3.12 has no API for it: the table is the
interpreter's private ``cached_objects.interned_strings``, reachable only through
``PyInterpreterState``'s internal layout, and ``PyUnicode_CHECK_INTERNED`` only says
whether a given object is interned, not whether an equal one is.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

#: Most distinct names :func:`intern` makes immortal in one process, and the longest
#: (see the module's docstring); unused where interned strings are mortal.
BUDGET = 10_000
LONGEST = 100


def _interning_is_forever() -> bool:
    """Whether an interned string lives until the interpreter exits: asked of the
    runtime (a probe string built at run time, so no code constant is it) rather than
    read from its version, since free-threaded builds differ from their version's."""
    probe = sys.intern("".join(("cfgcore", "-interning-probe")))
    is_immortal = getattr(sys, "_is_immortal", None)  # 3.14+
    if is_immortal is not None:
        return bool(is_immortal(probe))
    refcount = getattr(sys, "getrefcount", None)  # None on PyPy, whose strings are collected
    # An immortal object's count is a fixed huge number (2**32 - 1 on 64-bit 3.12,
    # 2**30 - 1 on 32-bit); a string just made is referenced a few times.
    return refcount is not None and refcount(probe) > 1 << 28


IMMORTAL = _interning_is_forever()

# Each text interned here, by itself: read first, so a name interned once is served
# again after the budget is spent. At most BUDGET entries.
_made: dict[str, str] = {}


def _intern_bounded(text: str) -> str:
    found = _made.get(text)
    if found is not None:
        return found
    if len(_made) >= BUDGET or len(text) > LONGEST or not _name_chars(text):
        return text
    found = sys.intern(text)
    # Two threads may both get here: they intern to the same object; the count may pass
    # BUDGET by the threads racing, no more.
    _made[found] = found
    return found


def _name_chars(text: str) -> bool:
    """``text`` is ASCII letters, digits and underscores (CPython's ``all_name_chars``)."""
    return text.isascii() and (text == "" or text.replace("_", "a").isalnum())


#: ``text`` as the object to store it as (an exact ``str``): ``sys.intern`` where
#: interned strings are mortal, else the bounded interning above.
intern: Callable[[str], str] = _intern_bounded if IMMORTAL else sys.intern
