"""A file or key name that is not UTF-8 still gives an error a UTF-8 log can hold.

On POSIX a file name is bytes; Python reads one that is not UTF-8 with
"surrogateescape" (b"\\xff" becomes U+DCFF), and so does every key path a caller builds
from such a name. Written raw, that lone surrogate made ``str(error).encode("utf-8")``
raise: a UTF-8 log handler dropped the whole record and printing the error to a UTF-8
stdout failed. A ConfigError escapes it (``\\udcff``) as it escapes control characters.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import given

from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError, Problem, printable
from tests.texts import any_text


def test_a_refused_file_in_an_undecodable_directory_is_named_in_utf8(tmp_path):
    config_dir = os.path.join(os.fsencode(tmp_path), b"conf\xff")
    os.mkdir(config_dir)
    with open(os.path.join(config_dir, b"development.yaml"), "wb") as f:
        f.write(b"app:\n  name: [unclosed\n")
    manager = ConfigurationManager(os.fsdecode(config_dir), record_usage=False)
    with pytest.raises(ConfigError) as refused:
        manager.load_environment_config("development")
    text = str(refused.value)
    text.encode("utf-8")  # raised before: the directory's U+DCFF was written raw
    assert "conf\\udcff" in text and "development.yaml" in text, text


@given(any_text(), any_text())
def test_every_problem_is_one_utf8_line(path, message):
    """Whatever a key path or message holds, the problem's text is one line of UTF-8,
    and text with nothing to escape is kept exactly as given."""
    text = str(Problem(path, message))
    text.encode("utf-8")
    assert len(text.splitlines()) <= 1, ascii(text)
    printed = printable(path)
    printed.encode("utf-8")
    if path.isprintable():
        assert printed == path
