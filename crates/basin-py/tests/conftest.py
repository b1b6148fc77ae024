"""Shared fixtures of the Python tests: the repository's paths, the `basin` binary that the
Rust tests built, and JAX in float64."""

from __future__ import annotations

import os
import pathlib
import subprocess

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
GP_FIXTURES = ROOT / "crates/basin-prior/tests/fixtures/gp"


def basin_binary() -> pathlib.Path:
    """The `basin` command: $BASIN_BIN, or the release build of the workspace."""
    path = pathlib.Path(os.environ.get("BASIN_BIN", ROOT / "target/release/basin"))
    if not path.exists():
        pytest.fail(
            f"{path} does not exist: build it with `cargo build --release -p basin` "
            "(or set BASIN_BIN)"
        )
    return path


def run_basin(*args: str) -> str:
    """Runs the `basin` command and returns its stdout."""
    done = subprocess.run(
        [str(basin_binary()), *args], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="session")
def jax64():
    """JAX with float64 enabled."""
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


def gp_fixture(name: str) -> np.ndarray:
    return np.load(GP_FIXTURES / name)
