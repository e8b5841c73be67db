"""Smoke runs of every shipped recipe, timed with its XLA setting at an earlier commit and with today's.

    python tools/bench_recipes.py --before 0c8f750            # every recipe (about 20 min on 2 cores)
    python tools/bench_recipes.py --before 0c8f750 --only vae/fashion_mnist.yaml

For each recipe, one child process builds its model and resolves the ``training.jit_compile`` the recipe had at
``--before`` (true when it said nothing: the old default) and the one it has now (``auto``:
training/compilation.py). Where both give the same step, nothing is timed (the table says so); where they
differ, it runs ``vae-zoo train RECIPE --smoke`` twice, once with each, the order alternating from recipe to
recipe so that neither always runs first. Both runs are whole smoke runs (build, compile, one epoch over the smoke data, the test
scores, saving), timed from the call into the runner to the saved folder; the card's ``training.seconds``
gives the part inside ``model.fit``. Recipes whose data is not on this machine are listed as skipped.

Writes ``recipes_speed.json`` and ``recipes_speed.md`` into ``--out`` (default ``reports/``).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from vae_zoo.training import compilation, recipe as recipes, runner
path, out, settings = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
recipe = recipes.read(path, smoke=True)
model = recipes.build_model(recipe, recipes.build_data(recipe))
chosen = {label: compilation.choose_jit_compile(model, setting)[0] for label, setting in settings}
if chosen["before"] == chosen["now"]:  # the same compiled step as before: nothing to time
    print("RESULT " + json.dumps({"same": chosen["now"]}))
    sys.exit(0)
results = {}
for label, setting in settings:
    recipe = recipes.read(path, overrides=[f"training.jit_compile={json.dumps(setting)}", "training.verbose=0"], smoke=True)
    start = time.perf_counter()
    folder, _, card = runner.train(recipe, f"{out}/{label}", source=path, verbose=0)
    results[label] = {"seconds": time.perf_counter() - start, "fit_seconds": card["training"]["seconds"],
                      "jit_compile": card["training"].get("compiled", {}).get("jit_compile", setting)}
print("RESULT " + json.dumps(results))
"""


def jit_setting_at(revision, recipe):
    """The recipe's ``training.jit_compile`` at ``revision`` (the old default, true, when it had none)."""
    shown = subprocess.run(["git", "show", f"{revision}:{recipe.relative_to(ROOT)}"], cwd=ROOT, capture_output=True,
                           text=True)
    if shown.returncode:
        return None  # the recipe did not exist then
    return ((yaml.safe_load(shown.stdout) or {}).get("training") or {}).get("jit_compile", True)


def time_recipe(recipe, before, index, timeout):
    now = ((yaml.safe_load(recipe.read_text()) or {}).get("training") or {}).get("jit_compile", "auto")
    settings = [("before", before), ("now", now)]
    if index % 2:
        settings.reverse()
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run([sys.executable, "-c", CHILD, str(recipe), out, json.dumps(settings)], cwd=ROOT,
                              capture_output=True, text=True, timeout=timeout)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    last = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return {"skipped": last[:300]}


def table(rows):
    """The timings as {"columns", "rows"} (tools/write_readme.py puts them in docs/speed.md)."""
    columns = ["recipe", "XLA before → now", "smoke run before (s)", "now (s)", "now / before", "in fit before (s)", "now (s)"]
    out = []
    for name, row in rows.items():
        if "skipped" in row:
            out.append([name, f"skipped: {row['skipped']}", "", "", "", "", ""])
        elif "same" in row:
            setting = "on" if row["same"] else "off"
            out.append([name, f"{setting} → {setting}: the same step, not timed", "", "", "", "", ""])
        else:
            b, n = row["before"], row["now"]
            out.append([name, f"{'on' if b['jit_compile'] else 'off'} → {'on' if n['jit_compile'] else 'off'}",
                        f"{b['seconds']:.1f}", f"{n['seconds']:.1f}", f"**{n['seconds'] / b['seconds']:.2f}**",
                        f"{b['fit_seconds']:.1f}", f"{n['fit_seconds']:.1f}"])
    return {"columns": columns, "rows": out}


def summary(rows):
    timed = [row for row in rows.values() if "before" in row]
    if not timed:
        return "No recipe's compiled step changed."
    total_before = sum(r["before"]["seconds"] for r in timed)
    total_now = sum(r["now"]["seconds"] for r in timed)
    ratios = [r["now"]["seconds"] / r["before"]["seconds"] for r in timed]
    same = sum("same" in row for row in rows.values())
    return (f"{len(timed)} recipes changed their compiled step: {total_before:.0f} s of smoke runs before, "
            f"{total_now:.0f} s now ({total_now / total_before:.2f}); median ratio {statistics.median(ratios):.2f}, "
            f"worst {max(ratios):.2f}. {same} kept the same step.")


def markdown(rows, before):
    shown = table(rows)
    lines = [f"Smoke runs (`vae-zoo train RECIPE --smoke`), XLA as at {before} against today's `auto`.", "",
             "| " + " | ".join(shown["columns"]) + " |", "|---" * len(shown["columns"]) + "|"]
    lines += ["| " + " | ".join(cell for cell in row) + " |" for row in shown["rows"]]
    return "\n".join(lines + ["", summary(rows)]) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", required=True, help="the git revision whose XLA settings are the baseline")
    parser.add_argument("--only", action="append", help="a recipe under recipes/, e.g. vae/fashion_mnist.yaml (repeatable)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds for one recipe's two runs")
    parser.add_argument("--out", type=Path, default=ROOT / "reports")
    args = parser.parse_args(argv)
    paths = [ROOT / "recipes" / name for name in args.only] if args.only else sorted((ROOT / "recipes").glob("*/*.yaml"))
    rows = {}
    for index, recipe in enumerate(paths):
        name = str(recipe.relative_to(ROOT / "recipes"))
        before = jit_setting_at(args.before, recipe)
        if before is None:
            rows[name] = {"skipped": f"not in {args.before}"}
        else:
            started = time.perf_counter()
            try:
                rows[name] = time_recipe(recipe, before, index, args.timeout)
            except subprocess.TimeoutExpired:
                rows[name] = {"skipped": f"over {args.timeout} s"}
            rows[name]["wall"] = round(time.perf_counter() - started, 1)
        print(name, json.dumps(rows[name]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    from vae_zoo.io import saving

    report = {**table(rows), "summary": summary(rows), "before": args.before,
              "machine": f"{saving.hardware()['cpu']}, {os.cpu_count()} CPUs", "recipes": rows}
    (args.out / "recipes_speed.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out / "recipes_speed.md").write_text(markdown(rows, args.before))
    print(markdown(rows, args.before))


if __name__ == "__main__":
    main()
