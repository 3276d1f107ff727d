"""Every gallery example runs to completion in fast mode."""

import os
import pathlib
import subprocess
import sys

import pytest

_ROOT = pathlib.Path(__file__).parents[1] / "examples"
EXAMPLES = sorted(_ROOT.rglob("plot_*.py")) + [_ROOT / "tour.py"]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_example_runs(path, tmp_path):
    env = {**os.environ, "PROBSPACE_EXAMPLES_FAST": "1", "MPLBACKEND": "Agg"}
    result = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
