import json

import numpy as np
import pandas as pd
import pytest

from lmreg.serialize import Serializer
from lmreg.tokenizer import NUMBER, NUMBER_MISSING, InputTokenizer, QuantileNormal


def _fit(df, **kw):
    table = Serializer().fit(df).transform(df)
    return InputTokenizer(**kw).fit(table), table


def test_digits_are_split_and_fields_are_single_tokens():
    df = pd.DataFrame({"note": [f"house {i} sold for 12345 dollars to buyer number {i}" for i in range(80)]})
    tok, table = _fit(df, vocab_size=200)
    ids, _, _ = tok.encode(table)
    pieces = tok.decode(ids[0]).split()
    assert pieces[:2] == ["<bos>", "<f:note>"] and pieces[-1] == "<sep>"
    assert {"1", "2", "3", "4", "5"} <= set(pieces)  # one token per digit


def test_numeric_slots_carry_normalised_values_and_missing_flag():
    df = pd.DataFrame({"x": [1.0, 2.0, np.nan, 1000.0], "c": ["a", "b", "a", None]})
    tok, table = _fit(df)
    ids, values, kinds = tok.encode(table)
    assert [len(r) for r in ids] == [4, 4, 4, 4]  # bos, x, c, sep
    assert kinds[0][1] == NUMBER and kinds[2][1] == NUMBER_MISSING
    assert values[0][1] < values[1][1] < values[3][1]  # monotone
    assert all(abs(v) < 4 for r in values for v in r)  # bounded, heavy tail tamed
    # categorical values are one token; unseen or missing ones share the "?" token
    assert tok.decode(ids[3]).split()[2] == "<c:c=?>"


def test_list_elements_are_one_token_each_when_frequent():
    rows = [{"genre": ["drama", "crime"] if i % 2 else ["comedy"], "cast": ["Star"] + [f"extra {i}"]}
            for i in range(20)]
    table = Serializer().fit(rows).transform(rows)
    tok = InputTokenizer(min_tag_count=5).fit(table)
    ids, _, _ = tok.encode(table)
    assert tok.decode(ids[1]) == ("<bos> <f:genre> <c:genre=drama> <c:genre=crime> "
                                  "<f:cast> <c:cast=Star> <c:cast=?> <sep>")   # "extra 1" is seen once
    new = Serializer().fit(rows).transform([{"genre": ["western"], "cast": None}])
    assert tok.decode(tok.encode(new)[0][0]) == "<bos> <f:genre> <c:genre=?> <f:cast> <missing> <sep>"
    capped = InputTokenizer(min_tag_count=1, max_tag_values=2, max_field_tokens=1).fit(table)
    vocab = set(capped.tokenizer_.get_vocab())
    assert {"<c:cast=Star>", "<c:genre=comedy>"} <= vocab and "<c:cast=extra 3>" not in vocab
    assert capped.decode(capped.encode(table)[0][1]).split()[4] == "<c:cast=?>"   # room for the "?" only
    # tied counts: which elements get a token does not depend on the rows' order (first seen won)
    tied = [{"genre": [g]} for g in ["Horror", "Action", "Drama", "Comedy"] * 6]
    vocabs = [{t for t in InputTokenizer(min_tag_count=1, max_tag_values=2).fit(
        Serializer().fit(rs).transform(rs)).tokenizer_.get_vocab() if t.startswith("<c:")} for rs in (tied, tied[::-1])]
    assert vocabs[0] == vocabs[1] == {"<c:genre=Action>", "<c:genre=Comedy>", "<c:genre=?>"}


def test_truncation_limits():
    df = pd.DataFrame({"t": [" ".join(f"w{i}" for i in range(300))] * 3})
    tok, table = _fit(df, max_field_tokens=10, max_length=8)
    with pytest.warns(UserWarning, match="3 of 3 rows are longer than max_length=8 tokens and were cut"):
        ids, _, _ = tok.encode(table)
    assert all(len(r) == 8 for r in ids)


def test_rows_cut_at_max_length_warn_and_name_the_lost_fields():
    wide = pd.DataFrame(np.arange(40.0).reshape(2, 20), columns=[f"f{i}" for i in range(20)])
    tok, table = _fit(wide, max_length=12)
    with pytest.warns(UserWarning, match=r"2 of 2 rows .* cut, so the model does not see their end \(fields "
                                         r"lost whole in some rows: 'f10', 'f11', 'f12', 'f13', 'f14' and 5 more\)"):
        ids, values, kinds = tok.encode(table)
    config = tok.get_config()
    config["params"]["max_length"] = 64
    full = InputTokenizer.from_config(config).encode(table)
    for cut, whole in zip((ids, values, kinds), full):   # the same tokens, only cut
        for a, b in zip(cut, whole):
            np.testing.assert_array_equal(a, np.concatenate([b[:11], b[-1:]]))


def test_a_rows_category_tokens_do_not_depend_on_its_batch():
    rows = [{"size": s, "x": float(i)} for i, s in enumerate([1, 2, "XL"] * 4)]
    s = Serializer().fit(rows)
    tok = InputTokenizer().fit(s.transform(rows))
    alone = tok.encode(s.transform([{"size": 2, "x": 0.0}]))[0][0]
    batch = tok.encode(s.transform([{"size": 2, "x": 0.0}, {"x": 0.0}]))[0][0]   # size read as 2.0
    np.testing.assert_array_equal(alone, batch)
    assert tok.decode(batch) == "<bos> <c:size=2> <f:x> <sep>"


def test_no_two_column_values_share_a_category_token():
    # "a" = "b=c" and "a=b" = "c" once made the same token, and a literal "?" value was the
    # unseen-value token; tags elements follow the same rule
    df = pd.DataFrame({"a": ["b=c", "?", "\\?", "x"] * 3, "a=b": ["c", "y", "z", "w"] * 3,
                       "t": [["?"], ["k"], ["?", "k"], ["\\k"]] * 3})
    tok, table = _fit(df, min_tag_count=1)
    rows = [tok.decode(r).split() for r in tok.encode(table)[0][:4]]
    cats = [tok for row in rows for tok in row if tok.startswith("<c:a")]
    assert len(set(cats)) == len(cats) == 8                      # 4 + 4 distinct values
    tags = {tok for row in rows for tok in row if tok.startswith("<c:t")}
    assert len(tags) == 3 and "<c:t=?>" not in tags               # "?", "k", "\\k"; all seen
    unseen = tok.encode(Serializer().fit(df).transform(
        pd.DataFrame({"a": ["new"], "a=b": ["c"], "t": [["new"]]})))[0][0]
    pieces = tok.decode(unseen).split()
    assert pieces[1] == "<c:a=?>" and pieces[1] not in cats and pieces[-2] == "<c:t=?>"
    assert pieces[2] == cats[1]                                  # "a=b" = "c" still known


def test_config_round_trip_encodes_identically():
    df = pd.DataFrame({"t": ["hello world", "good bye"], "x": [1.0, 5.0], "c": ["u", "v"],
                       "tags": [["p", "q"], ["q"]]})
    tok, table = _fit(df, min_tag_count=1)
    tok2 = InputTokenizer.from_config(json.loads(json.dumps(tok.get_config())))
    for a, b in zip(tok.encode(table), tok2.encode(table)):
        assert all(np.array_equal(x, z) for x, z in zip(a, b))


def test_quantile_normal_handles_ties_and_constant():
    q = QuantileNormal().fit(np.array([0.0] * 90 + list(range(1, 11))))
    z = q.transform(np.array([0.0, 10.0, np.nan]))
    assert z[0] < z[1] and np.isnan(z[2])
    const = QuantileNormal().fit(np.ones(5)).transform(np.array([1.0, 2.0]))
    assert np.all(np.isfinite(const))


def test_structure_tokens_typed_in_text_are_text():
    df = pd.DataFrame({"note": [f"item {i} costs <sep> <f:note> <missing> {i}" for i in range(40)],
                       "c": ["a", "b"] * 20})
    tok, table = _fit(df, vocab_size=200)
    ids, _, _ = tok.encode(table)
    t2i = tok.tokenizer_.token_to_id
    structure = {t2i(t) for t in ("<sep>", "<f:note>", "<missing>", "<f:c>", "<c:c=a>", "<c:c=b>")}
    # the text's field token, the category (its own field) and the closing <sep>: the text adds none
    assert [int(i) for i in ids[0] if int(i) in structure] == [t2i("<f:note>"), t2i("<c:c=a>"), t2i("<sep>")]


def test_a_tokenizer_saved_before_the_escaping_keeps_its_tokens(monkeypatch):
    import lmreg.tokenizer as T

    df = pd.DataFrame({"a=b": ["c", "d"] * 3, "x": ["\\q", "?"] * 3, "t": [["\\k"], ["m"]] * 3})
    escaping = T._category
    with monkeypatch.context() as m:   # the tokens an earlier lmreg made: no escaping
        m.setattr(T, "_category", lambda name, value, escaped=True: escaping(name, value, False))
        old, table = _fit(df, min_tag_count=1)
        expected = old.encode(table)[0]
        config = json.loads(json.dumps(old.get_config()))
    del config["escaped"]
    loaded = InputTokenizer.from_config(config)
    # read with the escaping, "a=b" found no token (a crash) and "\\q" read as unseen
    for a, b in zip(loaded.encode(table)[0], expected):
        np.testing.assert_array_equal(a, b)
    assert "<c:a=b=c>" in loaded.decode(expected[0])


def test_a_tokenizer_unpickled_from_before_the_escaping_encodes():
    tok, table = _fit(pd.DataFrame({"c": ["u", "v"] * 3}))
    expected = tok.encode(table)[0]
    del tok.escaped_                        # an object pickled before the attribute existed
    for a, b in zip(tok.encode(table)[0], expected):   # plain names: the same tokens either way
        np.testing.assert_array_equal(a, b)


def test_predict_warns_when_most_of_a_categorical_column_is_unknown():
    """Codes read as numbers (a CSV's 2139 for "02139") all became the unknown value silently."""
    import warnings

    import pandas as pd

    from lmreg import LMRegressor

    df = pd.DataFrame({"zip": [f"0{2100 + i % 10}" for i in range(60)], "x": np.arange(60.0) % 7})
    est = LMRegressor(max_time=None, max_epochs=2, random_state=0, hidden_size=32, num_layers=1,
                      num_heads=2).fit(df, (np.arange(60) % 10) * 1.0)
    assert est.serializer_.kinds_["zip"] == "cat"
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        est.predict(df)   # the fitted codes: no warning
        est.predict(df.assign(zip=["02100"] * 59 + ["99999"]))   # one unseen value of 60: no warning
    for call in (est.predict, est.predict_quantiles, est.sample):
        with pytest.warns(UserWarning, match=r"60 of 60 values of the categorical column 'zip' have no token of "
                                             r"their own .* e\.g\. '2100'"):
            call(df.assign(zip=df["zip"].astype(int)))


def test_quantile_map_of_numbers_near_the_float64_limit_reads_no_value_as_missing():
    # knots 2e308 apart overflowed: -1e308 mapped to NaN (read as missing), 1e308 off its place
    huge = QuantileNormal().fit(np.array([-1e308, 1e308] * 5)).transform(np.array([-1e308, 0.0, 1e308]))
    small = QuantileNormal().fit(np.array([-1.0, 1.0] * 5)).transform(np.array([-1.0, 0.0, 1.0]))
    np.testing.assert_array_equal(huge, small)
    x = np.random.default_rng(0).lognormal(size=300) * 1e5   # a power-of-two scale: the same map, exactly
    q = QuantileNormal().fit(x)
    np.testing.assert_array_equal(q.quantiles_, np.quantile(x, q.references_))


def test_the_characters_of_a_number_are_in_every_vocabulary():
    """numeric="text" writes -1.5e-07: a sign, point or exponent the fit's text lacked had
    read as <unk> ("?1?5")."""
    df = pd.DataFrame({"x": np.arange(40.0) * 37, "note": ["short words here"] * 40})
    s = Serializer(numeric="text").fit(df)
    tok = InputTokenizer().fit(s.transform(df))
    new = pd.DataFrame({"x": [-5.0, 2.5, -1.5e-7, np.inf], "note": ["a"] * 4})
    rows = [tok.decode(r).split()[2:-2] for r in tok.encode(s.transform(new))[0]]
    assert rows == [["-", "5"], ["2", ".", "5"], ["-", "1", ".", "5", "e", "-", "0", "7"], ["i", "n", "f"]]
