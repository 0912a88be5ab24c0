"""The audit records' fast path (a bulk intake writes thousands): the very texts the value by
value escaping gives."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from umacct.audit import _escape_texts, escape_controls

VALUE = (
    st.text(alphabet=st.characters(), max_size=8)
    | st.integers()
    | st.sampled_from(["\u202e", "a\nb", "\x00", "\u2028", "é", ""])
)


@given(values=st.lists(VALUE, max_size=6))
def test_the_fast_path_escapes_as_each_value_alone(values: list[object]) -> None:
    assert _escape_texts(values) == [escape_controls(str(value)) for value in values]
    assert all(type(text) is str for text in _escape_texts(values))


def test_clean_texts_are_kept_and_controls_escaped() -> None:
    assert _escape_texts(("a", "b é")) == ["a", "b é"]
    assert _escape_texts(["a", "x\u202ey", 3]) == ["a", "x\\u202ey", "3"]
