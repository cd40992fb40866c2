"""The Prometheus text a scrape gets, whatever the label values: flag keys and variant
names with quotes, backslashes, newlines or any other character round-trip through
prometheus_client's parser and pass ``promtool check metrics``; a configuration
directory whose name is not UTF-8 (Latin-1 bytes on disk) no longer fails every scrape
with UnicodeEncodeError (the probe server answered /metrics with a 500)."""

from __future__ import annotations

import http.client
import logging
import os
import subprocess

import pytest
from hypothesis import given, settings

from cfgcore.config.manager import ConfigurationManager
from cfgcore.snapshot import SnapshotError
from tests.conftest import copy_bundled_config
from tests.fuzz import examples
from tests.test_alerts import promtool  # noqa: F401 - the fixture

prometheus_client = pytest.importorskip("prometheus_client")

from prometheus_client import CollectorRegistry  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from cfgcore.observability.prometheus import exposition  # noqa: E402
from tests.texts import any_text  # noqa: E402

# Each scrape holds its own test's evaluations alone (see the fixture).
pytestmark = pytest.mark.usefixtures("fresh_evaluation_totals")


def _families(text: bytes) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(text.decode("utf-8"))}


def _evaluation_labels(text: bytes) -> set[tuple[str, str]]:
    family = _families(text)["cfgcore_flag_evaluations"]
    return {(s.labels["flag"], s.labels["variant"]) for s in family.samples}  # type: ignore[attr-defined]


def _promtool_accepts(binary: str, text: bytes) -> None:
    proc = subprocess.run(
        [binary, "check", "metrics"], input=text, capture_output=True, timeout=60, check=False
    )
    # promtool also prints lint advice (exit 3 would be a lint problem, 1 a parse error)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")


@pytest.mark.parametrize("text", ['q"uote', "back\\slash", "new\nline", "tab\tx", "nul\x00x",
                                  "\u2028sep", "{x=\"y\"}", "a,b=c", "caf\u00e9"])  # fmt: skip
def test_hostile_flag_keys_and_variants_parse_and_pass_promtool(make, promtool, text):  # noqa: F811
    variant = "v-" + text
    flag = {"variants": {variant: True, "off": False}, "default": variant}
    engine = make({"flags": {text: flag}})
    assert engine.is_enabled(text, {}) is True
    scraped = exposition(CollectorRegistry())
    assert (text, variant) in _evaluation_labels(scraped)
    _promtool_accepts(promtool, scraped)


# Every code point, lone surrogates included (only Python code can hand those over: the
# file decoders refuse them).
_TEXT = any_text(min_size=1, max_size=30)


@settings(max_examples=examples(80))
@given(key=_TEXT, variant=_TEXT)
def test_any_flag_key_or_variant_round_trips_through_the_parser(make_py_and_c, key, variant):
    from cfgcore.observability.prometheus import _utf8

    for make in make_py_and_c:
        try:
            engine = make({"flags": {key: {"variants": {variant: 1}, "default": variant}}})
        except SnapshotError:
            return  # refused when compiled: never served, never counted
        assert engine.value(key, {}, 0) == 1
        scraped = exposition(CollectorRegistry())  # never raises, whatever the text
        assert (_utf8(key), _utf8(variant)) in _evaluation_labels(scraped)


def test_a_config_dir_named_in_latin1_is_scraped_over_http(tmp_path, promtool, caplog):  # noqa: F811
    from cfgcore.observability.http import serve

    # cfgcore's INFO and DEBUG lines name the directory: captured into this test's report
    # (another test may have left the logger at DEBUG), its lone surrogate cannot be sent
    # from a pytest-xdist worker, which then stops.
    caplog.set_level(logging.ERROR, logger="cfgcore")

    where = tmp_path / os.fsdecode(b"caf\xe9")  # not UTF-8: a lone surrogate in Python
    copy_bundled_config(where, flags=True)
    manager = ConfigurationManager(str(where), environ={})
    manager.load_environment_config("staging")
    server = serve(manager, port=0, host="127.0.0.1")
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=30)
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        body = response.read()
        conn.close()
        assert response.status == 200, body[:200]
        dirs = {
            s.labels["config_dir"]
            for s in _families(body)["cfgcore_config_version"].samples  # type: ignore[attr-defined]
        }
        # the undecodable byte shown escaped, the rest of the path as it is
        assert str(tmp_path / "caf\\xe9") in dirs
        _promtool_accepts(promtool, body)
    finally:
        server.shutdown()
        server.server_close()
        manager.close()
