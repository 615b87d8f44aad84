"""The latent-space figure: the plane fitted on every sample, a fixed subset drawn in every panel."""

import numpy as np
from matplotlib.axes import Axes

from pyro_mm.metrics.plots import latent_view, principal_plane


def _record_scatter(monkeypatch):
    drawn = []
    original = Axes.scatter

    def recording(self, x, y, *args, c=None, **kwargs):
        drawn.append((np.asarray(x).copy(), np.asarray(y).copy(), np.asarray(c).copy()))
        return original(self, x, y, *args, c=c, **kwargs)
    monkeypatch.setattr(Axes, "scatter", recording)
    return drawn


def test_latent_view_draws_the_same_fixed_subset_in_every_panel(tmp_path, monkeypatch):
    drawn = _record_scatter(monkeypatch)
    rng = np.random.default_rng(1)
    joint = rng.normal(size=(200, 4)) * [3.0, 2.0, 0.5, 0.1]
    labels = rng.integers(0, 10, 200)
    path = latent_view({"joint": joint, "copy": joint.copy()}, labels, tmp_path / "latent.png", max_points=50)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (x1, y1, c1), (x2, y2, c2) = drawn
    assert len(x1) == 50 and np.array_equal(x1, x2) and np.array_equal(y1, y2) and np.array_equal(c1, c2)
    # the drawn points are samples' projections on the plane fitted on all 200
    mean, axes = principal_plane(joint)
    projected = (joint - mean) @ axes
    rows = [int(np.flatnonzero(np.isclose(projected[:, 0], x))[0]) for x in x1]
    assert len(set(rows)) == 50 and np.array_equal(labels[rows], c1)
    assert np.allclose(projected[rows, 1], y1)
    drawn.clear()
    latent_view({"joint": joint}, labels, tmp_path / "again.png", max_points=50)
    assert np.array_equal(drawn[0][0], x1)  # the same subset every time
    drawn.clear()
    latent_view({"joint": joint}, labels, tmp_path / "all.png")
    assert len(drawn[0][0]) == 200


def test_coherence_bars_draw_chance_at_one_over_the_number_of_classes(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from pyro_mm.metrics.coherence import CoherenceResult
    from pyro_mm.metrics.plots import coherence_bars

    saved = []
    savefig = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: saved.append(self) or savefig(self, *a, **k))
    pair = (("a",), "b")
    result = CoherenceResult({pair: 0.6}, {pair: np.full(10, 0.6)}, {pair: 100}, {1: 0.6})
    coherence_bars(result, tmp_path / "coherence.png")
    (ax,) = saved[0].axes
    (chance,) = [line for line in ax.lines if line.get_label() == "chance"]
    assert set(chance.get_ydata()) == {0.1} and ax.get_ylabel() == "coherence" and ax.get_xlabel()
    coherence_bars(CoherenceResult({pair: 0.6}, {}, {}, {1: 0.6}), tmp_path / "unknown.png")
    assert not saved[1].axes[0].lines  # no per-class accuracies: the number of classes is unknown
