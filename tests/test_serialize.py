import datetime as dt
import json
import warnings
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from lmreg.cells import category_names
from lmreg.frames import to_frame
from lmreg.serialize import Serializer


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


def test_blank_strings_in_a_json_column_are_missing_rows_not_a_reason_to_keep_it_text():
    docs = ['{"size": 1, "kind": "a"}', "", '{"size": 2, "kind": "b"}', "  "]
    s = Serializer().fit(pd.DataFrame({"doc": docs}))
    assert s.kinds_ == {"doc.size": "num", "doc.kind": "cat"}   # one "" kept the column one text field
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # nor are blanks "not JSON objects" at predict
        text = s.to_text(pd.DataFrame({"doc": ["", '{"size": 5, "kind": "a"}']}))
    assert text == ["doc.size: <missing> | doc.kind: <missing>", "doc.size: 5 | doc.kind: a"]


def test_a_lone_surrogate_in_text_reads_as_a_replacement_character():
    # JSON's "\\ud83d" cut from an emoji pair: pandas' UTF-8 strings refused it deep in pyarrow
    rows = json.loads("[" + ",".join('{"name": "%s", "txt": "word%d \\ud800 more %d"}' % ("ab"[i % 2], i, i)
                                     for i in range(12)) + "]")
    texts = [r["txt"] for r in rows]
    # and in Python-stored pandas strings and numpy text arrays (a UnicodeEncodeError before)
    for X in (rows, texts, pd.DataFrame({"txt": pd.Series(texts, dtype=object)}),
              pd.DataFrame({"txt": pd.array(texts, dtype="string[python]")}), np.array(texts),
              np.array([texts, ["a", "b"] * 6], dtype=object).T, np.array([texts, texts]).T):
        s = Serializer().fit(X)
        txt = [c for c in s.transform(X).columns if c.name.endswith("txt") or c.name in ("text", "x0")][0]
        assert txt.values[0] == "word0 \ufffd more 0"
    # inside a list of tags or of objects it reached the tokenizer: "Input must be a List[...]"
    # at fit, UnicodeEncodeError at predict
    from lmreg import LMRegressor

    cut = json.loads('"x \\ud83d"')
    X = [{"genres": ["drama", cut if i % 3 == 0 else "comedy"], "cast": [{"n": cut}], "k": i % 4} for i in range(30)]
    est = LMRegressor(max_time=None, max_epochs=1, hidden_size=16, num_layers=1, num_heads=2, random_state=0)
    est.fit(X, np.arange(30.0) % 4)
    assert est.predict(X[:3]).shape == (3,)


def test_a_column_of_bytes_reads_as_its_text():
    days = np.array([f"2020-01-{d:02d}".encode() for d in range(1, 21)])   # a numpy "S" array
    df = pd.DataFrame({"day": days, "size": np.array([b"3.5", b"4"] * 10), "city": [b"Oslo", None] * 10})
    s = Serializer().fit(df)
    # the days were inferred as dates but every one read as missing (pandas parses no bytes)
    assert s.kinds_ == {"day": "datetime", "size": "cat", "city": "cat"}
    day, size, city = s.transform(df.iloc[:2]).columns
    np.testing.assert_allclose(day.values, [2020.0, 2020 + 1 / 366])
    assert size.values.tolist() == ["3.5", "4"] and city.values.tolist() == ["Oslo", None]


def test_a_column_fitted_as_a_field_is_read_alike_in_any_batch():
    """Fitted as one field (some values were not JSON), a column is never expanded later, even
    in a batch whose values all happen to be JSON objects: a row reads the same in any batch."""
    docs = ['{"size": %d}' % i if i % 4 else "n/a" for i in range(12)]
    s = Serializer().fit(pd.DataFrame({"cfg": docs}))
    assert s.kinds_ == {"cfg": "cat"}
    alone = s.to_text(pd.DataFrame({"cfg": docs[1:2]}))
    assert alone == s.to_text(pd.DataFrame({"cfg": docs[:2]}))[1:] == ['cfg: {"size": 1}']
    texts = Serializer().fit(["free text", '{"k": 1}', "more text"])
    assert texts.to_text(['{"k": 3}']) == texts.to_text(['{"k": 3}', "x"])[:1] == ['text: {"k": 3}']


def test_a_pyarrow_table_reads_as_its_dataframe():
    pa = pytest.importorskip("pyarrow")
    frame = pd.DataFrame({"num": [1.5, 2.5], "city": ["Oslo", "Rome"],
                          "when": pd.to_datetime(["2020-01-01", "2021-06-01"])})
    s = Serializer().fit(pa.Table.from_pandas(frame))
    assert s.kinds_ == Serializer().fit(frame).kinds_ == {"num": "num", "city": "cat", "when": "datetime"}
    assert s.to_text(pa.Table.from_pandas(frame)) == s.to_text(frame)


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


def test_an_inferred_category_does_not_depend_on_the_other_rows():
    """An int that pandas reads as a float next to a missing value is still its category."""
    rows = [{"size": s, "x": float(i)} for i, s in enumerate([1, 2, "XL"] * 4)]
    s = Serializer().fit(rows)
    assert s.kinds_ == {"size": "cat", "x": "num"}
    alone = s.transform([{"size": 2, "x": 0.0}]).columns[0].values.tolist()
    batch = s.transform([{"size": 2, "x": 0.0}, {"size": None, "x": 0.0}, {"x": 0.0}]).columns[0].values.tolist()
    assert alone == ["2"] and batch == ["2", None, None]
    strings = Serializer().fit(pd.DataFrame({"c": ["1", "2", "a"], "flag": [True, False, None]}))
    assert strings.kinds_ == {"c": "cat", "flag": "cat"}
    table = strings.transform(pd.DataFrame({"c": [1.0, 2.0, np.nan], "flag": [False, True, None]}))
    assert [c.values.tolist() for c in table.columns] == [["1", "2", None], ["False", "True", None]]


def test_pandas_category_dtype_is_categorical():
    df = pd.DataFrame({"ints": pd.Categorical([1, 2, 3, 1]), "floats": pd.Categorical([1.0, 2.0, None, 1.0]),
                       "many": pd.Categorical([f"z{i}" for i in range(4)], categories=[f"z{i}" for i in range(100)])})
    s = Serializer(max_categories=2).fit(df)   # a declared category dtype stays categorical
    assert s.kinds_ == {"ints": "cat", "floats": "cat", "many": "cat"}
    ints, floats, many = (c.values.tolist() for c in s.transform(df).columns)
    assert ints == ["1", "2", "3", "1"] and floats == ["1", "2", None, "1"] and many == ["z0", "z1", "z2", "z3"]
    # the same names as plain columns of those values at predict
    later = s.transform(pd.DataFrame({"ints": [1.0], "floats": [2.0], "many": ["z3"]}))
    assert [c.values.tolist() for c in later.columns] == [["1"], ["2"], ["z3"]]
    # read back with pandas' pyarrow backend a category column is an Arrow dictionary: fit had
    # failed inside pandas ("Can only use .str accessor with string values")
    import pyarrow as pa

    plain = pd.DataFrame({"city": pd.Categorical(["Oslo", "Rome", None, "Oslo"]), "n": [1.0, 2.0, 3.0, 4.0]})
    arrow = plain.astype({"city": pd.ArrowDtype(pa.dictionary(pa.int8(), pa.string()))})
    s = Serializer().fit(arrow)
    assert s.kinds_ == {"city": "cat", "n": "num"}
    assert s.to_text(arrow) == Serializer().fit(plain).to_text(plain)


def test_set_cells_are_sorted_tags():
    df = pd.DataFrame({"genre": [{"war", "drama", "comedy"}, frozenset({"b", "a"}), None]})
    s = Serializer().fit(df)
    assert s.kinds_ == {"genre": "tags"}
    assert s.transform(df).columns[0].values.tolist() == [("comedy", "drama", "war"), ("a", "b"), None]


def test_missing_elements_of_list_cells_keep_them_tags():
    df = pd.DataFrame({"t": [["a", None], ["b"], ["a", "c", np.nan]]})
    s = Serializer().fit(df)
    assert s.kinds_ == {"t": "tags"}
    assert s.transform(df).columns[0].values.tolist() == [("a",), ("b",), ("a", "c")]


def test_list_elements_of_any_scalar_type_are_tags_and_missing_ones_dropped():
    day = np.datetime64("2020-01-02")
    df = pd.DataFrame({"t": [[np.float32("nan"), "a"], [np.datetime64("NaT"), "b"], [dt.date(2020, 1, 2)],
                             [Decimal("1.0"), day.astype("datetime64[ns]")], [day, None]]})
    s = Serializer().fit(df)
    assert s.kinds_ == {"t": "tags"}      # dates and Decimals made it text
    # a float32 NaN was the tag "nan", a numpy NaT "NaT"; a day in ns read "2020-01-02T00:00:00.000000000"
    assert s.transform(df).columns[0].values.tolist() == [
        ("a",), ("b",), ("2020-01-02",), ("1", "2020-01-02"), ("2020-01-02",)]
    # as text, a list drops its missing elements as tags do ("a, None" before)
    text = Serializer().fit(pd.DataFrame({"t": [[{"k": 1}], ["x"]]}))
    assert text.kinds_ == {"t": "text"}
    assert text.transform(pd.DataFrame({"t": [["a", None, np.float32("nan")]]})).columns[0].values[0] == "a"


def test_record_cells_of_any_key_and_value_type_are_sorted_json_text():
    s = Serializer(flatten_json=False).fit(pd.DataFrame({"r": [{"a": 1}, {"b": 2}]}))
    assert s.kinds_ == {"r": "text"}
    cell = {2: Decimal("1.5"), "a": pd.Timestamp("2020-01-02"), "z": {1: "x", "b": None}}
    got = s.transform(pd.DataFrame({"r": [cell]})).columns[0].values[0]   # a TypeError from json before
    assert got == '{"2": "1.5", "a": "2020-01-02", "z": {"1": "x", "b": null}}'


def test_a_dict_under_a_field_fitted_as_a_category_is_one_cell_in_a_record_as_in_a_frame():
    s = Serializer().fit(pd.DataFrame({"m": ['{"a": 1}', "plain words here", "more words there"], "x": [1, 2, 3]}))
    assert s.kinds_["m"] == "cat"   # one of its categories is the text {"a": 1}
    frame = s.transform(pd.DataFrame({"m": [{"a": 1}], "x": [1]}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # the record had flattened into an unknown field "m.a"
        record = s.transform([{"m": {"a": 1}, "x": 1}])
        nested = Serializer().fit([{"p": {"m": "words", "k": 1}}, {"p": {"m": "other words", "k": 2}}])
        assert nested.transform([{"p": {"m": {"a": 1}, "k": 3}}]).columns[0].values[0] == '{"a": 1}'
    assert [c.values.tolist() for c in record.columns] == [c.values.tolist() for c in frame.columns]
    assert record.columns[0].values[0] == '{"a": 1}'


def test_a_field_that_is_a_dict_in_some_records_only_is_one_field_as_in_a_frame():
    # records had flattened the dicts into fields missing in every other row (x.a, x.b) next to a
    # category x; the same rows as a DataFrame are one text field
    recs = [{"x": {"b": i, "a": 2 * i}, "n": i} if i % 2 else {"x": f"s{i}", "n": i} for i in range(12)]
    from_records, from_frame = Serializer().fit(recs), Serializer().fit(pd.DataFrame(recs))
    assert from_records.kinds_ == from_frame.kinds_ == {"x": "text", "n": "num"}
    assert from_records.to_text(recs[:2]) == from_frame.to_text(pd.DataFrame(recs[:2])) == [
        "x: s0 | n: 0", 'x: {"a": 2, "b": 1} | n: 1']
    # dicts next to missing values only are fields, as a column of dicts is
    assert Serializer().fit([{"m": {"a": i}} if i % 2 else {"m": None} for i in range(8)]).kinds_ == {"m.a": "num"}
    # an empty dict there is the text {} too, alone or in any batch (it had read as missing)
    empty = [{"x": {}, "n": 1}]
    assert from_records.to_text(empty) == from_frame.to_text(pd.DataFrame(empty)) == ["x: {} | n: 1"]
    assert from_records.to_text(empty + recs[:1]) == ["x: {} | n: 1", "x: s0 | n: 0"]
    assert from_records.to_text([{"n": 1}]) == ["x: <missing> | n: 1"]
    # next to a record that writes the field's sub-field as a dotted key (a KeyError had followed)
    assert from_records.to_text([{"x": {"b": 1}, "n": 1}, {"x.b": 2, "n": 2}]) == [
        'x: {"b": 1} | n: 1', "x: <missing> | n: 2"]


def test_a_json_row_reads_the_same_alone_and_next_to_a_row_whose_field_is_no_dict():
    # what fit saw decides, not the batch: a sub-field fitted as fields had read as missing next
    # to a row whose value there is a string, and one fitted as one field the other way round
    cfg = lambda o: json.dumps({"level": 3, "opts": o})   # noqa: E731
    row = pd.DataFrame({"cfg": [cfg({"fast": 1})], "x": [1.0]})
    batch = pd.DataFrame({"cfg": [cfg({"fast": 1}), cfg("none")], "x": [1.0, 2.0]})
    fields = Serializer().fit(pd.DataFrame({"cfg": [cfg({"fast": i % 2}) for i in range(40)], "x": np.arange(40.0)}))
    one = Serializer().fit(pd.DataFrame({"cfg": [cfg({"fast": 1}) if i % 2 else cfg("none") for i in range(40)],
                                         "x": np.arange(40.0)}))
    assert "cfg.opts.fast" in fields.kinds_ and one.kinds_["cfg.opts"] == "text"
    for s in (fields, one):
        assert s.to_text(row) == s.to_text(batch)[:1]
    records = [{"x": {"b": 1}}, {"x": "s"}]
    fitted = Serializer().fit([{"x": {"b": i}} for i in range(8)])
    assert fitted.to_text(records[:1]) == fitted.to_text(records)[:1]


def test_categories_and_tags_are_one_name_in_composed_and_decomposed_unicode():
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    s = Serializer().fit(pd.DataFrame({"c": [composed, "bar"] * 5, "t": [[composed], ["bar"]] * 5}))
    assert s.kinds_ == {"c": "cat", "t": "tags"}
    c, t = s.transform(pd.DataFrame({"c": [decomposed], "t": [[decomposed]]})).columns
    assert c.values.tolist() == [composed] and t.values.tolist() == [(composed,)]


def test_a_datetime_column_read_as_categories_names_a_day_in_any_batch():
    days = pd.to_datetime(["2020-01-01", "2020-01-02 12:00", "2020-01-03"], format="ISO8601")
    s = Serializer(categorical=("d",)).fit(pd.DataFrame({"d": days}))
    # alone, a midnight read "2020-01-03"; next to a time of day "2020-01-03 00:00:00"
    assert s.transform(pd.DataFrame({"d": days[2:]})).columns[0].values.tolist() == ["2020-01-03"]
    assert s.transform(pd.DataFrame({"d": days})).columns[0].values.tolist() == [
        "2020-01-01", "2020-01-02 12:00:00", "2020-01-03"]


def test_category_names_of_huge_and_categorical_floats():
    from lmreg.cells import category_names

    assert category_names(pd.Series([1e20, 2e20, 3.0])).tolist() == [
        "100000000000000000000", "200000000000000000000", "3"]
    assert category_names(pd.Series([-2.0 ** 63, 2.0 ** 64], dtype=object)).tolist() == [
        "-9223372036854775808", "18446744073709551616"]
    assert category_names(pd.Series(pd.Categorical([1.0, 2.5, None]))).tolist()[:2] == ["1", "2.5"]


def test_datetimes_keep_minutes_and_seconds():
    values = ["2020-03-01 12:00:00", "2020-03-01 12:00:01", "2020-03-01 12:59:59", "2020-12-31 23:59:59",
              "2021-01-01 00:00:00"]
    s = Serializer().fit(pd.DataFrame({"when": values}))
    years = s.transform(pd.DataFrame({"when": values})).columns[0].values
    assert np.all(np.diff(years) > 0) and years[-1] == 2021.0    # each second counts, in order
    np.testing.assert_allclose(years[0], 2020 + (31 + 29 + 0.5) / 366)   # 2020 is a leap year


def test_numeric_text_renders_datetimes_as_iso_dates():
    df = pd.DataFrame({"when": pd.to_datetime(["2020-11-20", "2021-06-01 10:30:00", None], format="ISO8601"),
                       "stamp": ["2020-01-05T13:00:00+01:00", "2020-01-05", None]})
    s = Serializer(numeric="text").fit(df)
    assert s.to_text(df) == ["when: 2020-11-20 | stamp: 2020-01-05 12:00:00",
                             "when: 2021-06-01 10:30:00 | stamp: 2020-01-05",
                             "when: <missing> | stamp: <missing>"]


def test_none_rows_among_records_are_records_with_every_field_missing():
    frame = to_frame([{"a": 1, "b": "x"}, None, {"a": 3}])
    assert frame.columns.tolist() == ["a", "b"] and frame["a"].isna().tolist() == [False, True, False]
    s = Serializer().fit([{"a": 1.0, "b": "x"}, {"a": 2.0, "b": "y"}])
    assert s.to_text([None, {"a": 2.0}]) == ["a: <missing> | b: <missing>", "a: 2 | b: <missing>"]


@pytest.mark.parametrize("X, what", [
    ([{"a": 1}, {"a": {"b": 1}, "a.b": 2}], "X's record 1"),            # json_normalize kept one silently
    ([{"m": {"x": {"y": 1}, "x.y": 2}}], "X's record 0"),
    ({"j": ['{"k": 1}', '{"a": {"b": 1}, "a.b": 2}']}, "the JSON column 'j' in row 1")])
def test_a_record_naming_one_field_twice_is_an_error(X, what):
    with pytest.raises(ValueError, match=rf"{what} gives the field '.*' twice \(a nested field and a dotted"):
        to_frame(pd.DataFrame(X) if isinstance(X, dict) else X)


def test_dotted_and_nested_names_that_differ_are_kept():
    assert to_frame([{"x.y": 1, "x": {"z": 2}}, {"x": {}}]).columns.tolist() == ["x.y", "x.z"]
    assert to_frame([{"a": {"b": 1}}, {"a.b": 2}])["a.b"].tolist() == [1, 2]   # one field, row by row


@pytest.mark.parametrize("row, kind", [("text", "str"), (3, "int"), (["a"], "list")])
def test_records_mixed_with_other_rows_are_an_error(row, kind):
    with pytest.raises(ValueError, match=rf"X mixes records \(dicts\) with other rows: row 1 is a {kind}"):
        to_frame([{"a": 1}, row])


@pytest.mark.parametrize("fitted, given, kinds", [
    (np.arange(3.0), pd.to_datetime(["2020-01-01"] * 3), ("numbers", "datetimes")),
    (np.arange(3.0), pd.to_timedelta([1, 2, 3], unit="s"), ("numbers", "durations")),
    (pd.to_datetime(["2020-01-01", "2021-01-01", "2022-06-01"]), np.arange(3.0), ("datetimes", "numbers")),
    (pd.to_timedelta([1, 2, 3], unit="s"), pd.to_datetime(["2020-01-01"] * 3), ("durations", "datetimes")),
    # a bool had reached pandas' converters: "Cannot convert tz-naive timestamps", "dtype bool cannot ..."
    (pd.to_datetime(["2020-01-01", "2021-01-01", "2022-06-01"]), [True, False, True], ("datetimes", "booleans")),
    (pd.to_timedelta([1, 2, 3], unit="s"), [True, False, True], ("durations", "booleans")),
])
def test_a_typed_column_refuses_values_of_another_kind(fitted, given, kinds):
    # datetimes in a numeric column would read as nanoseconds since 1970, numbers as 1970 dates
    s = Serializer().fit(pd.DataFrame({"a": fitted, "b": ["x", "y", "z"]}))
    with pytest.raises(ValueError, match=f"column 'a' was fitted as {kinds[0]}, but X's holds {kinds[1]}"):
        s.transform(pd.DataFrame({"a": given, "b": ["x", "y", "z"]}))
    s.transform(pd.DataFrame({"a": [np.nan] * 3, "b": ["x"] * 3}))   # all missing: any column reads


@pytest.mark.parametrize("fitted, value", [
    (pd.to_datetime(["2020-01-01", "2021-01-01", "2022-06-01"]), 5),
    (pd.to_datetime(["2020-01-01", "2021-01-01", "2022-06-01"]), True),
    (pd.to_timedelta([1, 2, 3], unit="s"), pd.Timestamp("2020-01-01")),
    (np.arange(3.0), pd.Timestamp("2020-01-01")),
])
def test_a_record_of_another_typed_kind_reads_as_missing_alone_as_in_a_batch(fitted, value):
    # alone, pandas had typed the batch's column by its one value and refused it; next to a
    # row of the fitted kind the same value read as missing, with a warning
    s = Serializer().fit(pd.DataFrame({"a": fitted, "b": ["x", "y", "z"]}))
    with pytest.warns(UserWarning, match="1 of 1 values of the .* column 'a' could not be read"):
        alone = s.transform([{"a": value, "b": "x"}])
    with pytest.warns(UserWarning, match="1 of 2 values"):
        batch = s.transform([{"a": value, "b": "x"}, {"a": fitted[0], "b": "y"}])
    assert np.isnan(alone.columns[0].values[0]) and np.isnan(batch.columns[0].values[0])
    assert not np.isnan(batch.columns[0].values[1])


@pytest.mark.parametrize("fitted", [np.arange(1.0, 4.0), pd.to_timedelta([1, 2, 3], unit="h"),
                                    pd.to_datetime(["2020-01-01", "2021-01-01", "2022-06-01"])])
def test_a_record_with_nat_in_a_typed_field_reads_as_missing(fitted):
    # pandas types a column of pd.NaT alone as datetimes; it is a missing value of any kind
    s = Serializer().fit(pd.DataFrame({"a": fitted, "b": ["x", "y", "z"]}))
    assert s.to_text([{"a": pd.NaT, "b": "x"}]) == s.to_text([{"b": "x"}]) == ["a: <missing> | b: x"]


def test_a_period_column_reads_as_its_start_date():
    df = pd.DataFrame({"p": pd.period_range("2020-01", periods=3, freq="M")})
    s = Serializer().fit(df)
    assert s.kinds_ == {"p": "datetime"}
    years = s.transform(df).columns[0].values
    np.testing.assert_allclose(years, [2020.0, 2020 + 31 / 366, 2020 + 60 / 366])


def test_timedelta_and_period_objects_read_as_durations_and_dates():
    # object columns (the NaN -> None idiom, rows filtered from a mixed column): 30 distinct
    # timedeltas were free text, periods categories
    df = pd.DataFrame({"took": pd.to_timedelta(np.arange(30), unit="min"),
                       "month": pd.period_range("2020-01", periods=30, freq="M")})
    df = df.astype(object).where(df.notna(), None)
    assert (df.dtypes == object).all()
    s = Serializer().fit(df)
    assert s.kinds_ == {"took": "duration", "month": "datetime"}
    took, month = s.transform(df.iloc[:2]).columns
    np.testing.assert_array_equal(took.values, [0.0, 60.0])
    np.testing.assert_allclose(month.values, [2020.0, 2020 + 31 / 366])


def test_numbers_in_a_duration_column_read_as_missing():
    s = Serializer().fit(pd.DataFrame({"took": pd.to_timedelta(["1h", "2h", "3h"])}))
    # 5 and "5" read as 5 nanoseconds; a date raised pandas' TypeError
    got = pd.DataFrame({"took": pd.Series(["2h", 5, "5", 2.5, pd.Timestamp("2020-01-01"), None], dtype=object)})
    with pytest.warns(UserWarning, match="4 of 6 values of the duration column 'took' could not be read"):
        values = s.transform(got).columns[0].values
    np.testing.assert_array_equal(values, [7200.0] + [np.nan] * 5)


def test_numbers_in_a_datetime_column_read_as_missing():
    rows = [{"d": f"2020-{m:02d}-15"} for m in range(1, 13)]
    s = Serializer().fit(rows)
    assert s.kinds_ == {"d": "datetime"}
    # 5 and True crashed inside pandas (a us column refused ns values); 20200105 read as a day
    with pytest.warns(UserWarning, match="3 of 4 values of the datetime column 'd' could not be read"):
        years = s.transform([{"d": "2020-07-02"}, {"d": 5}, {"d": True}, {"d": 20200105}]).columns[0].values
    assert years[0] == pytest.approx(2020.5, abs=0.01) and np.isnan(years[1:]).all()


def test_arrow_decimals_with_nulls_and_arrow_durations():
    import pyarrow as pa
    from decimal import Decimal

    frame = pd.DataFrame({
        "price": pd.Series([Decimal("1.5"), None] * 20, dtype=pd.ArrowDtype(pa.decimal128(10, 2))),   # fit crashed
        "wait": pd.Series(pd.to_timedelta(np.arange(40), unit="min")).astype(pd.ArrowDtype(pa.duration("us"))),
    })
    s = Serializer().fit(frame)
    assert s.kinds_ == {"price": "num", "wait": "duration"}          # the duration was text or a category
    price, wait = (c.values for c in s.transform(frame).columns)
    np.testing.assert_array_equal(price[:4], [1.5, np.nan, 1.5, np.nan])
    np.testing.assert_array_equal(wait[:3], [0.0, 60.0, 120.0])


def test_rendered_numbers_keep_their_integer_digits():
    frame = pd.DataFrame({"price": [12345.67, 12349.99], "lat": [47.6062, 47.6101]})
    s = Serializer(numeric="text").fit(frame)
    # "1.235e+04" for both once: two rows, one text
    assert s.to_text(frame) == ["price: 12346 | lat: 47.61", "price: 12350 | lat: 47.61"]
    config = s.get_config()
    del config["params"]["whole_digits"]                     # a model saved before the option
    assert Serializer.from_config(config).to_text(frame)[0] == "price: 1.235e+04 | lat: 47.61"


def test_json_array_strings_are_tags_and_all_distinct_short_strings_are_text():
    genres = ['["Comedy", "Drama"]', '["Drama"]', '["Action", "Comedy"]', None] * 5
    titles = [f"{c} shirt {s}" for c in ("red", "blue", "green", "black", "white") for s in ("xs", "s", "m", "l")]
    frame = pd.DataFrame({"genres": genres, "title": titles})
    s = Serializer().fit(frame)
    # once: genres one category per JSON string, titles (all different) categories unseen at predict
    assert s.kinds_ == {"genres": "tags", "title": "text"}
    assert s.transform(frame).columns[0].values[:4].tolist() == [("Comedy", "Drama"), ("Drama",), ("Action", "Comedy"),
                                                                 None]
    assert Serializer().fit(frame.head(8)).kinds_["title"] == "cat"   # fewer than 10 values: as before


def test_lists_written_by_to_csv_read_back_as_the_same_tags(tmp_path):
    """to_csv writes a list cell as its Python text ("['Horror', 'Comedy']"): it was one unseen
    element at predict, or one category per combination at fit."""
    frame = pd.DataFrame({"genres": [["Horror", "Comedy"], ["Drama"], ["Comedy", "O'Neil"], None] * 5,
                          "x": np.arange(20.0)})
    frame.to_csv(tmp_path / "f.csv", index=False)
    back = pd.read_csv(tmp_path / "f.csv")
    assert back["genres"][0] == "['Horror', 'Comedy']"
    fitted = Serializer().fit(frame)
    for s in (fitted, Serializer().fit(back)):
        assert s.kinds_["genres"] == "tags"
        assert s.transform(back).columns[0].values[:4].tolist() == [("Horror", "Comedy"), ("Drama",),
                                                                    ("Comedy", "O'Neil"), None]
    assert Serializer().fit(pd.DataFrame({"note": ["[draft] " + str(i) for i in range(20)]})).kinds_["note"] == "text"


def test_a_boolean_column_reads_one_and_zero_as_its_flags():
    frame = pd.DataFrame({"flag": [True, False] * 5, "x": np.arange(10.0)})
    s = Serializer().fit(frame)
    assert s.kinds_["flag"] == "cat" and s.flags_ == ["flag"]
    fitted = s.transform(frame).columns[0].values[:2].tolist()
    # 1, 0, "false" were the categories "1", "0", "false": every one unseen
    for other in ([1, 0], [1.0, 0.0], ["true", "False"]):
        assert s.transform(pd.DataFrame({"flag": other, "x": [0.0, 1.0]})).columns[0].values.tolist() == fitted
    records = Serializer().fit([{"flag": bool(i % 2)} for i in range(6)])   # Python bools in records
    assert records.flags_ == ["flag"] and Serializer.from_config(records.get_config()).flags_ == ["flag"]


def test_rows_of_values_are_rectangular_and_cells_may_hold_lists():
    assert Serializer().fit([[["a", "b"]], [["c", "d"]]]).kinds_ == {"x0": "tags"}   # pandas' "Must pass 2-d input"
    with pytest.raises(ValueError, match="X's rows have different lengths \\(1, 2 values\\)"):
        to_frame([[1, 2], [3]])                                        # was one column of lists


def test_rows_from_iterrows_and_objects_pickled_before_whole_digits():
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    rows = [row for _, row in frame.iterrows()]                  # Series rows: was one column of Series
    assert to_frame(rows).shape == (2, 2)
    s = Serializer(numeric="text").fit(pd.DataFrame({"p": [12345.67, 1.0]}))
    del s.whole_digits                                           # unpickled from before the option
    assert s.to_text(pd.DataFrame({"p": [12345.67]})) == ["p: 1.235e+04"]
    assert s.get_config()["params"]["whole_digits"] is False


def test_an_int_in_a_text_or_tags_cell_reads_the_same_in_any_batch():
    """pandas makes a column of ints float when a row of the batch lacks it: a text cell 7 was
    '7.0' next to such a row (other tokens, another prediction), a tag 1 was '1.0' (unseen)."""
    rows = [{"note": f"free text comment {i}" if i % 4 else i, "g": ["a", "b"] if i % 3 else [1, 2]}
            for i in range(40)]
    s = Serializer().fit(rows)
    assert s.kinds_ == {"note": "text", "g": "tags"}
    row = {"note": 7, "g": 1}
    alone = {c.name: c.values.tolist() for c in s.transform([row]).columns}
    batch = {c.name: c.values.tolist()[:1] for c in s.transform([row, {"note": None}]).columns}
    assert alone == batch == {"note": ["7"], "g": [("1",)]}
    listed = Serializer().fit([{"t": [{"b": 1, "a": 2}]}, {"t": [{"a": 2, "b": 1}]}] * 5)
    first, second = listed.transform([{"t": [{"b": 1, "a": 2}]}, {"t": [{"a": 2, "b": 1}]}]).columns[0].values
    assert first == second   # a record inside a list: one text whatever its key order


def test_blank_strings_and_lone_scalars_do_not_change_a_columns_kind():
    """One "" (JSON's missing) made a column of numbers or ISO dates text, and one lone "Drama"
    among genre lists made them text, while predict reads that string as a one-element list."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)   # "" is missing, not a number that failed to read
        s = Serializer().fit([{"x": 1.5 + i} for i in range(20)] + [{"x": ""}, {"x": " "}])
        assert s.kinds_ == {"x": "num"}
        assert np.isnan(s.transform([{"x": ""}]).columns[0].values).all()
    dates = [{"d": f"2020-{m:02d}-15"} for m in range(1, 13)] + [{"d": ""}]
    assert Serializer().fit(dates).kinds_ == {"d": "datetime"}
    genres = [{"g": ["Drama", "Comedy"]}, {"g": ["Drama"]}, {"g": ["Action", "Comedy"]}] * 10 + [{"g": "Drama"}]
    s = Serializer().fit(genres)
    assert s.kinds_ == {"g": "tags"} and s.transform([{"g": "Drama"}]).columns[0].values[0] == ("Drama",)
    words = [{"t": f"free text number {i}"} for i in range(20)] + [{"t": ["a", "b"]}]
    assert Serializer().fit(words).kinds_ == {"t": "text"}   # mostly text: still text


def test_bytes_in_a_list_or_array_read_as_their_text():
    """A lone bytes row was decoded, but bytes in a list or an 'S' array were written b'...'."""
    texts = ["a house by the sea", "a flat in town"]
    want = {c.name: c.values.tolist() for c in Serializer().fit(texts * 5).transform(texts).columns}
    s = Serializer().fit(texts * 5)
    for X in ([t.encode() for t in texts], np.array([t.encode() for t in texts])):
        assert {c.name: c.values.tolist() for c in s.transform(X).columns} == want


def test_a_none_key_or_a_number_next_to_its_text_is_refused():
    """A None key became the field 'nan'; a nested {1: .., "1": ..} kept one value silently (the
    same clash at the top level was already an error)."""
    with pytest.raises(ValueError, match="X's record 0 has a None key"):
        to_frame([{None: "x", "b": 2}])
    with pytest.raises(ValueError, match=r"gives the field 'a.1' twice \(.*a number and its text\)"):
        to_frame([{"a": {1: "x", "1": "y"}}])
    assert to_frame([{"a": {1: "x"}}]).columns.tolist() == ["a.1"]   # an int key alone is its text
    deep = 1
    for _ in range(3000):
        deep = {"k": deep}
    with pytest.raises(ValueError, match="X's record 0 is nested too deeply"):   # was a RecursionError
        to_frame([deep, deep])


def test_numbers_written_as_strings_warn_when_read_as_text():
    """JSON's "price": "3.5" stays a string (as pandas keeps it); as text its digits cannot be
    compared by size, so fit says so and how to read it as a number."""
    prices = pd.DataFrame({"price": [f"{1.5 * i + 0.25}" for i in range(80)],
                           "zip": [f"0{2100 + i}" for i in range(80)]})   # codes, not quantities
    with pytest.warns(UserWarning, match=r"column 'price' holds numbers written as strings \(e.g. '0.25'\)"):
        s = Serializer().fit(prices)
    assert s.kinds_ == {"price": "text", "zip": "text"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Serializer().fit(prices[["zip"]])                                        # a leading zero: a code
        Serializer().fit(prices.assign(price=prices["price"].astype(float)))     # numbers: num, no warning
        Serializer().fit(pd.DataFrame({"size": ["1", "2", "3"] * 10}))           # few values: categories
        Serializer().fit(pd.DataFrame({"note": [f"{i} apples" for i in range(80)]}))
    assert Serializer().fit(prices.assign(price=pd.to_numeric(prices["price"]))).kinds_["price"] == "num"


def test_numbers_with_a_missing_marker_warn_when_the_marker_makes_them_text():
    """UCI's horsepower column: numbers, and "?" for the missing ones. The "?" made the whole
    column categories or text, without a word; fit names the values and the way out."""
    hp = [float(v) for v in range(60, 140)] + ["?"] * 3   # 80 distinct numbers: text
    with pytest.warns(UserWarning, match=r"column 'hp' holds numbers \(e.g. 60.0\) but also \['\?'\] .* read as "
                                         r"text, not as numbers.*na_values=\['\?'\]"):
        s = Serializer().fit(pd.DataFrame({"hp": pd.Series(hp, dtype=object)}))
    assert s.kinds_ == {"hp": "text"}
    with pytest.warns(UserWarning, match=r"column 'rooms' holds numbers \(e.g. '3'\) but also \['-', 'n/a'\] "
                                         r"\(not numbers\); it is read as categories"):
        Serializer().fit(pd.DataFrame({"rooms": ["3", "4", "n/a", "2", "-"] + ["5"] * 20}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clean = Serializer().fit(pd.DataFrame({"hp": pd.to_numeric(pd.Series(hp), errors="coerce")}))
        Serializer().fit(pd.DataFrame({"colour": ["red", "?", "blue"] * 10}))           # no numbers
        Serializer().fit(pd.DataFrame({"zip": ["02139", "10001", "?"] * 10}))           # codes, not numbers
        Serializer().fit(pd.DataFrame({"n": ["1", "2", "a", "b", "c", "d"] * 5}))       # words too many
        Serializer(categorical=("hp",)).fit(pd.DataFrame({"hp": pd.Series(hp, dtype=object)}))   # asked for
    assert clean.kinds_ == {"hp": "num"}


def test_sentences_of_a_script_without_spaces_are_text_short_names_categories():
    # each review counted as one word (split on spaces), so 30 distinct ones were categories:
    # every new review then read as the unknown category
    words = ["房间", "干净", "服务", "很好", "位置", "方便", "早餐", "一般", "价格", "便宜"]
    reviews = ["".join(words[(i * k) % 10] for k in range(1, 7)) + "。" for i in range(30)]
    s = Serializer().fit(pd.DataFrame({"review": reviews + reviews[:10], "city": ["東京", "서울특별시"] * 20}))
    assert s.kinds_ == {"review": "text", "city": "cat"}


def test_a_name_of_eight_han_characters_counts_as_four_words_as_four_english_ones():
    # a run without spaces had counted once as a word and again per two characters: 5 words
    cjk = pd.DataFrame({"c": ["東京都港区芝公園", "大阪府大阪市北区", "京都府京都市左京"] * 4})
    english = pd.DataFrame({"c": ["tokyo minato shiba park", "osaka city kita ward", "kyoto city sakyo ward"] * 4})
    assert Serializer().fit(cjk).kinds_ == Serializer().fit(english).kinds_ == {"c": "cat"}


def test_numbers_with_a_decimal_comma_warn_and_name_the_reading_that_makes_them_numbers():
    # a ';' CSV read without decimal=',' made its numbers categories or text, silently
    with pytest.warns(UserWarning, match=r"column 'size' holds numbers written with a comma \(e.g. '6,37'\); it "
                                         r"is read as categories.*decimal=','"):
        s = Serializer().fit(pd.DataFrame({"size": ["6,37", "1,2", "-0,5", "1.234,5"] * 4}))
    assert s.kinds_ == {"size": "cat"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # words with commas, and a declared category, are no numbers
        Serializer().fit(pd.DataFrame({"a": ["red, large", "1,5", "x"] * 4,
                                       "b": pd.Series(["6,37", "1,2"] * 6, dtype="category")}))


def test_a_target_with_a_decimal_comma_names_the_reading_that_makes_it_numbers():
    from lmreg.validation import check_targets

    with pytest.raises(TypeError, match=r"'1,5' reads as a number with a decimal comma: read the file with "
                                        r"decimal=','"):
        check_targets(np.array(["4", "1,5"], dtype=object), 2)


def test_bytearray_and_memoryview_cells_read_as_their_text():
    """A bytea column from psycopg2 (memoryview) had been the category '<memory at 0x...>', a new
    one each run; bytearray read as "bytearray(b'red')"."""
    X = pd.DataFrame({"color": [memoryview(b"red"), memoryview(b"blue")] * 3,
                      "raw": [bytearray(b"red"), bytearray(b"caf\xe9")] * 3})
    s = Serializer().fit(X)
    color, raw = s.transform(pd.DataFrame({"color": [memoryview(b"red")], "raw": [bytearray(b"red")]})).columns
    assert color.values.tolist() == raw.values.tolist() == ["red"]
    assert s.transform(X.head(2)).columns[1].values.tolist() == ["red", "caf\ufffd"]
    # a list of bytes (or a lone one) that is not UTF-8 reads as a column's does, not UnicodeDecodeError
    texts = Serializer().fit([b"caf\xe9 cr\xe8me", b"th\xe9 vert"] * 3).transform([b"th\xe9 vert"]).columns
    assert texts[0].values.tolist() == ["th\ufffd vert"]
    assert to_frame(b"caf\xe9").iloc[0, 0] == to_frame(bytearray(b"caf\xe9")).iloc[0, 0] == "caf\ufffd"


def test_complex_cells_in_rows_or_object_columns_are_an_error():
    """As lists of rows or object columns they had read as categories '(1+2j)'."""
    for X in ([[1 + 2j, 1.0], [3j, 2.0]], pd.DataFrame({"z": pd.Series([1 + 2j, 3j], dtype=object)})):
        with pytest.raises(ValueError, match=r"Complex data not supported: column\(s\) \['(x0|z)'\] of X"):
            to_frame(X)


def test_a_float32_category_is_named_as_its_value():
    """float32 categories had been named by their float64 expansion ('0.10000000149011612'), so
    the same 0.1 at predict was an unseen category."""
    rates = np.array([0.1, 0.25, 3.0] * 4, dtype=np.float32)
    s = Serializer().fit(pd.DataFrame({"rate": pd.Categorical(rates)}))
    want = ["0.1", "0.25", "3"]
    assert s.transform(pd.DataFrame({"rate": pd.Categorical(rates[:3])})).columns[0].values.tolist() == want
    assert s.transform([{"rate": 0.1}]).columns[0].values.tolist() == ["0.1"]
    assert Serializer(categorical=("rate",)).fit(pd.DataFrame({"rate": rates})).transform(
        pd.DataFrame({"rate": rates[:3]})).columns[0].values.tolist() == want
    missing = pd.Series(pd.Categorical([np.nan, 2.0], categories=[2.0]))
    assert category_names(missing).tolist() == ["nan", "2"] == category_names(missing.astype(object)).tolist()
    assert category_names(pd.Series(pd.Categorical([None, None], categories=[]))).tolist() == ["nan", "nan"]


def test_numbers_pandas_does_not_convert_read_as_numbers():
    """Fractions read as text; a JSON int past float64's range (10**309) failed with OverflowError
    inside pandas; a signalling NaN Decimal with decimal.InvalidOperation."""
    from fractions import Fraction

    rows = [{"f": Fraction(i, 7), "big": 10**309 if i == 0 else -10**400 if i == 1 else i,
             "d": Decimal("sNaN") if i == 2 else Decimal(i)} for i in range(20)]
    s = Serializer().fit(rows)
    assert s.kinds_ == {"f": "num", "big": "num", "d": "num"}
    f, big, d = s.transform(rows[:3]).columns
    np.testing.assert_allclose(f.values, [0, 1 / 7, 2 / 7])
    assert big.values[0] == np.inf and big.values[1] == -np.inf and big.values[2] == 2
    assert np.isnan(d.values[2]) and d.values[1] == 1
    assert Serializer().fit(pd.DataFrame(rows)).kinds_ == s.kinds_


def test_a_deeply_nested_json_string_stays_text():
    deep = '{"a":' * 3000 + "1" + "}" * 3000   # a RecursionError from json before
    frame = to_frame(pd.DataFrame({"t": [deep, "plain text"]}))
    assert frame["t"].tolist() == [deep, "plain text"]
    assert to_frame(pd.DataFrame({"t": ["[" * 3000 + "]" * 3000, "x"]})).shape == (2, 1)


def test_a_record_array_reads_its_fields_as_columns():
    st = np.array([(1, 2.0, b"Oslo"), (3, 4.0, b"Rome")], dtype=[("rooms", "i4"), ("area", "f8"), ("city", "S8")])
    frame = to_frame(st)
    assert frame.columns.tolist() == ["rooms", "area", "city"] and frame["city"].tolist() == ["Oslo", "Rome"]
    with pytest.raises(ValueError, match=r"X is a structured array of shape \(2, 1\): pass it 1-D"):
        to_frame(st.reshape(-1, 1))   # "Data must be 1-dimensional" from inside pandas before


def test_targets_pandas_cannot_convert_are_read_as_numbers():
    """y = [10**400, ...] failed with OverflowError, a signalling NaN Decimal with InvalidOperation."""
    from fractions import Fraction

    from lmreg.validation import check_targets

    with pytest.raises(ValueError, match=r"y contains 1 infinite value\(s\) \(first at row 0\)"):
        check_targets(np.array([10**400, 1.0], dtype=object), 2)
    with pytest.raises(ValueError, match=r"y contains 1 NaN value\(s\) \(first at row 1\)"):
        check_targets([Decimal(1), Decimal("sNaN")], 2)
    np.testing.assert_allclose(check_targets([Fraction(1, 4), 2**70], 2), [0.25, 2.0**70])
