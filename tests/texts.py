"""Hypothesis text with lone surrogates in it.

Hypothesis leaves lone surrogates (U+D800-U+DFFF) out of ``st.text()`` and
``st.characters()`` unless "Cs" is named, and ``st.text()`` drops them even from an
alphabet that names it. Python code hands cfgcore such strings all the same: a file
name or argument that is not UTF-8 (read with "surrogateescape"), a key a caller built.
Tests about "any text" draw from here.
"""

from __future__ import annotations

from hypothesis import strategies as st

# Any code point Hypothesis draws, plus lone surrogates about one time in two.
any_character = st.characters() | st.characters(categories=["Cs"])


def text_of(
    alphabet: st.SearchStrategy[str], *, min_size: int = 0, max_size: int | None = None
) -> st.SearchStrategy[str]:
    """``st.text(alphabet, ...)`` that keeps the lone surrogates ``alphabet`` draws."""
    return st.lists(alphabet, min_size=min_size, max_size=max_size).map("".join)


def any_text(*, min_size: int = 0, max_size: int | None = None) -> st.SearchStrategy[str]:
    """Text of any code points, lone surrogates included."""
    return text_of(any_character, min_size=min_size, max_size=max_size)


def holds_lone_surrogate(value: object) -> bool:
    """Whether ``value`` (text, or a dict or list holding text) holds a lone surrogate:
    text no UTF-8 file, JSON or MessagePack document can hold."""
    if isinstance(value, dict):
        return any(holds_lone_surrogate(k) or holds_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(holds_lone_surrogate(v) for v in value)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
    return False
