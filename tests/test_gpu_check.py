"""tools/gpu_check.sh, the one call a lent GPU gets, runs end to end on the CPU with --dry-run (so it cannot rot)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "gpu_check.sh"


@pytest.mark.slow
def test_the_gpu_check_runs_every_step_as_a_dry_run(tmp_path):
    from documented_code import fashion_mnist_installed

    if not fashion_mnist_installed():  # the conv VampPrior recipe trains on it, at smoke size here
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist; .ci/run does)")
    out = tmp_path / "out"
    run = subprocess.run(["bash", str(SCRIPT), "--dry-run", "--out", str(out)], capture_output=True, text=True,
                         timeout=1500, env={**os.environ, "PYTHON": sys.executable})
    log = (out / "gpu_check.log").read_text() if (out / "gpu_check.log").exists() else run.stdout + run.stderr
    assert run.returncode == 0, log[-4000:]
    # Every step ran and its results are the few files that come back from a lent machine.
    for step in ("gpu_tests", "bench_float32", "search"):
        assert f"step {step}: exit 0" in log, log[-4000:]
    assert "training: exit 0" in log or "training: exit 124" in log
    assert sorted(p.name for p in out.iterdir()) == ["conv_vamp_nll.json", "conv_vamp_run.tar.gz", "gpu_check.log",
                                                     "gpu_tests.xml", "search.json", "torch_comparison.json"]
    junit = (out / "gpu_tests.xml").read_text()
    assert 'failures="0"' in junit and 'errors="0"' in junit and 'skipped="0"' in junit, junit[:500]
    tables = json.loads((out / "torch_comparison.json").read_text())
    rows = tables["bench_float32"]["comparisons"]
    assert {(r["architecture"], r["shape"]) for r in rows} == {("mlp", "28x28x1"), ("conv", "28x28x1")}
    assert all(r["systems"]["zoo"]["examples_per_second"] > 0 for r in rows)
    assert json.loads((out / "search.json").read_text())["best_objective"] is not None


def test_the_gpu_check_refuses_unknown_arguments(tmp_path):
    run = subprocess.run(["bash", str(SCRIPT), "--out", str(tmp_path), "--frobnicate"], capture_output=True, text=True)
    assert run.returncode == 2 and "unknown argument --frobnicate" in run.stderr
    run = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True)
    assert run.returncode == 2 and "--out DIR is required" in run.stderr


def test_checkpoint_nll_reads_a_run_in_progress(tmp_path, interrupted_at_epoch):
    """What the GPU check reports of a time-boxed run: its best checkpoint's IS-NLL and its curve so far."""
    sys.path.insert(0, str(ROOT / "tools"))
    import checkpoint_nll

    from vae_zoo.training import recipe as recipes
    from vae_zoo.training import runner

    recipe = recipes.parse({"model": {"name": "vae", "latent_dim": 4, "encoder": {"name": "mlp", "hidden_sizes": [32]}},
                            "data": {"name": "digits", "binarize": "static", "batch_size": 64, "limit": 256},
                            "training": {"epochs": 9, "verbose": 0, "monitor": "val_elbo"}})
    out = tmp_path / "run"
    interrupted_at_epoch(7, lambda: runner.train(recipe, out, verbose=0))
    work = runner.WorkFolder.path_for(out)
    assert not out.exists() and work.is_dir()
    result = checkpoint_nll.main([str(work), "--k", "8", "--limit", "50", "--out", str(tmp_path / "nll.json")])
    assert result["epochs_done"] == 7 and len(result["curve"]) == 7
    assert result["best_epoch"] == int(np.argmax(result["curve"])) + 1
    # digits are 8x8: an NLL between 0 and 64 ln 2 (a coin per pixel)
    assert result["test_images"] == 50 and 0 < result["test_nll"] < 64 * np.log(2)
    assert result["projection_500_epochs_ahead"]["at_epoch"] == 507
    assert json.loads((tmp_path / "nll.json").read_text())["test_nll"] == result["test_nll"]
    # The run it read is untouched and resumes.
    runner.train(recipe, out, verbose=0)
    assert out.is_dir() and not work.exists()


def test_the_projection_of_a_curve_fits_a_plus_b_over_epoch():
    sys.path.insert(0, str(ROOT / "tools"))
    import checkpoint_nll

    curve = [-220.0 - 30.0 / epoch for epoch in range(1, 41)]
    projection = checkpoint_nll.projected_curve(curve, 60)
    assert projection["limit"] == pytest.approx(-220.0) and projection["value"] == pytest.approx(-220.0 - 30.0 / 100)
    assert checkpoint_nll.projected_curve(curve[:5], 10) is None
