"""Failures that must not lose work or save garbage: divergence, crashes mid-save, races, lying cards, huge configs."""

import json
import os
import resource
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

import vae_zoo
from vae_zoo import cli
from vae_zoo.io import folders
from vae_zoo.training import recipe as recipes
from vae_zoo.training import tuning

ROOT = Path(__file__).parent.parent
SMALL_RECIPE = textwrap.dedent("""\
    model: {name: vae, latent_dim: 2, encoder: {name: mlp, hidden_sizes: [16]}}
    data: {name: digits, binarize: static, batch_size: 64}
    training: {epochs: 2, jit_compile: false}
""")


def small_model():
    return vae_zoo.create_model("vae", data_shape=(8, 8, 1), latent_dim=2, encoder={"name": "mlp", "hidden_sizes": [8]})


def write(path, text):
    path.write_text(text)
    return path


def child_env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}


# ---------------------------------------------------------------- divergence


def test_a_diverging_run_stops_names_the_step_and_term_and_saves_nothing(tmp_path, capsys):
    recipe = write(tmp_path / "r.yaml", SMALL_RECIPE)
    out = tmp_path / "out"
    code = cli.main(["train", str(recipe), "--out", str(out), "--set", "optimizer.learning_rate=1000.0"])
    err = capsys.readouterr().err.strip()
    assert code == cli.EXIT_DIVERGED
    assert "\n" not in err and "Traceback" not in err
    assert err.startswith("vae-zoo: error: training diverged at step ")
    assert "(epoch 1, batch " in err and ("reconstruction" in err or "kl" in err) and "went non-finite" in err
    assert f"Nothing was saved at {out}" in err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.yaml"], "no work folder or lock is left when no epoch finished"


def test_the_guard_names_the_terms_and_refuses_a_diverged_save(tmp_path):
    from vae_zoo.training.callbacks import DivergenceGuard

    guard = DivergenceGuard()
    guard.set_model(small_model())
    guard.model.compile()
    guard.on_epoch_begin(4)
    guard.on_train_batch_end(0, {"loss": 1.0, "kl": 0.5})  # finite: nothing happens
    with pytest.raises(vae_zoo.DivergenceError, match=r"at step 0 \(epoch 5, batch 8\): kl went non-finite"):
        guard.on_train_batch_end(7, {"loss": float("nan"), "elbo": float("nan"), "kl": float("inf"), "reconstruction": 3.0})
    model = small_model()
    model.weights[0].assign(np.full(model.weights[0].shape, np.nan, np.float32))
    with pytest.raises(vae_zoo.DivergenceError, match="weight tensors hold NaN"):
        vae_zoo.save(model, tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_cards_are_strict_json(tmp_path):
    folder = vae_zoo.save(small_model(), tmp_path / "m", card={"metrics": {"test": {"elbo": float("nan")}}})
    text = (folder / "card.json").read_text()
    assert "NaN" not in text and json.loads(text)["metrics"]["test"]["elbo"] is None


# ---------------------------------------------------------------- crashes and races


def test_a_kill_between_the_renames_of_a_replacement_keeps_the_old_model(tmp_path):
    folder = vae_zoo.save(small_model(), tmp_path / "m")
    digest = json.loads((folder / "card.json").read_text())["weights_sha256"]
    script = textwrap.dedent(f"""
        import os
        import vae_zoo
        from vae_zoo.io import folders
        model = vae_zoo.create_model("vae", data_shape=(8, 8, 1), latent_dim=2, encoder={{"name": "mlp", "hidden_sizes": [8]}})
        real = folders.move_into_place
        folders.move_into_place = lambda staging, folder: real(staging, folder, before_swap=lambda: os._exit(9))
        vae_zoo.save(model, {str(folder)!r}, overwrite=True)
    """)
    run = subprocess.run([sys.executable, "-c", script], env=child_env(), capture_output=True, text=True, timeout=300)
    assert run.returncode == 9, run.stderr[-2000:]
    assert not folder.exists(), "the kill came after the old folder was moved aside"
    assert len(list(tmp_path.glob(".m.old-*"))) == 1
    with pytest.warns(RuntimeWarning, match="restored .* interrupted replacement"):
        model = vae_zoo.load(folder)
    assert vae_zoo.io.saving.weights_digest(model) == digest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_partial_folders_never_load_and_are_cleaned_up(tmp_path):
    folder = vae_zoo.save(small_model(), tmp_path / "m")
    partial = tmp_path / ".m.partial-0123abcd"
    os.rename(folder, partial)
    with pytest.raises(vae_zoo.ModelFileError, match="unfinished or replaced save"):
        vae_zoo.load(partial)
    vae_zoo.save(small_model(), folder)  # the next save of m removes the remains of the killed one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_a_second_run_into_a_locked_folder_fails_at_once(tmp_path, capsys):
    recipe = write(tmp_path / "r.yaml", SMALL_RECIPE)
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import fcntl, os, sys, time
        fd = os.open({str(folders.lock_path(out))!r}, os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, str(os.getpid()).encode())
        print("locked", flush=True)
        time.sleep(120)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.perf_counter()
        assert cli.main(["train", str(recipe), "--out", str(out), "--overwrite"]) == 2
        assert time.perf_counter() - started < 5, "it must fail before loading data or building anything"
        err = capsys.readouterr().err.strip()
        assert err == f"vae-zoo: error: {out} is being written by another process (pid {holder.pid}); wait for it to finish or choose another folder"
        assert not out.exists() and not (tmp_path / ".out.run").exists()
    finally:
        holder.kill()
        holder.wait()
    # Once the holder is gone (killed: the kernel drops its lock), the folder is free again.
    assert cli.main(["train", str(recipe), "--out", str(out)]) == 0
    assert vae_zoo.load(out).count_params() > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "r.yaml"]


@pytest.mark.slow
def test_two_concurrent_commands_into_one_folder(tmp_path):
    recipe = write(tmp_path / "r.yaml", SMALL_RECIPE.replace("epochs: 2", "epochs: 30"))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "vae_zoo", "train", str(recipe), "--out", str(out), "--overwrite"]
    first = subprocess.Popen(command, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (tmp_path / ".out.run").exists() and time.time() < deadline:
            time.sleep(0.2)
        assert (tmp_path / ".out.run").exists(), "the first run never started"
        second = subprocess.run(command, env=child_env(), capture_output=True, text=True, timeout=300)
        assert second.returncode == 2
        assert f"{out} is being written by another process (pid {first.pid})" in second.stderr.strip().splitlines()[-1]
        assert first.wait(timeout=300) == 0, first.stderr.read()[-2000:]
    finally:
        first.kill()
    assert vae_zoo.load(out).count_params() > 0


# ---------------------------------------------------------------- files that lie


def test_a_card_that_disagrees_with_its_model_is_refused(tmp_path):
    folder = vae_zoo.save(small_model(), tmp_path / "m")
    card = json.loads((folder / "card.json").read_text())
    for field, value in (("weights_sha256", "0" * 64), ("parameters", 12), ("model", "iwae")):
        (folder / "card.json").write_text(json.dumps({**card, field: value}))
        with pytest.raises(vae_zoo.ModelFileError, match=f"does not describe .*its field '{field}'"):
            vae_zoo.load(folder)
    (folder / "card.json").write_text(json.dumps({**card, "config": {**card["config"], "latent_dim": 3}}))
    with pytest.raises(vae_zoo.ModelFileError, match="its field 'config' differs"):
        vae_zoo.load(folder)


def test_an_oversized_config_is_refused_before_anything_is_allocated(tmp_path):
    folder = vae_zoo.save(small_model(), tmp_path / "m")
    archive = folder / "model.keras"
    with zipfile.ZipFile(archive) as source:
        entries = {name: source.read(name) for name in source.namelist()}
    config = json.loads(entries["config.json"])
    config["config"]["encoder"]["hidden_sizes"] = [30000, 30000]
    entries["config.json"] = json.dumps(config).encode()
    hostile = tmp_path / "hostile.keras"
    with zipfile.ZipFile(hostile, "w") as target:
        for name, payload in entries.items():
            target.writestr(name, payload)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with pytest.raises(vae_zoo.ModelFileError, match=r"has 1,\d{3},\d{3},\d{3} parameters, over the limit of 200,000,000"):
        vae_zoo.load(hostile)
    assert time.perf_counter() - started < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500_000, "under 500 MB more peak memory (kB)"
    with pytest.raises(vae_zoo.ConfigError, match="over the limit"):
        vae_zoo.create_model("vae", encoder={"name": "mlp", "hidden_sizes": [30000, 30000]})


# ---------------------------------------------------------------- tuning state


SEARCH = SMALL_RECIPE + textwrap.dedent("""\
    search:
      tuner: random
      max_trials: 1
      epochs: 1
      parameters:
        beta: {type: float, min: 0.5, max: 2.0}
""")


@pytest.mark.slow
def test_a_torn_oracle_and_a_changed_recipe_are_refused_with_the_way_out(tmp_path):
    out = tmp_path / "search"
    recipe = recipes.parse(recipes.load_yaml(SEARCH))
    tuning.run(recipe, out, verbose=0)
    changed = recipes.parse(recipes.load_yaml(SEARCH.replace("max: 2.0", "max: 3.0")))
    with pytest.raises(vae_zoo.RecipeError, match="holds a search of a different recipe .* pass --restart"):
        tuning.run(changed, out, verbose=0)
    oracle = out / "search" / "oracle.json"
    oracle.write_text(oracle.read_text()[: len(oracle.read_text()) // 2])
    with pytest.raises(vae_zoo.RecipeError, match="search state .* is unreadable .*pass --restart"):
        tuning.run(recipe, out, verbose=0)
    assert tuning.run(changed, out, verbose=0, overwrite=True)["trials"] == 1
