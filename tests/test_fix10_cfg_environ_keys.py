"""Fix 10: the names and values of a caller's ``environ=`` mapping are judged by the
text they hold.

``env_layer`` asked each name ``var.isascii()`` and ``var.startswith(prefix)``: a
subclass of ``str`` answers those itself, so a name holding a lone surrogate that said
it was ASCII became a key no writer can write, and any variable (``HOME_DIR``) that said
it started with ``CFGCORE__`` overrode a key. A name or value that is not text at all
(``1``, ``b"CFGCORE__A"``, ``5``) crashed the build with AttributeError or TypeError.
The reload digest of the variables read ``startswith`` and ``repr`` of them too (a
changed value whose ``repr`` did not change was not reloaded), ``CONFIG_ENVIRONMENT``
and its alias were compared through the value's own ``strip``/``lower``, and
``update_config``'s key path was split with its own ``split``. Each is now read through
``str``'s own methods (``str.__str__`` copies the characters), as files' keys are.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.config.environ import env_layer
from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError
from tests.fuzz import examples


class Ascii(str):
    """Says it is ASCII and encodes fine, whatever it holds."""

    def isascii(self) -> bool:
        return True

    def encode(self, *args: object, **kwargs: object) -> bytes:
        return b"fine"


class Prefixed(str):
    """Says it starts with anything."""

    def startswith(self, *args: object) -> bool:
        return True


class Quiet(str):
    """Always shows the same repr (and compares equal to anything)."""

    def __repr__(self) -> str:
        return "'same'"

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = str.__hash__


class Splits(str):
    """Splits into whatever it likes."""

    def split(self, *args: object, **kwargs: object) -> list[str]:  # type: ignore[override]
        return ["app", "name"]


@pytest.fixture
def directory(tmp_path):
    (tmp_path / "base.yaml").write_text("app:\n  name: svc\n  port: 80\n")
    (tmp_path / "production.yaml").write_text("{}\n")
    return tmp_path


def _load(directory, environ):
    m = ConfigurationManager(str(directory), environ=environ, validate=False)
    return m, m.load_environment_config("production")


def test_a_name_that_says_it_is_ascii_is_judged_by_what_it_holds(directory):
    with pytest.raises(ConfigError) as info:
        _load(directory, {Ascii("CFGCORE__APP__N\udcff"): "x"})
    (problem,) = info.value.problems
    assert problem.file == "<environment>"
    assert "CFGCORE__APP__N\\udcff" in problem.message
    assert "not valid Unicode" in problem.message


def test_a_name_that_says_it_has_the_prefix_overrides_nothing(directory):
    _, config = _load(directory, {Prefixed("HOME_DIR"): "evil", Prefixed("APP__NAME"): "evil"})
    assert config["app"]["name"] == "svc"


@pytest.mark.parametrize("cls", [Ascii, Prefixed, Quiet])
def test_a_subclass_name_with_the_prefix_is_read_as_its_text(directory, cls):
    _, config = _load(directory, {cls("CFGCORE__APP__NAME"): cls("other")})
    assert config["app"]["name"] == "other"
    assert type(config["app"]["name"]) is str


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({b"CFGCORE__APP__NAME": "x"}, "environment variable name b'CFGCORE__APP__NAME' is bytes"),
        ({"CFGCORE__APP__PORT": 81.5}, "environment variable CFGCORE__APP__PORT holds a float"),
        ({"CFGCORE__APP__NAME": None}, "environment variable CFGCORE__APP__NAME holds a NoneType"),
    ],
)
def test_a_name_or_value_that_is_not_text_is_refused_naming_it(directory, environ, expected):
    m = ConfigurationManager(str(directory), environ=environ, validate=False)
    with pytest.raises(ConfigError) as info:
        m.load_environment_config("production")
    (problem,) = info.value.problems
    assert problem.file == "<environment>"
    assert expected in problem.message


def test_a_key_that_is_not_text_is_no_variable(directory):
    _, config = _load(directory, {1: "x", ("CFGCORE__APP",): "y", "CFGCORE__APP__NAME": "ok"})
    assert config["app"]["name"] == "ok"


def test_a_reference_to_a_value_that_is_not_text_is_refused(directory):
    (directory / "production.yaml").write_text("app:\n  name: ${NAME}\n")
    with pytest.raises(ConfigError) as info:
        _load(directory, {"NAME": 42})
    assert "environment variable NAME holds 'int', not text" in str(info.value)
    _, config = _load(directory, {"NAME": Quiet("from-env")})
    assert config["app"]["name"] == "from-env"


def test_a_changed_value_is_reloaded_whatever_its_repr_says(directory):
    environ = {Quiet("CFGCORE__APP__NAME"): Quiet("one")}
    m, _ = _load(directory, environ)
    assert m.get("app.name") == "one"
    environ.clear()
    environ[Quiet("CFGCORE__APP__NAME")] = Quiet("two")
    m.reload()
    assert m.get("app.name") == "two"


def test_the_environment_setting_is_compared_as_text(directory):
    class Agrees(str):
        def strip(self, *args: object) -> str:
            return "production"

    environ = {"CONFIG_ENVIRONMENT": Agrees("staging"), "CFGCORE_ENVIRONMENT": "production"}
    m = ConfigurationManager(str(directory), environ=environ, validate=False)
    with pytest.raises(ConfigError, match="disagree"):
        m.load_environment_config()


def test_an_update_key_path_is_split_as_its_text(directory):
    m, _ = _load(directory, {})
    assert m.update_config(Splits("app.port"), 81)
    assert m.get("app.port") == 81 and m.get("app.name") == "svc"
    seen = []
    m.register_change_listener(seen.append)
    m.update_config(Splits("app.port"), 82)
    assert [e.config_path for e in seen] == ["app.port"]
    assert type(seen[0].config_path) is str


@settings(max_examples=examples(60), deadline=None)
@given(
    names=st.lists(
        st.text(st.sampled_from("AB_\udcffé"), min_size=1, max_size=6), min_size=1, max_size=4
    ),
    cls=st.sampled_from([Ascii, Prefixed, Quiet]),
)
def test_a_subclass_name_gives_what_the_same_text_gives(names, cls):
    """Whatever a subclass's methods say, the layer is the one its text gives."""
    below = {"a": {"b": 1}}

    def outcome(make):
        environ = {make("CFGCORE__" + "__".join(names)): make("1")}
        try:
            layer = env_layer(environ, "CFGCORE", below)
        except ConfigError as exc:
            return [(p.path, p.message) for p in exc.problems]
        return layer.data, layer.env_vars

    assert outcome(cls) == outcome(str)


class Matches(str):
    """Equal to every text, with one hash: as a key it answered any read."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str)

    def __hash__(self) -> int:
        return 0


def test_a_subclass_key_given_at_runtime_is_served_as_its_text(directory):
    m, _ = _load(directory, {})
    m.update_config("app.extra", {Matches("only"): 1})
    m.set_active_config({**dict(m.config), Matches("added"): {Matches("k"): 2}})
    for key in [*m.config, *m.get("app.extra"), *m.get("added")]:
        assert type(key) is str
    assert m.get("app.extra.other", "absent") == "absent"
    assert m.get("added.k") == 2
