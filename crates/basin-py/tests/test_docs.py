"""The Python in the package's README and the runnable examples run as they are written."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

from conftest import ROOT

README = ROOT / "crates/basin-py/README.md"
EXAMPLES = ["gp_log_prior.py", "jax_hessian.py"]


def python_blocks(path: pathlib.Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_the_readme_examples_run():
    blocks = python_blocks(README)
    assert len(blocks) == 2
    for code in blocks:
        exec(compile(code, str(README), "exec"), {})


@pytest.mark.parametrize("name", EXAMPLES)
def test_the_examples_run(name):
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples/python" / name)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
