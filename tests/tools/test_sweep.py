import csv
import json

import pytest
import yaml

from glore.tools.sweep import parse_grid, parse_seeds, plan_runs, run_name, run_sweep, summarize


def tiny_config(tmp_path, tiny_recipe):
    config = tiny_recipe(model={"glore": None, "glore_args": {}}, data={"train_kwargs": {"num_samples": 32}})
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_parse_grid_and_seeds():
    grid = parse_grid(["optim.lr=0.1,0.2", "model.glore=res3:1,res4:1;res4:1", "optim.lr=0.3"])
    assert grid == {"optim.lr": ["0.1", "0.2", "0.3"], "model.glore": ["res3:1,res4:1", "res4:1"]}
    assert parse_seeds("0,1,2") == [0, 1, 2]
    with pytest.raises(ValueError, match="--grid"):
        parse_grid(["optim.lr"])
    with pytest.raises(ValueError, match="--grid optim.lr"):
        parse_grid(["optim.lr=0.1,,0.2"])
    with pytest.raises(ValueError, match="--seeds"):
        parse_seeds("a,b")


def test_plan_is_the_full_product_with_stable_distinct_names():
    runs = plan_runs({"a.x": ["1", "2"], "b.y": ["p", "q", "r"]}, [0, 1])
    assert len(runs) == 12
    assert len({run.name for run in runs}) == 12
    assert runs[0].settings == {"a.x": "1", "b.y": "p"} and runs[0].seed == 0
    assert run_name({"a.x": "1"}, 3) == "a.x=1__seed=3"
    # characters unsafe in a folder name are replaced, and a digest keeps such names distinct
    assert "/" not in run_name({"model.glore": "{res4: [1, 2]}"}, 0)
    assert run_name({"k": "a/b"}, 0) != run_name({"k": "a b"}, 0)


def test_summarize_mean_and_sample_std():
    results = [
        {"settings": {"k": "1"}, "seed": 0, "metrics": {"val_top1": 0.5}, "params_m": 1.0, "gflops": 2.0, "time_s": 3},
        {"settings": {"k": "1"}, "seed": 1, "metrics": {"val_top1": 0.7}, "params_m": 1.0, "gflops": 2.0, "time_s": 5},
        {"settings": {"k": "2"}, "seed": 0, "metrics": {"val_top1": 0.9}, "params_m": 1.5, "gflops": 2.5, "time_s": 4},
    ]
    rows = summarize(results, ["k"])
    assert rows[0]["seeds"] == 2
    assert rows[0]["val_top1_mean"] == pytest.approx(0.6)
    assert rows[0]["val_top1_std"] == pytest.approx(0.1414213562)
    assert rows[0]["time_s"] == pytest.approx(4.0)
    assert rows[1]["val_top1_std"] == 0.0


@pytest.mark.slow
def test_sweep_2x2_with_2_seeds_and_resume_redoes_only_deleted_run(tmp_path, capsys, tiny_recipe):
    config = tiny_config(tmp_path, tiny_recipe)
    grid = {"model.glore": ["null", "res4:1"], "optim.lr": ["0.05", "0.1"]}
    out = tmp_path / "sweep"
    results = run_sweep(config, grid, [0, 1], out)
    assert len(results) == 8
    for name in ("summary.md", "summary.csv", "summary.png"):
        assert (out / name).is_file()
    with open(out / "summary.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4
    assert {row["seeds"] for row in rows} == {"2"}
    with_units = [row for row in rows if row["model.glore"] == "res4:1"]
    without = [row for row in rows if row["model.glore"] == "null"]
    assert float(with_units[0]["params_m"]) > float(without[0]["params_m"])
    table = (out / "summary.md").read_text()
    assert table.count("\n") == 2 + 4
    assert "val_top1 (mean ± std)" in table

    # Delete one run's result: only that run is trained again.
    victim = plan_runs(grid, [0, 1])[5]
    before = {r["name"]: (out / r["name"] / "result.json").stat().st_mtime_ns for r in results}
    (out / victim.name / "result.json").unlink()
    for path in (out / victim.name).glob("*.pt"):
        path.unlink()
    capsys.readouterr()
    run_sweep(config, grid, [0, 1], out)
    printed = capsys.readouterr().out
    assert "7 already finished, 1 to run" in printed
    after = {r["name"]: (out / r["name"] / "result.json").stat().st_mtime_ns for r in results}
    changed = [name for name in before if before[name] != after[name]]
    assert changed == [victim.name]
    assert json.loads((out / victim.name / "result.json").read_text())["seed"] == victim.seed


def test_summary_only_tabulates_finished_runs(tmp_path, capsys):
    from glore.cli import main
    from glore.tools.sweep import RESULT_FILE, _write_json

    grid = {"optim.lr": ["0.1", "0.2"]}
    for run in plan_runs(grid, [0, 1])[:3]:  # the last run (lr 0.2, seed 1) never finished
        value = 0.5 + float(run.settings["optim.lr"]) + run.seed / 10
        result = {"settings": run.settings, "seed": run.seed, "metrics": {"val_top1": value}}
        _write_json(tmp_path / run.name / RESULT_FILE, {**result, "params_m": 1.0, "gflops": 0.1, "time_s": 5})
    args = ["sweep", "unused.yaml", "--grid", "optim.lr=0.1,0.2", "--seeds", "0,1", "--out", str(tmp_path)]
    assert main([*args, "--summary-only"]) == 0
    assert "3 of 4 runs finished" in capsys.readouterr().out
    with open(tmp_path / "summary.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["optim.lr"], row["seeds"]) for row in rows] == [("0.1", "2"), ("0.2", "1")]
    assert float(rows[0]["val_top1_mean"]) == pytest.approx(0.65)
    # a metric the runs lack is refused, and summary.md is left as it was
    before = (tmp_path / "summary.md").read_bytes()
    assert main([*args, "--summary-only", "--metric", "val_miou"]) == 2
    assert "--metric: the finished runs have no 'val_miou'; they have val_top1" in capsys.readouterr().err
    assert (tmp_path / "summary.md").read_bytes() == before
