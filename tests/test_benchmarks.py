"""The step-overhead benchmark runs at a tiny size, and its plain-PyTorch floors compute the same
objective as pyro_mm (same value with the same random numbers), so its ratios compare like with like."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "step_overhead.py"


def test_step_overhead_harness_runs_small(tmp_path):
    out = subprocess.run([sys.executable, str(SCRIPT), "--small", "--out", str(tmp_path)], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads((tmp_path / "step_overhead.json").read_text())
    expected = {"unimodal", "mvae", "mmvae K=1", "mmvae K=10 dreg", "mopoe all subsets", "mopoe num_subsets=1",
                "meme K=10 mixed"}
    assert set(report["cases"]) == expected
    for name, case in report["cases"].items():
        assert case["ratio_q1"] <= case["ratio_median"] <= case["ratio_q3"], name
        assert case["samples_per_s"] > 0 and case["floor_samples_per_s"] > 0, name
        if case["value_gap"] is not None:
            assert case["value_gap"] < 1e-5, (name, case["value_gap"])
    assert "| mmvae K=10 dreg |" in (tmp_path / "step_overhead.md").read_text()


def test_scaling_harness_runs_small(tmp_path):
    script = SCRIPT.with_name("scaling.py")
    out = subprocess.run([sys.executable, str(script), "--small", "--out", str(tmp_path)], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads((tmp_path / "scaling.json").read_text())
    cases = {(r["case"], r["M"]) for r in report["modalities"]}
    assert ("mopoe all subsets", 3) in cases and ("mmvae num_subsets=1", 3) in cases
    assert [r["K"] for r in report["particles"]] == [1, 4]
    assert report["likelihood"]["speedup"] > 0
    assert "Likelihood" in (tmp_path / "scaling.md").read_text()
