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
        if cell.key == key and len(vae.step_losses) == cell.steps:  # not the duration estimate's evaluation
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


def test_a_diverging_cell_is_recorded_as_such_and_named_under_the_table(tmp_path, monkeypatch):
    """A cell whose loss turns non-finite is a finished cell without figures: its record says why,
    the grid goes on, and the table names it instead of averaging it in."""
    from pyro_mm.multimodal_vae import MultimodalVAE

    fit = MultimodalVAE.fit

    def fit_or_diverge(self, *args, **kwargs):
        if self.method == "mvae":
            raise FloatingPointError("the loss is nan at step 2")
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(MultimodalVAE, "fit", fit_or_diverge)
    result = run_experiment("meme-table", quick=True, out=tmp_path, experiment=tiny("meme-table"), progress=False,
                            threads=1)
    diverged = [r for r in result["records"] if r["result"] is None]
    assert [r["config"]["method"] for r in diverged] == ["mvae"]
    assert diverged[0]["training"]["diverged"] == "the loss is nan at step 2"
    assert "Diverged (a non-finite loss; no figures): mvae f=0.5 seed 0." in result["markdown"]
    assert all(r["result"] for r in result["records"] if r["config"]["method"] == "meme")


# -- the figures: drawn from synthetic records, nothing trained --------------------------------------------------

#: each method's learned model below the true one, in nats: the linear-gaussian page's hundredths and MEME's half
GAPS = {"unimodal": 0.005, "mvae": 0.015, "mmvae": 0.027, "mopoe": 0.10, "meme": 0.56, "mmvae+": 0.036}


def synthetic_result(name, cell):
    """A result of the shape ``name``'s evaluation gives, made up for ``cell``: coherences that differ
    by the judges' noise alone (0.1250–0.1264, where a loose axis once showed a trade-off)."""
    from pyro_mm.registry import METHODS

    i, s = list(METHODS).index(cell.method), cell.seed
    coherence = 0.125 + 0.0002 * i + 0.0002 * s
    if name == "linear-gaussian":
        cap = 1.0 + i if cell.method in ("mmvae", "mopoe", "mmvae+") else None
        return {"bound": -11.0 - i, "learned_log_likelihood": -10.3 - GAPS[cell.method] - 0.002 * s,
                "true_model_log_likelihood": -10.3, "subsampling_gap": cap}
    if name == "meme-table":
        return {"coherence": {"mnist->syndigits": coherence, "syndigits->mnist": coherence + 0.01},
                "latent_accuracy": {"mnist": 0.9 + 0.01 * s, "syndigits": 0.8, "joint": 0.95},
                "relatedness": {"paired_w2": 5.0 + s, "unrelated_w2": 8.0}}
    if name == "captions":
        return {"coherence": {"image->text": coherence, "text->image": coherence},
                "cca": {"image->text": 0.2 + 0.01 * i, "text->image": 0.1 + 0.01 * s}}
    fd = 300.0 + 10 * i + 5 * s + cell.label_values.get("M", 0)
    if cell.method == "unimodal":
        return {"fd_unconditional": fd}
    return {"fd_unconditional": fd, "fd_conditional": fd + 20, "coherence": coherence, "joint_coherence": 0.5}


def synthetic_records(name, seeds):
    """Records of ``name``'s quick grid over ``seeds`` seeds with :func:`synthetic_result`."""
    return [{"config": cell.config(), "result": synthetic_result(name, cell)}
            for cell in EXPERIMENTS[name]().cells(True, seeds)]


@pytest.fixture
def drawn(monkeypatch):
    """The figures saved while a test runs, kept for inspection."""
    from matplotlib.figure import Figure

    figures, savefig = [], Figure.savefig

    def keeping(self, *args, **kwargs):
        figures.append(self)
        return savefig(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keeping)
    return figures


def figure_of(name, seeds, tmp_path, drawn):
    """``(markdown, figure)`` of ``name``'s report of synthetic records over ``seeds`` seeds."""
    markdown, _ = EXPERIMENTS[name]().report(synthetic_records(name, seeds), tmp_path, seeds)
    (fig,) = drawn
    return markdown, fig


def error_bars(fig):
    """``(row label, errorbar container)`` for every error-bar series drawn in ``fig``."""
    from matplotlib.container import ErrorbarContainer

    return [(c.get_label(), c) for ax in fig.axes for c in ax.containers if isinstance(c, ErrorbarContainer)]


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_every_figure_draws_each_method_in_its_palette_colour_and_labels_its_axes(name, tmp_path, drawn):
    from matplotlib.colors import to_rgba

    from pyro_mm.experiments.report import PALETTE, method_of, method_style

    _, fig = figure_of(name, 2, tmp_path, drawn)
    drawn_methods = set()
    for label, container in error_bars(fig):
        data_line = container.lines[0]
        assert to_rgba(data_line.get_color()) == to_rgba(PALETTE[method_of(label)]) == to_rgba(
            method_style(label)["color"]), label
        drawn_methods.add(method_of(label))
    assert drawn_methods == {r["config"]["method"] for r in synthetic_records(name, 1)}
    for ax in fig.axes:
        assert ax.get_xlabel() and ax.get_ylabel(), (name, ax.get_title())


def test_the_palette_gives_every_registered_method_its_own_colour_and_a_variant_its_methods():
    from pyro_mm.experiments.report import PALETTE, method_style
    from pyro_mm.registry import METHODS

    colours = [method_style(m)["color"] for m in METHODS]
    assert len(set(colours)) == len(METHODS) and set(PALETTE) <= set(METHODS)
    paper = method_style("meme (paper preset)")
    assert paper["color"] == PALETTE["meme"] and paper["linestyle"] != method_style("meme")["linestyle"]
    assert method_style("mmvae+")["color"] == PALETTE["mmvae+"] != PALETTE["mmvae"]
    with pytest.raises(ValueError, match="names no registered method"):
        method_style("vae")


def test_a_method_registered_later_takes_a_spare_colour(monkeypatch):
    from pyro_mm.experiments.report import PALETTE, SPARE_COLOURS, method_style
    from pyro_mm.registry import METHODS

    taken = [m for m in METHODS if m not in PALETTE]  # registered after the palette was written
    monkeypatch.setitem(METHODS, "plugin", object)
    colour = method_style("plugin")["color"]
    assert colour == SPARE_COLOURS[len(taken) % len(SPARE_COLOURS)] and colour not in PALETTE.values()
    if len(taken) < len(SPARE_COLOURS):  # while spares last, no two methods share a colour
        assert colour not in {method_style(m)["color"] for m in taken}


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_error_bars_only_where_there_are_several_seeds_and_the_legend_says_how_many(name, tmp_path, drawn):
    _, fig = figure_of(name, 1, tmp_path / "one", drawn)
    assert not any(c.has_xerr or c.has_yerr for _, c in error_bars(fig))
    assert "one seed" in [legend.get_title().get_text() for ax in fig.axes for legend in [ax.get_legend()] if legend]
    drawn.clear()
    _, fig = figure_of(name, 3, tmp_path / "three", drawn)
    assert any(c.has_xerr or c.has_yerr for _, c in error_bars(fig))
    titles = [legend.get_title().get_text() for ax in fig.axes for legend in [ax.get_legend()] if legend]
    assert "mean ± sd over 3 seeds" in titles


def test_a_point_of_one_seed_has_no_error_bar_beside_points_of_several(tmp_path, monkeypatch):
    from pyro_mm.experiments import report

    kept = []
    monkeypatch.setattr(report, "save_figure", lambda fig, path, title="": kept.append(fig) or path)
    report.line_figure([("coherence", {"mvae": {2: (0.3, 0.02, 3), 5: (0.4, 0.0, 1)}})], "M", tmp_path / "f.png")
    (label, bars), = error_bars(kept[0])
    assert [len(segment) for segment in bars.lines[2][0].get_segments()] == [2, 0]
    assert kept[0].axes[0].get_legend().get_title().get_text() == "mean ± sd over 1–3 seeds"


@pytest.mark.parametrize("name", ["meme-table", "linear-gaussian", "beta-tradeoff", "modality-sweep", "captions"])
def test_a_table_caption_says_one_seed_or_over_how_many(name, tmp_path, drawn):
    one, _ = figure_of(name, 1, tmp_path / "one", drawn)
    assert "one seed" in one and "± sd" not in one
    drawn.clear()
    three, _ = figure_of(name, 3, tmp_path / "three", drawn)
    assert "mean ± sd over 3 seeds" in three and "over seeds" not in three


@pytest.mark.parametrize("name", ["meme-table", "linear-gaussian", "beta-tradeoff", "modality-sweep", "captions"])
def test_a_partial_grid_with_one_seed_so_far_is_captioned_one_seed(name, tmp_path, drawn):
    """A grid of three seeds of which one has finished: its tables say one seed, not three."""
    markdown, _ = EXPERIMENTS[name]().report(synthetic_records(name, 1), tmp_path, 3)
    assert "one seed" in markdown and "over 3 seeds" not in markdown and "(n=1 of 3)" in markdown


def coherence_axes(fig):
    """``(axes, "x" or "y")`` of every axis of ``fig`` that shows a coherence."""
    return [(ax, axis) for ax in fig.axes for axis in "xy"
            if "coherence" in (ax.get_xlabel() if axis == "x" else ax.get_ylabel())]


@pytest.mark.parametrize("name", ["meme-table", "beta-tradeoff", "modality-sweep", "captions"])
def test_a_coherence_axis_shows_chance_and_spans_at_least_a_tenth(name, tmp_path, drawn):
    """The synthetic coherences differ by 0.001: the axis must not blow that up into a trend."""
    from pyro_mm.experiments.report import CHANCE

    _, fig = figure_of(name, 1, tmp_path, drawn)
    axes = coherence_axes(fig)
    assert axes
    for ax, axis in axes:
        low, high = ax.get_xlim() if axis == "x" else ax.get_ylim()
        assert high - low >= 0.1 - 1e-12 and low < CHANCE < high
        (chance,) = [line for line in ax.lines if line.get_label() == "chance"]
        assert set(chance.get_xdata() if axis == "x" else chance.get_ydata()) == {CHANCE}


def test_the_count_of_modalities_has_whole_ticks(tmp_path, drawn):
    _, fig = figure_of("modality-sweep", 1, tmp_path, drawn)
    for ax in fig.axes:
        low, high = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if low <= t <= high]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_linear_gaussian_shows_hundredths_of_a_nat_beside_memes_half_and_reference_lines_where_they_belong(
        tmp_path, drawn):
    _, fig = figure_of("linear-gaussian", 3, tmp_path, drawn)
    gaps, bounds = fig.axes
    points = {label: c for label, c in error_bars(fig)}

    def pixel(ax, x):
        return ax.transData.transform((x, 0))[0]

    low, high = gaps.get_xlim()
    assert low <= 0 and high >= GAPS["meme"]  # every gap, MEME's too, on the axis
    width = pixel(gaps, high) - pixel(gaps, low)
    # MVAE's 0.015 and MMVAE's 0.027 nats are told apart by a tenth of the axis
    assert pixel(gaps, 0.027) - pixel(gaps, 0.015) > 0.1 * width
    assert {label for label in points if label.endswith("(cap)")} == {"mmvae (cap)", "mopoe (cap)", "mmvae+ (cap)"}
    assert [line.get_label() for line in gaps.lines if line.get_label() == "true model"] == ["true model"]
    assert all(set(line.get_xdata()) == {0} for line in gaps.lines if line.get_label() == "true model")
    assert not [line for line in bounds.lines if line.get_label() in ("true model", "chance")]


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_titles_labels_and_legends_fit_inside_the_figure(name, tmp_path, drawn):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    _, fig = figure_of(name, 1, tmp_path, drawn)
    canvas = FigureCanvasAgg(fig)  # the figure is closed: draw it again as it was saved
    canvas.draw()
    renderer = canvas.get_renderer()
    frame = fig.bbox
    texts = [fig._suptitle] + [t for ax in fig.axes for t in (ax.title, ax.xaxis.label, ax.yaxis.label)]
    texts += [legend for ax in fig.axes for legend in [ax.get_legend()] if legend]
    for text in texts:
        box = text.get_window_extent(renderer)
        assert box.x0 >= frame.x0 - 1 and box.x1 <= frame.x1 + 1 and box.y0 >= frame.y0 - 1 and \
            box.y1 <= frame.y1 + 1, (name, getattr(text, "get_text", lambda: "legend")())


def test_a_panel_has_its_own_y_label_and_chance_line(tmp_path, monkeypatch):
    """What the meme-table's latent-accuracy panel needs: ``line_figure``'s old call with pairs, and a
    :class:`Panel` with its own y label and chance level beside them."""
    from pyro_mm.experiments import report

    kept = []
    monkeypatch.setattr(report, "save_figure", lambda fig, path, title="": kept.append(fig) or path)
    series = {"meme": {0.5: (0.6, 0.0, 1), 1.0: (0.7, 0.0, 1)}, "meme (paper preset)": {1.0: (0.2, 0.0, 1)}}
    report.line_figure([("coherence (split)", series),
                        report.accuracy_panel("latent accuracy, q(z | MNIST)", series, "latent accuracy")],
                       "paired fraction f", tmp_path / "figure.png", ylabel="coherence")
    coherence, accuracy = kept[0].axes
    assert coherence.get_ylabel() == "coherence" and accuracy.get_ylabel() == "latent accuracy"
    assert not [line for line in coherence.lines if line.get_label() == "chance"]
    (chance,) = [line for line in accuracy.lines if line.get_label() == "chance"]
    assert set(chance.get_ydata()) == {report.CHANCE}
    styles = {label: (c.lines[0].get_color(), c.lines[0].get_linestyle()) for label, c in error_bars(kept[0])}
    (meme_colour, meme_line), (paper_colour, paper_line) = styles["meme"], styles["meme (paper preset)"]
    assert meme_colour == paper_colour and meme_line != paper_line


def test_seeds_note():
    from pyro_mm.experiments.report import seeds_note

    assert seeds_note([1]) == "one seed" and seeds_note([1, 1]) == "one seed"
    assert seeds_note([3, 3]) == "mean ± sd over 3 seeds" and seeds_note([1, 3, 2]) == "mean ± sd over 1–3 seeds"


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_a_diverged_cell_leaves_its_figure_drawn_from_the_others(name, tmp_path, drawn):
    records = synthetic_records(name, 2)
    records[0] = {**records[0], "result": None}
    EXPERIMENTS[name]().report(records, tmp_path, 2)
    assert len(drawn) == 1 and error_bars(drawn[0])


def test_a_chance_level_far_below_the_data_is_noted_not_drawn(tmp_path, monkeypatch):
    """Latent accuracies near 1 keep their scale: chance would squeeze them into a sliver."""
    from pyro_mm.experiments import report

    kept = []
    monkeypatch.setattr(report, "save_figure", lambda fig, path, title="": kept.append(fig) or path)
    series = {"mvae": {0.5: (0.94, 0.01, 3), 1.0: (0.95, 0.01, 3)}, "meme": {0.5: (0.98, 0.01, 3), 1.0: (0.99, 0.0, 3)}}
    report.line_figure([report.accuracy_panel("latent accuracy", series, "latent accuracy")], "f", tmp_path / "f.png")
    (ax,) = kept[0].axes
    low, high = ax.get_ylim()
    assert low > 0.5 and high - low >= report.FRACTION_SPAN
    assert not [line for line in ax.lines if line.get_label() == "chance"]
    assert "chance (0.1) below the axis" in [t.get_text() for t in ax.texts]


def test_the_judges_train_on_all_the_grids_threads_and_the_cells_measure_on_one_jobs(tmp_path, monkeypatch):
    """Two jobs of one thread each: the duration is measured on one job's thread, the judges not
    cached yet are timed and trained on both threads (one classifier per thread, the same weights),
    and the process's thread count is restored whatever happens."""
    import torch

    experiment = tiny("meme-table")
    seen = {}
    measure = type(experiment).judges_seconds

    def judges_seconds(self, cells, threads=1):
        seen["measured on"], seen["judges timed on"] = torch.get_num_threads(), threads
        return measure(self, cells, threads)

    def fingerprint(self, cell):
        seen["judges trained on"] = torch.get_num_threads()
        raise Interrupt

    monkeypatch.setattr(type(experiment), "judges_seconds", judges_seconds)
    monkeypatch.setattr(type(experiment), "fingerprint", fingerprint)
    before = torch.get_num_threads()
    with pytest.raises(Interrupt):
        run_experiment("meme-table", quick=True, out=tmp_path, experiment=experiment, progress=False, jobs=2, threads=2)
    assert seen == {"measured on": 1, "judges timed on": 2, "judges trained on": 2}
    assert torch.get_num_threads() == before


def test_a_cells_generation_parameters_reach_its_training_and_test_sets_and_its_judges(tmp_path):
    """beta-tradeoff's cells carry their digit scale: the training set, the test set and the
    judges' training set are built at it, and the fingerprint differs from the default scale's."""
    import dataclasses

    from pyro_mm.experiments.beta_tradeoff import DIGIT_SCALE
    from pyro_mm.experiments.experiment import generation_params

    experiment = tiny("beta-tradeoff")
    cell = experiment.cells(True, 1)[0]
    assert generation_params(cell) == {"scale": DIGIT_SCALE} != {"scale": 0.75}
    _, train = experiment.build(cell)
    test = experiment.data.dataset(cell.dataset, "test", 3, params=generation_params(cell))
    assert train.scale == test.scale == DIGIT_SCALE
    default = dataclasses.replace(cell, data=tuple((k, 0.75 if k == "scale" else v) for k, v in cell.data))
    assert experiment.data.dataset(cell.dataset, "test", 3, params=generation_params(default)).scale == 0.75
    assert (experiment.data.content_hash(cell.dataset, "test", 3, params=generation_params(cell))
            != experiment.data.content_hash(cell.dataset, "test", 3, params=generation_params(default)))


#: the minimum grid of each experiment that has one (issue 27), as a predicate on a cell of the
#: full grid over three seeds (meme-table's: with MVAE's retry at half the learning rate), and its size
MINIMUM_GRIDS = {
    "meme-table": (lambda c: c.label_values["row"] in ("mvae", "mmvae", "meme", "mvae (lr 0.002)")
                   and c.label_values["f"] in (1.0, 0.5, 0.125), 36),
    "modality-sweep": (lambda c: c.method in ("unimodal", "mvae", "mmvae", "mopoe") and c.label_values["M"] in (2, 5)
                       and c.seed < 2, 14),
    "beta-tradeoff": (lambda c: c.method in ("mvae", "mmvae") and c.label_values["beta"] in (0.25, 1.0, 4.0)
                      and c.seed < 2, 12),
    "captions": (lambda c: c.method in ("mvae", "mmvae", "meme") and c.seed < 2, 12),
}


@pytest.mark.parametrize("name", list(MINIMUM_GRIDS))
def test_a_full_grid_lists_its_minimum_grid_first(name):
    """A grid spread over sessions trains the cells that can test the claim before the others."""
    in_minimum, size = MINIMUM_GRIDS[name]
    cells = EXPERIMENTS[name]().cells(False, 3)
    flags = [in_minimum(c) for c in cells]
    assert sum(flags) == size and flags == sorted(flags, reverse=True)
    assert len({c.key for c in cells}) == len(cells)


def test_the_captions_grid_trains_the_cells_of_its_main_verdict_first():
    """MEME against MVAE at f = 1 over both seeds, then MMVAE at f = 1, then f = 0.5 (MMVAE, which no
    verdict compares there, last of the minimum grid)."""
    order = [(c.label_values["f"], c.method, c.seed) for c in EXPERIMENTS["captions"]().minimum_cells()]
    assert order == [(1.0, "mvae", 0), (1.0, "meme", 0), (1.0, "mvae", 1), (1.0, "meme", 1),
                     (1.0, "mmvae", 0), (1.0, "mmvae", 1), (0.5, "mvae", 0), (0.5, "meme", 0),
                     (0.5, "mvae", 1), (0.5, "meme", 1), (0.5, "mmvae", 0), (0.5, "mmvae", 1)]


@pytest.mark.parametrize("name", list(MINIMUM_GRIDS))
def test_the_minimum_grid_is_the_part_of_the_full_grid_the_issue_names(name):
    in_minimum, size = MINIMUM_GRIDS[name]
    experiment = EXPERIMENTS[name]()
    minimum = experiment.minimum_cells()
    assert [c.key for c in minimum] == [c.key for c in experiment.cells(False, 3) if in_minimum(c)]
    assert len(minimum) == size


def test_a_minimum_run_trains_only_the_minimum_grid_at_its_seeds(tmp_path, capsys):
    """``--minimum``: the cells of the minimum grid, over its two seeds, and the table says so."""
    experiment = tiny("modality-sweep")
    experiment.full_steps = 3
    result = run_experiment("modality-sweep", minimum=True, out=tmp_path, experiment=experiment, progress=False,
                            threads=1)
    expected = experiment.minimum_cells()
    assert {c.seed for c in expected} == {0, 1} and all(experiment.in_minimum(c) for c in expected)
    assert sorted(r["key"] for r in result["records"]) == sorted(c.key for c in expected)
    assert result["meta"]["seeds"] == 2 and result["meta"]["cells"] == len(expected)
    assert "`pyro-mm reproduce modality-sweep --minimum`" in (tmp_path / "table.md").read_text()
    assert "cells; the minimum grid of the full:" in capsys.readouterr().out


def test_a_minimum_grid_takes_no_quick_setting_or_seeds_and_some_experiments_have_none(tmp_path):
    with pytest.raises(ValueError, match="neither quick nor seeds"):
        run_experiment("modality-sweep", minimum=True, quick=True, out=tmp_path, progress=False)
    with pytest.raises(ValueError, match="neither quick nor seeds"):
        run_experiment("modality-sweep", minimum=True, seeds=2, out=tmp_path, progress=False)
    with pytest.raises(ValueError, match="linear-gaussian has no minimum grid"):
        run_experiment("linear-gaussian", minimum=True, out=tmp_path, progress=False)
