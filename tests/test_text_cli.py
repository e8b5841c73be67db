"""A sentence model through the same commands as an image model: train, evaluate, sample, export, tune."""

import json
import os
from pathlib import Path

import pytest
from model_test_case import serve_with_tensorflow_alone

from vae_zoo import cli
from vae_zoo.data.text import FORTUNES_DIR

ROOT = Path(__file__).resolve().parents[1]
RECIPE = str(ROOT / "recipes/sentence_vae/fortunes_bn.yaml")
# A small model on 96 quotations, so that the whole run takes seconds.
SMALL = ["--smoke", "--set", "data.limit=96", "--set", "model.encoder.units=16", "--set", "model.embedding_dim=8",
         "--set", "model.latent_dim=4", "--set", "data.max_length=12"]


@pytest.mark.skipif(not Path(os.environ.get("VAE_ZOO_FORTUNES_DIR", FORTUNES_DIR)).is_dir(),
                    reason="Debian's fortunes package is not installed (.ci/run installs it)")
@pytest.mark.slow
def test_a_sentence_model_trains_evaluates_samples_exports_and_tunes(tmp_path, capsys):
    out = tmp_path / "model"
    assert cli.main(["train", RECIPE, *SMALL, "--out", str(out)]) == 0
    card = json.loads((out / "card.json").read_text())
    assert card["model"] == "sentence_vae" and card["config"]["vocabulary"][:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    assert card["sample_text"] == "samples.txt" and len((out / "samples.txt").read_text().splitlines()) == 16
    capsys.readouterr()

    assert cli.main(["sample", str(out), "--n", "4", "--seed", "3", "--out", str(tmp_path / "s.png")]) == 0
    sentences = (tmp_path / "s.txt").read_text().splitlines()
    assert len(sentences) == 4 and all(isinstance(s, str) for s in sentences)
    capsys.readouterr()

    assert cli.main(["evaluate", str(out), "--only", "scores,nll,latents,text", "--k", "5", "--limit", "12",
                     "--out", str(tmp_path / "report")]) == 0
    parts = json.loads(capsys.readouterr().out)["parts"]
    assert parts["nll"]["perplexity"] > 1 and parts["nll"]["tokens"] > 12
    assert parts["scores"]["reconstruction_token_errors"] >= 0
    assert parts["latents"]["latent_dims"] == 4
    assert len(parts["text"]["homotopies"]) == 3 and len(parts["text"]["homotopies"][0]["path"]) == 7
    assert "## Homotopy 1" in (tmp_path / "report" / "text.md").read_text()

    assert cli.main(["export", str(out), "--out", str(tmp_path / "export")]) == 0
    served = serve_with_tensorflow_alone(tmp_path / "export", (
        "ids = m.signatures['sample'](n=tf.constant(3), seed=tf.constant(1))['samples']\n"
        "out['n'] = int(m.signatures['detokenize'](ids=ids)['text'].shape[0])\n"
        "nll = m.signatures['log_likelihood'](x=ids, k=tf.constant(4), seed=tf.constant(2))['log_likelihood']\n"
        "out['finite'] = bool(tf.reduce_all(tf.math.is_finite(nll)))"))
    assert served["n"] == 3 and served["finite"]
    capsys.readouterr()

    assert cli.main(["tune", RECIPE, *SMALL, "--set", "search.max_trials=1", "--out", str(tmp_path / "search")]) == 0
    rows = json.loads((tmp_path / "search" / "trials.json").read_text())
    assert len(rows) == 1 and rows[0]["status"] == "COMPLETED" and {"beta", "latent_dim", "learning_rate"} <= set(rows[0])
