"""End-to-end tests of ``lmreg fit|predict|evaluate`` run in-process through ``main``."""

import contextlib
import io
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mean_absolute_error

import lmreg
from lmreg import LMRegressor
from lmreg.cli import build_parser, main, parse_params, parse_value
from lmreg.tables import read_table
from lmreg.datasets import load_dataset

TARGET = "log10_retweets"
FAST = ["--time", "3", "--threads", "1", "--param", "hidden_size=32", "num_layers=1", "num_heads=2",
        "n_samples=4", "random_state=0"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    X, y = load_dataset("tweets_engagement", max_rows=60)
    frame = X.assign(**{TARGET: y})
    frame.to_csv(folder / "data.csv", index=False)
    frame.to_parquet(folder / "data.parquet", index=False)
    frame.drop(columns=[TARGET]).to_parquet(folder / "inputs.pq", index=False)
    (folder / "data.txt").write_text("not a table\n")
    return folder


@pytest.fixture(scope="module")
def fitted(data):
    """One CSV fit shared by the tests: (model dir, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["fit", str(data / "data.csv"), "--target", TARGET, "--out", str(data / "model"), *FAST])
    assert rc == 0, err.getvalue()
    return data / "model", out.getvalue(), err.getvalue()


def test_fit_saves_a_loadable_model_and_its_target(fitted):
    model, out, _ = fitted
    assert json.loads((model / "cli.json").read_text()) == {"target": TARGET}
    est = lmreg.load(model)
    assert list(est.feature_names_in_) == ["created_at", "source", "is_reply", "text"]
    assert est.get_params()["hidden_size"] == 32 and est.n_samples == 4 and est.max_time == 3
    assert "fitted on 60 rows x 4 columns" in out and "saved to" in out


def test_a_cli_model_saved_again_from_python_keeps_its_target(data, fitted, tmp_path):
    model, _, _ = fitted
    est = lmreg.load(model)
    est.save(tmp_path / "again")
    assert json.loads((tmp_path / "again" / "cli.json").read_text()) == {"target": TARGET}
    assert main(["evaluate", str(tmp_path / "again"), str(data / "data.csv")]) == 0   # no --target needed
    X = pd.read_csv(data / "data.csv").drop(columns=[TARGET])
    est.set_params(max_time=None, max_epochs=1).fit(X.head(30), np.arange(30.0))     # a new model: no record
    est.save(tmp_path / "refit")
    assert not (tmp_path / "refit" / "cli.json").exists()


def test_fit_from_parquet_quiet_replaces_a_saved_model(data, fitted, tmp_path, capsys):
    model = tmp_path / "m"
    args = ["fit", str(data / "data.parquet"), "--target", TARGET, "--out", str(model), "--quiet", *FAST]
    assert main(args) == 0
    assert main(args) == 0  # an existing model directory is replaced
    captured = capsys.readouterr()
    assert captured.out == "" and "error" not in captured.err
    assert lmreg.load(model).predict(pd.read_parquet(data / "inputs.pq")).shape == (60,)


def test_predict_csv_ignores_the_training_target(data, fitted, capsys):
    model, _, _ = fitted
    out = data / "pred.csv"
    assert main(["predict", str(model), str(data / "data.csv"), "--out", str(out)]) == 0
    assert "wrote 60 predictions" in capsys.readouterr().out
    pred = pd.read_csv(out)
    assert list(pred.columns) == ["prediction"] and len(pred) == 60
    assert np.all(np.isfinite(pred["prediction"]))
    expected = lmreg.load(model).predict(pd.read_csv(data / "data.csv").drop(columns=[TARGET]))
    np.testing.assert_allclose(pred["prediction"], expected)


def test_predict_reads_and_writes_compressed_csv(data, fitted, capsys):
    # --out pred.csv.gz had been "unsupported file extension '.gz'"; the input too
    model, _, _ = fitted
    pd.read_csv(data / "data.csv").to_csv(data / "data.csv.gz", index=False)
    expected = lmreg.load(model).predict(pd.read_csv(data / "data.csv").drop(columns=[TARGET]))
    for out in (data / "pred.csv.gz", data / "pred.csv.zip"):
        assert main(["predict", str(model), str(data / "data.csv.gz"), "--out", str(out), "--quiet"]) == 0
        np.testing.assert_allclose(pd.read_csv(out)["prediction"], expected)
    assert (data / "pred.csv.gz").read_bytes()[:2] == b"\x1f\x8b"   # gzip's magic number
    import zipfile
    assert zipfile.ZipFile(data / "pred.csv.zip").namelist() == ["pred.csv"]
    (data / "plain.csv").write_text("")   # a link named .csv.gz is written as its name says
    (data / "link.csv.gz").symlink_to(data / "plain.csv")
    assert main(["predict", str(model), str(data / "data.csv.gz"), "--out", str(data / "link.csv.gz"), "--quiet"]) == 0
    assert (data / "plain.csv").read_bytes()[:2] == b"\x1f\x8b"
    assert main(["predict", str(model), str(data / "data.csv"), "--out", str(data / "p.parquet.gz")]) == 2
    assert "parquet compresses its own columns and is written uncompressed; name the file 'p.parquet'" in capsys.readouterr().err
    assert not (data / "p.parquet.gz").exists()


def test_predict_to_standard_output(data, fitted, capsys):
    # "--out -" had been "unsupported file extension '(none)'"
    model, _, _ = fitted
    assert main(["predict", str(model), str(data / "data.csv"), "--out", "-", "--quantiles", "0.1,0.9"]) == 0
    captured = capsys.readouterr()
    pred = pd.read_csv(io.StringIO(captured.out))
    assert list(pred.columns) == ["prediction", "q0.1", "q0.9"] and len(pred) == 60
    expected = lmreg.load(model).predict(pd.read_csv(data / "data.csv").drop(columns=[TARGET]))
    np.testing.assert_allclose(pred["prediction"], expected)
    assert "wrote 60 predictions to standard output" in captured.err and not (Path.cwd() / "-").exists()


def test_predict_parquet_with_quantiles(data, fitted):
    if not hasattr(LMRegressor, "predict_quantiles"):
        pytest.skip("LMRegressor.predict_quantiles is not available yet")
    model, _, _ = fitted
    out = data / "pred.parquet"
    args = ["predict", str(model), str(data / "inputs.pq"), "--out", str(out), "--quantiles", "0.1,0.9",
            "--quiet"]
    assert main(args) == 0
    pred = pd.read_parquet(out)
    assert list(pred.columns) == ["prediction", "q0.1", "q0.9"] and len(pred) == 60
    assert np.all(np.isfinite(pred.to_numpy())) and np.all(pred["q0.1"] <= pred["q0.9"])


def test_predict_with_quantiles_warns_once_per_message_and_writes_nothing_under_w_error(data, fitted, tmp_path):
    model, _, _ = fitted
    rows = pd.read_parquet(data / "inputs.pq").astype({"is_reply": object})
    rows.loc[3, "is_reply"] = "zz"   # one value the numeric column cannot read
    rows.to_csv(tmp_path / "rows.csv", index=False)
    out = tmp_path / "pred.csv"
    args = ["predict", str(model), str(tmp_path / "rows.csv"), "--out", str(out), "--quantiles", "0.1,0.9", "--quiet"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(args) == 0
    unread = [str(w.message) for w in caught if "could not be read as numbers" in str(w.message)]
    assert len(unread) == 1 and "'is_reply'" in unread[0], unread   # it came from predict and again from the quantiles
    rows[TARGET] = pd.read_csv(data / "data.csv")[TARGET]
    rows.to_csv(tmp_path / "labelled.csv", index=False)
    with warnings.catch_warnings(record=True) as caught:   # evaluate reads them twice too
        warnings.simplefilter("always")
        assert main(["evaluate", str(model), str(tmp_path / "labelled.csv")]) == 0
    assert sum("could not be read as numbers" in str(w.message) for w in caught) == 1
    out.unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserWarning, match="could not be read as numbers"):
            main(args)
    assert not out.exists()


def test_evaluate_prints_the_metrics(data, fitted, capsys):
    model, _, _ = fitted
    assert main(["evaluate", str(model), str(data / "data.csv"), "--target", TARGET]) == 0
    lines = dict(line.split(None, 1) for line in capsys.readouterr().out.strip().splitlines())
    assert set(lines) == {"rows", "R2", "MAE", "RMSE", "Spearman", "CRPS", "coverage80"}
    values = {k: float(v.split()[0]) for k, v in lines.items()}
    assert values["rows"] == 60 and values["MAE"] <= values["RMSE"] and values["CRPS"] >= 0
    assert 0 <= values["coverage80"] <= 1
    frame = pd.read_csv(data / "data.csv")
    mae = mean_absolute_error(frame[TARGET], lmreg.load(model).predict(frame.drop(columns=[TARGET])))
    assert values["MAE"] == pytest.approx(mae, rel=1e-3)
    # Without --target: the column recorded by fit.
    assert main(["evaluate", str(model), str(data / "data.parquet")]) == 0
    assert "CRPS" in capsys.readouterr().out
    # R^2 of a constant target (or one row) is undefined: not printed as 0
    frame.assign(**{TARGET: 1.0}).head(5).to_csv(data / "constant.csv", index=False)
    assert main(["evaluate", str(model), str(data / "constant.csv"), "--target", TARGET]) == 0
    printed = capsys.readouterr().out
    assert "R2          undefined (constant target)" in printed
    assert "Spearman    nan (constant target)" in printed     # was: "(constant predictions)"


def test_fit_with_a_weight_column(data, tmp_path, capsys):
    frame = pd.read_csv(data / "data.csv").assign(w=np.arange(60) % 3)   # a third of the rows weigh 0
    frame.to_csv(tmp_path / "weighted.csv", index=False)
    args = ["fit", str(tmp_path / "weighted.csv"), "--target", TARGET, "--weight", "w", "--out", str(tmp_path / "m"),
            "--quiet", *FAST]
    assert main(args) == 0
    assert json.loads((tmp_path / "m" / "cli.json").read_text()) == {"target": TARGET, "weight": "w"}
    est = lmreg.load(tmp_path / "m")
    assert est._weighted and "w" not in list(est.feature_names_in_)
    # predict and evaluate read the same table: the weight column is not an input
    assert main(["predict", str(tmp_path / "m"), str(tmp_path / "weighted.csv"), "--out", str(tmp_path / "p.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "p.csv")) == 60
    assert main(["fit", str(tmp_path / "weighted.csv"), "--target", TARGET, "--weight", "likes",
                 "--out", str(tmp_path / "m2"), *FAST]) == 2
    assert "weight column 'likes' not found" in capsys.readouterr().err
    assert not (tmp_path / "m2").exists()


@pytest.mark.parametrize("argv, expected", [
    (["fit", "{d}/missing.csv", "--target", TARGET, "--out", "{d}/m"], "'{d}/missing.csv': no such file"),
    (["fit", "{d}/data.csv", "--target", "likes", "--out", "{d}/m"],
     "target column 'likes' not found in '{d}/data.csv'; available columns: created_at, source, is_reply, "
     "text, log10_retweets"),
    (["fit", "{d}/data.txt", "--target", TARGET, "--out", "{d}/m"], "unsupported file extension '.txt'"),
    (["fit", "{d}/data.csv", "--target", TARGET, "--out", "{d}/m", "--param", "hiden_size=32"],
     "unknown parameter 'hiden_size' in --param (did you mean 'hidden_size'?); valid names: backbone, batch_size,"),
    (["fit", "{d}/data.csv", "--target", TARGET, "--out", "{d}/m", "--param", "hidden_size"],
     "--param expects NAME=VALUE"),
    (["fit", "{d}/data.csv", "--target", TARGET, "--out", "{d}/m", "--time", "3", "--param", "max_time=3"],
     "give max_time either as --time or as --param"),
    (["fit", "{d}/data.csv", "--target", TARGET, "--out", "{d}"], "refusing to replace --out"),
    (["fit", "{d}/data.csv", "--target", TARGET, "--out", "{d}/data.csv/m"], "data.csv' is a file, not a folder"),
    (["bench", "--datasets", "diabetes", "--models", "mean", "--out", "{d}"], "--out '{d}' is a folder"),
    (["bench", "--datasets", "diabetes", "--models", "mean", "--out", "", "--markdown", "{d}/data.csv/t.md"],
     "--markdown '{d}/data.csv/t.md' cannot be written"),
    (["bench", "--datasets", "diabetes", "--models", "mean", "--out", "", "--plots", "{d}/data.csv"],
     "--plots '{d}/data.csv' is a file"),
    (["predict", "{d}/no_model", "{d}/data.csv", "--out", "{d}/p.csv"],
     "no saved lmreg model at '{d}/no_model'"),
    (["predict", "{d}/model", "{d}/missing.parquet", "--out", "{d}/p.csv"], "no such file"),
    (["predict", "{d}/model", "{d}/data.csv", "--out", "{d}/p.xlsx"], "unsupported file extension '.xlsx'"),
    (["predict", "{d}/model", "{d}/data.csv", "--out", "{d}/nowhere/p.csv"], "does not exist"),
    # a link to a missing folder failed only after predicting, naming a temporary file
    (["predict", "{d}/model", "{d}/data.csv", "--out", "{d}/dangling.csv"], "nowhere/p.csv', whose folder does not"),
    (["predict", "{d}/model", "{d}/data.csv", "--out", "{d}/p.csv", "--quantiles", "0.1,1.5"], "in (0, 1)"),
    (["predict", "{d}/model", "{d}/data.csv", "--out", "{d}/p.csv", "--quantiles", ""], "in (0, 1); got ''"),
    (["predict", "{d}/model", "{d}/lacks_text.csv", "--out", "{d}/p.csv"],
     "lacks column(s) the model was trained on: text"),
    (["evaluate", "{d}/model", "{d}/inputs.pq", "--target", TARGET], f"target column '{TARGET}' not found"),
    (["evaluate", "{d}/model", "{d}/data.txt", "--target", TARGET], "unsupported file extension"),
    (["demo", "--dataset", "nope"], "unknown dataset 'nope'"),
    (["predict", "{d}/model", "{d}/data.csv", "--out", "{d}/data.csv"], "is the DATA file"),
    (["bench", "--datasets", "diabetes", "nope", "--models", "mean"], "unknown dataset(s) ['nope']"),
    (["bench", "--datasets", "diabetes", "--models", "mean", "lmreg", "--param", "hiden_size=8"],
     "unknown parameter 'hiden_size'"),
    (["bench", "--datasets", "diabetes", "--models", "lmreg", "--max-time", "-1"],
     "'max_time' parameter of LMRegressor must be"),
    (["demo", "--dataset", "diabetes", "--max-time", "-1"], "'max_time' parameter of LMRegressor must be"),
    # bench's own flags are checked before any model runs; its --param cannot set what they set
    (["bench", "--datasets", "diabetes", "--models", "mean", "--param", "n_samples=4"],
     "--param n_samples: set it with --n-samples"),
    (["bench", "--datasets", "diabetes", "--models", "mean", "--param", "max_time=5"],
     "--param max_time: set it with --max-time"),
    (["bench", "--datasets", "diabetes", "--models", "mean", "--test-rows", "0"], "--test-rows must be at least 2"),
    (["bench", "--datasets", "diabetes", "--models", "mean", "--train-rows", "-3"],
     "--train-rows must be at least 1; got -3"),
    (["bench", "--datasets", "diabetes", "--models", "mean", "--threads", "0"], "--threads must be at least 1"),
    (["demo", "--dataset", "diabetes", "--threads", "0"], "'n_threads' parameter of LMRegressor must be"),
])
def test_user_errors_exit_2_with_a_message(data, fitted, capsys, argv, expected):
    pd.read_csv(data / "data.csv").drop(columns=["text"]).to_csv(data / "lacks_text.csv", index=False)
    if not (data / "dangling.csv").is_symlink():
        (data / "dangling.csv").symlink_to(data / "nowhere" / "p.csv")
    assert main([a.format(d=data) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lmreg: error: ") and expected.format(d=data) in err
    assert "Traceback" not in err


def test_usage_errors_and_help_return_codes(capsys):
    assert main(["fit", "data.csv"]) == 2  # argparse: --target and --out are required
    assert "required" in capsys.readouterr().err
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(cmd in out for cmd in ("demo", "fit", "predict", "evaluate"))
    assert main(["demo", "--help"]) == 0 and "--max-time" in capsys.readouterr().out
    for command in ("demo", "fit", "predict", "evaluate", "bench"):   # descriptions are not %-formatted
        assert main([command, "--help"]) == 0 and "%%" not in capsys.readouterr().out


@pytest.mark.parametrize("text, value", [
    ("8", 8), ("-3", -3), ("0.5", 0.5), ("1e-3", 1e-3), ("true", True), ("False", False),
    ("none", None), ("None", None), ("p10", "p10"), ("median", "median"), ("", ""),
])
def test_parse_value(text, value):
    parsed = parse_value(text)
    assert parsed == value and type(parsed) is type(value)


def test_parse_params():
    assert parse_params(["n_samples=8", "codec=p10", "max_time=none"]) == {
        "n_samples": 8, "codec": "p10", "max_time": None}
    with pytest.raises(ValueError, match="given twice"):
        parse_params(["n_samples=8", "n_samples=9"])


def test_read_table_formats(tmp_path):
    frame = pd.DataFrame({"when": ["2009-12-03T19:39:09Z", "2010-01-01T00:00:00Z"], "n": [1, 2],
                          "x": [0.5, None], "code": ["007", "abc"]})
    frame.to_json(tmp_path / "a.jsonl", orient="records", lines=True)
    (tmp_path / "a.json").write_text((tmp_path / "a.jsonl").read_text())
    frame.to_parquet(tmp_path / "a.pq")
    frame.to_json(tmp_path / "array.json", orient="records")                 # one array of records
    (tmp_path / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + (tmp_path / "a.jsonl").read_bytes())   # a BOM
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf" + (tmp_path / "array.json").read_bytes())
    for name in ("a.jsonl", "a.json", "a.pq", "array.json", "bom.jsonl", "bom.json"):
        # --encoding utf-8 (the documented default) read no BOM in JSON, as CSV does
        for encoding in (None, "utf-8", "UTF8") if name.startswith("bom") else (None,):
            got = read_table(tmp_path / name, encoding=encoding)
            assert list(got["when"]) == list(frame["when"]) and list(got["code"]) == ["007", "abc"]
            assert got["n"].dtype.kind == "i" and got["x"].dtype.kind == "f"
    (tmp_path / "bad.json").write_text('[{"a": 1}, \n')
    with pytest.raises(ValueError, match="expected JSON lines"):
        read_table(tmp_path / "bad.json")
    # pandas' default to_json (one object of columns), of any length: refused, once one row of dicts
    frame.to_json(tmp_path / "columns.json")
    frame.head(1).to_json(tmp_path / "one_row.json")
    for name in ("columns.json", "one_row.json"):
        with pytest.raises(ValueError, match="one JSON object of columns .* orient='records', lines=True"):
            read_table(tmp_path / name)
    # one record with list or nested fields stays one record
    (tmp_path / "one.json").write_text('{"n": 1, "tags": ["a", "b"], "meta": {"a": 1, "b": 2}}')
    assert read_table(tmp_path / "one.json")["tags"].tolist() == [["a", "b"]]
    (tmp_path / "nested.json").write_text('{"meta": {"a": 1, "b": 2}}')
    assert len(read_table(tmp_path / "nested.json")) == 1
    for kw in ({"sep": ";"}, {"decimal": ","}, {"na_values": []}):   # were ignored without a word
        with pytest.raises(ValueError, match="--sep, --decimal and --na apply to .csv/.tsv files; .* is parquet"):
            read_table(tmp_path / "a.pq", **kw)


@pytest.mark.parametrize("ext", [".gz", ".bz2", ".xz", ".zip"])
def test_read_table_compressed_files(tmp_path, ext):
    # rows.csv.gz had been "unsupported file extension '.gz'"; pandas reads it by the extension
    frame = pd.DataFrame({"a": [1.5, 2.0], "t": ["x, y", "caf\u00e9"], "y": [1, 2]})
    frame.to_csv(tmp_path / f"r.csv{ext}", index=False)
    frame.to_csv(tmp_path / f"r.tsv{ext}", index=False, sep="\t")
    frame.to_json(tmp_path / f"r.jsonl{ext}", orient="records", lines=True)
    for name in ("r.csv", "r.tsv", "r.jsonl"):
        pd.testing.assert_frame_equal(read_table(tmp_path / f"{name}{ext}"), frame)
    # the checks that read the file's text see it decompressed: separator, encoding, trailing separator
    frame.to_csv(tmp_path / f"semi.csv{ext}", index=False, sep=";")
    with pytest.raises(ValueError, match="its fields look separated by ';', not ','; pass --sep ';'"):
        read_table(tmp_path / f"semi.csv{ext}")
    frame.to_csv(tmp_path / f"latin.csv{ext}", index=False, encoding="latin-1")
    with pytest.raises(ValueError, match=r"is not UTF-8 text .* at byte 26\); pass its encoding, e.g. --encoding latin-1"):
        read_table(tmp_path / f"latin.csv{ext}")
    pd.testing.assert_frame_equal(read_table(tmp_path / f"latin.csv{ext}", encoding="latin-1"), frame)
    (tmp_path / "trail.csv").write_text("a,b\n1,2,\n3,4,\n")
    _compress((tmp_path / "trail.csv").read_bytes(), tmp_path / f"trail.csv{ext}", ext)
    with pytest.warns(UserWarning, match="rows end with a separator"):
        plain = read_table(tmp_path / "trail.csv")
    with pytest.warns(UserWarning, match="rows end with a separator"):
        pd.testing.assert_frame_equal(read_table(tmp_path / f"trail.csv{ext}"), plain)
    assert plain.columns.tolist() == ["a", "b"] and plain["b"].tolist() == [2, 4]


def _compress(data: bytes, path, ext):
    import bz2
    import gzip
    import lzma
    import zipfile

    if ext == ".zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(Path(path).stem, data)
    else:
        path.write_bytes({".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}[ext](data))


def test_read_table_compressed_refusals(tmp_path, monkeypatch):
    import zipfile

    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "p.parquet")
    _compress((tmp_path / "p.parquet").read_bytes(), tmp_path / "p.parquet.gz", ".gz")
    with pytest.raises(ValueError, match="parquet compresses its own columns"):
        read_table(tmp_path / "p.parquet.gz")
    (tmp_path / "r.gz").write_bytes(b"")
    with pytest.raises(ValueError, match=r"unsupported file extension '.gz'; .* optionally compressed \(.csv.gz"):
        read_table(tmp_path / "r.gz")
    (tmp_path / "bad.csv.gz").write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="could not read .*bad.csv.gz' as csv: Not a gzipped file"):
        read_table(tmp_path / "bad.csv.gz")
    with zipfile.ZipFile(tmp_path / "two.csv.zip", "w") as archive:
        archive.writestr("a.csv", "a\n1\n")
        archive.writestr("b.csv", "a\n2\n")
    with pytest.raises(ValueError, match="could not read .*two.csv.zip' as csv: Multiple files"):
        read_table(tmp_path / "two.csv.zip")
    monkeypatch.setitem(sys.modules, "zstandard", None)   # as where it is not installed
    (tmp_path / "r.csv.zst").write_bytes(b"")
    with pytest.raises(ValueError, match=r"reading .zst needs the zstandard package \(pip install zstandard\); or "
                                         "decompress it first"):
        read_table(tmp_path / "r.csv.zst")


def test_read_table_hints_and_folders(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    # a ';' file with a comma inside a field failed in pandas' tokenizer, before the separator check
    (tmp_path / "eu.csv").write_text("name;note;y\nitem 1;plain;1.5\nitem 2;red, large;2.5\n")
    with pytest.raises(ValueError, match=r"its header looks separated by ';', not ',': pass --sep ';'"):
        read_table(tmp_path / "eu.csv")
    # Windows quotes and the euro sign: latin-1, the hint before, reads them as control characters
    (tmp_path / "cp1252.csv").write_bytes(b"note,y\n\x93quoted\x94 \x80 5,1\nplain,2\n")
    with pytest.raises(ValueError, match=r"--encoding cp1252\."):
        read_table(tmp_path / "cp1252.csv")
    assert read_table(tmp_path / "cp1252.csv", encoding="cp1252")["note"][0] == "\u201cquoted\u201d \u20ac 5"
    # a partitioned parquet dataset (partition_cols, Spark) is a folder: refused as "a directory"
    frame = pd.DataFrame({"a": [1, 2, 3, 4], "g": ["x", "y", "x", "y"]})
    frame.to_parquet(tmp_path / "part.parquet", partition_cols=["g"])
    got = read_table(tmp_path / "part.parquet").sort_values("a", ignore_index=True)
    assert got["a"].tolist() == [1, 2, 3, 4] and got["g"].astype(str).tolist() == ["x", "y", "x", "y"]
    (tmp_path / "spark").mkdir()
    frame.to_parquet(tmp_path / "spark" / "part-00000.parquet")
    assert read_table(tmp_path / "spark").shape == (4, 2)
    (tmp_path / "plain").mkdir()
    with pytest.raises(ValueError, match="is a directory, expected a data file"):
        read_table(tmp_path / "plain")
    # duplicate parquet names: pyarrow's whole schema printed before
    pq.write_table(pa.Table.from_arrays([pa.array([1.0, 2.0])] * 3, names=["x", "x", "y"]), tmp_path / "dup.parquet")
    with pytest.raises(ValueError, match=r"^'.*dup.parquet' has duplicate column names; give every column"):
        read_table(tmp_path / "dup.parquet")
    with pytest.raises(ValueError, match="'-': tables are read from files"):   # was "no such file"
        read_table("-")


def test_a_closed_pipe_ends_quietly(monkeypatch, capsys):
    # `lmreg bench ... | head -n1` had printed "lmreg: error: [Errno 32] Broken pipe" with status 2
    import lmreg.bench

    def closed(argv):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(lmreg.bench, "main", closed)
    assert main(["bench"]) == 141
    assert capsys.readouterr().err == ""


def test_read_table_separators_and_encodings(tmp_path):
    frame = pd.DataFrame({"city": ["Zürich", "Oslo"], "price": [1.5, 2.0]})
    frame.to_csv(tmp_path / "semi.csv", sep=";", index=False)
    frame.to_csv(tmp_path / "a.tsv", sep="\t", index=False)
    frame.to_csv(tmp_path / "latin.csv", index=False, encoding="latin-1")
    with pytest.raises(ValueError, match=r"separated by ';'.*--sep ';'"):
        read_table(tmp_path / "semi.csv")
    for got in (read_table(tmp_path / "semi.csv", sep=";"), read_table(tmp_path / "a.tsv"),
                read_table(tmp_path / "a.tsv", sep="\\t"),
                read_table(tmp_path / "latin.csv", encoding="latin-1")):
        pd.testing.assert_frame_equal(got, frame)
    with pytest.raises(ValueError, match=r"not UTF-8 text.*--encoding"):
        read_table(tmp_path / "latin.csv")
    frame.to_json(tmp_path / "latin.jsonl", orient="records", lines=True, force_ascii=False)
    (tmp_path / "latin.jsonl").write_bytes((tmp_path / "latin.jsonl").read_text().encode("latin-1"))
    with pytest.raises(ValueError, match=r"not UTF-8 text.*--encoding"):   # was: "not utf-8-sig text"
        read_table(tmp_path / "latin.jsonl")
    # the byte is the file's, not the offset into the parser's read buffer
    (tmp_path / "late.csv").write_bytes(b"a,b\n" + b"x,1\n" * 400 + b"caf\xe9,2\n")
    with pytest.raises(ValueError, match=r"not UTF-8 text \(.* at byte 1607\)"):
        read_table(tmp_path / "late.csv")
    (tmp_path / "utf16.csv").write_text("city,price\nZürich,1.5\n", encoding="utf-16")   # with its BOM
    with pytest.raises(ValueError, match=r"not UTF-8 text.*--encoding utf-16\."):   # latin-1 read it as garbage
        read_table(tmp_path / "utf16.csv")
    assert read_table(tmp_path / "utf16.csv", encoding="utf-16").columns.tolist() == ["city", "price"]
    # a comma file read with a tab (a .tsv) or --sep ';': "column 'y' not found", no hint
    frame.to_csv(tmp_path / "comma.tsv", index=False)
    for path, sep in ((tmp_path / "comma.tsv", None), (tmp_path / "latin.csv", ";")):
        with pytest.raises(ValueError, match=r"separated by ','.*--sep ','"):
            read_table(path, sep=sep, encoding="latin-1")
    # JSON numbers as Python's json reads them (and the CSV reader): pandas' default is 1 ulp off
    (tmp_path / "precise.jsonl").write_text('{"x": 0.1234567890123456789}\n')
    (tmp_path / "precise.csv").write_text("x\n0.1234567890123456789\n")
    assert read_table(tmp_path / "precise.jsonl")["x"][0] == 0.1234567890123456789 == \
        read_table(tmp_path / "precise.csv")["x"][0]
    with pytest.raises(ValueError, match="--encoding 'klingon'"):
        read_table(tmp_path / "latin.csv", encoding="klingon")
    pd.DataFrame({"a;b": ["x"]}).to_csv(tmp_path / "one.csv", index=False)  # a real one-column file
    assert list(read_table(tmp_path / "one.csv").columns) == ["a;b"]
    # decimal commas: pandas splits the rows at them and moves the extra fields into the index
    (tmp_path / "decimal.csv").write_text("name;size;y\nitem 0;0,637;2,70\nitem 1;0,5;3,1\n")
    with pytest.raises(ValueError, match=r"separated by ';'.*--sep ';' \(and --decimal ','"):
        read_table(tmp_path / "decimal.csv")
    (tmp_path / "decimal2.csv").write_text("name;y\nx;1,5\ny;2,5\n")   # one field more: a plain index of text
    with pytest.raises(ValueError, match=r"separated by ';'.*--sep ';' \(and --decimal ','"):
        read_table(tmp_path / "decimal2.csv")
    got = read_table(tmp_path / "decimal.csv", sep=";", decimal=",")
    assert got["size"].tolist() == [0.637, 0.5] and got["y"].tolist() == [2.7, 3.1]
    # a longer separator is literal text: pandas alone reads it as a regex ('||' splits at every
    # character, '**' does not compile)
    for sep in ("::", "||", "**"):
        (tmp_path / "long.csv").write_text(f"a{sep}b{sep}y\n1{sep}x.5{sep}3\n")
        got = read_table(tmp_path / "long.csv", sep=sep, decimal=".")
        assert got.columns.tolist() == ["a", "b", "y"] and got.values.tolist() == [[1, "x.5", 3]]
    with pytest.raises(ValueError, match="--sep must not be empty"):
        read_table(tmp_path / "long.csv", sep="")


def test_na_texts_replace_pandas_defaults(tmp_path):
    """--na: a region "NA" (North America) is a category, not pandas' missing value."""
    (tmp_path / "r.csv").write_text("region,note,y\nNA,null,1\nEU,-,2\n,x,3\n")
    default = read_table(tmp_path / "r.csv")
    assert default["region"].isna().tolist() == [True, False, True] and default["note"].isna().tolist()[0]
    kept = read_table(tmp_path / "r.csv", na_values=[])
    assert kept["region"].tolist()[:2] == ["NA", "EU"] and kept["note"].tolist() == ["null", "-", "x"]
    assert kept["region"].isna().tolist() == [False, False, True]   # an empty field stays missing
    dash = read_table(tmp_path / "r.csv", na_values=["-", "null"])
    assert dash["note"].isna().tolist() == [True, True, False] and dash["region"].tolist()[0] == "NA"
    parse = build_parser().parse_args
    assert parse(["evaluate", "m", "d.csv", "--na", ""]).na == []
    for text, values in (("", []), ("-,null", ["-", "null"]), ("n/a", ["n/a"])):
        for command in (["fit", "d.csv", "--target", "y", "--out", "m"], ["predict", "m", "d.csv", "--out", "p.csv"],
                        ["evaluate", "m", "d.csv"]):
            assert parse(command + [f"--na={text}"]).na == values   # '=': argparse reads '-,null' as a flag
    assert parse(["evaluate", "m", "d.csv"]).na is None   # pandas' defaults


def test_cli_reads_semicolon_csv(tmp_path, capsys):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=60), "y": rng.normal(size=60)})
    df.to_csv(tmp_path / "t.csv", sep=";", index=False)
    common = ["--param", "max_time=none", "max_epochs=1", "n_samples=2", "--quiet"]
    assert main(["fit", str(tmp_path / "t.csv"), "--target", "y", "--out", str(tmp_path / "m")] + common) == 2
    assert "--sep ';'" in capsys.readouterr().err
    assert main(["fit", str(tmp_path / "t.csv"), "--target", "y", "--out", str(tmp_path / "m"),
                 "--sep", ";"] + common) == 0
    assert main(["predict", str(tmp_path / "m"), str(tmp_path / "t.csv"), "--sep", ";",
                 "--out", str(tmp_path / "p.csv"), "--quiet"]) == 0
    assert len(pd.read_csv(tmp_path / "p.csv")) == 60
    assert main(["evaluate", str(tmp_path / "m"), str(tmp_path / "t.csv"), "--sep", ";"]) == 0


def test_python_m_lmreg_help():
    proc = subprocess.run([sys.executable, "-m", "lmreg", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "evaluate" in proc.stdout


def test_json_lines_are_records_at_predict(tmp_path, capsys):
    """A JSON-lines file may lack a key some training rows had (it reads as missing) or add one."""
    rows = [{"text": f"item {i % 5}", "info": {"a": i % 3}, **({"opt": i % 4} if i % 2 else {}), "y": float(i % 5)}
            for i in range(40)]
    pd.DataFrame(rows).to_json(tmp_path / "train.jsonl", orient="records", lines=True)
    learns = ["--threads", "1", "--param", "hidden_size=32", "num_layers=1", "num_heads=2", "n_samples=4",
              "random_state=0", "max_time=none", "max_epochs=40", "validation_fraction=0.25"]
    assert main(["fit", str(tmp_path / "train.jsonl"), "--target", "y", "--out", str(tmp_path / "m"), *learns]) == 0
    new = [{"text": "item 2", "info": {"a": 1}, "source": "web"}, {"text": "item 4", "info": {"a": 0}}]
    pd.DataFrame(new).to_json(tmp_path / "new.jsonl", orient="records", lines=True)
    assert main(["predict", str(tmp_path / "m"), str(tmp_path / "new.jsonl"), "--out", str(tmp_path / "p.csv")]) == 0
    est = lmreg.load(tmp_path / "m")
    assert est.serializer_.kinds_.keys() >= {"info.a", "opt"}   # nested objects flatten, as records do
    pred = pd.read_csv(tmp_path / "p.csv")["prediction"]
    np.testing.assert_allclose(pred, est.predict(new))
    assert not est.fallback_ and pred[0] != pred[1]   # the rows were read, not a constant
    # a misspelled key warns, as it does for records in Python (the CLI had matched it silently)
    pd.DataFrame([{"Text": "item 2", "info": {"a": 1}}]).to_json(tmp_path / "typo.jsonl", orient="records", lines=True)
    with pytest.warns(UserWarning, match=r"typo.jsonl'.s records have field.*'Text' \(did you mean 'text'\?\)"):
        main(["predict", str(tmp_path / "m"), str(tmp_path / "typo.jsonl"), "--out", str(tmp_path / "q.csv")])
    # compressed JSON lines are records too (new.jsonl.gz without "opt": no "lacks column(s)")
    pd.DataFrame(new).to_json(tmp_path / "new.jsonl.gz", orient="records", lines=True)
    assert main(["predict", str(tmp_path / "m"), str(tmp_path / "new.jsonl.gz"), "--out", str(tmp_path / "z.csv")]) == 0
    np.testing.assert_allclose(pd.read_csv(tmp_path / "z.csv")["prediction"], pred)


def test_nested_and_flat_fields_are_one_input_across_files(tmp_path, capsys):
    """A model fitted on a CSV's ``meta.a`` reads JSON lines' ``{"meta": {"a": ...}}`` and back,
    as ``predict`` does in Python; they used to be missing columns (every row's meta missing)."""
    flat = pd.DataFrame({"meta.a": np.arange(40) % 4, "meta.b": [f"k{i % 3}" for i in range(40)],
                         "y": (np.arange(40) % 4) * 10.0})
    flat.to_csv(tmp_path / "train.csv", index=False)
    learns = ["--threads", "1", "--param", "hidden_size=32", "num_layers=1", "num_heads=2", "n_samples=4",
              "random_state=0", "max_time=none", "max_epochs=30", "validation_fraction=0.25"]
    assert main(["fit", str(tmp_path / "train.csv"), "--target", "y", "--out", str(tmp_path / "m"), *learns]) == 0
    est = lmreg.load(tmp_path / "m")
    rows = flat.iloc[:4].drop(columns="y")
    nested = [{"meta": {"a": int(a), "b": b}} for a, b in zip(rows["meta.a"], rows["meta.b"])]
    pd.DataFrame(nested).to_json(tmp_path / "new.jsonl", orient="records", lines=True)
    assert main(["predict", str(tmp_path / "m"), str(tmp_path / "new.jsonl"), "--out", str(tmp_path / "p.csv")]) == 0
    pred = pd.read_csv(tmp_path / "p.csv")["prediction"].to_numpy()
    np.testing.assert_allclose(pred, est.predict(rows))
    assert not np.allclose(pred, est.predict(rows.assign(**{"meta.a": None, "meta.b": None})))   # meta was read
    # a nested dict without "b": meta.b reads as missing, as for records in Python
    pd.DataFrame([{"meta": {"a": 1}}]).to_json(tmp_path / "part.jsonl", orient="records", lines=True)
    assert main(["predict", str(tmp_path / "m"), str(tmp_path / "part.jsonl"), "--out", str(tmp_path / "q.csv")]) == 0
    np.testing.assert_allclose(pd.read_csv(tmp_path / "q.csv")["prediction"],
                               est.predict(pd.DataFrame({"meta.a": [1], "meta.b": [None]})))

    # fitted on JSON lines' nested records, a CSV gives the flat columns
    pd.DataFrame([{"meta": {"a": int(a), "b": b}, "y": y} for a, b, y in flat.to_numpy()]).to_json(
        tmp_path / "train.jsonl", orient="records", lines=True)
    assert main(["fit", str(tmp_path / "train.jsonl"), "--target", "y", "--out", str(tmp_path / "n"), *learns]) == 0
    est = lmreg.load(tmp_path / "n")
    assert list(est.feature_names_in_) == ["meta"]
    rows.to_csv(tmp_path / "new.csv", index=False)
    assert main(["predict", str(tmp_path / "n"), str(tmp_path / "new.csv"), "--out", str(tmp_path / "r.csv")]) == 0
    np.testing.assert_allclose(pd.read_csv(tmp_path / "r.csv")["prediction"], est.predict(nested))
    # a table must give every field: the one it lacks is named
    rows.drop(columns="meta.b").to_csv(tmp_path / "part.csv", index=False)
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "n"), str(tmp_path / "part.csv"), "--out", str(tmp_path / "s.csv")]) == 2
    assert "lacks column(s) the model was trained on: meta.b" in capsys.readouterr().err
    assert not (tmp_path / "s.csv").exists()


def test_predict_refuses_a_multi_target_model(tmp_path, capsys):
    X = pd.DataFrame({"x": np.arange(30.0)})
    est = LMRegressor(max_time=None, max_epochs=1, n_samples=2, random_state=0)
    est.fit(X, np.stack([np.arange(30.0), -np.arange(30.0)], axis=1)).save(tmp_path / "m")
    X.to_csv(tmp_path / "x.csv", index=False)
    assert main(["predict", str(tmp_path / "m"), str(tmp_path / "x.csv"), "--out", str(tmp_path / "p.csv")]) == 2
    assert "fitted on a 2-D y (2 target column(s))" in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists()


def test_a_model_of_one_target_column_predicts_and_evaluates(tmp_path, capsys):
    """est.fit(X, df[["y"]]) is one target: the command line refused it as a 2-D y."""
    df = pd.DataFrame({"x": np.arange(30.0) % 5, "y": (np.arange(30.0) % 5) * 2})
    est = LMRegressor(max_time=None, max_epochs=2, n_samples=4, random_state=0, hidden_size=32, num_layers=1,
                      num_heads=2).fit(df[["x"]], df[["y"]])
    est.save(tmp_path / "m")
    df.to_csv(tmp_path / "d.csv", index=False)
    df[["x"]].to_csv(tmp_path / "x.csv", index=False)
    out = tmp_path / "p.csv"
    assert main(["predict", str(tmp_path / "m"), str(tmp_path / "x.csv"), "--out", str(out), "--quantiles",
                 "0.1,0.9", "--quiet"]) == 0
    got = pd.read_csv(out)
    assert got.columns.tolist() == ["prediction", "q0.1", "q0.9"] and len(got) == 30
    np.testing.assert_allclose(got["prediction"], est.predict(df[["x"]])[:, 0])
    assert main(["evaluate", str(tmp_path / "m"), str(tmp_path / "d.csv"), "--target", "y"]) == 0
    assert "coverage80" in capsys.readouterr().out


def test_bad_target_and_weight_values_name_their_columns(tmp_path, capsys):
    pd.DataFrame({"a": [1, 2, 3, 4], "price": ["2", "x", "4", "5"], "w": [1, 1, 1, 1]}).to_csv(
        tmp_path / "t.csv", index=False)
    pd.DataFrame({"a": [1, 2, 3, 4], "price": [2, 3, 4, 5], "w": [1, 1, -1, 1]}).to_csv(
        tmp_path / "w.csv", index=False)
    assert main(["fit", str(tmp_path / "t.csv"), "--target", "price", "--out", str(tmp_path / "m"), *FAST]) == 2
    assert "'price' column (y): y must be numeric" in capsys.readouterr().err
    assert main(["fit", str(tmp_path / "w.csv"), "--target", "price", "--weight", "w", "--out", str(tmp_path / "m"),
                 *FAST]) == 2
    assert "'w' column (sample_weight): sample_weight has 1 negative value(s)" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_fit_out_refuses_a_link_and_writes_its_record_inside_the_atomic_save(data, fitted, tmp_path,
                                                                              monkeypatch, capsys):
    from lmreg import persistence

    model, _, _ = fitted
    before = (model / "config.json").read_bytes()
    (tmp_path / "link").symlink_to(model, target_is_directory=True)
    args = ["fit", str(data / "data.csv"), "--target", TARGET, *FAST]
    assert main([*args, "--out", str(tmp_path / "link")]) == 2   # before fitting: the link was followed
    assert "is a symbolic link" in capsys.readouterr().err
    assert (model / "config.json").read_bytes() == before and (tmp_path / "link").is_symlink()
    moved = []
    real = persistence._move_into_place
    monkeypatch.setattr(persistence, "_move_into_place", lambda tmp, path: (moved.append(sorted(
        p.name for p in tmp.iterdir())), real(tmp, path)))
    pd.read_csv(data / "data.csv").assign(w=1.0).to_csv(tmp_path / "w.csv", index=False)
    args[1] = str(tmp_path / "w.csv")
    assert main([*args, "--weight", "w", "--out", str(tmp_path / "m"), "--quiet"]) == 0
    assert moved == [["cli.json", "config.json", "model.safetensors"]]   # renamed into place with the weights
    assert json.loads((tmp_path / "m" / "cli.json").read_text()) == {"target": TARGET, "weight": "w"}


def test_predict_writes_through_a_temporary_file(data, fitted, tmp_path, monkeypatch, capsys):
    model, _, _ = fitted
    out = tmp_path / "pred.csv"
    out.write_text("earlier\n")
    out.chmod(0o600)   # private predictions stay private: the file's own mode is kept

    def fails(self, path, *args, **kwargs):
        Path(path).write_text("prediction\n0.1\n")   # part written, then the disk fills
        raise OSError(28, "No space left on device", str(path))

    with monkeypatch.context() as m:
        m.setattr(pd.DataFrame, "to_csv", fails)
        assert main(["predict", str(model), str(data / "data.csv"), "--out", str(out), "--quiet"]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert out.read_text() == "earlier\n" and sorted(p.name for p in tmp_path.iterdir()) == ["pred.csv"]
    (tmp_path / "link.csv").symlink_to(out)   # a link is written through, as a plain write would be
    assert main(["predict", str(model), str(data / "data.csv"), "--out", str(tmp_path / "link.csv"),
                 "--quiet"]) == 0
    assert (tmp_path / "link.csv").is_symlink() and len(pd.read_csv(out)) == 60
    assert out.stat().st_mode & 0o777 == 0o600   # (the rename had reset it to the umask's 0644)
    assert main(["predict", str(model), str(data / "data.csv"), "--out", str(tmp_path / "new.csv"), "--quiet"]) == 0
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "new.csv").stat().st_mode & 0o777 == 0o666 & ~umask   # a new file: not mkstemp's 0600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.csv", "new.csv", "pred.csv"]


@pytest.mark.parametrize("error, expected", [(RuntimeError("mat1 and mat2 shapes cannot be multiplied"),
                                              "RuntimeError: mat1 and mat2 shapes"),
                                             (MemoryError(), "out of memory")])
def test_runtime_failures_exit_1_with_a_message(data, fitted, monkeypatch, capsys, error, expected):
    import lmreg.cli

    def fails(args):
        raise error

    monkeypatch.setattr(lmreg.cli, "_evaluate", fails)
    model, _, _ = fitted
    assert main(["evaluate", str(model), str(data / "data.csv")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"lmreg: error: {expected}") and "LMREG_DEBUG=1" in err and "Traceback" not in err
    monkeypatch.setenv("LMREG_DEBUG", "1")
    with pytest.raises(type(error)):
        main(["evaluate", str(model), str(data / "data.csv")])


def test_csv_rows_longer_than_the_header_and_duplicate_headers(tmp_path):
    """pandas took the first field of rows longer than the header as the index and shifted every
    value one column left (predict exited 0 with wrong numbers), and renamed a second 'y' to
    'y.1' (the target's copy among the inputs). Decided from the raw fields: an integer first
    column gave pandas a RangeIndex, which an index test let through."""
    def write(name, text):
        (tmp_path / name).write_text(text)
        return tmp_path / name

    for first, expected in (("item {i}", ["item 0", "item 1", "item 2"]), ("{i}", [0, 1, 2])):
        trailing = write("trail.csv", "id,x\n" + "".join(f"{first.format(i=i)},{i}.5,\n" for i in range(3)))
        with pytest.warns(UserWarning, match="rows end with a separator its header does not"):
            got = read_table(trailing)
        assert got.to_dict("list") == {"id": expected, "x": [0.5, 1.5, 2.5]}
    for text, extra in (('text,x\n"r1",a,0.5\n"r2",b,1.5\n', 1),     # R's write.table row names
                        ('text,x\n"r1",a,NA\n"r2",b,NA\n', 1),      # NA is a value, not an empty field
                        ("id,x\n" + "".join(f"{i},{i}.5,\n" for i in range(300)) + "300,1.5,LOST\n", 1),
                        ("x,y\na,b,1,2\n", 2)):                     # (a value dropped after 300 rows)
        with pytest.raises(ValueError, match=fr"rows have {extra} field\(s\) more than its header names \(2\)"):
            read_table(write("rnames.csv", text))
    with pytest.warns(UserWarning, match="rows end with a separator"):   # the first row only: pandas' cue
        assert read_table(write("first.csv", "x,y,z\n1,2,3,\n4,5,6\n")).to_dict("list") == {
            "x": [1, 4], "y": [2, 5], "z": [3, 6]}
    long = read_table(write("long.csv", 't,y\n"' + "a" * 200_000 + '",1\n'))   # over the csv module's limit
    assert len(long["t"][0]) == 200_000
    (tmp_path / "bom.csv").write_text("\ufeffy,y\n1,2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="duplicate column name"):
        read_table(tmp_path / "bom.csv", encoding="utf-8")
    with pytest.raises(ValueError, match="duplicate column name\\(s\\) in its header: y;"):
        read_table(write("dup.csv", "text,y,y\na,1,2\nb,3,4\n"))
    assert read_table(write("dots.csv", "x,x.1,,\n1,2,,\n3,4,,\n")).columns.tolist()[:2] == ["x", "x.1"]
    with pytest.raises(ValueError, match="--sep and --decimal are both ','"):
        read_table(trailing, sep=",", decimal=",")
    # rows shorter than the header (trailing empty fields left out) and lines of blanks read as
    # pandas reads them; they were refused with "-1 field(s) more" (or "1 more", a blank line first)
    assert read_table(write("short.csv", "a,b\n1.5\n2.5,y\n")).fillna("NA").to_dict("list") == {
        "a": [1.5, 2.5], "b": ["NA", "y"]}
    for text in ("a,b\n   \n1.5,x\n", "  \na,b\n1.5,x\n", "\t\na,b\n1.5,x\n"):
        assert read_table(write("blank.csv", text)).to_dict("list") == {"a": [1.5], "b": ["x"]}
    # one record written over several lines (json.dump with indent) is one row, read as a line would be
    (tmp_path / "one.json").write_text(json.dumps({"a": 1.5, "meta": {"k": 2}}, indent=2))
    (tmp_path / "one.jsonl").write_text(json.dumps({"a": 1.5, "meta": {"k": 2}}) + "\n")
    pd.testing.assert_frame_equal(read_table(tmp_path / "one.json"), read_table(tmp_path / "one.jsonl"))
    (tmp_path / "half.json").write_text('{"a":\n')
    with pytest.raises(ValueError, match="one array of objects, or one object"):
        read_table(tmp_path / "half.json")
    (tmp_path / "num.jsonl").write_text('{"1": "a", "3": 0.5}\n{"1": "b", "3": 1.5}\n')
    assert read_table(tmp_path / "num.jsonl").columns.tolist() == ["1", "3"]   # --target 3 was "not found"


def test_unnamed_columns_are_inputs_only_of_a_model_fitted_on_them(tmp_path, capsys):
    """to_csv's row numbers were learned as a feature; a later file written the same way (other
    row numbers, or one row) then did or did not carry them depending on its values."""
    frame = pd.DataFrame({"text": [f"item {i % 4}" for i in range(40)], "y": np.arange(40.0) % 4})
    frame.to_csv(tmp_path / "train.csv")   # index=True: an unnamed first column 0..39
    (tmp_path / "train.csv").write_text((tmp_path / "train.csv").read_text().replace("\n", ",\n"))
    fast = ["--time", "3", "--threads", "1", "--quiet", "--param", "hidden_size=16", "num_layers=1", "num_heads=2",
            "n_samples=2", "random_state=0"]
    with pytest.warns(UserWarning, match=r"not read as inputs: the row numbers .*; 1 empty column\(s\)"):
        assert main(["fit", str(tmp_path / "train.csv"), "--target", "y", "--out", str(tmp_path / "m"), *fast]) == 0
    assert list(lmreg.load(tmp_path / "m").feature_names_in_) == ["text"]
    frame.iloc[30:31].drop(columns="y").to_csv(tmp_path / "one.csv")   # row number 30, one row
    assert main(["predict", str(tmp_path / "m"), str(tmp_path / "one.csv"), "--out", str(tmp_path / "p.csv"),
                 "--quiet"]) == 0
    # a model fitted (in Python) on such a column keeps it as an input
    est = LMRegressor(max_time=None, max_epochs=1, hidden_size=16, num_layers=1, num_heads=2, n_samples=2)
    est.fit(frame.drop(columns="y").rename_axis(None).reset_index().rename(columns={"index": "Unnamed: 0"}),
            frame["y"]).save(tmp_path / "old")
    assert main(["predict", str(tmp_path / "old"), str(tmp_path / "one.csv"), "--out", str(tmp_path / "q.csv"),
                 "--quiet"]) == 0
    assert "error" not in capsys.readouterr().err
    # the row numbers of concatenated frames repeat: kept as an input (they may be data), said so
    pd.concat([frame[:20], frame[20:].reset_index(drop=True)]).to_csv(tmp_path / "concat.csv")
    with pytest.warns(UserWarning, match="unnamed first column of integers repeats values, so it is read as an input"):
        assert main(["fit", str(tmp_path / "concat.csv"), "--target", "y", "--out", str(tmp_path / "c"), *fast]) == 0
    assert list(lmreg.load(tmp_path / "c").feature_names_in_) == ["Unnamed: 0", "text"]


def test_output_and_model_paths(data, fitted, tmp_path, monkeypatch, capsys):
    model, _, _ = fitted
    (tmp_path / "adir.csv").mkdir()
    cases = [(["predict", str(model), str(data / "data.csv"), "--out", str(tmp_path / "adir.csv")],
              "is a folder; name the file to write"),   # was the temporary file's name
             (["predict", str(model), str(data / "data.csv"), "--out", str(model / "p.csv")],
              "is inside the saved model"),             # a later fit --out could not replace the model
             (["evaluate", str(model), str(data / "data.csv"), "--target", "text"],
              "--target 'text' is one of the model's input columns; name the column of the true values "
              f"(fit's target was '{TARGET}')")]
    for argv, expected in cases:
        assert main(argv) == 2
        assert expected in capsys.readouterr().err
    (tmp_path / "project").mkdir()   # a folder with some other config.json is not a model
    (tmp_path / "project" / "config.json").write_text('{"eslint": 1}')
    assert main(["predict", str(model), str(data / "data.csv"), "--out", str(tmp_path / "project" / "p.csv"),
                 "--quiet"]) == 0
    monkeypatch.setenv("HOME", str(tmp_path))   # ~ as fit --out reads it, for predict's paths too
    (tmp_path / "m").symlink_to(model, target_is_directory=True)
    assert main(["predict", "~/m", str(data / "data.csv"), "--out", "~/p.csv", "--quiet"]) == 0
    assert len(pd.read_csv(tmp_path / "p.csv")) == 60
    pd.read_csv(data / "data.csv").head(1).to_csv(tmp_path / "one.csv", index=False)
    assert main(["evaluate", str(model), str(tmp_path / "one.csv")]) == 0
    out = capsys.readouterr().out
    assert "R2          undefined (one row)" in out and "(constant target)" not in out
    pd.read_csv(data / "data.csv").head(0).to_csv(tmp_path / "header.csv", index=False)
    assert main(["fit", str(tmp_path / "header.csv"), "--target", TARGET, "--out", str(tmp_path / "m2")]) == 2
    assert f"'{tmp_path / 'header.csv'}' has no rows." in capsys.readouterr().err   # was sklearn's "X is empty"


def test_evaluate_refuses_a_field_of_a_model_fitted_on_records_and_an_empty_file(tmp_path, capsys):
    rows = [{"size": float(i % 7), "kind": "ab"[i % 2], "price": 2.0 * (i % 7)} for i in range(40)]
    est = LMRegressor(max_time=None, max_epochs=1, random_state=0, hidden_size=16, num_layers=1, num_heads=2)
    est.fit([{k: r[k] for k in ("size", "kind")} for r in rows], [r["price"] for r in rows]).save(tmp_path / "m")
    pd.DataFrame(rows).to_json(tmp_path / "rows.jsonl", orient="records", lines=True)
    # records have no feature_names_in_: "size" was dropped as the target and scored as missing
    assert main(["evaluate", str(tmp_path / "m"), str(tmp_path / "rows.jsonl"), "--target", "size"]) == 2
    assert "--target 'size' is one of the model's input columns" in capsys.readouterr().err
    (tmp_path / "empty.jsonl").write_text("")
    assert main(["evaluate", str(tmp_path / "m"), str(tmp_path / "empty.jsonl"), "--target", "price"]) == 2
    assert "empty.jsonl' has no rows." in capsys.readouterr().err   # was: "available columns: ."


def test_column_lists_show_the_spaces_of_a_header_and_suggest_the_target(tmp_path, capsys):
    (tmp_path / "t.csv").write_text("name, size, price\n" + "".join(f"n{i}, {i}, {2 * i}\n" for i in range(30)))
    out = str(tmp_path / "m")
    assert main(["fit", str(tmp_path / "t.csv"), "--target", "price", "--out", out, *FAST]) == 2
    err = capsys.readouterr().err   # was: "available columns: name,  size,  price" (price seemed there)
    assert "target column 'price' not found in" in err and "(did you mean ' price'?)" in err
    assert "available columns: name, ' size', ' price'." in err
    assert main(["fit", str(tmp_path / "t.csv"), "--target", " price", "--weight", "size", "--out", out, *FAST]) == 2
    assert "weight column 'size' not found in" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_a_data_argument_taken_by_param_gets_a_hint(tmp_path, capsys):
    argv = ["fit", "--target", "y", "--out", str(tmp_path / "m"), "--param", "max_epochs=1", "t.csv"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "required: DATA" in err and "put DATA before --param, or end the NAME=VALUE list with --" in err
    assert build_parser().parse_args(argv[:-1] + ["--", "t.csv"]).data == "t.csv"   # what the hint says works
    assert main(["fit", "--target", "y", "--param", "max_epochs=1"]) == 2   # all NAME=VALUE: no hint
    assert "hint" not in capsys.readouterr().err


def test_warnings_of_the_command_line_name_lmreg_not_a_source_line(data, fitted, tmp_path):
    model, _, _ = fitted
    rows = pd.read_parquet(data / "inputs.pq").astype({"is_reply": object})
    rows.loc[3, "is_reply"] = "zz"
    rows.to_csv(tmp_path / "rows.csv", index=False)
    run = subprocess.run([sys.executable, "-W", "always", "-m", "lmreg", "predict", str(model),
                          str(tmp_path / "rows.csv"), "--out", str(tmp_path / "p.csv"), "--quiet"],
                         capture_output=True, text=True, env={**os.environ, "TRITON_INTERPRET": "1"}, timeout=300)
    assert run.returncode == 0, run.stderr
    lines = [line for line in run.stderr.splitlines() if "could not be read as numbers" in line]
    assert lines and lines[0].startswith("lmreg: warning: 1 of 60 values of the num column 'is_reply'"), run.stderr
    assert "runpy" not in run.stderr and "UserWarning" not in run.stderr


def test_a_nested_target_of_json_lines_is_named_by_its_dotted_path(tmp_path, capsys):
    rows = [{"x": i % 9, "label": {"y": 2.0 * (i % 9), "src": "ab"[i % 2]}} for i in range(40)]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    model = str(tmp_path / "m")
    # was: "target column 'label.y' not found ...; available columns: x, label"
    small = ["--param", "max_time=none", "max_epochs=3", "random_state=0", "hidden_size=32", "num_layers=1", "num_heads=2", "--quiet"]
    assert main(["fit", str(tmp_path / "t.jsonl"), "--target", "label.y", "--out", model, *small]) == 0
    est = lmreg.load(model)
    assert set(est.serializer_.kinds_) == {"x", "label.src"} and not est.fallback_   # the target is no input
    assert main(["predict", model, str(tmp_path / "t.jsonl"), "--out", str(tmp_path / "p.csv"), "--quiet"]) == 0
    np.testing.assert_array_equal(pd.read_csv(tmp_path / "p.csv")["prediction"],
                                  est.predict([{"x": r["x"], "label": {"src": r["label"]["src"]}} for r in rows]))
    capsys.readouterr()
    assert main(["evaluate", model, str(tmp_path / "t.jsonl")]) == 0
    assert "rows        40" in capsys.readouterr().out
    assert main(["fit", str(tmp_path / "t.jsonl"), "--target", "label.z", "--out", model, *FAST]) == 2
    assert "target column 'label.z' not found" in capsys.readouterr().err
