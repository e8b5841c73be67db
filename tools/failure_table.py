"""The failure cases of the reliability issue, each run for real, as a markdown table.

    python tools/failure_table.py                 # prints it, and writes it into reports/failure_table.md
    python tools/failure_table.py --out FILE

Part 1 runs every bad command line and recipe through the ``vae-zoo`` command in
a fresh folder and reports the exit status, the last stderr line and whether
``--out`` was created. Part 2 calls the library on damaged files and an
exported model's signatures and reports the error each raises.
"""

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import textwrap
import zipfile
from pathlib import Path

import numpy as np

from report_output import REPORTS, printed_into


def command_line_cases():
    ROOT = Path(__file__).resolve().parent.parent
    R = str(ROOT / "recipes/vae/mnist_mini.yaml")
    work = Path(tempfile.mkdtemp(prefix="ft-"))
    os.chdir(work)
    def w(name, text):
        Path(name).write_text(textwrap.dedent(text)); return name
    ok = w("ok.yaml", "model: {name: vae}\ndata: {name: mnist_mini}\n")
    Path("binary.yaml").write_bytes(open("/bin/ls", "rb").read()[:300])
    np.savez("pickled.npz", images=np.array([{"a": 1}], dtype=object))
    os.makedirs("existing_dir", exist_ok=True)
    cases = [
        ("learning rate 1000", ["train", R, "--smoke", "--out", "X", "--set", "optimizer.learning_rate=1000.0"]),
        ("beta 1e30", ["train", R, "--smoke", "--out", "X", "--set", "model.beta=1e30"]),
        ("negative learning rate", ["train", R, "--smoke", "--out", "X", "--set", "optimizer.learning_rate=-0.001"]),
        ("kl_annealing beta_final -5", ["train", R, "--smoke", "--out", "X", "--set", "callbacks=[{name: kl_annealing, beta_final: -5}]"]),
        ("terminate_on_nan + learning rate 1000", ["train", R, "--smoke", "--out", "X", "--set", "optimizer.learning_rate=1000.0", "--set", "callbacks=[{name: terminate_on_nan}]"]),
        ("sample --n 0", ["sample", "vae.mnist_mini", "--n", "0"]),
        ("sample --n -1", ["sample", "vae.mnist_mini", "--n=-1"]),
        ("evaluate --only nll --k 0", ["evaluate", "vae.mnist_mini", "--only", "nll", "--k", "0"]),
        ("sample --out into a missing folder", ["sample", "vae.mnist_mini", "--out", "nowhere/s.png"]),
        ("sample --out unknown extension", ["sample", "vae.mnist_mini", "--out", "s.bmpx"]),
        ("sample --out existing_dir", ["sample", "vae.mnist_mini", "--out", "existing_dir"]),
        ("binary file as recipe", ["train", "binary.yaml"]),
        ("training.seed: -1", ["train", ok, "--out", "X", "--set", "training.seed=-1"]),
        ("smoke: 5", ["train", w("s5.yaml", "model: {name: vae}\ndata: {name: mnist_mini}\nsmoke: 5\n"), "--smoke", "--out", "X"]),
        ("evaluate --data shapes", ["evaluate", "vae.mnist_mini", "--data", "shapes"]),
        (".npz holding a pickled array", ["train", ok, "--out", "X", "--set", "data.name=npz", "--set", "data.path=pickled.npz"]),
        ('batch_norm: "no"', ["train", w("bn.yaml", 'model: {name: vae, encoder: {name: mlp, batch_norm: "no"}}\ndata: {name: mnist_mini}\n'), "--out", "X"]),
        ('jit_compile: "no"', ["train", w("jit.yaml", 'model: {name: vae}\ndata: {name: mnist_mini}\ntraining: {jit_compile: "no"}\n'), "--out", "X"]),
        ("latent_dim: 20.7", ["train", ok, "--out", "X", "--set", "model.latent_dim=20.7"]),
        ("CVAE num_classes: 3", ["train", str(ROOT / "recipes/cvae/mnist_mini.yaml"), "--smoke", "--out", "X", "--set", "model.num_classes=3"]),
        ("monitor: val_elbow", ["train", ok, "--out", "X", "--set", "training.monitor=val_elbow"]),
        ("duplicate YAML keys", ["train", w("dup.yaml", "model: {name: vae}\ndata: {name: mnist_mini}\nmodel: {name: iwae}\n"), "--out", "X"]),
        ("evaluate --limit 0", ["evaluate", "vae.mnist_mini", "--limit", "0"]),
        ('hidden_sizes: "400,400"', ["train", w("hs.yaml", 'model: {name: vae, encoder: {name: mlp, hidden_sizes: "400,400"}}\ndata: {name: mnist_mini}\n'), "--out", "X"]),
        ("model.name: 42", ["train", w("n42.yaml", "model: {name: 42}\ndata: {name: mnist_mini}\n"), "--out", "X"]),
        ("no data: section, with --smoke", ["train", w("nod.yaml", "model: {name: vae}\n"), "--smoke", "--out", "X"]),
        ("training.epochs: -1, with --smoke", ["train", w("neg.yaml", "model: {name: vae}\ndata: {name: mnist_mini}\ntraining: {epochs: -1}\n"), "--smoke", "--out", "X"]),
        ("smoke override data.limit: -5", ["train", w("sl.yaml", "model: {name: vae}\ndata: {name: mnist_mini}\nsmoke: {data.limit: -5}\n"), "--smoke", "--out", "X"]),
        ("780-byte recipe of nested YAML aliases", ["train", w("bomb.yaml", "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nmodel: {name: vae}\ndata: {name: mnist_mini}\n"), "--out", "X"]),
        ("config asking for hidden_sizes [30000, 30000]", ["train", ok, "--out", "X", "--set", "model.encoder={name: mlp, hidden_sizes: [30000, 30000]}"]),
    ]
    print("| case | exit | stderr (one line) | saved at --out |")
    print("|---|---|---|---|")
    for label, argv in cases:
        for leftover in ("X",):
            subprocess.run(["rm", "-rf", leftover, f".{leftover}.run"])
        run = subprocess.run(["vae-zoo", *argv], capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=600)
        lines = [l for l in run.stderr.splitlines() if l.strip() and not l.startswith(("W0000", "I0000", "E0000", "WARNING: All log", "To enable"))]
        message = lines[-1] if lines else ""
        message = message.replace(str(work) + "/", "").replace(str(ROOT) + "/", "")
        if len(message) > 170:
            message = message[:167] + "..."
        saved = "yes" if Path("X").exists() else "no"
        print(f"| {label} | {run.returncode} | `{message}` | {saved} |  ({len(lines)} line{'s' if len(lines) != 1 else ''})", flush=True)

def library_cases():
    import tensorflow as tf

    import vae_zoo

    work = Path(tempfile.mkdtemp(prefix="ft-"))
    print("\n| case | what it raises |")
    print("|---|---|")
    def small():
        return vae_zoo.create_model("vae", data_shape=(8, 8, 1), latent_dim=2, encoder={"name": "mlp", "hidden_sizes": [8]})
    def row(label, fn):
        try:
            fn(); print(f"| {label} | no error |")
        except Exception as e:
            print(f"| {label} | `{type(e).__name__}: {' '.join(str(e).split())[:220].replace(str(work)+'/', '')}` |")
    m = vae_zoo.save(small(), work / "m")
    card = json.loads((m / "card.json").read_text())
    (m / "card.json").write_text(json.dumps({**card, "weights_sha256": "0" * 64}))
    row("card whose weights digest disagrees", lambda: vae_zoo.load(m))
    (m / "card.json").write_text(json.dumps({**card, "config": {**card["config"], "latent_dim": 3}}))
    row("card whose config disagrees", lambda: vae_zoo.load(m))
    (m / "card.json").write_text(json.dumps(card))
    with zipfile.ZipFile(m / "model.keras") as z:
        entries = {n: z.read(n) for n in z.namelist()}
    cfg = json.loads(entries["config.json"]); cfg["config"]["encoder"]["hidden_sizes"] = [30000, 30000]
    entries["config.json"] = json.dumps(cfg).encode()
    with zipfile.ZipFile(work / "hostile.keras", "w") as z:
        for n, p in entries.items(): z.writestr(n, p)
    row(f"model.keras ({(work/'hostile.keras').stat().st_size:,} bytes) whose config asks for hidden_sizes [30000, 30000]", lambda: vae_zoo.load(work / "hostile.keras"))
    shutil.copytree(m, work / ".m.partial-0123abcd")
    row("loading a .partial-* folder", lambda: vae_zoo.load(work / ".m.partial-0123abcd"))
    vae_zoo.export(small(), work / "e")
    served = tf.saved_model.load(str(work / "e"))
    row("export: sample(n=10**8)", lambda: served.signatures["sample"](n=tf.constant(10**8), seed=tf.constant(1)))
    row("export: log_likelihood(k=10**7)", lambda: served.signatures["log_likelihood"](x=tf.fill((1, 8, 8, 1), .5), k=tf.constant(10**7), seed=tf.constant(1)))
    row("export: log_likelihood of 100 images at k=20,000", lambda: served.signatures["log_likelihood"](x=tf.fill((100, 8, 8, 1), .5), k=tf.constant(20000), seed=tf.constant(1)))
    row("export: decode(NaN)", lambda: served.signatures["decode"](z=tf.fill((1, 2), float("nan"))))
    row("export: elbo of pixels in [0, 3]", lambda: served.signatures["elbo"](x=tf.fill((1, 8, 8, 1), 3.0), seed=tf.constant(1)))
    row("Python: model.elbo of pixels in [0, 3]", lambda: small().elbo(np.full((1, 8, 8, 1), 3.0, np.float32)))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(REPORTS / "failure_table.md"), help="also write the tables here")
    with printed_into(parser.parse_args().out):
        command_line_cases()
        library_cases()
