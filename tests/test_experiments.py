"""``pyro-mm reproduce``: every experiment end to end at a tiny size (a few steps per cell, two
cells), and the grid's resume: a finished cell is not trained again, an interrupted one resumes,
and the table is the one an uninterrupted run writes."""

import json

import pytest

from pyro_mm.experiments import EXPERIMENTS, run_experiment
from pyro_mm.experiments.grid import Cell


def tiny(name, size=200, steps=3, cells=2):
    """The experiment at a tiny size: ``cells`` of its quick grid, ``steps`` steps each."""
    base = EXPERIMENTS[name]

    class Tiny(base):
        quick_steps = steps
        quick_samples = 200
        test_samples = 60
        probe_samples = 60

        def cells(self, quick, seeds):
            return super().cells(quick, seeds)[:cells]

    return Tiny(size=size)


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_every_experiment_runs_and_writes_its_table(name, tmp_path, capsys):
    result = run_experiment(name, quick=True, seeds=1, out=tmp_path, experiment=tiny(name), progress=False)
    out = capsys.readouterr().out
    assert "training will take about" in out and "cells" in out
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


class Interrupt(Exception):
    pass


def test_an_interrupted_grid_resumes_and_gives_the_same_table(tmp_path, monkeypatch):
    from pyro_mm.experiments import grid

    straight = run_experiment("meme-table", quick=True, out=tmp_path / "straight", experiment=tiny("meme-table"),
                              progress=False)
    experiment = tiny("meme-table")
    first, second = [c.key for c in experiment.cells(True, 1)]
    trained = []
    run_cell = grid._run_cell

    def counting(exp, cell, directory, bar):
        trained.append(cell.key)
        return run_cell(exp, cell, directory, bar)

    def killed_after_training(self, vae, cell):  # the second cell dies between training and evaluation
        if cell.key == second:
            raise Interrupt
        return evaluate(self, vae, cell)

    evaluate = type(experiment).evaluate
    monkeypatch.setattr(grid, "_run_cell", counting)
    monkeypatch.setattr(type(experiment), "evaluate", killed_after_training)
    with pytest.raises(Interrupt):
        run_experiment("meme-table", quick=True, out=tmp_path / "resumed", experiment=experiment, progress=False)
    assert trained == [first, second]
    assert (tmp_path / "resumed" / "cells" / second / "checkpoint.pt").is_file()
    assert not (tmp_path / "resumed" / "cells" / second / "result.json").exists()
    monkeypatch.setattr(type(experiment), "evaluate", evaluate)
    trained.clear()
    resumed = run_experiment("meme-table", quick=True, out=tmp_path / "resumed", experiment=experiment, progress=False)
    assert trained == [second]  # the finished cell is not trained again
    assert resumed["markdown"] == straight["markdown"] and resumed["table"] == straight["table"]
    for a, b in zip(resumed["records"], straight["records"]):
        assert a["result"] == b["result"] and a["config"] == b["config"]


def test_cells_are_named_by_their_whole_configuration():
    a = Cell.make("mmvae", "polymnist", 0, 100, options={"beta": 2.0}, labels={"beta": 2.0})
    b = Cell.make("mmvae", "polymnist", 0, 100, options={"beta": 2.0}, labels={"beta": 2.0})
    c = Cell.make("mmvae", "polymnist", 0, 101, options={"beta": 2.0}, labels={"beta": 2.0})
    assert a.key == b.key != c.key and a.key.startswith("mmvae-beta2.0-seed0-")
    assert a.option_values == {"beta": 2.0} and a.config()["labels"] == {"beta": 2.0}


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
