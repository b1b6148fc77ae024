"""basin.Fcn: training, predictions, saving, α-scaling, and its exact Hessian against JAX's."""

from __future__ import annotations

import json

import numpy as np
import pytest

import basin
import mlp
from conftest import run_basin


@pytest.fixture(scope="module")
def data():
    return mlp.data(80, 6, seed=5)


def test_training_reaches_zero_error_and_is_reproducible(data):
    X, y = data
    a, b = basin.Fcn(6, [10, 10], seed=3), basin.Fcn(6, [10, 10], seed=3)
    ra, rb = a.train(X, y), b.train(X, y)
    assert ra.status == "converged" and ra.train_error == 0.0
    assert ra.epochs == rb.epochs
    np.testing.assert_array_equal(a.theta, b.theta)
    assert a.error(X, y) == 0.0
    np.testing.assert_array_equal(a.predict(X), y.astype(np.int8))
    assert a.loss(X, y) == pytest.approx(ra.train_loss, rel=1e-12)
    assert a.precision == "f32" and a.n_params == 6 * 10 + 10 + 10 * 10 + 10 + 10 + 1
    assert a.spec["hidden"] == [10, 10]


def test_a_run_that_cannot_converge_says_so(data):
    X, _ = data
    y = np.zeros(len(X))
    y[0] = 1.0
    X = X.copy()
    X[1] = X[0]  # the same input with both labels: zero error is impossible
    y[1] = 0.0
    r = basin.Fcn(6, [4]).train(X, y, max_epochs=5)
    assert r.status == "not_converged" and r.total_epochs == 5


def test_save_load_round_trip_and_the_cli_reads_the_file(tmp_path, data):
    X, y = data
    net = basin.Fcn(6, [8], seed=9)
    net.train(X, y, optimizer={"kind": "adam", "lr": 0.01})
    net.save(tmp_path / "net.safetensors")
    back = basin.Fcn.load(tmp_path / "net.safetensors")
    np.testing.assert_array_equal(back.theta, net.theta)
    np.testing.assert_array_equal(back.logits(X), net.logits(X))
    np.save(tmp_path / "x.npy", X.astype(np.float32))
    np.save(tmp_path / "y.npy", y)
    out = json.loads(
        run_basin(
            "eval",
            "--model", str(tmp_path / "net.safetensors"),
            "--data", f"npy:{tmp_path / 'x.npy'},{tmp_path / 'y.npy'}",
            "--json",
        )
    )
    assert out["error"] == net.error(X, y)
    assert out["loss"] == pytest.approx(net.loss(X, y), rel=1e-6)


def test_alpha_scaling_keeps_the_function_and_changes_the_flatness(data):
    X, y = data
    net = basin.Fcn(6, [10, 10], seed=4, precision="f64")
    net.train(X, y)
    before_logits = net.logits(X)
    before = net.hessian(X, y, top_k=1, steps=60).lambda_max
    net.scale(5.0, layer=0)
    np.testing.assert_allclose(net.logits(X), before_logits, rtol=1e-12, atol=1e-12)
    after = net.hessian(X, y, top_k=1, steps=60).lambda_max
    assert after > 2 * before or after < before / 2


def test_the_hessian_equals_jaxs_dense_hessian(data, jax64):
    jax = jax64
    X, y = data
    net = basin.Fcn(6, [7, 5], seed=6, precision="f64")
    net.train(X, y)
    loss, n = mlp.make(jax, [6, 7, 5, 1], X, y)
    H = np.asarray(jax.hessian(lambda t: loss(t, np.arange(len(y))))(jax.numpy.asarray(net.theta)))
    want = np.linalg.eigvalsh((H + H.T) / 2)[::-1]
    s = net.hessian(X, y, top_k=5, steps=n, trace_probes=50)
    np.testing.assert_allclose(s.eigenvalues, want[:5], rtol=1e-8)
    assert abs(s.extra["trace"] - np.trace(H)) < 5 * s.extra["trace_std_err"] + 1e-9


def test_a_wrong_input_width_names_x(data):
    X, y = data
    with pytest.raises(ValueError, match="X: the network takes 5 inputs"):
        basin.Fcn(5, [4]).train(X, y)
