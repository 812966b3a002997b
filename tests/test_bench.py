"""The benchmark harness: every model, JSON + markdown + plots, and the CLI entry point."""

import json

import numpy as np
import pytest

from lmreg.baselines import BASELINES, TabularFeatures, make_baseline
from lmreg.bench import MODELS, markdown_table, run_benchmark
from lmreg.cli import main
from lmreg.datasets import load_dataset


def test_every_baseline_fits_mixed_rows():
    X, y = load_dataset("tweets_engagement", max_rows=300)   # text + datetime + category
    Xt, _ = load_dataset("tweets_engagement", "test", max_rows=20)
    for name in BASELINES:
        pred = make_baseline(name).fit(X, y).predict(Xt)
        assert pred.shape == (20,) and np.isfinite(pred).all(), name
    with pytest.raises(ValueError, match="unknown baseline"):
        make_baseline("xgboost")


@pytest.mark.parametrize("columns", [["a", "empty", "c"], ["empty"]])
def test_baselines_fit_a_numeric_column_without_values(columns):
    import pandas as pd

    X = pd.DataFrame({"a": np.arange(60.0), "empty": np.nan, "c": list("xyz") * 20})[columns]
    y = np.arange(60.0) % 7
    for name in ("hgb", "knn") + (("lgbm",) if "lgbm" in BASELINES else ()):
        pred = make_baseline(name).fit(X, y).predict(X)   # hgb failed inside scikit-learn's binning
        assert pred.shape == (60,) and np.isfinite(pred).all(), name
        if columns == ["empty"] and name != "knn":   # nothing to split on: the training mean
            np.testing.assert_allclose(pred, y.mean())
    assert TabularFeatures().fit(X).transform(X).shape[1] == {3: 2, 1: 1}[len(columns)]


def test_tabular_features_mark_categories_and_embed_text():
    X, _ = load_dataset("tweets_engagement", max_rows=200)
    f = TabularFeatures(svd_components=4).fit(X)
    F = f.transform(X)
    assert F.shape == (200, len(f.categorical_mask_)) and f.categorical_mask_.any()
    # unseen category -> NaN, not an error
    unseen = X.head(1).copy()
    unseen["source"] = "never seen"
    col = int(np.flatnonzero(f.categorical_mask_)[0])
    assert np.isnan(f.transform(unseen)[0, col])


def test_run_writes_records_table_and_plots(tmp_path):
    out = tmp_path / "acc.json"
    records = run_benchmark(["diabetes"], models=list(MODELS), max_time=4, n_samples=4, out=str(out),
                            train_rows=200, test_rows=40, verbose=False)
    saved = json.loads(out.read_text())
    assert [r["model"] for r in saved] == list(MODELS) == [r["model"] for r in records]
    for r in saved:
        assert {"r2", "spearman", "rmse", "mae", "fit_s", "predict_s", "peak_mb", "env"} <= set(r)
        assert r["env"]["threads"] == 1 and r["n_train"] == 200 and r["n_test"] == 40
    lm = saved[0]
    assert {"crps", "coverage80", "reliability", "steps", "y_test", "pred"} <= set(lm)
    assert len(lm["pred"]) == 40 and set(lm["reliability"]) >= {"0.1", "0.5", "0.9"}
    table = markdown_table(saved).splitlines()
    assert len(table) == 2 + len(MODELS) and table[2].startswith("| diabetes | lmreg |")
    from lmreg.plots import plot_all

    paths = plot_all(saved, tmp_path / "img")
    assert [p.name for p in paths] == ["r2_by_dataset.png", "pred_vs_actual.png", "reliability.png",
                                       "time_vs_accuracy.png"]
    assert all(p.stat().st_size > 5000 for p in paths)


def _plot_records():
    lm = dict(dataset="d", model="lmreg", r2=0.5, fit_s=2.0, y_test=[1.0, 2.0, 3.0], pred=[1.2, 1.9, 3.1],
              reliability={"0.1": 0.1, "0.5": 0.6, "0.9": 0.8})
    return [lm, dict(dataset="d", model="mean", r2=0.0, fit_s=0.01)]


@pytest.fixture
def user_pyplot():
    """pyplot as a user may have it: a backend other than Agg, and a figure open; restored after."""
    mpl = pytest.importorskip("matplotlib")
    plt = pytest.importorskip("matplotlib.pyplot")
    before = mpl.get_backend()
    mpl.use("pdf")
    fig = plt.figure()
    yield plt, fig
    plt.close("all")
    mpl.use(before)


def test_plot_all_reads_records_back_from_json_with_nulls(tmp_path):
    """bench writes NaN as null: an undefined R^2, a missing prediction, no fit time."""
    pytest.importorskip("matplotlib")
    from lmreg.plots import plot_all

    lm, mean = _plot_records()
    lm.update(pred=[1.2, None, 3.1], reliability={"0.1": None, "0.5": 0.6, "0.9": 0.8})
    records = [lm, mean, dict(mean, dataset="e", r2=None, fit_s=None)]
    back = json.loads(json.dumps(records))
    paths = plot_all(back, tmp_path)   # was: TypeError comparing None with a float
    assert [p.name for p in paths] == ["r2_by_dataset.png", "pred_vs_actual.png", "reliability.png",
                                       "time_vs_accuracy.png"]
    assert all(p.stat().st_size > 0 for p in paths) and back[0]["pred"][1] is None   # records left as they were


def test_plots_leave_backend_and_pyplot_alone(tmp_path, user_pyplot):
    import matplotlib

    from lmreg.plots import plot_all

    plt, fig = user_pyplot
    paths = plot_all(_plot_records(), tmp_path)   # all four figures
    assert len(paths) == 4 and all(p.stat().st_size > 5000 for p in paths)
    assert matplotlib.get_backend() == "pdf"
    assert plt.get_fignums() == [fig.number]   # none added, the user's own not closed


def test_failed_plot_leaves_no_open_figure(tmp_path, user_pyplot):
    from lmreg.plots import plot_all

    plt, fig = user_pyplot
    records = _plot_records()
    records[0]["reliability"] = {"median": 0.5}   # not a quantile level: fails in the third figure
    with pytest.raises(ValueError, match="median"):
        plot_all(records, tmp_path)
    assert plt.get_fignums() == [fig.number]


@pytest.mark.parametrize("change, error, match", [
    (lambda rs: [], ValueError, "no benchmark records to plot"),
    (lambda rs: [{k: v for k, v in rs[1].items() if k != "r2"}], ValueError, "record 0 has no 'r2' field"),
    (lambda rs: [{k: v for k, v in rs[0].items() if k != "pred"}], ValueError, "record 0 has no 'pred' field"),
    (lambda rs: [rs[0] | {"y_test": []}], ValueError, "'y_test' holds no finite value"),
    (lambda rs: [rs[0] | {"pred": [np.nan] * 3}], ValueError, "'pred' holds no finite value"),
    (lambda rs: [r | {"r2": np.nan} for r in rs], ValueError, "'r2' is NaN"),
    (lambda rs: [rs[1] | {"model": "xgboost"}], ValueError, "no benchmark record of a known model"),
    (lambda rs: [rs[0], 1], TypeError, "record 1 is not a dict"),
    (lambda rs: [rs[0] | {"reliability": None}], ValueError, "'reliability' must map quantile levels"),
    # these two failed inside matplotlib after the first plots were written
    (lambda rs: [rs[1], rs[0] | {"pred": rs[0]["pred"][:2]}], ValueError,
     r"'y_test' and 'pred' differ in shape \(\(3,\) and \(2,\)\)"),
    (lambda rs: [rs[1], rs[0] | {"reliability": {"q10": 0.1}}], ValueError,
     r"in \[0, 1\] to coverage; got 'q10': 0.1"),
], ids=["empty", "no-r2", "no-pred", "empty-y", "nan-pred", "nan-r2", "unknown-model", "not-a-dict", "no-levels",
        "ragged", "level-name"])
def test_plot_all_rejects_empty_or_malformed_records(tmp_path, change, error, match):
    from lmreg.plots import plot_all

    with pytest.raises(error, match=match):
        plot_all(change(_plot_records()), tmp_path / "img")
    assert not (tmp_path / "img").exists()   # checked before anything is written


def _benchmark(name):
    """A script of ``benchmarks/`` imported as a module (the folder is not a package)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_paired_rl_benchmark_reuses_one_sft_model(tmp_path, capsys):
    """benchmarks/rl_paired.py: SFT once (cached), every arm starts from it; then the table."""
    mod = _benchmark("rl_paired")
    out, cache = tmp_path / "rl.json", tmp_path / "cache"
    args = ["--datasets", "diabetes", "--sft-time", "4", "--rl-time", "3", "--cache", str(cache),
            "--out", str(out), "--arm", 'a={"rl_config": {"group_size": 4, "prompts_per_step": 4}}']
    assert mod.main(args) == 0
    recs = json.loads(out.read_text())
    assert [r["arm"] for r in recs] == ["sft", "a"] and list(cache.iterdir())
    assert recs[1]["rl_steps"] > 0 and set(recs[1]["val_before"]) == {"error", "crps"}
    assert recs[1]["d_mae"] == pytest.approx(recs[1]["mae"] / recs[0]["mae"] - 1)
    # a second run loads the cached SFT model instead of fitting again
    assert mod.main(args) == 0 and np.isnan(json.loads(out.read_text())[0]["fit_s"])
    capsys.readouterr()
    assert mod.main(["--table", str(out)]) == 0
    table = capsys.readouterr().out
    assert table.startswith("| dataset | sft MAE | sft cov80 | a |") and "diabetes" in table


def test_paired_rl_benchmark_on_an_ensemble(tmp_path, capsys):
    """--members: the cached SFT model is an ensemble (its own cache entry), RL runs per member."""
    mod = _benchmark("rl_paired")
    out, cache = tmp_path / "rl.json", tmp_path / "cache"
    args = ["--datasets", "diabetes", "--sft-time", "4", "--rl-time", "3", "--cache", str(cache),
            "--members", "2", "--out", str(out), "--arm", 'a={"rl_config": {"prompts_per_step": 4}}']
    assert mod.main(args) == 0
    sft, arm = json.loads(out.read_text())
    assert sft["members"] == arm["members"] == 2 and 0 <= arm["members_kept"] <= 2
    assert [p.name for p in cache.iterdir()] == ["diabetes_t4_s0_m2"]
    capsys.readouterr()


def test_rl_weights_scores_every_decision_rule(tmp_path, monkeypatch, capsys):
    """benchmarks/rl_weights.py --decisions: the SFT model (fitted into the cache) and the RL
    stage's final weights scored under each rule; ``--decision-table`` prints them."""
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    mod = _benchmark("rl_weights")
    out = tmp_path / "w.json"
    args = ["--datasets", "diabetes", "--sft-time", "4", "--rl-time", "3", "--cache", str(tmp_path / "cache"),
            "--alphas", "0", "1", "--decisions", "median", "mode", "sample1", "--out", str(out),
            "--params", '{"rl_variant": "remax", "rl_reward": "abs", "rl_config": {"group_size": 4}}']
    assert mod.main(args) == 0
    (rec,) = json.loads(out.read_text())
    before, after = (q["test_mae_by_decision"] for q in rec["points"])
    assert set(before) == {"median", "mode", "sample1"} and rec["rl_steps"] > 0
    assert before["median"] == rec["points"][0]["test_mae"]       # predict's rule, as shipped
    assert all(v > 0 for v in [*before.values(), *after.values()])
    capsys.readouterr()
    assert mod.main(["--decision-table", str(out)]) == 0
    assert "| diabetes | remax (" in capsys.readouterr().out


def test_rl_paired_summary_counts_runs_kept_and_at_the_target():
    """``--summary``: per dataset, RL runs / kept / at -5% with coverage within 5 points."""
    mod = _benchmark("rl_paired")

    def run(arm, d_mae, d_cov, kept, params=None):
        return {"dataset": "d", "arm": arm, "d_mae": d_mae, "d_cov80": d_cov, "kept": kept,
                "params": params or {}}

    records = [{"dataset": "d", "arm": "sft", "mae": 1.0},
               run("a", -0.06, -0.01, True),                        # at the target
               run("b", -0.08, -0.08, True),                        # better MAE, coverage 8 points down
               run("c", -0.20, 0.0, False),                         # reverted: predict is the SFT model's
               run("ce", -0.30, 0.0, True, {"rl_config": {"pg_coef": 0.0}}),  # control, not RL
               {**run("a", 0.02, 0.0, True), "dataset": "e"}]
    lines = mod.summary(records).splitlines()
    assert lines[0].startswith("| dataset | RL runs | kept | at the target |")
    assert lines[2] == "| d | 3 | 2 | 1 | -8.0% (b) |"
    assert lines[3] == "| e | 1 | 1 | 0 | +2.0% (a) |"


def test_rl_rows_report_locates_the_gain():
    """benchmarks/rl_rows.py --report: MAE before/after, rows better, share of the top 1% rows."""
    mod = _benchmark("rl_rows")
    before = np.full(200, 10.0)
    before[0] = 1000.0                       # one large error ...
    after = before.copy()
    after[0] = 10.0                          # ... fixed: most of the gain is in the top 1% (2 rows)
    after[1:101] = 9.0                       # and half the rows slightly better
    rec = {"val_sft": list(before), "val_rl": list(before), "test_sft": list(-before), "test_rl": list(after)}
    val, test = mod.report(rec)
    assert "MAE 14.95 -> 14.95 (+0.0%)" in val and "better 0.00" in val and "top 1% rows -" in val
    gain = (990 + 100) / 200
    top = (990 + 1) / 200 / gain
    assert f"better {101 / 200:.2f}" in test and f"top 1% rows {top:.0%}" in test
    assert "largest error 1000 -> 10" in test


def test_predictive_benchmark_compares_medians_and_quantiles_of_one_model(tmp_path, capsys):
    """benchmarks/predictive.py: three medians, then raw / conformal / normalised / per-call quantiles."""
    mod = _benchmark("predictive")
    out = tmp_path / "p.json"
    assert mod.main(["--datasets", "diabetes", "--sft-time", "8", "--cache", str(tmp_path / "c"),
                     "--many", "32", "--out", str(out)]) == 0
    recs = json.loads(out.read_text())
    decisions = [r for r in recs if r["part"] == "decision"]
    assert [r["arm"] for r in decisions] == ["median of 16 samples", "median of 32 samples", "tree median"]
    assert all(r["mae"] > 0 and r["seconds"] > 0 for r in decisions)
    quantiles = [r for r in recs if r["part"] == "quantiles"]
    assert [r["arm"] for r in quantiles] == ["raw", "conformal", "normalised", "conformal, per call"]
    for r in quantiles:
        assert 0 <= r["coverage80"] <= 1 and r["width80"] >= 0 and r["interval_score80"] >= r["width80"]
    for r in (quantiles[1], quantiles[3]):   # the interval asked for alone
        assert 0 <= r["coverage80_alone"] <= 1 and r["interval_score80_alone"] >= r["width80_alone"] >= 0
    # the median-out repair only widens the per-call one's interval
    assert quantiles[1]["width80_alone"] >= quantiles[3]["width80_alone"]
    assert quantiles[0]["calibration_rows"] == 35          # 10% of diabetes' 354 training rows
    table = capsys.readouterr().out
    assert "| dataset | median of 16 samples: MAE (s)" in table and "| dataset | raw cov80" in table


def test_seed_ensemble_summary_separates_variance_from_single_fits():
    """benchmarks/seed_ensemble.py: single-fit MAEs vs the MAE of averaged disjoint seed groups."""
    mod = _benchmark("seed_ensemble")
    y = np.array([0.0, 10.0])
    preds = np.array([[2.0, 8.0], [-2.0, 12.0],      # errors cancel in the average: pure variance
                      [1.0, 11.0], [1.0, 11.0],      # the same bias twice: averaging keeps it
                      [5.0, 5.0]])                   # a fifth seed outside every full group
    s = mod.summary(y, preds, group=2)
    assert s["single"] == [2.0, 2.0, 1.0, 1.0, 5.0] and s["single_mean"] == 2.2 and s["single_median"] == 2.0
    assert [g["seeds"] for g in s["groups"]] == [[0, 1], [2, 3]]
    assert [g["mean_of_preds"] for g in s["groups"]] == [0.0, 1.0]
    assert s["all_mean_of_preds"] == pytest.approx((1.4 + 0.6) / 2)   # mean prediction (1.4, 9.4)
    text = mod.report({"dataset": "d", **s})
    assert "single fits MAE mean 2.2, median 2, range 1-5 (5 seeds)" in text
    assert "seeds 0-1 averaged: MAE 0 (-100.0% vs the single mean)" in text


def test_members_benchmark_pairs_the_first_network_with_the_ensemble(monkeypatch):
    """benchmarks/members.py: one fit gives both arms (the first network recalibrated alone)."""
    import lmreg

    mod = _benchmark("members")
    X, y = load_dataset("diabetes")
    Xt, yt = load_dataset("diabetes", "test")
    real = lmreg.LMRegressor

    def small(**kw):  # a 3-member fit in seconds instead of the default model's minutes
        kw.update(max_time=None, max_epochs=4, hidden_size=32, num_layers=1, num_heads=2, n_members=3)
        return real(**kw)

    monkeypatch.setattr(lmreg, "LMRegressor", small)
    monkeypatch.setattr(lmreg, "load_dataset", lambda name, split: (X[:150], y[:150]) if split == "train"
                        else (Xt[:12], yt[:12]))
    args = mod.argparse.Namespace(datasets=["diabetes"], seeds=[0], members="3", max_time=300.0,
                                  threads=1, out=None, auto_margin=None)
    (rec,) = mod.run(args)
    assert rec["members"] == 3 and len(rec["member_seconds"]) == 3
    assert all(1 <= best <= steps for best, steps in zip(rec["member_best_step"], rec["member_steps"]))
    assert rec["first"]["mae"] != rec["ensemble"]["mae"]
    table = mod.table([rec])
    change = rec["ensemble"]["mae"] / rec["first"]["mae"] - 1
    assert f"| diabetes | 300 | 1 (1) | 3 | {change:+.1%} |" in table


def test_rl_paired_table_keeps_each_seed_against_its_own_sft_model():
    """``--table`` over files of several SFT seeds: a row per dataset and seed, not the last file's."""
    mod = _benchmark("rl_paired")

    def rec(seed, arm, mae, d_mae=0.0):
        return {"dataset": "d", "seed": seed, "arm": arm, "mae": mae, "coverage80": 0.8,
                "d_mae": d_mae, "d_cov80": 0.0, "d_crps": 0.0, "rl_steps": 5, "kept": True}

    lines = mod.table([rec(0, "sft", 1.0), rec(0, "a", 0.9, -0.1),
                       rec(1, "sft", 2.0), rec(1, "a", 2.04, 0.02)]).splitlines()
    assert lines[0] == "| dataset | seed | sft MAE | sft cov80 | a |"
    assert lines[2].startswith("| d | 0 | 1 | 0.80 | -10.0%") and lines[3].startswith("| d | 1 | 2 | 0.80 | +2.0%")
    # one seed (or records without one): the table as before, no seed column
    assert mod.table([rec(0, "sft", 1.0), rec(0, "a", 0.9, -0.1)]).startswith("| dataset | sft MAE |")
    by_arm = mod.table([rec(0, "sft", 1.0), rec(0, "a", 0.9, -0.1), rec(1, "sft", 2.0)], by_arm=True)
    assert by_arm.splitlines()[0] == "| arm | d (seed 0) | d (seed 1) |"


def test_run_refuses_no_datasets_and_a_missing_psutil(monkeypatch):
    import sys

    with pytest.raises(ValueError, match="no datasets given"):
        run_benchmark([], models=("mean",))
    monkeypatch.setitem(sys.modules, "psutil", None)
    with pytest.raises(ImportError, match="psutil"):   # not every model skipped and an empty table
        run_benchmark(["diabetes"], models=("mean",), verbose=False)


def test_one_dataset_or_model_may_be_named_alone():
    # a string had been read letter by letter: "unknown dataset(s) ['d', 'i', 'a', ...]"
    records = run_benchmark("diabetes", models="mean", out=None, verbose=False, test_rows=5)
    assert [(r["dataset"], r["model"]) for r in records] == [("diabetes", "mean")]


def test_bench_repeated_options_add_up(tmp_path):
    import json

    from lmreg.bench import main

    out = tmp_path / "r.json"
    assert main(["--datasets", "diabetes", "--models", "mean", "--models", "knn", "--test-rows", "20",
                 "--out", str(out)]) == 0
    assert [r["model"] for r in json.loads(out.read_text())] == ["mean", "knn"]


def test_bench_writes_strict_json_and_makes_the_markdown_folder(tmp_path, capsys):
    from lmreg.bench import main

    out, md = tmp_path / "r.json", tmp_path / "new" / "t.md"
    # best_val_mae is inf without validation rows: written as Infinity, no strict parser read the file
    assert main(["--datasets", "diabetes", "--models", "lmreg", "--max-time", "2", "--train-rows", "30",
                 "--test-rows", "5", "--param", "validation_fraction=0", "--out", str(out),
                 "--markdown", str(md)]) == 0
    saved = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"{c} in the results file"))
    assert saved[0]["best_val_mae"] is None
    assert md.read_text().startswith("| dataset |")     # its folder was missing: written after the run
    capsys.readouterr()


def test_reliability_keys_may_be_the_levels_themselves(tmp_path):
    from lmreg.plots import plot_all

    lm = _plot_records()[0] | {"reliability": {0.1: 0.1, 0.5: 0.6, 0.9: 0.8}}   # as quantile_coverage returns them
    assert [p.name for p in plot_all([lm], tmp_path)][2] == "reliability.png"   # was a bare KeyError


def test_bench_refuses_one_file_for_results_and_table_names_a_failing_model_and_runs_each_once(tmp_path):
    import json

    from lmreg.bench import main, run_benchmark

    same = str(tmp_path / "same.json")   # the table replaced the results
    with pytest.raises(ValueError, match="--out and --markdown both name"):
        main(["--datasets", "diabetes", "--models", "mean", "--out", same, "--markdown", same])
    # scikit-learn's words alone named neither the model nor the dataset
    with pytest.raises(ValueError, match=r"^diabetes, model knn: Expected n_neighbors <= n_samples_fit"):
        run_benchmark(["diabetes"], models=["knn"], train_rows=1, test_rows=5, out=None, verbose=False)
    out = tmp_path / "r.json"
    main(["--datasets", "diabetes", "diabetes", "--models", "mean", "mean", "--test-rows", "5", "--out", str(out)])
    assert [(r["dataset"], r["model"]) for r in json.loads(out.read_text())] == [("diabetes", "mean")]


def test_decode_benchmark_times_a_fixed_length_fit(tmp_path, capsys):
    """benchmarks/bench_decode.py --fit-epochs: every epoch runs (no deadline), its steps are timed."""
    mod = _benchmark("bench_decode")
    out = tmp_path / "decode.json"
    mod.main(["--dataset", "diabetes", "--fit-epochs", "2", "--train-rows", "60", "--rows", "8",
              "--n-samples", "2", "--repeats", "1", "--threads", "1", "--out", str(out)])
    rec = json.loads(out.read_text())
    assert rec["fit_s"] is None and rec["fit_epochs"] == 2 and rec["train_rows"] == 60 and rec["rows"] == 8
    assert rec["fit_stopped"] in ("epochs", "early") and rec["fit_steps"] > 0
    assert rec["fit_ms_per_step"] == pytest.approx(1000 * rec["fit_wall_s"] / rec["fit_steps"])
    assert min(rec["sample_s"], rec["tree_median_s"], rec["greedy_s"]) > 0
    assert json.loads(capsys.readouterr().out) == rec


def test_bench_refuses_plots_it_could_not_write_before_any_model_runs(tmp_path, monkeypatch, capsys):
    """A plots folder on the results file, or inside it, and a missing matplotlib failed after
    the whole run (every model fitted, the plots lost); a missing optional package was a traceback."""
    import sys

    from lmreg import bench

    ran = []
    monkeypatch.setattr(bench, "run_benchmark", lambda *a, **k: ran.append(1) or [])
    out, md = tmp_path / "r.json", tmp_path / "t.md"
    base = ["bench", "--datasets", "diabetes", "--models", "mean", "--out", str(out), "--markdown", str(md)]
    for plots, what in ((md, "is the file --markdown writes"), (out / "img", "is inside the file --out writes")):
        assert main(base + ["--plots", str(plots)]) == 2
        assert what in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert main(base + ["--plots", str(tmp_path / "img")]) == 2
    assert "lmreg: error: plots need matplotlib" in capsys.readouterr().err
    assert ran == [] and not out.exists() and not md.exists()


def test_bench_seed_reaches_the_baselines():
    for name in ("hgb", "knn") + (("lgbm",) if "lgbm" in BASELINES else ()):
        est = make_baseline(name, random_state=7)
        seeds = {v for k, v in est.get_params().items() if k.endswith("random_state")}
        assert seeds == {7}, name   # the trees' split and the text columns' SVD
    from lmreg.bench import _make

    assert _make("hgb", {}, 1.0, 1, 7, 16).random_state == 7   # was 0 whatever --seed said


def test_short_fits_summary_pairs_the_arms_seed_by_seed(tmp_path, capsys):
    """benchmarks/short_fits.py: one tiny fit per seed, and the table pairing two records."""
    mod = _benchmark("short_fits")
    out = tmp_path / "a.json"
    record = mod.run(["diabetes"], [1], range(2), 40, 10, 1, "after", str(out))
    assert json.loads(out.read_text()) == record and [f["seed"] for f in record["fits"]] == [0, 1]
    assert all(f["steps"] == 2 and np.isfinite(f["mae"]) for f in record["fits"])   # 36 rows, batches of 32
    capsys.readouterr()

    def fits(maes):
        return [{"dataset": "d", "epochs": 3, "seed": s, "steps": 51, "r2": 1 - m / 10, "mae": m}
                for s, m in enumerate(maes)]

    table = mod.summary({"label": "before", "fits": fits([4.0, 2.0, 3.0])},
                        {"label": "after", "fits": fits([3.0, 2.5, 1.0]) + [fits([9.0] * 4)[3]]})
    assert table.splitlines()[2] == "| d | 3 (51) | 0.700 | 0.750 | 3 | 2.5 | 2 of 3 |"   # seed 3 unpaired
