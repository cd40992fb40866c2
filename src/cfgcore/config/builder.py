"""Building a configuration: files, profiles and environment variables into one frozen tree.

:class:`ConfigBuilder` is the pure half of the configuration manager: given a config
directory and the settings, it reads every input and returns a complete
:class:`~cfgcore.config.state.ConfigSnapshot` (and the compiled flags, when the flags
file changed) without activating anything. The manager validates and swaps what it
builds; hot reload asks it for fingerprints of the inputs.

Layers, lowest first (later layers win; see :mod:`cfgcore.config.tree` for merge rules):

1. ``base`` file (``base.yaml``/``.yml``/``.json``/``.toml``) in the config directory;
2. the environment file (``staging.yaml``...);
3. the deployment profile (``CONFIG_PROFILE``: built-in or ``profiles/<name>.*``);
4. the geographic profile (``CONFIG_GEOGRAPHIC_PROFILE``: ``EU``, ``US``, ``APAC``...);
5. environment variables ``<PREFIX>__SECTION__KEY=value`` (prefix ``CFGCORE``);
6. runtime updates (kept by the manager, passed in as the ``runtime`` layer).
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import errno
import hashlib
import logging
import os
import re
import time
from collections.abc import Container, Mapping, Sequence
from typing import Any

from cfgcore._encoding import decode_text
from cfgcore._frozen import FrozenDict, untrack
from cfgcore.config import debuglog
from cfgcore.config.envfile import ENV_FILE_VAR, EnvironWithFile, aliased
from cfgcore.config.environ import env_layer, env_refs, plain_text, ref_names
from cfgcore.config.files import FORMATS, Layer, parse_layer_text, tree_problem
from cfgcore.config.profiles import DeploymentProfile, Profile, ProfileManager, is_profile_file
from cfgcore.config.state import ConfigSnapshot
from cfgcore.config.transforms import ConfigurationTransformer
from cfgcore.config.tree import deep_merge, format_path, freeze, get_path, parse_path, thaw
from cfgcore.errors import ConfigError, Problem, all_exist, listed
from cfgcore.runtime.atomicio import read_regular
from cfgcore.runtime.secrets import (
    Resolver,
    allowed_secret_dirs,
    has_secrets,
    note_variable,
    read_secret_file,
    resolve_tree,
    secret_digest,
)

__all__ = ["ConfigBuilder", "FLAG_FILE_NAMES", "directory_flags_file"]

log = logging.getLogger("cfgcore.manager")

FLAG_FILE_NAMES = ("flags.yaml", "flags.yml", "flags.json", "flags.msgpack")
NO_PROFILE = {"", "default", "none", "off"}

_ENV_NAME = re.compile(r"^[a-z0-9_][a-z0-9_.\-]*$")  # a file stem: no paths, no hidden files


def directory_flags_file(config_dir: str | os.PathLike[str]) -> str | None:
    """The flags file of a configuration directory (the one of :data:`FLAG_FILE_NAMES`
    there), or None. Both managers serve it when no store is named (argument or
    ``$CFGCORE_FLAG_STORE``); ``cfgcore publish --flags`` publishes it. Two or more are
    refused (ConfigError naming the directory and the files), as two files of one
    environment are: one of them is stale (a ``flags.yaml`` left behind by a move to
    ``flags.json``), and serving either without a word hides which."""
    found = [
        os.path.join(config_dir, name)
        for name in FLAG_FILE_NAMES
        if os.path.exists(os.path.join(config_dir, name))
    ]
    if len(found) > 1:
        raise ConfigError(
            f"ambiguous flags: {all_exist(os.path.basename(f) for f in found)}; keep one",
            file=os.fspath(config_dir),
            kind="io",
        )
    return found[0] if found else None


def _there(names: list[str]) -> str:
    """``Base.yaml is there`` / ``Base.yaml and BASE.json are there``."""
    return f"{listed(names)} {'is' if len(names) == 1 else 'are'} there"


def _renamed(miscased: list[str], stem: str) -> str:
    """The fix for the files ``miscased`` that would be ``stem``'s but for the case of
    their names: rename the one (renamed all, they would be ambiguous)."""
    names = list(dict.fromkeys(stem + os.path.splitext(f)[1].lower() for f in miscased))
    if len(miscased) == 1:
        return f"rename it {names[0]}"
    return f"rename the one to keep {' or '.join(names)}"


def is_environment_name(name: str) -> bool:
    """Whether ``-e``/``CONFIG_ENVIRONMENT`` take ``name`` (blanks around it and case
    aside, as they do)."""
    name = name.strip().lower()
    return bool(_ENV_NAME.match(name)) and name != MIGRATION_REPORT_STEM


_ABSENT: Any = object()


#: ``cfgcore migrate`` writes its report beside the configuration it wrote; it is not
#: an environment.
MIGRATION_REPORT_STEM = "migration-report"


class ConfigBuilder:
    """Reads one config directory into complete, unvalidated snapshots.

    ``flags`` is the :class:`~cfgcore.runtime.flags.LiveFlags` of the directory's flags
    file (a file store), or None when the flags are not part of the directory's files.
    """

    def __init__(
        self,
        config_dir: str,
        *,
        env_prefix: str,
        transforms: Sequence[str],
        environ: Mapping[str, str] | None,
    ) -> None:
        self.config_dir = config_dir
        self.env_prefix = env_prefix
        self.transforms = tuple(transforms)
        self.environ = environ
        self.transformer = ConfigurationTransformer(env=environ)
        self.transformer.transform({}, self.transforms)  # unknown step names fail here
        self.profiles = ProfileManager()
        self.flags: Any = None
        self.flags_file_arg: str | None = None
        self.keyring: Any = None  # a cfgcore.runtime.secrets.Keyring; None: from the environment
        # The secret files each environment's builds read through ${file:...}: inputs
        # like the configuration files (fingerprinted, so the poll and the settle wait
        # see a rotated secret; watched; compared before a reload is skipped). Those a
        # refused build tried to read are kept too, so putting a missing one in place
        # is a change the poll sees.
        self.secret_files: dict[str, frozenset[str]] = {}
        # False: builds leave the ``<PREFIX>__`` layer out (``cfgcore publish``: what a
        # fleet follows is the files' configuration; each follower applies its own).
        self.env_overrides = True

    @property
    def env_vars(self) -> Mapping[str, str]:
        return os.environ if self.environ is None else self.environ

    def resolve(
        self, environment: Any, profile: Any, geographic_profile: Any
    ) -> tuple[str, str | None, str | None]:
        """``(environment, profile, geographic profile)``: the given values, else
        ``CONFIG_ENVIRONMENT``/``CONFIG_PROFILE``/``CONFIG_GEOGRAPHIC_PROFILE`` (or their
        ``CFGCORE_`` aliases), else
        ``development``/none/none. Raises ConfigError for an unusable environment name."""
        env_vars = self.env_vars
        # The seed's names, or their CFGCORE_ aliases (config/envfile.py).
        env = environment or aliased(env_vars, "ENVIRONMENT")
        prof = profile if profile is not None else aliased(env_vars, "PROFILE")
        geo = geographic_profile
        if geo is None:
            geo = aliased(env_vars, "GEOGRAPHIC_PROFILE")
        geo = None if geo is None or str(geo).strip().lower() in NO_PROFILE else str(geo)
        name = str(env or "development").strip().lower()
        if not _ENV_NAME.match(name):
            raise ConfigError(
                f"invalid environment name {name!r} (letters, digits, '_', '-' and '.')",
                file=self.config_dir,
            )
        if name == MIGRATION_REPORT_STEM:
            raise ConfigError(
                f"{name!r} is not an environment: {name}.json is the report cfgcore migrate "
                "writes beside the configuration",
                file=self.config_dir,
            )
        return name, profile_name(prof), geo

    def available_environments(self) -> list[str]:
        """Environment names with a file in the config directory (base excluded): the
        names a load finds a file for (``staging.yaml``, not ``Staging.yaml`` or
        ``staging.YAML``, which :meth:`find_file` never reads)."""
        names = set()
        with contextlib.suppress(OSError):
            for f in os.listdir(self.config_dir):
                stem, ext = os.path.splitext(f)
                if (
                    ext in FORMATS
                    and stem != "base"
                    and _ENV_NAME.fullmatch(stem)  # as a load takes it ("$" takes "x\n")
                    and is_environment_name(stem)
                ):
                    # A name only counts if it can be read (not a dangling or looping link).
                    if not stem.startswith("flags") and os.path.isfile(
                        os.path.join(self.config_dir, f)
                    ):
                        names.add(stem)
        return sorted(names)

    def _miscased(self, stem: str) -> list[str]:
        """The files of the config directory that would be ``stem``'s but for the case
        of their name (``Staging.yaml``, ``staging.YAML`` for ``staging``)."""
        try:
            names = os.listdir(self.config_dir)
        except OSError:
            return []
        exact = {stem + ext for ext in FORMATS}
        return sorted(
            f
            for f in names
            if f not in exact
            and os.path.splitext(f)[0].lower() == stem
            and os.path.splitext(f)[1].lower() in FORMATS
        )

    def find_file(self, stem: str, required: bool) -> str | None:
        # lexists: a link whose target is missing or loops is a file that cannot be
        # read (reported with the OS's reason), not a file that is not there.
        found = [
            os.path.join(self.config_dir, stem + ext)
            for ext in FORMATS
            if self._present(os.path.join(self.config_dir, stem + ext))
        ]
        if len(found) > 1:
            raise ConfigError(
                f"ambiguous configuration: {all_exist(os.path.basename(f) for f in found)}; "
                "keep one",
                file=self.config_dir,
                kind="io",
            )
        if not found and stem == "base":
            miscased = self._miscased(stem)
            if miscased:
                # The base layer is optional, but one named Base.yaml is no missing
                # layer: it is most of the configuration, dropped without a word.
                read = {1: "this one is never", 2: "neither is ever"}.get(
                    len(miscased), "none of them is ever"
                )
                raise ConfigError(
                    f"{_there(miscased)}, but the base file is named in lower case and "
                    f"{read} read: {_renamed(miscased, stem)}",
                    file=self.config_dir,
                    kind="io",
                )
        if not found and required and not os.path.isdir(self.config_dir):
            what = (
                "configuration directory does not exist"
                if not os.path.lexists(self.config_dir)
                else "not a directory"
            )
            raise ConfigError(
                f"{what}: point config_dir (--config-dir) or CFGCORE_CONFIG_DIR at the "
                "directory that holds base.yaml and the environment files "
                "(cfgcore setup writes one)",
                file=self.config_dir,
                kind="io",
            )
        if not found and required:
            available = self.available_environments()
            hint = ""
            if not available and self.find_file("base", False):
                # cfgcore migrate writes base.yaml alone: say what completes the directory.
                hint = (
                    f" (each environment has its own file over base.yaml: write {stem}.yaml, "
                    "'{}' for an environment that changes nothing)"
                )
            meant = (
                difflib.get_close_matches(stem, available, n=1, cutoff=0.75)
                or [env for env in available if stem and env.startswith(stem)][:1]
            )
            if meant and len([e for e in available if stem and e.startswith(stem)]) <= 1:
                hint = f" (did you mean {meant[0]!r}?)" + hint
            miscased = self._miscased(stem)
            if miscased:
                # On a case-sensitive file system Staging.yaml is not staging.yaml, and
                # an environment name is read in lower case: name the file and the fix
                # (the names listed are those a load finds; this one it never will).
                hint = (
                    f" ({_there(miscased)}, but environment files are named in lower case: "
                    f"{_renamed(miscased, stem)})"
                )
            raise ConfigError(
                f"no configuration file for environment {stem!r} "
                f"(looked for {stem}.yaml/.yml/.json/.toml); "
                f"available: {', '.join(available) or 'none'}{hint}",
                file=self.config_dir,
                kind="io",
            )
        if found:
            try:
                os.stat(found[0])
            except OSError as exc:
                target = os.readlink(found[0]) if os.path.islink(found[0]) else None
                raise ConfigError(
                    f"cannot read: {exc.strerror or exc}"
                    + (f" (a link to {target})" if target else ""),
                    file=found[0],
                    kind="io",
                ) from None
        return found[0] if found else None

    def _present(self, path: str) -> bool:
        """``os.path.lexists``, except that a directory that cannot be searched (no
        execute permission for this process) is an error saying so: lexists answers
        False then, and a reload was refused as "no configuration file for environment
        ...; available: none" while every file was there."""
        try:
            os.lstat(path)
        except PermissionError as exc:
            raise ConfigError(
                f"cannot look for configuration files here: {exc.strerror or exc} (the "
                "process needs permission to search this directory)",
                file=self.config_dir,
                kind="io",
            ) from None
        except (OSError, ValueError):  # missing (or a name the system cannot hold)
            return False
        return True

    def flags_path(self, *, open: bool = True) -> str | None:
        """The flags file served with this directory (the store's seed while the store's
        own file does not exist yet), or None when the directory has no flags.
        ``open=False`` (what hot reload watches) does not open the flag set while the
        manager serves its placeholder: the directory's flags file once it exists, which
        the next activation opens (:mod:`cfgcore.config.flags`), refusing a bad one as
        it would any input, not in the middle of a poll."""
        live = self.flags
        if not open and live is not None and live.deferred:
            try:
                url = live.url()
            except ConfigError:  # two flags files: every one is watched (input_paths)
                return None
            return url if url is not None and "://" not in url else None
        if live is None or getattr(live.store, "kind", None) != "file":
            return None
        store = live.store
        if store.seed and not os.path.exists(store.path):
            return str(store.seed)
        return str(store.path)

    def profile_dir(self) -> str:
        return os.path.join(self.config_dir, "profiles")

    def env_file(self) -> EnvironWithFile | None:
        """The ``.env`` file the builds read (:mod:`cfgcore.config.envfile`), or None."""
        environ = self.environ
        return environ if isinstance(environ, EnvironWithFile) else None

    def input_paths(self, env: str) -> list[str]:
        paths = [
            os.path.join(self.config_dir, stem + ext) for stem in ("base", env) for ext in FORMATS
        ]
        flags = self.flags_path(open=False)
        if flags:
            paths.append(flags)
        # Every name the directory's flags file may have: a second one appearing beside
        # it is a change, refused as ambiguous (directory_flags_file) as a start is.
        paths += [os.path.join(self.config_dir, name) for name in FLAG_FILE_NAMES]
        # The .env file is an input like the others: its values fill ${VAR} references,
        # so its edit, and its deletion, are changes the poll must see (a snapshot that
        # did not record it let the file vanish unnoticed, then the next reload served
        # every ${VAR:-default} without a word).
        dotenv = self.env_file()
        if dotenv is not None:
            paths.append(dotenv.path)
        paths += sorted(self.secret_files.get(env, ()))
        pdir = self.profile_dir()
        with contextlib.suppress(OSError):
            paths += [os.path.join(pdir, f) for f in sorted(os.listdir(pdir))]
        return paths

    def fingerprint(self, env: str) -> tuple[Any, ...]:
        """``(path, inode, size, mtime_ns, ctime_ns)`` of every input file of ``env``
        that exists."""
        from cfgcore.config.settle import file_fingerprint

        return file_fingerprint(self.input_paths(env))

    def build(
        self,
        env: str,
        profile: str | None,
        geo: str | None,
        runtime: Layer | None,
        previous: ConfigSnapshot,
        *,
        with_flags: bool = True,
        skip_if_unchanged: bool = False,
        guard: bool = False,
        fingerprint: tuple[Any, ...] | None = None,
        source: str = "load",
    ) -> tuple[Any, Any]:
        """Build a complete new snapshot (and compiled flags) without activating it.
        See :meth:`_build`; this remembers the secret files the build read."""
        for _attempt in range(2):
            known = self.secret_files.get(env, frozenset())
            read: dict[str, bytes] = {}
            try:
                snap, compiled = self._build(
                    env, profile, geo, runtime, previous, read,
                    with_flags=with_flags, skip_if_unchanged=skip_if_unchanged,
                    guard=guard, fingerprint=fingerprint, source=source,
                )  # fmt: skip
            except BaseException:
                if read:  # refused: watch what it tried to read as well as what serves
                    self.secret_files[env] = known | set(read)
                raise
            if snap is previous:
                break
            self.secret_files[env] = frozenset(read)
            if fingerprint is not None or read.keys() <= known:
                # (a caller's own fingerprint: it checks it after the build, and builds
                # again when the inputs, secret files now included, moved meanwhile)
                break
            # Secret files first read by this build were not in the fingerprint it took
            # before reading: once more, with them (the poll would otherwise find them
            # "changed" against this version, and the watcher's settle wait miss them).
        return snap, compiled

    def secret_state(self, previous: ConfigSnapshot) -> tuple[tuple[str, bytes], ...]:
        """``(path, digest)`` of the secret files ``previous`` was built from, read now
        (an empty digest for one that cannot be read: the build then reports why)."""
        read = previous.sources[7] if len(previous.sources) > 7 else ()
        if not read:
            return ()
        allowed = allowed_secret_dirs(self.environ)
        out = []
        for path, _ in read:
            try:
                digest = secret_digest(read_secret_file(path, allowed))
            except (OSError, ValueError):
                digest = b""
            out.append((path, digest))
        return tuple(out)

    def _build(
        self,
        env: str,
        profile: str | None,
        geo: str | None,
        runtime: Layer | None,
        previous: ConfigSnapshot,
        read: dict[str, bytes],
        *,
        with_flags: bool = True,
        skip_if_unchanged: bool = False,
        guard: bool = False,
        fingerprint: tuple[Any, ...] | None = None,
        source: str = "load",
    ) -> tuple[Any, Any]:
        """Build a complete new snapshot (and compiled flags) without activating it.

        ``fingerprint`` is the caller's :meth:`_fingerprint`, taken just before this call.
        ``source`` names the activation (``load``, ``reload``, ``profile``) to the flag
        set when it refuses the flags file (:meth:`compile_flags`).
        ``guard`` refuses inputs the live ``previous`` version read that are now gone,
        dangling or emptied (:func:`reject_truncated`, :func:`flags_file_gone`): every
        rebuild of a live version from the same files (a reload, a profile switch)
        passes it; only ``load_environment_config``, the deliberate way to accept such a
        removal, and builds that activate nothing skip it.
        """
        started = time.perf_counter()
        if fingerprint is None:
            fingerprint = self.fingerprint(env)  # before reading: a later change re-triggers
        base_file = self.find_file("base", required=False)
        env_file = self.find_file(env, required=True)
        texts: list[tuple[str, bytes]] = []
        for path in (base_file, env_file):
            if path is not None:
                texts.append((path, read_bytes(path)))
        flags_file: str | None = None
        flags_bytes = b""
        if with_flags and self.flags_path() is not None:
            if not (self.flags.store_arg or self.flags.store_env):
                # the directory's own flags file serves: a second one is refused
                directory_flags_file(self.config_dir)
            try:
                flags_bytes, flags_file = self.flags.store.read_bytes()
            except ConfigError as exc:
                # There but unreadable (a directory in its place, its permissions): the
                # flag set stands refused on it too, the last flags serving.
                self.flags.refuse(exc, source)
            # The flags file back to the document that serves ends a refusal of it that
            # stands, whatever becomes of this build (a configuration file broken meanwhile
            # refuses it; unchanged inputs skip it below).
            self.flags.back_to_live(flags_bytes)
        profiles_dir = self.profile_dir()
        env_vars = os.environ if self.environ is None else self.environ
        # What became of the .env file: read here, so a file that cannot be read is
        # refused before anything is parsed (ConfigError naming it), and a file gone
        # since the live version read it is a change to judge, even if no ${VAR} moved.
        dotenv = self.env_file()
        env_file_state = None if dotenv is None else (dotenv.path, dotenv.state())
        # Unchanged files reference the same variables as last time, so the previous
        # build's names decide whether this one can be skipped.
        sources: tuple[Any, ...] = (
            tuple((p, hashlib.blake2b(b, digest_size=16).digest()) for p, b in texts),
            hashlib.blake2b(flags_bytes, digest_size=16).digest(),
            self.profile_sources(profiles_dir),
            self.env_digest(env_vars, previous.env_names),
            profile,
            geo,
            env_file_state,
            # The secret files the live version read, as they read now: a rotated one
            # is a change though no configuration file moved.
            self.secret_state(previous),
        )
        debug = log.isEnabledFor(logging.DEBUG)
        if skip_if_unchanged and sources == previous.sources and previous.version:
            # Touched, not changed: the poll must not re-read everything on every tick.
            if debug:
                log.debug("reload %s: inputs touched, contents unchanged; nothing to do", env)
            return previous, None
        if debug:
            debuglog.files_read(env, texts, flags_file)
        if guard and previous.version:
            reject_truncated(
                texts, previous, env_file_state,
                env_file_named=dotenv is not None and dotenv.named,
            )  # fmt: skip
            gone = flags_file_gone(flags_file, flags_bytes, previous)
            if gone is not None:
                # Refused with the flag set standing refused on it, as on bytes that do
                # not compile (a provider STALE, health's flags warning), until the
                # file is back or a good one goes live. (Bytes read in place of a file
                # gone, another flags file's, are not what is refused.)
                same = flags_file == previous.flags_file
                self.flags.refuse(gone, source, flags_bytes if same else None)
        if dotenv is not None and dotenv.named and env_file_state == (dotenv.path, "missing"):
            # As at start (envfile.env_file_for): a named file that is not there is a
            # typo or a lost mount, never "no secrets". load_environment_config after a
            # deliberate removal answers the same: empty it, or stop naming it.
            raise ConfigError(
                f"{ENV_FILE_VAR} names a file that does not exist{_dangling(dotenv.path)}",
                file=dotenv.path,
                kind="io",
            )

        problems: list[Problem] = []
        resolver = Resolver(self.keyring, self.environ)
        resolver.files = read  # the secret files read, for build() (and the sources)
        if guard and previous.version:
            # A secret file the live version read non-empty and empty now is refused
            # (reject_truncated's rule for the configuration files).
            resolver.keep_filled = filled_secret_files(previous)
        layers: list[Layer] = []
        refs: dict[tuple[Any, ...], tuple[str, Any]] = {}
        env_names: set[str] = set()
        for path, raw in texts:
            layer = None
            try:
                layer = parse_layer(path, raw)
                layer.kind = "base" if path == base_file else "environment"
                found = env_refs(layer.data)
                env_names.update(ref_names(ref for _, ref in found))
                layer.data = self.transformer.transform(layer.data, self.transforms, file=path)
                check_transformed(layer.data, path, layer)
                for ref_path, ref in found:
                    refs[ref_path] = (ref, get_path(layer.data, ref_path, None))
                layer.data = self.resolve_secrets(layer.data, path, refs, resolver)
                layers.append(layer)
            except ConfigError as exc:
                problems += with_lines(exc.problems, layer)
        if problems:
            raise ConfigError(problems)

        if profile or geo:
            self.load_custom_profiles(profiles_dir)
        if profile:
            chosen = self.named_profile("deployment", profile, profiles_dir)
            layers.append(self.profile_layer(chosen, refs, resolver))
        if geo:
            chosen = self.named_profile("geographic", geo, profiles_dir)
            layers.append(self.profile_layer(chosen, refs, resolver))
        env_names.update(ref_names(ref for ref, _ in refs.values()))  # profile files' too
        # Recorded with this build's names, which the next reload compares against.
        sources = (*sources[:3], self.env_digest(env_vars, env_names), *sources[4:7])

        merged: dict[str, Any] = {}
        for layer in layers:
            problems += null_over_section(merged, layer)
            merged = deep_merge(merged, layer.data)
        if problems:
            raise ConfigError(problems, kind="incomplete")
        envl = env_layer(env_vars, self.env_prefix, merged) if self.env_overrides else None
        if envl is not None and envl.data:
            for ref_path, var in envl.env_vars.items():
                refs[ref_path] = ("${" + var + "}", get_path(envl.data, ref_path, None))
                note_variable(var, env_vars.get(var), env_vars)
            envl.data = self.resolve_secrets(envl.data, "<environment>", refs, resolver)
            layers.append(envl)
            merged = deep_merge(merged, envl.data)
        runtime = runtime if runtime is not None else Layer("runtime", "runtime", {})
        # A runtime update made through a reference (update_config(key, "${VAR}")) stays a
        # reference on every rebuild: validation must judge "${VAR}", not the secret.
        for ref_path, ref in previous.refs.items():
            status, value, _ = runtime.lookup(ref_path)
            if status == "set":
                refs[ref_path] = (ref, value)
        layers.append(runtime)
        if runtime.data:
            merged = deep_merge(merged, runtime.data)
        if debug:
            debuglog.layers_merged(env, layers)
        config = freeze(merged)
        # Read-only, acyclic and this version's own: out of the cyclic collector, as a
        # decoded flag document is (cfgcore._tree.untrack)
        untrack(config, FrozenDict)
        live_refs = {
            p: ref for p, (ref, value) in refs.items() if get_path(config, p, _ABSENT) == value
        }

        compiled = None
        if flags_file and with_flags:
            compiled = self.compile_flags(flags_file, flags_bytes, previous, source)
        # The secret files this version read and what they held (every reference is
        # resolved by now), which the next reload reads again before skipping a build.
        sources = (*sources, tuple(sorted(read.items())))

        snap = ConfigSnapshot(
            config=config,
            layers=tuple(layers),
            version=previous.version + 1,
            environment=env,
            profile=profile,
            geographic_profile=geo,
            files=tuple(p for p, _ in texts),
            flags_file=flags_file,
            fingerprint=fingerprint,
            sources=sources,
            loaded_at=time.time(),
            refs=live_refs,
            env_names=frozenset(env_names),
        )
        if debug:
            log.debug(
                "built %s (profile=%s, geo=%s) from %s in %.2f ms",
                env,
                profile,
                geo,
                ", ".join(snap.files),
                (time.perf_counter() - started) * 1e3,
            )
        return snap, compiled

    def env_digest(self, env_vars: Mapping[str, str], names: Container[str]) -> bytes:
        """Digest of the variables a build reads: the prefixed layer and ``${VAR}`` names."""
        prefix = self.env_prefix
        items = []
        for key, value in env_vars.items():
            # Judged by the text they hold (environ.plain_text): a str subclass of the
            # caller's mapping may override startswith, __hash__ or __repr__, and so
            # leave a changed variable out of the digest (the build was skipped).
            name = plain_text(key)
            if name is None:
                items.append(("\0" + type(key).__name__, ""))  # refused by env_layer
            elif name.startswith(prefix) or name in names:
                text = plain_text(value)
                items.append((name, text if text is not None else "\0" + type(value).__name__))
        items.sort()
        # A digest, not the values: environment variables carry secrets.
        return hashlib.blake2b(repr(items).encode(), digest_size=16).digest()

    def profile_sources(self, directory: str) -> tuple[Any, ...]:
        """``(name, digest)`` of each profile file in ``directory``: the files
        :meth:`ProfileManager.load_directory` reads (a ConfigMap's ``..data`` directory,
        a README, are none). One that cannot be read (a FIFO, a directory, a link in a
        loop) is there with the reason in place of a digest: its appearance is a change
        the build judges as a start would (refused, naming it, while a profile is
        chosen), never "nothing changed" while a start with it is refused."""
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            return ()
        out: list[tuple[str, Any]] = []
        for name in names:
            if not is_profile_file(name):
                continue
            try:
                raw = read_bytes(os.path.join(directory, name))
            except ConfigError as exc:
                out.append((name, str(exc)))
                continue
            out.append((name, hashlib.blake2b(raw, digest_size=16).digest()))
        return tuple(out)

    def named_profile(self, kind: str, name: str, directory: str) -> Profile:
        """The ``kind`` profile ``name``; an unknown one is a ConfigError that says where
        custom profiles are looked for (and which names exist)."""
        try:
            if kind == "deployment":
                return self.profiles.get_deployment_profile(name)
            return self.profiles.get_geographic_profile(name)
        except ConfigError as exc:
            message = exc.problems[0].message if exc.problems else str(exc)
            raise ConfigError(
                f"{message} (custom profiles are files in this directory)",
                file=directory,
                kind="profile",
            ) from None

    def load_custom_profiles(self, directory: str) -> None:
        # Rebuilt each time so a custom profile edited on disk is picked up on reload.
        manager = ProfileManager()
        manager.load_directory(directory)
        self.profiles = manager

    def resolve_secrets(
        self,
        data: Any,
        file: str,
        refs: dict[tuple[Any, ...], tuple[str, Any]],
        resolver: Resolver,
    ) -> Any:
        """``data`` with ``ENC[...]`` and ``${file:...}`` values resolved (all or nothing:
        ConfigError naming file and key path); each resolved path joins ``refs`` so
        validation judges the envelope, never the plaintext."""
        if not has_secrets(data):
            return data
        out, found = resolve_tree(data, resolver, file=file)
        for ref_path, text in found.items():
            original = refs[ref_path][0] if ref_path in refs else text
            refs[ref_path] = (original, get_path(out, ref_path, None))
        return out

    def profile_layer(
        self,
        profile: Profile,
        refs: dict[tuple[Any, ...], tuple[str, Any]] | None = None,
        resolver: Resolver | None = None,
    ) -> Layer:
        kind = "deployment_profile" if profile.kind == "deployment" else "geographic_profile"
        file = None if profile.source == "builtin" else profile.source
        # Custom profile files are configuration too: ${VAR} works in them, and validation
        # judges the reference, as for the other files.
        raw = thaw(profile.overrides)
        layer = Layer(name=profile.name, kind=kind, data=raw, file=file)
        if file is not None and profile.text is not None:
            # Its lines too: an error in a value the profile sets names the file's line.
            layer.text, layer.fmt, layer.line_prefix = profile.text, profile.fmt, ("overrides",)
            layer.marks = profile.marks
        if profile.base is not None:
            layer.parts = tuple(_profile_part(p, kind) for p in profile.chain())
        try:
            data = self.transformer.transform(raw, self.transforms, file=file)
            check_transformed(data, file or f"<profile {profile.name}>", layer)
            if refs is not None:
                for ref_path, ref in env_refs(raw):
                    refs[ref_path] = (ref, get_path(data, ref_path, None))
                data = self.resolve_secrets(
                    data,
                    file or profile.name,
                    refs,
                    resolver or Resolver(self.keyring, self.environ),
                )
        except ConfigError as exc:
            located = with_lines(exc.problems, layer)
            if located == exc.problems:
                raise
            raise ConfigError(located) from None
        layer.data = data
        return layer

    def compile_flags(
        self, path: str, raw: bytes, previous: ConfigSnapshot, source: str = "load"
    ) -> Any:
        """``(document, compiled)`` for the flags file's bytes, or None when they are the
        live document already (nothing to swap). Bytes that do not decode or compile
        raise ConfigError, and the shared flag set stands refused on them as when its
        own reader refuses them (:meth:`cfgcore.runtime.flags.LiveFlags.judge_read`):
        a provider on it is STALE until a good document goes live or the file is back
        to the live one."""
        return self.flags.judge_read(raw, path, source)


def _dangling(path: str) -> str:
    """`` (a link to X, which does not exist)`` for a link leading nowhere, `` (a link
    to X, in a loop of links)`` for one that leads back to itself (``flags.yaml ->
    flags.yaml``: its target is there, the loop is what cannot be read), else ``""``."""
    if not os.path.islink(path):
        return ""
    try:
        target = os.readlink(path)
    except OSError:
        return " (a link that leads nowhere)"
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f" (a link to {target}, in a loop of links)"
    return f" (a link to {target}, which does not exist)"


def _reject_env_file_gone(
    env_file: tuple[str, str], was: tuple[str, str] | None, named: bool
) -> None:
    """Refuse a reload that finds the ``.env`` file the live version read gone or
    emptied: every ``${VAR}`` it filled would fall back to its default (or fail) without
    a word. Beside the configuration, ``load_environment_config`` accepts its removal
    (as a start does); a file ``$CFGCORE_ENV_FILE`` names must exist there too."""
    path, state = env_file
    if was is None or was[0] != path:
        return
    if state == "missing" and was[1] != "missing":
        remove = (
            f"empty it and call load_environment_config, or stop naming it in {ENV_FILE_VAR} "
            "and restart" if named
            else "restart or call load_environment_config"
        )  # fmt: skip
        raise ConfigError(
            f".env file disappeared{_dangling(path) or ' (being replaced?)'}; keeping the "
            f"previous configuration and the values it read from it (put it back; to "
            f"really remove it, {remove})",
            file=path,
            kind="incomplete",
        )
    if state == "empty" and was[1] == "read":
        raise ConfigError(
            ".env file is empty (a write in progress?); keeping the previous configuration "
            "(leave a comment line in it for an intentionally empty file, or call "
            "load_environment_config)",
            file=path,
            kind="incomplete",
        )


def reject_truncated(
    texts: list[tuple[str, bytes]],
    previous: Any,
    env_file: tuple[str, str] | None = None,
    env_file_named: bool = False,
) -> None:
    """Refuse a reload that sees a previously non-empty input file empty or missing.

    ``open(path, "w")`` truncates before it writes, and some editors move the original
    away before writing the new file: a watcher (or a slow writer) can show us either
    moment, and the rest still parses, so without this check a save would briefly
    activate a configuration without that file. (To really remove a file, restart or
    call ``load_environment_config`` explicitly.) ``env_file`` is the ``.env`` file's
    ``(path, state)`` (:meth:`EnvironWithFile.state`), judged the same way; the flags
    file by :func:`flags_file_gone`.
    """
    if env_file is not None and len(previous.sources) > 6:
        _reject_env_file_gone(env_file, previous.sources[6], env_file_named)
    empty = hashlib.blake2b(b"", digest_size=16).digest()
    before = dict(previous.sources[0]) if previous.sources else {}
    now = {path for path, _ in texts}
    for path in before:
        if path not in now:
            raise ConfigError(
                "file disappeared (being replaced?); keeping the previous configuration",
                file=path,
                kind="incomplete",
            )
    for path, raw in texts:
        if not raw.strip() and before.get(path, empty) != empty:
            raise ConfigError(
                "file is empty (a write in progress?); keeping the previous configuration "
                "(write '{}' for an intentionally empty layer, then reload)",
                file=path,
                kind="incomplete",
            )


def flags_file_gone(
    flags_file: str | None, flags_bytes: bytes, previous: Any
) -> ConfigError | None:
    """The refusal of a reload that finds the flags file the live version read gone
    (deleted, moved away, a link left dangling) or emptied, as :func:`reject_truncated`
    refuses a configuration file: None when it is there and not empty. The builder
    refuses it through the flag set (:meth:`ConfigFlags.refuse
    <cfgcore.config.flags.ConfigFlags.refuse>`), which then stands refused too."""
    gone = getattr(previous, "flags_file", None)
    if gone and flags_file != gone and not os.path.exists(gone):
        # The manager no longer finds a flags file: the reload said nothing while the
        # last flags kept serving (and a restart would then serve none). exists(), as
        # the manager looks for the file: a link left dangling (its target deleted, a
        # half-switched release) is no file either, and lexists() let it through.
        link = _dangling(gone)
        return ConfigError(
            f"flags file disappeared{link or ' (being replaced?)'}; keeping the previous "
            "flags (put it back; to really remove it, restart: load_environment_config "
            "stops reading it, but its flags keep serving until then)",
            file=gone,
            kind="incomplete",
        )
    empty = hashlib.blake2b(b"", digest_size=16).digest()
    if flags_file and not flags_bytes.strip() and previous.sources[1] != empty:
        return ConfigError(
            "flags file is empty (a write in progress?); keeping the previous flags",
            file=flags_file,
            kind="incomplete",
        )
    return None


def filled_secret_files(previous: Any) -> frozenset[str]:
    """The secret files ``previous`` read with a non-empty value (``sources[7]``: their
    paths and content digests)."""
    read = previous.sources[7] if len(previous.sources) > 7 else ()
    empty = secret_digest("")
    return frozenset(path for path, digest in read if digest not in (empty, b""))


def null_over_section(below: Mapping[str, Any], layer: Layer) -> list[Problem]:
    """A key ``layer`` leaves empty (``performance:`` and nothing under it) where the
    layers below it hold a section: the merge would replace the whole section with
    null. That is what a file saved half-way (cut right after a section's key) or a
    section whose keys are all commented out looks like, so it is refused rather than
    served; ``__delete__`` removes a section on purpose."""
    out: list[Problem] = []

    def walk(low: Mapping[str, Any], high: Mapping[str, Any], prefix: tuple[Any, ...]) -> None:
        for key, value in high.items():
            under = low.get(key)
            if not isinstance(under, Mapping) or not under:
                continue
            path = (*prefix, key)
            if value is None:
                dotted = format_path(path)
                line, written = None, layer.written_by(path)
                with contextlib.suppress(Exception):
                    line = written.line_of(path)
                out.append(
                    Problem(
                        dotted,
                        "empty, which would replace the whole section the layers below set "
                        "(a file saved half-way, or a section whose keys are all commented "
                        "out?): give it its keys, or set it to '__delete__' to "
                        "remove the section on purpose",
                        file=written.file or layer.file,
                        line=line,
                        kind="incomplete",
                    )
                )
            elif isinstance(value, Mapping):
                walk(under, value, path)

    if isinstance(layer.data, Mapping):
        walk(below, layer.data, ())
    return out


def _profile_part(profile: Profile, kind: str) -> Layer:
    """The layer of what ``profile``'s own file writes (the built-in's overrides for a
    built-in profile), for :attr:`Layer.parts` of a profile that extends it."""
    own = profile.overrides if profile.own is None else profile.own
    if profile.source == "builtin" or profile.text is None:
        return Layer(name=profile.name, kind=kind, data=thaw(own))
    return Layer(
        name=profile.name, kind=kind, data=thaw(own), file=profile.source, text=profile.text,
        fmt=profile.fmt, marks=profile.marks, line_prefix=("overrides",),
    )  # fmt: skip


def with_lines(problems: list[Problem], layer: Layer | None) -> list[Problem]:
    """``problems`` with the line ``layer``'s file defines each one's key path on, where
    the raiser (a transformation step, a secret that does not resolve) did not say. A
    key a profile takes from the profile it extends names that profile's file."""
    if layer is None or layer.file is None:
        return problems
    out = []
    for p in problems:
        if p.path and p.file == layer.file:
            with contextlib.suppress(Exception):
                path = parse_path(p.path)
                written = layer.written_by(path)
                if written is not layer:
                    where = written.file or f"<profile {written.name}>"
                    p = dataclasses.replace(p, file=where, line=written.line_of(path))
                elif p.line is None:
                    p = dataclasses.replace(p, line=layer.line_of(path))
        out.append(p)
    return out


def check_transformed(data: Any, file: str, layer: Layer | None = None) -> None:
    """Refuse a transformed tree that breaks the limits its file obeyed (a step turned
    text into an integer beyond 64 bits, a registered step returned NaN or a set):
    a ConfigError naming the file, line and key path, as the reader would have."""
    found = tree_problem(data)
    if found is None:
        return
    path, message = found
    line = None
    if layer is not None:
        with contextlib.suppress(Exception):
            written = layer.written_by(parse_path(path))
            if written is not layer:
                file = written.file or f"<profile {written.name}>"
            line = written.line_of(parse_path(path))
    raise ConfigError([Problem(path, message, file=file, line=line)], kind="transform")


def read_bytes(path: str) -> bytes:
    """The bytes of a configuration or profile file: a regular file of at most 64 MiB
    (a FIFO would block the build, and the lock, forever; ``/dev/zero`` never ends)."""
    try:
        return read_regular(path)
    except OSError as exc:
        # A directory is the common mistake: say so in the OS's words.
        reason = os.strerror(errno.EISDIR) if os.path.isdir(path) else exc.strerror or exc
        raise ConfigError(f"cannot read: {reason}", file=path, kind="io") from None


def parse_layer(path: str, raw: bytes) -> Layer:
    fmt = FORMATS[os.path.splitext(path)[1].lower()]
    return parse_layer_text(decode_text(raw, path), fmt, path)


def profile_name(profile: Any) -> str | None:
    """A profile's name (``DeploymentProfile`` member or text); None for none."""
    if profile is None:
        return None
    name = profile.value if isinstance(profile, DeploymentProfile) else str(profile)
    return None if name.strip().lower() in NO_PROFILE else name.strip()
