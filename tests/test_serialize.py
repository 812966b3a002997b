import json

import numpy as np
import pandas as pd
import pytest

from lmreg.serialize import Serializer, to_frame


def test_accepts_every_input_shape():
    assert to_frame("one text").shape == (1, 1)
    assert to_frame(["a", "b"]).columns.tolist() == ["text"]
    assert to_frame({"a": 1, "b": {"c": [1, 2]}}).columns.tolist() == ["a", "b.c"]
    assert to_frame([{"a": 1}, {"a": 2, "z": "x"}]).shape == (2, 2)
    assert to_frame(np.zeros((3, 2))).columns.tolist() == ["x0", "x1"]
    assert to_frame(pd.Series(["p", "q"], name="s")).columns.tolist() == ["s"]


@pytest.mark.parametrize("bad", [[], np.zeros((0, 3)), pd.DataFrame()])
def test_empty_input_is_an_error(bad):
    with pytest.raises(ValueError, match="empty|no columns"):
        to_frame(bad)


def test_duplicate_column_names_are_an_error():
    with pytest.raises(ValueError, match=r"duplicate column names \['a'\]"):
        to_frame(pd.DataFrame([[1, 2]], columns=["a", "a"]))
    with pytest.raises(ValueError, match=r"duplicate column names \['1'\]"):
        to_frame(pd.DataFrame([[1, 2]], columns=[1, "1"]))
    doc = json.dumps({"b": 1})
    with pytest.raises(ValueError, match=r"JSON columns gives duplicate column names \['a.b'\]"):
        to_frame(pd.DataFrame({"a": [doc, doc], "a.b": [3, 4]}))


def test_wrong_type_is_an_error():
    with pytest.raises(TypeError, match="X must be"):
        to_frame(42)


def test_mixed_dataframe_kinds_and_text():
    df = pd.DataFrame({
        "title": ["a long free text about houses", "another rather long description here", None],
        "color": pd.Categorical(["red", "blue", None]),
        "rooms": [3, 4, np.nan],
        "new": [True, False, True],
        "when": pd.to_datetime(["2020-01-01", "2021-07-01", None]),
        "stamp": ["2009-12-03T19:39:09Z", "2010-01-01T00:00:00Z", None],
        "took": pd.to_timedelta(["1h", "90min", None]),
    })
    s = Serializer(max_categories=2).fit(df)
    assert s.kinds_ == {"title": "text", "color": "cat", "rooms": "num", "new": "cat",
                        "when": "datetime", "stamp": "datetime", "took": "duration"}
    table = s.transform(df)
    by_name = {c.name: c for c in table.columns}
    assert by_name["when"].kind == "num" and 2020.0 <= by_name["when"].values[0] < 2020.01
    assert by_name["took"].kind == "num"
    np.testing.assert_array_equal(by_name["took"].values, [3600.0, 5400.0, np.nan])
    # at predict time the same column may arrive as strings
    with pytest.warns(UserWarning, match="could not be read as durations"):
        again = s.transform(df.assign(took=["0 days 01:00:00", "bad", None]))
    np.testing.assert_array_equal([c for c in again.columns if c.name == "took"][0].values,
                                  [3600.0, np.nan, np.nan])
    assert np.isnan(by_name["rooms"].values[2])
    assert by_name["title"].values[2] is None
    text = s.to_text(df)
    assert text[2].startswith("title: <missing> | color: <missing> | rooms: <missing> | new: True")
    assert s.to_text(df) == text  # deterministic


def test_json_text_column_is_expanded_and_readable():
    docs = [json.dumps({"Title": "Up", "Year": 2009, "Genre": ["Animation", "Comedy"]}),
            json.dumps({"Title": "Heat", "Year": 1995, "Genre": ["Crime"]})]
    df = pd.DataFrame({"movie": docs})
    s = Serializer().fit(df)
    assert s.kinds_["movie.Year"] == "num"
    assert s.to_text(df)[0] == "movie.Title: Up | movie.Year: 2009 | movie.Genre: Animation, Comedy"


def test_json_lists_are_tags_and_render_as_before():
    docs = [json.dumps({"Genre": ["Animation", "Comedy"], "Cast": ["A", "B"], "Meta": [{"k": 1}]}),
            json.dumps({"Genre": ["Crime"], "Cast": [], "Meta": [{"k": 2}]}),
            json.dumps({"Title": "no lists"})]
    s = Serializer().fit(pd.DataFrame({"movie": docs}))
    assert s.kinds_["movie.Genre"] == s.kinds_["movie.Cast"] == "tags"
    assert s.kinds_["movie.Meta"] == "text"                 # lists of objects stay text
    genre = next(c for c in s.transform(pd.DataFrame({"movie": docs})).columns if c.name == "movie.Genre")
    assert genre.values.tolist() == [("Animation", "Comedy"), ("Crime",), None]
    assert s.to_text(pd.DataFrame({"movie": docs[:1]}))[0].startswith(
        "movie.Genre: Animation, Comedy | movie.Cast: A, B")
    # a lone string where a list was seen is a one-element list
    one = s.transform([{"movie.Genre": "Drama"}]).columns
    assert next(c for c in one if c.name == "movie.Genre").values.tolist() == [("Drama",)]


def test_numeric_as_text_precision_and_template():
    df = pd.DataFrame({"x": [3.14159265, 12.0]})
    s = Serializer(numeric="text", precision=3, template="{name}={value}").fit(df)
    assert s.to_text(df) == ["x=3.14", "x=12"]
    assert s.transform(df).columns[0].kind == "text"


def test_unseen_and_absent_columns_at_transform():
    s = Serializer().fit(pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]}))
    table = s.transform(pd.DataFrame({"a": [5.0], "extra": [1]}))
    assert [c.name for c in table.columns] == ["a", "b"]
    assert table.columns[1].values[0] is None


def test_config_round_trip():
    s = Serializer(precision=2).fit(pd.DataFrame({"a": [1.5], "b": ["x"]}))
    s2 = Serializer.from_config(json.loads(json.dumps(s.get_config())))
    assert s2.kinds_ == s.kinds_ and s2.precision == 2


def test_a_malformed_json_row_leaves_the_other_rows_fields():
    s = Serializer().fit(pd.DataFrame({"doc": ['{"size": 1, "kind": "a"}', '{"size": 2, "kind": "b"}']}))
    assert s.kinds_ == {"doc.size": "num", "doc.kind": "cat"}
    with pytest.warns(UserWarning, match="1 of 3 values of the JSON column 'doc' are not JSON objects"):
        text = s.to_text(pd.DataFrame({"doc": ['{"size": 5, "kind": "a"}', '{"size": 7, "kind": "b"', None]}))
    assert text == ["doc.size: 5 | doc.kind: a", "doc.size: <missing> | doc.kind: <missing>",
                    "doc.size: <missing> | doc.kind: <missing>"]


def test_dict_cells_are_flattened_like_records():
    """A DataFrame of dicts (pandas' read of JSON lines or of a parquet struct column) reads as the records."""
    records = [{"meta": {"a": 1, "c": "x"}, "note": "p"}, {"meta": {"a": 2, "c": "y"}, "note": "q"}]
    frame = Serializer().fit(pd.DataFrame(records))
    assert frame.kinds_ == Serializer().fit(records).kinds_ == {"meta.a": "num", "meta.c": "cat", "note": "cat"}


def test_iso_dates_in_mixed_forms_all_read():
    values = ["2020-01-05", "2020-01-05T12:00:00", "2020-01-05T13:00:00+01:00", "2020-01-05T12:00:00Z"] * 5
    s = Serializer().fit(pd.DataFrame({"when": values}))
    assert s.kinds_ == {"when": "datetime"}
    years = s.transform(pd.DataFrame({"when": values})).columns[0].values
    assert np.isfinite(years).all() and years[1] == years[2] == years[3] > years[0]


def test_complex_columns_are_an_error():
    with pytest.raises(ValueError, match=r"column\(s\) \['z'\] of X hold complex numbers"):
        to_frame(pd.DataFrame({"z": np.arange(3) + 1j, "x": [1, 2, 3]}))


def test_values_a_fitted_column_cannot_read_warn():
    from decimal import Decimal

    s = Serializer().fit(pd.DataFrame({"x": [1.0, 2.0], "d": [Decimal("1.5"), Decimal("2")]}))
    assert s.kinds_ == {"x": "num", "d": "num"}   # Decimals are numbers
    with pytest.warns(UserWarning, match=r"1 of 2 values of the num column 'x' could not be read as numbers "
                                         r"\(e.g. '0.12 units'\)"):
        text = s.to_text(pd.DataFrame({"x": ["0.12 units", None], "d": [Decimal("3.25"), None]}))
    assert text == ["x: <missing> | d: 3.25", "x: <missing> | d: <missing>"]
