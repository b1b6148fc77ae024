"""Spectra, trace, density and sharpness of a model given by callbacks: against JAX's dense
Hessian, closed forms, and `basin sharpness` on the same net and data."""

from __future__ import annotations

import json

import numpy as np
import pytest

import basin
import mlp
from conftest import run_basin


@pytest.fixture(scope="module")
def jax_mlp(jax64):
    jax = jax64
    X, y = mlp.data(60, 5, seed=0)
    loss, n = mlp.make(jax, [5, 8, 6, 1], X, y)
    theta = jax.numpy.asarray(np.random.default_rng(1).normal(size=n) * 0.5)
    every = np.arange(len(y))
    full = lambda t: loss(t, every)
    grad = jax.grad(full)
    hvp = jax.jit(lambda v: jax.jvp(grad, (theta,), (v,))[1])
    dense = np.asarray(jax.hessian(full)(theta))
    return {"hvp": lambda v: np.asarray(hvp(jax.numpy.asarray(v))), "n": n, "H": dense}


def test_lanczos_of_a_jax_hvp_gives_the_dense_hessians_top_eigenvalues(jax_mlp):
    n, H = jax_mlp["n"], jax_mlp["H"]
    want = np.linalg.eigvalsh((H + H.T) / 2)
    s = basin.lanczos(jax_mlp["hvp"], n, top_k=10, steps=n, tol=1e-8)
    assert s.lanczos_steps == n and s.extra["hvp_calls"] == n
    np.testing.assert_allclose(s.eigenvalues, want[::-1][:10], rtol=1e-8)
    np.testing.assert_allclose(s.bottom_eigenvalues, want[:10], rtol=1e-8, atol=1e-10)
    assert s.lambda_max == pytest.approx(want[-1], rel=1e-12)
    assert s.spectral_norm == pytest.approx(np.abs(want).max(), rel=1e-12)
    assert s.converged[:5].all()
    positive = s.eigenvalues[s.eigenvalues > 0]
    assert s.log_product_top_k == pytest.approx(np.log(positive).sum(), rel=1e-12)
    assert set(s.to_dict()) >= {"eigenvalues", "residuals", "lanczos_wall_s"}


def test_a_short_run_flags_what_has_not_converged(jax_mlp):
    s = basin.lanczos(jax_mlp["hvp"], jax_mlp["n"], top_k=10, steps=12)
    assert s.lanczos_steps == 12
    assert not s.converged.all()
    assert s.n_converged == int(s.converged.sum())


def test_hutchinson_is_unbiased_on_a_diagonal_operator():
    # For a diagonal H, zᵀHz = tr H for every Rademacher z: no variance.
    d = np.linspace(-1.0, 3.0, 50)
    t = basin.hutchinson_trace(lambda v: d * v, 50, probes=8, seed=4)
    assert t.trace == pytest.approx(d.sum(), rel=1e-13)
    assert t.trace_std_err == pytest.approx(0.0, abs=1e-12)
    assert t.trace_probes == 8


def test_hutchinson_on_the_jax_hessian_is_within_its_error_bars(jax_mlp):
    t = basin.hutchinson_trace(jax_mlp["hvp"], jax_mlp["n"], probes=400, seed=0)
    assert abs(t.trace - np.trace(jax_mlp["H"])) < 5 * t.trace_std_err


def test_the_spectral_density_integrates_to_one_around_the_spectrum(jax_mlp):
    n, H = jax_mlp["n"], jax_mlp["H"]
    d = basin.spectral_density(jax_mlp["hvp"], n, probes=6, steps=40, seed=1)
    assert d.weights.sum() == pytest.approx(1.0, rel=1e-12)
    step = d.grid[1] - d.grid[0]
    assert d.density.sum() * step == pytest.approx(1.0, rel=1e-3)
    assert d.nodes.max() <= np.linalg.eigvalsh(H).max() * (1 + 1e-9)
    assert abs(d.mean - np.trace(H) / n) < 0.5 * abs(np.trace(H) / n) + 1e-3


@pytest.fixture(scope="module")
def trained(tmp_path_factory, jax64):
    """A small net trained by basin in float64, saved, with its data as .npy files."""
    jax = jax64
    X, y = mlp.data(70, 4, seed=3)
    net = basin.Fcn(4, hidden=[6, 5], seed=2, precision="f64")
    assert net.train(X, y, lr=0.05).status == "converged"
    folder = tmp_path_factory.mktemp("net")
    net.save(folder / "net.safetensors")
    np.save(folder / "x.npy", X)
    np.save(folder / "y.npy", y)
    loss, n = mlp.make(jax, [4, 6, 5, 1], X, y)
    assert n == net.n_params
    return {"net": net, "X": X, "y": y, "dir": folder, "loss": loss}


def jax_callbacks(jax, loss, n_examples):
    value_and_grad = jax.jit(jax.value_and_grad(loss))
    every = np.arange(n_examples)

    def loss_and_grad(theta, idx):
        v, g = value_and_grad(jax.numpy.asarray(theta), jax.numpy.asarray(idx))
        return float(v), np.asarray(g)

    def full_loss(theta):
        return float(loss(jax.numpy.asarray(theta), every))

    return loss_and_grad, full_loss


def cli_sharpness(folder, *flags):
    return json.loads(
        run_basin(
            "sharpness",
            "--model", str(folder / "net.safetensors"),
            "--data", f"npy:{folder / 'x.npy'},{folder / 'y.npy'}",
            "--set", "whole",
            "--precision", "f64",
            "--json",
            *flags,
        )
    )


def test_keskar_sharpness_with_jax_callbacks_equals_basin_sharpness(trained, jax64):
    lg, full = jax_callbacks(jax64, trained["loss"], len(trained["y"]))
    cli = cli_sharpness(trained["dir"], "--epochs", "5", "--order", "fixed", "--lr", "0.01")
    py = basin.keskar_sharpness(
        lg, full, trained["net"].theta, len(trained["y"]), epochs=5, lr=0.01, order="fixed"
    )
    assert py.steps == cli["steps"] == 5 * 3
    assert py.loss == pytest.approx(cli["loss"], rel=1e-10)
    assert py.max_loss == pytest.approx(cli["max_loss"], rel=1e-10)
    assert py.sharpness == pytest.approx(cli["sharpness"], rel=1e-6)
    assert py.sharpness > 0
    # The engine's own measurement is the command's, exactly.
    own = trained["net"].sharpness(trained["X"], trained["y"], epochs=5, lr=0.01)
    assert own.sharpness == cli["sharpness"]


def test_lbfgsb_sharpness_with_jax_callbacks_equals_basin_sharpness(trained, jax64):
    lg, full = jax_callbacks(jax64, trained["loss"], len(trained["y"]))
    cli = cli_sharpness(trained["dir"], "--method", "lbfgsb", "--max-iter", "5")
    py = basin.keskar_sharpness(
        lg, full, trained["net"].theta, len(trained["y"]), method="lbfgsb", max_iter=5
    )
    assert py.method == "lbfgsb" and py.steps == cli["steps"]
    assert py.sharpness == pytest.approx(cli["sharpness"], rel=1e-6)


def test_shuffled_ascent_is_reproducible_from_its_seed(trained, jax64):
    lg, full = jax_callbacks(jax64, trained["loss"], len(trained["y"]))
    args = (lg, full, trained["net"].theta, len(trained["y"]))
    a = basin.keskar_sharpness(*args, epochs=3, order="shuffled", seed=7)
    b = basin.keskar_sharpness(*args, epochs=3, order="shuffled", seed=7)
    np.testing.assert_array_equal(a.loss_trace, b.loss_trace)


def test_vectors_a_callback_keeps_are_never_overwritten():
    # basin reuses the vector of the previous call only when the callback kept no reference
    # to it: the Lanczos vectors kept here stay orthonormal, as distinct arrays.
    d = np.linspace(1.0, 3.0, 40)
    kept, views = [], []

    def hvp(v):
        kept.append(v)
        return d * v

    basin.lanczos(hvp, 40, top_k=2, steps=8)
    V = np.array(kept)
    np.testing.assert_allclose(V @ V.T, np.eye(len(kept)), atol=1e-12)

    def hvp_view(v):
        views.append(v[:5])
        return d * v

    basin.lanczos(hvp_view, 40, top_k=2, steps=8)
    assert len({tuple(w) for w in views}) == len(views)
