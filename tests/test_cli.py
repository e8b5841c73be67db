"""The command line's start-up: no TensorFlow for list/info/help, and no TensorFlow log lines for the rest."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from vae_zoo import catalog, cli

ROOT = Path(__file__).parent.parent


def python(code):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)


def test_the_catalog_matches_the_registry():
    assert catalog.read() == catalog.describe_registry(), "run python tools/write_catalog.py"


def test_list_info_and_help_do_not_import_tensorflow():
    for argv in (["list"], ["info", "vae"], ["list", "--pretrained"], ["--help"], ["train", "--help"]):
        run = python("import sys\nfrom vae_zoo.cli import run\ntry:\n    code = run(%r)\nexcept SystemExit as stop:\n    code = stop.code\n"
                     "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, sorted(sys.modules)\nsys.exit(code)" % argv)
        assert run.returncode == 0, (argv, run.stderr[-2000:])
    listed = python("from vae_zoo.cli import run; run(['list'])").stdout.split()
    assert set(catalog.read()) <= set(listed)


def test_the_help_names_every_report_part():
    from vae_zoo.evaluation import report

    assert list(cli.REPORT_PARTS) == list(report.PARTS)


@pytest.mark.slow
def test_commands_that_run_tensorflow_print_none_of_its_log_lines():
    run = python("import sys\nfrom vae_zoo.cli import run\nsys.exit(run(['evaluate', 'vae.mnist_mini', '--limit', '20']))")
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stderr == "", run.stderr
    assert '"elbo"' in run.stdout
    failed = python("import sys\nfrom vae_zoo.cli import run\nsys.exit(run(['evaluate', 'vae.mnist_mini', '--data', 'shapes']))")
    assert failed.returncode == 2 and failed.stderr.strip().startswith("vae-zoo: error: data 'shapes' has examples of shape")
    assert len(failed.stderr.strip().splitlines()) == 1, failed.stderr
    verbose = python("import sys\nfrom vae_zoo.cli import run\nsys.exit(run(['--verbose', 'evaluate', 'vae.mnist_mini', '--limit', '20']))")
    assert verbose.returncode == 0 and "I0000" in verbose.stderr, "--verbose keeps TensorFlow's lines"


def test_evaluate_shows_a_progress_bar_that_advances(tmp_path, capsys, monkeypatch):
    import sys as system

    from vae_zoo import cli

    monkeypatch.setattr(system.stderr, "isatty", lambda: True, raising=False)
    assert cli.main(["evaluate", "vae.mnist_mini", "--only", "nll", "--k", "50", "--limit", "300", "--out", str(tmp_path / "r")]) == 0
    captured = capsys.readouterr()
    # Keras's Progbar skips redraws closer than 0.05 s apart (except the last), so a fast middle batch
    # may not be drawn: require the first batch, the end, and counts that only go up.
    shown = [int(count) for count in re.findall(r"(\d+)/300", captured.err)]
    assert shown[0] == 100 and shown[-1] == 300 and shown == sorted(set(shown)), captured.err[-2000:]
    assert "ms/example - nll:" in captured.err
    assert captured.out.lstrip().startswith("{"), "stdout holds only the JSON result"
