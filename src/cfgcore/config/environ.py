"""Environment variables in configuration: the ``CFGCORE__A__B`` layer and ``${VAR}`` references."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from cfgcore._encoding import utf8_encodable
from cfgcore.config.envfile import EnvironWithFile
from cfgcore.config.files import _NOT_UNICODE, MAX_DEPTH, Layer, tree_problem
from cfgcore.config.transforms import _REF as ENV_REF  # the grammar the transformer substitutes
from cfgcore.config.tree import (
    DELETE,
    REPLACE,
    FrozenDict,
    assoc,
    format_path,
    get_path,
    list_index,
    thaw,
    type_compatible,
)
from cfgcore.errors import ConfigError, Problem, join_key_paths

# --------------------------------------------------------------------------- environment


_INT = re.compile(r"^[-+]?(0|[1-9][0-9_]*)$")
# YAML 1.2's core schema float (``1.``, ``.5``, ``1e3``, ``2.5E-3``), digits grouped by
# ``_`` before the point as for integers.
_FLOAT = re.compile(
    r"^[-+]?(\.[0-9]+|[0-9][0-9_]*\.[0-9]*)([eE][-+]?[0-9]+)?$|^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"
)


def _type_hint(current: Any) -> str:
    """How to write an override of the type ``current`` has (the refusal says what to do)."""
    if isinstance(current, bool):
        return "set it to true or false"
    if isinstance(current, int | float):
        return "set it to a number"
    if isinstance(current, dict):
        return "set it to a JSON object"
    if isinstance(current, list):
        return 'set it to a JSON list (["a", "b"])'
    return f"set it to {_a(type(current).__name__)}"


def _a(noun: str) -> str:
    return f"an {noun}" if noun[:1] in "aeiou" else f"a {noun}"


def parse_env_value(raw: str) -> Any:
    """Interpret an environment variable's text: YAML 1.2 scalars and JSON collections.

    ``"320"`` -> 320, ``"0.85"`` -> 0.85, ``"true"`` -> True, ``"null"`` -> None,
    ``'["a","b"]'`` -> ["a", "b"]; anything else stays a string (``"on"`` included).
    """
    text = raw.strip()
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("null", "~"):
        return None
    if _INT.match(text):
        try:
            return int(text.replace("_", ""))
        except ValueError:  # over Python's 4300-digit conversion limit: text, then
            return raw
    if _FLOAT.match(text):
        return float(text.replace("_", ""))
    if text[:1] in "[{" and text:
        try:
            return json.loads(text, object_pairs_hook=_unique_pairs)
        except (ValueError, RecursionError):  # not JSON, or nested past the parser's limit
            return raw  # (unread_problem says which, where the text cannot stay text)
    return raw


class _RepeatedKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _RepeatedKey(k)
        out[k] = v
    return out


def unread_problem(raw: str) -> str | None:
    """Why :func:`parse_env_value` kept ``raw`` as text although it is a number or a JSON
    list or object (too many digits for Python to convert, nested past the parser's
    limit, a repeated key), else None. Such text is refused where no text is wanted
    below: a 30-digit integer is out of range, so a 5,000-digit one is too."""
    text = raw.strip()
    if _INT.match(text):
        digits = len(text.lstrip("+-").replace("_", ""))
        return (
            f"integer out of range ({digits:,} digits; configuration integers must fit in 64 bits)"
        )
    if text[:1] in "[{":
        try:
            json.loads(text, object_pairs_hook=_unique_pairs)
        except _RepeatedKey as dup:
            return f"duplicate key {dup.key!r:.80} (JSON objects must not repeat a key)"
        except RecursionError:
            return f"nested more than {MAX_DEPTH} levels deep"
        except ValueError:
            return None  # not JSON: text
    return None


def json_syntax_error(raw: str) -> tuple[str, str] | None:
    """``(key path inside the value, what is wrong)`` when ``raw`` is JSON text (a list
    or an object) with a syntax error, else None (:func:`unread_problem` words the
    other reasons JSON is not read)."""
    text = raw.strip()
    if text[:1] not in ("[", "{"):
        return None
    try:
        json.loads(text, object_pairs_hook=_unique_pairs)
    except json.JSONDecodeError as exc:
        from cfgcore._json_errors import json_value_error

        return json_value_error(exc)
    except (ValueError, RecursionError):
        return None
    return None


_ENV_FILE = "<environment>"


def _shown_name(var: str) -> str:
    """A variable's name in a message: at most 80 characters."""
    return var if len(var) <= 80 else var[:77] + "..."


def env_layer(environ: Mapping[str, str], prefix: str, below: Mapping[str, Any]) -> Layer:
    """Build the environment-variable layer from ``<PREFIX>__A__B=value`` variables.

    Segments are matched case-insensitively against the keys already present in
    ``below`` (so ``AUDIO_QUALITY`` finds ``audio_quality``); new keys are lower-cased.
    Where the value below is a string, the variable's text is kept as it is (a version
    ``2.1`` or a numeric password stays text). A value whose type cannot replace the
    value below (``"high"`` over an int) is a :class:`ConfigError` naming the variable
    and the key path; the value is not shown, since environment variables often carry
    secrets. A problem with a variable a ``.env`` file sets (:class:`EnvironWithFile`,
    where the environment does not) names that file and the line setting it.
    """
    marker = f"{prefix}__"
    data: dict[str, Any] = {}
    env_vars: dict[tuple[Any, ...], str] = {}
    owners: dict[tuple[Any, ...], str] = {}  # key path -> the variable that set it
    # Every proper prefix of an owned path -> one variable below it; and each map's keys
    # by their lower case. Looked up, not searched: a search per variable made an
    # environment (or .env file) of 20,000 overrides cost 50 s of CPU on every build.
    above: dict[tuple[Any, ...], str] = {}
    lowered: dict[int, dict[str, Any]] = {}
    problems: list[Problem] = []
    variables = prefixed_variables(environ, marker, problems)
    dotenv = environ if isinstance(environ, EnvironWithFile) else None

    def where(var: str) -> dict[str, Any]:
        """Where a problem with ``var`` points: its line in the .env file, or the
        environment."""
        found = None if dotenv is None else dotenv.origin(var)
        return {"file": _ENV_FILE} if found is None else {"file": found[0], "line": found[1]}

    for var in sorted(variables):
        if not (str.isascii(var) or utf8_encodable(var)):
            # A name of bytes that are not UTF-8 reaches Python with lone surrogates: as
            # a key it could not be written out (validation refused it later, without
            # naming the variable), and this layer's own messages could not be either.
            problems.append(
                Problem(
                    path="",
                    message=(
                        "environment variable "
                        f"{var.encode('utf-8', 'backslashreplace').decode('utf-8')} "
                        f"has a name that {_NOT_UNICODE}"
                    ),
                    **where(var),
                )
            )
            continue
        parts = var[len(marker) :].split("__")
        if any(not p for p in parts):
            problems.append(
                Problem(path="", message=f"malformed variable name {var}", **where(var))
            )
            continue
        if any("." in p for p in parts):
            # A dot in a name (possible in Docker and Kubernetes env, not in a shell) made
            # one top-level key "server.port" that no dotted path reaches. The name
            # cannot quote a segment, so it is refused with the spelling meant.
            meant = marker + "__".join(p.replace(".", "__") for p in parts)
            problems.append(
                Problem(
                    path="",
                    message=(
                        f"environment variable {_shown_name(var)} has a '.' in its name: "
                        f"{marker} variables separate keys with '__' (write {_shown_name(meant)});"
                        " a key that holds a dot cannot be set by an environment variable"
                    ),
                    **where(var),
                )
            )
            continue
        if len(parts) > MAX_DEPTH:
            # The nesting limit files obey (merging deeper would exhaust the stack).
            shown = var if len(var) <= 80 else var[:77] + "..."
            problems.append(
                Problem(
                    path=format_path([p.lower() for p in parts[:6]]) + ".…",
                    message=f"environment variable {shown} nests more than {MAX_DEPTH} levels deep",
                    **where(var),
                )
            )
            continue
        path: list[str] = []
        node: Any = below
        for part in parts:
            if isinstance(node, list) or (path and node is not None and not isinstance(node, dict)):
                break
            key = part.lower()
            if isinstance(node, dict):
                keys = lowered.get(id(node))
                if keys is None:
                    keys = lowered[id(node)] = {}
                    for existing in node:  # the first of a case-insensitive clash, as before
                        if isinstance(existing, str):
                            keys.setdefault(existing.lower(), existing)
                key = keys.get(key, key)
                node = node.get(key)
            else:
                node = None
            path.append(key)
        if len(path) < len(parts) and not isinstance(node, list):
            # A key below a number or text: merging {"b": ...} over "a: 1" would turn the
            # value into a map behind the author's back (CFGCORE__A='{"b": 1}' is refused
            # as a type change, so this spelling of it is too).
            problems.append(
                Problem(
                    path=format_path(path),
                    message=(
                        f"environment variable {var} sets a key below {format_path(path)}, "
                        f"which is {_a(type(node).__name__)}, not a mapping: set "
                        f"{marker}{'__'.join(parts[: len(path)])} itself, or unset {var}"
                    ),
                    **where(var),
                )
            )
            continue
        if len(path) < len(parts):
            # Merging {"0": ...} over a list would replace the whole list with a map.
            problems.append(
                Problem(
                    path=format_path(path),
                    message=(
                        f"environment variable {var} sets an element of a list; set the "
                        f"whole list as JSON in {marker}{'__'.join(parts[: len(path)])}"
                    ),
                    **where(var),
                )
            )
            continue
        value = parse_env_value(variables[var])
        current = get_path(below, tuple(path), None)
        if isinstance(current, str) and value is not None and not isinstance(value, str):
            # over text the variable's text is the value, whatever it would parse as
            # (and however deep: whether json reads 3,000 levels depends on the Python)
            value = variables[var]
        # The limits files obey (64-bit integers, nesting depth) hold here too.
        limit = tree_problem(value, tuple(path))
        if limit is not None:
            problems.append(
                Problem(
                    path=limit[0],
                    message=f"environment variable {var}: {limit[1]}",
                    **where(var),
                )
            )
            continue
        if isinstance(value, str) and not isinstance(current, str):
            unread = unread_problem(value)
            if unread is not None:
                problems.append(
                    Problem(
                        path=format_path(path),
                        message=f"environment variable {var}: {unread}",
                        **where(var),
                    )
                )
                continue
        inner_clash = _inner_type_clash(current, value)
        if inner_clash is not None:
            # A JSON object merges into the section below like a layer: a key in it
            # changing a value's type is refused as the variable for that key alone
            # (CFGCORE__DB__PORT=abc) is; '{"port": "abc"}' served the text.
            sub, was, given = inner_clash
            problems.append(
                Problem(
                    path=format_path((*path, *sub)),
                    message=(
                        f"environment variable {var} gives {_a(type(given).__name__)} for "
                        f"{format_path(sub)}, expected {type(was).__name__} (a JSON object "
                        'merges into the section below; put "__replace__": true in it to '
                        f"replace the section instead), or unset {var}"
                    ),
                    **where(var),
                )
            )
            continue
        if value != DELETE and not type_compatible(current, value):
            broken = json_syntax_error(value) if isinstance(value, str) else None
            if broken is not None:
                # JSON meant (a list or an object below), not text: where it breaks, as
                # a file's syntax error is named, rather than "gives a str".
                inner, what = broken
                problems.append(
                    Problem(
                        path=join_key_paths(format_path(path), inner),
                        message=f"environment variable {var}: {what}",
                        **where(var),
                    )
                )
                continue
            problems.append(
                Problem(
                    path=format_path(path),
                    message=(
                        f"environment variable {var} gives {_a(type(value).__name__)}, "
                        f"expected {type(current).__name__}: {_type_hint(current)}, or "
                        f"unset {var}"
                    ),
                    **where(var),
                )
            )
            continue
        # Two variables for one key (CFGCORE__A__B and CFGCORE__a__b), or one for a key
        # and one below it (CFGCORE__A=1 and CFGCORE__A__B=2): which one won depended on
        # their names' sort order. Refuse, naming both.
        at = tuple(path)
        clash = above.get(at) or next(
            (owners[at[:n]] for n in range(1, len(at) + 1) if at[:n] in owners), None
        )
        if clash is not None:
            problems.append(
                Problem(
                    path=format_path(path),
                    message=f"environment variables {clash} and {var} both set it; keep one",
                    **where(var),
                )
            )
            continue
        target = data
        for seg in path[:-1]:
            nxt = target.get(seg)
            if not isinstance(nxt, dict):
                nxt = target[seg] = {}
            target = nxt
        target[path[-1]] = value
        env_vars[at] = var
        owners[at] = var
        for n in range(1, len(at)):
            above.setdefault(at[:n], var)
    if problems:
        raise ConfigError(problems)
    return Layer(
        name="environment variables", kind="environment_variables", data=data, env_vars=env_vars
    )


def _inner_type_clash(
    below: Any, value: Any, at: tuple[Any, ...] = ()
) -> tuple[tuple[Any, ...], Any, Any] | None:
    """``(key path inside value, value below, value given)`` of the first key a JSON
    object merged over the section ``below`` would change to another type, else None.
    A ``__replace__: true`` map replaces (nothing to compare under it); ``__delete__``
    removes."""
    if not (isinstance(below, dict) and isinstance(value, dict)) or value.get(REPLACE):
        return None
    for key, given in value.items():
        if key == REPLACE or given == DELETE or key not in below:
            continue
        was = below[key]
        if isinstance(was, dict) and isinstance(given, dict):
            found = _inner_type_clash(was, given, (*at, key))
            if found is not None:
                return found
        elif not type_compatible(was, given):
            return (*at, key), was, given
    return None


def plain_text(value: Any) -> str | None:
    """``value`` as an exact ``str`` if it is text, else None.

    A subclass of ``str`` in a mapping the caller supplies (``environ=``) is read
    through ``str.__str__``, which copies the characters it holds: its own methods
    (``isascii``, ``startswith``, ``split``, ``lower``, ``__getitem__``, ``__hash__``...)
    may say anything, and a variable name judged by them went past the checks (a name
    of undecodable bytes that called itself ASCII became a key no writer can write).
    """
    if type(value) is str:
        return value
    if isinstance(value, str):
        return str.__str__(value)
    return None


def prefixed_variables(
    environ: Mapping[Any, Any], marker: str, problems: list[Problem]
) -> dict[str, str]:
    """The variables of ``environ`` whose names start with ``marker`` (and say more),
    as exact ``str`` names and values (:func:`plain_text`). A name or value that is not
    text at all (a user-supplied mapping's ``1`` or ``b"CFGCORE__A"``) is a problem
    naming it: it used to fail the build with an AttributeError or TypeError."""
    out: dict[str, str] = {}
    for key, raw in environ.items():
        name = plain_text(key)
        if name is None:
            if isinstance(key, bytes) and key.startswith(marker.encode()):
                problems.append(
                    Problem(
                        path="",
                        message=f"environment variable name {key!r:.80} is bytes, not text",
                        file=_ENV_FILE,
                    )
                )
            continue  # not a variable's name (os.environ holds text only)
        if not name.startswith(marker) or len(name) == len(marker):
            continue
        value = plain_text(raw)
        if value is None:
            shown = name.encode("utf-8", "backslashreplace").decode("utf-8")
            problems.append(
                Problem(
                    path="",
                    message=(
                        f"environment variable {shown:.80} holds {_a(type(raw).__name__)}, "
                        "not text (environment variables are text)"
                    ),
                    file=_ENV_FILE,
                )
            )
            continue
        out[name] = value
    return out


# --------------------------------------------------------------------------- ${VAR} references


def env_refs(tree: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], str]]:
    """Paths of string leaves holding a ``${...}`` reference, with the raw text."""
    out: list[tuple[tuple[Any, ...], str]] = []
    if isinstance(tree, dict):
        for k, v in tree.items():
            out += env_refs(v, (*prefix, k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            out += env_refs(v, (*prefix, str(i)))
    elif isinstance(tree, str) and "${" in tree:
        out.append((prefix, tree))
    return out


def ref_names(texts: Any) -> set[str]:
    """Names of the environment variables that ``${...}`` references in ``texts`` read."""
    return {m["name"] for text in texts for m in ENV_REF.finditer(text) if m["name"]}


def with_refs(config: Mapping[str, Any], refs: Mapping[tuple[Any, ...], str]) -> Any:
    """``config`` with each ``refs`` path showing its ``${VAR}`` reference again.

    The validator gets the frozen tree itself (read-only, so it cannot change the live
    configuration, and no copy is paid); only the spines leading to references are
    copied. A reference inside a list falls back to one plain copy of the tree.
    """
    if not refs:
        return config
    # Every spine copied once (one assoc per reference copied a map of 20,000 keys
    # 20,000 times: 40 s for a build with that many CFGCORE__ overrides in it).
    overlay: dict[Any, Any] = {}
    for path, ref in refs.items():
        if not _all_maps(config, path):
            return _plain_with_refs(config, refs)
        node = overlay
        for seg in path[:-1]:
            node = node.setdefault(seg, {})
            if not isinstance(node, dict):
                return _sequential(config, refs)  # a reference above another
        if isinstance(node.get(path[-1]), dict):
            return _sequential(config, refs)
        node[path[-1]] = _Ref(ref)
    return _overlaid(config, overlay)


class _Ref(str):
    """A reference's text in an overlay (a map there is a section)."""

    __slots__ = ()


def _overlaid(tree: Mapping[str, Any], overlay: dict[Any, Any]) -> FrozenDict:
    out = dict(tree)
    for key, value in overlay.items():
        out[key] = str(value) if isinstance(value, _Ref) else _overlaid(tree[key], value)
    return FrozenDict(out)


def _sequential(config: Mapping[str, Any], refs: Mapping[tuple[Any, ...], str]) -> Any:
    out: Any = config
    for path, ref in refs.items():
        if not _all_maps(out, path):
            return _plain_with_refs(config, refs)
        out = assoc(out, path, ref)
    return out


def _plain_with_refs(config: Mapping[str, Any], refs: Mapping[tuple[Any, ...], str]) -> Any:
    plain = thaw(config)
    for p, r in refs.items():
        _put(plain, p, r)
    return plain


def _all_maps(tree: Any, path: tuple[Any, ...]) -> bool:
    node = tree
    for seg in path[:-1]:
        if not isinstance(node, Mapping) or seg not in node:
            return False
        node = node[seg]
    return isinstance(node, Mapping) and path[-1] in node


def _put(tree: Any, path: tuple[Any, ...], value: Any) -> None:
    """Set ``path`` in a plain (thawed) tree if every parent exists."""
    node = tree
    for seg in path[:-1]:
        if isinstance(node, dict):
            node = node.get(seg)
        elif isinstance(node, list):
            idx = list_index(seg, len(node))  # plain digits only, as get() reads them
            if idx is None:
                return
            node = node[idx]
        else:
            return
    last = path[-1]
    if isinstance(node, dict) and last in node:
        node[last] = value
    elif isinstance(node, list):
        idx = list_index(last, len(node))
        if idx is not None:
            node[idx] = value


def refs_without(
    refs: Mapping[tuple[Any, ...], str], changed: Sequence[tuple[Any, ...]]
) -> dict[tuple[Any, ...], str]:
    """``refs`` minus every path at or below a changed path (its value is now literal)."""
    gone = {tuple(path) for path in changed}
    if not gone:
        return dict(refs)
    # A prefix of each reference looked up: not every reference against every change.
    return {p: ref for p, ref in refs.items() if not any(p[:n] in gone for n in range(len(p) + 1))}
