"""The benchmarks run at a tiny size, and the step-overhead floors compute the same objective as
pyro_mm — the same loss and the same gradient from the same random numbers — so that their ratios
compare like with like."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name):
    sys.path.insert(0, str(BENCHMARKS))  # scaling.py imports step_overhead
    try:
        spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCHMARKS))


#: the step-overhead harness's cases, read from it (one or more per registered method: a method
#: without one fails test_every_registered_method_has_a_step_overhead_case)
CASES = list(_load("step_overhead").cases(features=12, hidden=8, z_dim=3))


def _run(script, out):
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), "--small", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_step_overhead_harness_reports_every_case(tmp_path):
    _run("step_overhead.py", tmp_path)
    report = json.loads((tmp_path / "step_overhead.json").read_text())
    table = (tmp_path / "step_overhead.md").read_text()
    assert list(report["cases"]) == CASES
    assert "torch" in report["provenance"]["machine"] and "Measured at commit" in table
    for name, case in report["cases"].items():
        assert 0 < case["ratio_q1"] <= case["ratio_median"] <= case["ratio_q3"], name
        assert len(case["ours"]) == len(case["floor"]) == report["config"]["repeats"]
        assert case["samples_per_s"] > 0 and case["floor_samples_per_s"] > 0, name
        assert case["peak_mib"] >= 0 and case["floor_peak_mib"] >= 0, name
        assert case["value_gap"] < 1e-5 and case["grad_gap"] < 1e-4, (name, case["value_gap"], case["grad_gap"])
        assert f"| {name} | " in table


def test_every_registered_method_has_a_step_overhead_case():
    """A method added to the registry without a benchmark case (and its floor) fails here."""
    from pyro_mm.registry import METHODS

    bench = _load("step_overhead")
    cases = bench.cases(features=12, hidden=8, z_dim=3)
    covered = {case["method"] for case in cases.values()}
    assert set(METHODS) <= covered, f"methods without a step-overhead case: {sorted(set(METHODS) - covered)}"
    assert covered <= set(METHODS), sorted(covered - set(METHODS))
    for name, case in cases.items():  # built through the registry
        assert type(case["build"]()) is METHODS[case["method"]], name


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_floor_computes_pyro_mm_objective(name, seed):
    """Same seed, same inputs: the floor's loss and gradient are pyro_mm's (float precision)."""
    bench = _load("step_overhead")
    case = bench.cases(features=12, hidden=8, z_dim=3)[name]
    vae, loss, batch, _, _ = bench.prepare(case, features=12, batch_size=8)
    gaps = bench.check_values(case, vae, loss, batch, seed=seed)
    assert gaps["value_gap"] < 1e-5 and gaps["grad_gap"] < 1e-4, gaps


def test_scaling_harness_runs_small(tmp_path):
    _run("scaling.py", tmp_path)
    report = json.loads((tmp_path / "scaling.json").read_text())
    cases = {(r["case"], r["M"]) for r in report["modalities"]}
    assert ("mopoe all subsets", 3) in cases and ("mmvae num_subsets=1", 3) in cases
    assert [r["K"] for r in report["particles"]] == [1, 4]
    assert [lik["features"] for lik in report["likelihood"]] == [16, 32]  # the small MLP, then the full-size one
    for likelihood in report["likelihood"]:
        assert 0 < likelihood["speedup_q1"] <= likelihood["speedup_median"] <= likelihood["speedup_q3"]
        assert likelihood["loop_samples"] < likelihood["block"] <= likelihood["samples"] and likelihood["peak_mib"] >= 0
        assert likelihood["batched_ms"] > 0 and likelihood["loop_ms"] > 0
    assert "Likelihood" in (tmp_path / "scaling.md").read_text()


def test_data_parallel_benchmark_runs_two_processes(tmp_path):
    pytest.importorskip("lightning")
    _run("data_parallel.py", tmp_path)
    report = json.loads((tmp_path / "data_parallel.json").read_text())
    assert report["ddp"]["world_size"] == 2 and report["single"]["seconds_per_step"] > 0
    assert len(report["single"]["step_losses"]) == len(report["ddp"]["step_losses"]) == report["steps"]
    assert "Lightning DDP" in (tmp_path / "data_parallel.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data_parallel.json", "data_parallel.md"]


def test_mopoe_with_one_subset_per_sample_estimates_the_same_bound_with_more_noise():
    """benchmarks/mopoe_subsets.py at a tiny size: the two choices agree on the bound within their
    standard errors, and drawing one subset per sample makes the gradient noisier."""
    rows = {name: rest for name, *rest in _load("mopoe_subsets").measure(3, draws=6, repeats=1, size=300, timed=1)}
    (_, all_mean, _, all_se, all_noise), (_, one_mean, _, one_se, one_noise) = rows["all subsets"], \
        rows["one subset per sample"]
    assert abs(all_mean - one_mean) < 5 * (all_se ** 2 + one_se ** 2) ** 0.5
    assert one_noise > 2 * all_noise
