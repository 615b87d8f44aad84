"""``pyro-mm reproduce``: every experiment end to end at a tiny size (a few steps per cell, two
cells), and the grid's resume: a finished cell is not trained again, an interrupted one resumes,
and the table is the one an uninterrupted run writes — also when the grid is split across two
sessions through a results store, or built from the records alone."""

import json

import pytest
from experiment_helpers import tiny

from pyro_mm.experiments import EXPERIMENTS, run_experiment
from pyro_mm.experiments.grid import Cell


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_every_experiment_runs_and_writes_its_table(name, tmp_path, capsys):
    result = run_experiment(name, quick=True, seeds=1, out=tmp_path, experiment=tiny(name), progress=False)
    out = capsys.readouterr().out
    assert "training ≈" in out and "evaluation ≈" in out and "judges" in out and "cells" in out
    assert "2 of 2 cells" in out
    assert (tmp_path / "table.md").read_text().startswith("# ") and (tmp_path / "figure.png").stat().st_size > 0
    table = json.loads((tmp_path / "table.json").read_text())
    assert table["meta"]["experiment"] == name and len(table["records"]) == 2
    assert result["markdown"] in (tmp_path / "table.md").read_text()
    meta = table["meta"]
    assert meta["commit"] and meta["date"].startswith("20") and "torch" in meta["machine"]
    assert f"Measured at commit `{meta['commit']}`" in (tmp_path / "table.md").read_text()
    assert f"`pyro-mm reproduce {name} --quick`" in (tmp_path / "table.md").read_text()
    for record in result["records"]:
        assert record["training"]["steps"] == 3
        assert record["config"]["steps"] == 3 and (tmp_path / "cells").is_dir()
        assert record["threads"] == 1 and record["matmul_precision"] == "highest"
        assert set(record["data_sha256"]) == {"train", "test"}
        assert (record["judges_sha256"] is None) == (name == "linear-gaussian")


class Interrupt(Exception):
    pass


def table_of(out):
    """The "table" part of ``out/table.json``, as text."""
    return json.dumps(json.loads((out / "table.json").read_text())["table"], indent=2)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The tiny meme-table grid run in one process, in one go, on one thread: its output directory."""
    out = tmp_path_factory.mktemp("straight")
    run_experiment("meme-table", quick=True, out=out, experiment=tiny("meme-table"), progress=False, threads=1)
    return out


@pytest.fixture
def trained(monkeypatch):
    """The keys of the cells this process trains, in order."""
    from pyro_mm.experiments import scheduler

    keys, train_cell = [], scheduler.train_cell

    def counting(experiment, cell, *args):
        keys.append(cell.key)
        return train_cell(experiment, cell, *args)

    monkeypatch.setattr(scheduler, "train_cell", counting)
    return keys


def killed_after_training(monkeypatch, experiment, key):
    """Make the cell ``key`` of ``experiment`` die between its training and its evaluation; returns
    the function that undoes it."""
    evaluate = type(experiment).evaluate

    def dying(self, vae, cell):
        if cell.key == key:
            raise Interrupt
        return evaluate(self, vae, cell)

    monkeypatch.setattr(type(experiment), "evaluate", dying)
    return lambda: monkeypatch.setattr(type(experiment), "evaluate", evaluate)


def test_an_interrupted_grid_resumes_and_gives_the_same_table(straight, tmp_path, monkeypatch, trained):
    experiment = tiny("meme-table")
    first, second = [c.key for c in experiment.cells(True, 1)]
    revive = killed_after_training(monkeypatch, experiment, second)
    with pytest.raises(Interrupt):
        run_experiment("meme-table", quick=True, out=tmp_path, experiment=experiment, progress=False, threads=1)
    assert trained == [first, second]
    assert (tmp_path / "cells" / second / "checkpoint.pt").is_file()
    assert not (tmp_path / "cells" / second / "result.json").exists()
    revive()
    trained.clear()
    resumed = run_experiment("meme-table", quick=True, out=tmp_path, experiment=experiment, progress=False, threads=1)
    assert trained == [second]  # the finished cell is not trained again
    assert table_of(tmp_path) == table_of(straight)
    assert resumed["records"][1]["training"]["resumed_from"] == 3  # its training had finished: evaluated only
    assert resumed["records"][0]["training"]["resumed_from"] == 0


def test_a_grid_split_across_two_sessions_through_a_results_store_gives_the_same_table(straight, tmp_path,
                                                                                       monkeypatch, trained):
    """Session 1 dies after its first cell; session 2, with a fresh --out and the same --results,
    trains only the other cell; the table, and the one built from the store alone, are the
    straight run's."""
    experiment = tiny("meme-table")
    first, second = [c.key for c in experiment.cells(True, 1)]
    store = tmp_path / "results"
    revive = killed_after_training(monkeypatch, experiment, second)
    with pytest.raises(Interrupt):
        run_experiment("meme-table", quick=True, out=tmp_path / "session1", experiment=experiment, progress=False,
                       threads=1, results=store)
    assert sorted(p.name for p in (store / "meme-table" / "cells").iterdir()) == [f"{first}.json"]
    revive()
    trained.clear()
    run_experiment("meme-table", quick=True, out=tmp_path / "session2", experiment=tiny("meme-table"), progress=False,
                   threads=1, results=store)
    assert trained == [second]
    assert table_of(tmp_path / "session2") == table_of(straight)
    # the store holds one small JSON record per cell, never a checkpoint
    assert sorted(str(p.relative_to(store)) for p in store.rglob("*") if p.is_file()) == sorted([
        f"meme-table/cells/{first}.json", f"meme-table/cells/{second}.json"])
    record = json.loads((store / "meme-table" / "cells" / f"{second}.json").read_text())
    assert record == json.loads((tmp_path / "session2" / "cells" / second / "result.json").read_text())
    assert {"version", "key", "config", "result", "training", "evaluation", "threads", "matmul_precision",
            "data_sha256", "judges_sha256", "provenance"} <= set(record)
    config = record["config"]
    assert config["seed"] == 0 and config["steps"] == 3 and config["precision"] == "highest"
    assert record["evaluation"]["seconds"] >= 0 and record["training"]["seconds"] >= 0

    trained.clear()
    result = run_experiment("meme-table", quick=True, out=tmp_path / "docs", experiment=tiny("meme-table"),
                            progress=False, results=store, table_only=True)
    assert trained == [] and table_of(tmp_path / "docs") == table_of(straight)
    assert result["meta"]["finished"] == 2 and "2 of 2 cells" in (tmp_path / "docs" / "table.md").read_text()


def test_two_processes_sharing_one_out_train_every_cell_once_and_give_the_same_table(straight, tmp_path):
    import multiprocessing

    from experiment_helpers import run_logged

    context = multiprocessing.get_context("spawn")
    log = tmp_path / "trained.log"
    processes = [context.Process(target=run_logged, args=("meme-table", tmp_path / "shared", log)) for _ in range(2)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(300)
    assert [p.exitcode for p in processes] == [0, 0]
    assert sorted(log.read_text().split()) == sorted(c.key for c in tiny("meme-table").cells(True, 1))
    assert table_of(tmp_path / "shared") == table_of(straight)


def test_jobs_split_the_threads_and_give_the_same_table(straight, tmp_path):
    """Two worker processes of one thread each give the table of one process on one thread."""
    result = run_experiment("meme-table", quick=True, out=tmp_path, experiment=tiny("meme-table"), progress=False,
                            jobs=2, threads=2)
    assert [r["threads"] for r in result["records"]] == [1, 1]
    assert table_of(tmp_path) == table_of(straight)


def test_a_cell_held_by_a_live_process_is_skipped_or_waited_for(tmp_path, monkeypatch, trained):
    """Without waiting, the table is partial and says so; waiting, the cell is trained here once
    its holder lets it go (here: releases it; a holder that dies leaves a stale lock, taken over)."""
    import threading

    from pyro_mm.experiments import scheduler
    from pyro_mm.experiments.cell_lock import CellLock
    from pyro_mm.experiments.grid import cell_dir

    experiment = tiny("linear-gaussian")
    cells = experiment.cells(True, 2)
    assert len(cells) == 4 and [c.seed for c in cells] == [0, 0, 1, 1]
    locks = [CellLock(cell_dir(tmp_path, c)) for c in cells[2:]]
    assert all(lock.acquire() for lock in locks)
    result = run_experiment("linear-gaussian", quick=True, seeds=2, out=tmp_path, experiment=experiment,
                            progress=False, threads=1, wait=False)
    assert trained == [c.key for c in cells[:2]] and len(result["records"]) == 2
    assert "Partial grid: 2 of 4 cells" in result["markdown"] and "(n=1 of 2)" in result["markdown"]
    assert "2 of 4 cells" in (tmp_path / "table.md").read_text()

    monkeypatch.setattr(scheduler, "POLL_SECONDS", 0.1)
    locks[0].release()
    threading.Timer(0.5, locks[1].release).start()
    trained.clear()
    result = run_experiment("linear-gaussian", quick=True, seeds=2, out=tmp_path, experiment=experiment,
                            progress=False, threads=1)
    assert trained == [cells[2].key, cells[3].key] and len(result["records"]) == 4
    assert "Partial" not in result["markdown"] and "n=" not in result["markdown"]


def test_records_of_other_threads_are_trained_again_and_other_data_or_precision_never_mix(tmp_path, trained,
                                                                                          capsys):
    experiment = tiny("linear-gaussian")
    store = tmp_path / "results"
    run_experiment("linear-gaussian", quick=True, out=tmp_path / "one", experiment=experiment, progress=False,
                   threads=1, results=store)
    trained.clear()
    run_experiment("linear-gaussian", quick=True, out=tmp_path / "two", experiment=experiment, progress=False,
                   threads=2, results=store)
    assert len(trained) == 2 and "made at 1 threads (2)" in capsys.readouterr().out
    records = sorted((store / "linear-gaussian" / "cells").glob("*.json"))
    assert [json.loads(p.read_text())["threads"] for p in records] == [2, 2]

    damaged = json.loads(records[0].read_text())
    damaged["data_sha256"]["train"] = "0" * 64
    records[0].write_text(json.dumps(damaged))
    with pytest.raises(ValueError, match="made with different data"):
        run_experiment("linear-gaussian", quick=True, out=tmp_path / "table", experiment=experiment, progress=False,
                       results=store, table_only=True)
    with pytest.raises(ValueError, match="no finished cells of linear-gaussian"):
        run_experiment("linear-gaussian", quick=True, out=tmp_path / "table", experiment=experiment, progress=False,
                       results=store, table_only=True, precision="medium")


def test_the_duration_names_its_parts():
    from pyro_mm.experiments.duration import Duration

    assert str(Duration(120.0, 30.0, 600.0)) == ("training ≈ 2.0 min, evaluation ≈ 0.5 min, judges ≈ 10 min "
                                                  "(first time only)")
    assert str(Duration(120.0, 30.0, 0.0)).endswith("judges cached")


def test_cells_are_named_by_their_whole_configuration():
    a = Cell.make("mmvae", "polymnist", 0, 100, options={"beta": 2.0}, labels={"beta": 2.0})
    b = Cell.make("mmvae", "polymnist", 0, 100, options={"beta": 2.0}, labels={"beta": 2.0})
    c = Cell.make("mmvae", "polymnist", 0, 101, options={"beta": 2.0}, labels={"beta": 2.0})
    assert a.key == b.key != c.key and a.key.startswith("mmvae-beta2.0-seed0-")
    assert a.option_values == {"beta": 2.0} and a.config()["labels"] == {"beta": 2.0}
    medium = Cell.make("mmvae", "polymnist", 0, 100, options={"beta": 2.0}, labels={"beta": 2.0}, precision="medium")
    assert medium.key != a.key and a.config()["precision"] == "highest"
    with pytest.raises(ValueError, match="precision must be one of"):
        Cell.make("mmvae", "polymnist", 0, 100, precision="low")


def test_a_method_has_one_colour_in_every_panel_and_the_legend_names_every_method(tmp_path, monkeypatch):
    """The unimodal VAE has no cross coherence: the other methods must keep their colours there."""
    from pyro_mm.experiments import report

    kept = []
    monkeypatch.setattr(report, "save_figure", lambda fig, path, title="": kept.append(fig) or path)
    points = {2: (1.0, 0.1, 3), 5: (2.0, 0.2, 3)}
    report.line_figure([("quality", {"unimodal": points, "mvae": points, "mmvae": points}),
                        ("coherence", {"mvae": points, "mmvae": points})], "M", tmp_path / "figure.png")
    first, second = kept[0].axes
    colours = [{bars.get_label(): bars.lines[0].get_color() for bars in ax.containers} for ax in (first, second)]
    assert len(set(colours[0].values())) == 3
    assert colours[1] == {k: colours[0][k] for k in ("mvae", "mmvae")}
    assert [t.get_text() for t in first.get_legend().get_texts()] == ["unimodal", "mvae", "mmvae"]
