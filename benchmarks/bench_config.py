"""Configuration manager benchmarks, with Dynaconf, OmegaConf and pydantic-settings doing
the same work in the same run.

Groups (one per operation):

* ``config-load-staging``: read the embedded ``base.yaml`` + ``staging.yaml`` from files
  and deep-merge them. cfgcore is measured twice: the full activation a service gets
  (parse, ``${VAR}`` substitution, merge, freeze, validation, flags compile) and the
  merge alone (``build_config``), which is what the peers do.
* ``config-load-10k``: the same on a generated 10,000-leaf tree (base + 1,000-key overlay).
* ``config-get-5level``: read one 5-level key from the loaded 10k tree, each library's
  idiomatic way (cfgcore ``get("a.b.c.d.e")``, Dynaconf ``get`` with a dotted key,
  OmegaConf ``select`` and attribute access, pydantic-settings typed attribute access), and
  a plain dict chain as the floor.
* ``config-update``: set one 4-level key at runtime (cfgcore validates the whole config).
* ``config-pinned``: cfgcore only: a request's consistent pair, ``pinned()`` (the
  configuration and the flags served with it), against ``get()`` then ``flags``, which
  may straddle a swap, as the floor.
* ``config-reload``: cfgcore only (the peers have no watcher): atomic write of the staging
  file -> new value visible through ``get``; includes the watcher's debounce.

Run: ``python -m pytest benchmarks/bench_config.py --benchmark-enable -q``.
"""

from __future__ import annotations

import itertools
import os
import shutil
import time
import zlib
from typing import Any

import pytest
import yaml

from cfgcore.config.manager import ConfigurationManager, default_config_dir
from cfgcore.runtime.atomicio import atomic_write_text

DEFAULTS = default_config_dir()
FLAGS = os.path.join(os.path.dirname(DEFAULTS), "flags.yaml")
SHAPE = (10, 10, 10, 5, 2)  # 10,000 leaves, each 5 levels deep
# As a smoke test (--benchmark-disable) a smaller tree with the same key proves the code
# runs without spending the suite's time budget on OmegaConf parsing 10,000 nodes.
SMOKE_SHAPE = (8, 4, 6, 3, 2)
KEY5 = "s7.g3.i5.f2.l1"
KEY4 = "anomaly_detection.threshold"


def _tree(shape: tuple[int, ...], prefix: str = "", names: str = "sgifl") -> Any:
    if not shape:
        return zlib.crc32(prefix.encode()) % 100_000
    return {
        f"{names[0]}{i}": _tree(shape[1:], f"{prefix}.{names[0]}{i}", names[1:])
        for i in range(shape[0])
    }


def _overlay(shape: tuple[int, ...], every: int = 10) -> dict[str, Any]:
    out: dict[str, Any] = {}
    leaves = 0
    for s, g, i, f, leaf in itertools.product(*(range(n) for n in shape)):
        leaves += 1
        if leaves % every:
            continue
        node = out
        for seg in (f"s{s}", f"g{g}", f"i{i}", f"f{f}"):
            node = node.setdefault(seg, {})
        node[f"l{leaf}"] = -leaves
    return out


@pytest.fixture(scope="module")
def staging_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("staging")
    for name in ("base.yaml", "staging.yaml"):
        shutil.copy(os.path.join(DEFAULTS, name), d / name)
    shutil.copy(FLAGS, d / "flags.yaml")
    return d


def _tenth_leaf(shape: tuple[int, ...]) -> str:
    """Key of the 10th leaf in iteration order: the first one the overlay sets (to -10)."""
    index = list(itertools.product(*(range(n) for n in shape)))[9]
    return ".".join(f"{name}{i}" for name, i in zip("sgifl", index, strict=True))


@pytest.fixture(scope="module")
def shape(request):
    return SMOKE_SHAPE if request.config.getoption("benchmark_disable") else SHAPE


@pytest.fixture(scope="module")
def big_dir(tmp_path_factory, shape):
    d = tmp_path_factory.mktemp("big")
    (d / "base.yaml").write_text(yaml.safe_dump(_tree(shape), sort_keys=False))
    (d / "staging.yaml").write_text(yaml.safe_dump(_overlay(shape), sort_keys=False))
    return d


# ---------------------------------------------------------------------------- peers


def _dynaconf(d):
    from dynaconf import Dynaconf

    return Dynaconf(
        settings_files=[str(d / "base.yaml"), str(d / "staging.yaml")],
        merge_enabled=True,
        environments=False,
        load_dotenv=False,
        envvar_prefix="BENCHNOPE",
    )


def _omegaconf(d):
    from omegaconf import OmegaConf

    # OmegaConf 2.4 refuses YAML with more than 10,000 nodes unless told otherwise.
    limit = 1_000_000
    return OmegaConf.merge(
        OmegaConf.load(d / "base.yaml", max_yaml_expanded_nodes=limit),
        OmegaConf.load(d / "staging.yaml", max_yaml_expanded_nodes=limit),
    )


def _pydantic_settings(d, model: Any = None):
    from pydantic_settings import BaseSettings, SettingsConfigDict, YamlConfigSettingsSource

    files = [d / "base.yaml", d / "staging.yaml"]

    if model is None:

        class Settings(BaseSettings):
            model_config = SettingsConfigDict(extra="allow")

            @classmethod
            def settings_customise_sources(cls, settings_cls, **kwargs):
                return (YamlConfigSettingsSource(settings_cls, yaml_file=files, deep_merge=True),)

        return Settings()
    return model(files)


def _typed_pydantic_model():
    """pydantic-settings with typed nested models along the measured 5-level path."""
    from pydantic import create_model
    from pydantic_settings import BaseSettings, SettingsConfigDict, YamlConfigSettingsSource

    models = _path_models()

    def build(files):
        class Base(BaseSettings):
            model_config = SettingsConfigDict(extra="allow")

            @classmethod
            def settings_customise_sources(cls, settings_cls, **kwargs):
                return (YamlConfigSettingsSource(settings_cls, yaml_file=files, deep_merge=True),)

        return create_model("Settings", __base__=Base, s7=(models["S"], ...))()

    return build


def _path_models() -> dict[str, Any]:
    # Built with create_model so the annotations are real types, not strings (this module
    # uses postponed annotations).
    from pydantic import ConfigDict, create_model

    allow = ConfigDict(extra="allow")
    f = create_model("F", __config__=allow, l1=(int, ...))
    i = create_model("I", __config__=allow, f2=(f, ...))
    g = create_model(
        "G", __config__=ConfigDict(extra="allow", validate_assignment=True), i5=(i, ...)
    )
    s_ = create_model("S", __config__=allow, g3=(g, ...))
    return {"F": f, "I": i, "G": g, "S": s_}


# ---------------------------------------------------------------------------- load


def _dynaconf_loaded(d):
    settings = _dynaconf(d)
    settings.get("environment")  # Dynaconf loads lazily: force the files to be read
    return settings


def _dict_read(config: Any, key: str) -> Any:
    from pydantic import BaseModel

    node = config
    for seg in key.split("."):
        node = getattr(node, seg) if isinstance(node, BaseModel) else node[seg]
    return node


def _activate(d, validate=True):
    m = ConfigurationManager(d, environ={}, validate=validate)
    return m.load_environment_config("staging")


# lib -> (load(dir), read(config, dotted_key))
LOADERS = {
    "cfgcore-activate": (_activate, _dict_read),
    "cfgcore-merge-only": (
        lambda d: ConfigurationManager(d, environ={}, validate=False).build_config("staging"),
        _dict_read,
    ),
    "dynaconf": (_dynaconf_loaded, lambda s, k: s.get(k)),
    "omegaconf": (_omegaconf, _dict_read),
    "pydantic-settings": (_pydantic_settings, _dict_read),
}


@pytest.mark.parametrize("lib", list(LOADERS))
def test_load_staging(benchmark, staging_dir, lib):
    benchmark.group = "config-load-staging"
    load, read = LOADERS[lib]
    config = benchmark(load, staging_dir)
    key = "data_sources.kafka_cluster.consumer_configuration.group_id"
    assert read(config, key) == "ai-agent-staging-v2"


@pytest.mark.parametrize("lib", list(LOADERS))
def test_load_10k(benchmark, big_dir, shape, lib):
    benchmark.group = "config-load-10k"
    load, read = LOADERS[lib]
    if lib == "cfgcore-activate":
        # not a music-streaming config, so the validation rules do not apply to it
        def load(d):
            return _activate(d, validate=False)

    config = benchmark.pedantic(load, args=(big_dir,), rounds=5, iterations=1, warmup_rounds=1)
    assert read(config, _tenth_leaf(shape)) == -10  # set by the overlay


# ---------------------------------------------------------------------------- get


@pytest.fixture(scope="module")
def loaded(big_dir):
    from omegaconf import OmegaConf

    m = ConfigurationManager(big_dir, environ={}, validate=False)
    m.load_environment_config("staging")
    omega = _omegaconf(big_dir)
    typed = _pydantic_settings(big_dir, _typed_pydantic_model())
    return {
        "cfgcore": (m.get, KEY5),
        "dict-chain (floor)": (lambda c=m.config: c["s7"]["g3"]["i5"]["f2"]["l1"], None),
        "dynaconf": (_dynaconf(big_dir).get, KEY5),
        "omegaconf-select": (lambda k, o=omega: OmegaConf.select(o, k), KEY5),
        "omegaconf-attr": (lambda o=omega: o.s7.g3.i5.f2.l1, None),
        "pydantic-settings": (lambda s=typed: s.s7.g3.i5.f2.l1, None),
    }


GETTERS = [
    "cfgcore",
    "dict-chain (floor)",
    "dynaconf",
    "omegaconf-select",
    "omegaconf-attr",
    "pydantic-settings",
]


@pytest.mark.parametrize("lib", GETTERS)
def test_get_5_level_key(benchmark, loaded, lib):
    benchmark.group = "config-get-5level"
    fn, key = loaded[lib]
    expected = loaded["dict-chain (floor)"][0]()
    value = benchmark(fn, key) if key is not None else benchmark(fn)
    assert value == expected


# ---------------------------------------------------------------------------- update


def test_update_cfgcore(benchmark, staging_dir):
    benchmark.group = "config-update"
    m = ConfigurationManager(staging_dir, environ={})
    m.load_environment_config("staging")
    values = itertools.cycle([0.81, 0.82])
    assert benchmark(lambda: m.update_config(KEY4, next(values))) is True


def test_update_cfgcore_without_validation(benchmark, staging_dir):
    """The same update with validation off: what the swap itself costs."""
    benchmark.group = "config-update"
    m = ConfigurationManager(staging_dir, environ={}, validate=False)
    m.load_environment_config("staging")
    values = itertools.cycle([0.81, 0.82])
    assert benchmark(lambda: m.update_config(KEY4, next(values))) is True


def test_update_dynaconf(benchmark, staging_dir):
    benchmark.group = "config-update"
    s = _dynaconf(staging_dir)
    values = itertools.cycle([0.81, 0.82])
    benchmark(lambda: s.set(KEY4, next(values)))
    assert s.get(KEY4) in (0.81, 0.82)


def test_update_omegaconf(benchmark, staging_dir):
    from omegaconf import OmegaConf

    benchmark.group = "config-update"
    o = _omegaconf(staging_dir)
    values = itertools.cycle([0.81, 0.82])
    benchmark(lambda: OmegaConf.update(o, KEY4, next(values)))
    assert OmegaConf.select(o, KEY4) in (0.81, 0.82)


def test_update_pydantic_settings(benchmark, big_dir):
    benchmark.group = "config-update"
    s = _pydantic_settings(big_dir, _typed_pydantic_model())
    values = itertools.cycle([{"f2": {"l1": 1}}, {"f2": {"l1": 2}}])

    def update():
        s.s7.g3.i5 = next(values)  # validate_assignment re-validates the section

    benchmark(update)
    assert s.s7.g3.i5.f2.l1 in (1, 2)


# ---------------------------------------------------------------------------- reload


def test_reload_latency_cfgcore(benchmark, tmp_path):
    """Atomic write of staging.yaml -> the new value visible through get()."""
    benchmark.group = "config-reload"
    for name in ("base.yaml", "staging.yaml"):
        shutil.copy(os.path.join(DEFAULTS, name), tmp_path / name)
    shutil.copy(FLAGS, tmp_path / "flags.yaml")
    staging = tmp_path / "staging.yaml"
    original = staging.read_text()
    m = ConfigurationManager(tmp_path, environ={})
    m.load_environment_config("staging")
    m.enable_hot_reload()
    counter = itertools.count(1)

    def write_and_wait():
        value = 0.5 + next(counter) / 1e6
        atomic_write_text(staging, original + f"\nanomaly_detection:\n  threshold: {value}\n")
        deadline = time.monotonic() + 5
        while m.get(KEY4) != value:
            if time.monotonic() > deadline:
                raise AssertionError("reload not visible within 5 s")
            time.sleep(0.0005)

    try:
        benchmark.pedantic(write_and_wait, rounds=100, iterations=1, warmup_rounds=2)
    finally:
        m.close()
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        data = sorted(stats.stats.data)
        benchmark.extra_info["p99_ms"] = round(
            data[min(len(data) - 1, int(len(data) * 0.99))] * 1e3, 1
        )


@pytest.mark.parametrize("how", ["pinned", "two-reads-floor"])
def test_pinned_pair(benchmark, staging_dir, how):
    """One configuration read and one flag check from the pair ``pinned()`` returns,
    against the same two reads made separately (no pairing: the floor)."""
    benchmark.group = "config-pinned"
    m = ConfigurationManager(staging_dir, environ={})
    m.load_environment_config("staging")
    key, flag, ctx = KEY4.split("."), "enhanced_anomaly_detection", {"user_segment": "premium"}

    def pinned():
        snap, flags = m.pinned()
        return snap.config[key[0]][key[1]], flags.is_enabled(flag, ctx)

    def two_reads():
        return m.get(".".join(key[:2])), m.flags.is_enabled(flag, ctx)

    try:
        expected = (m.get(".".join(key[:2])), m.flags.is_enabled(flag, ctx))
        fn = pinned if how == "pinned" else two_reads
        assert fn() == expected and expected[1] is True  # the answers it times
        benchmark(fn)
    finally:
        m.close()
