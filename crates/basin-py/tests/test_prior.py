"""log_prior against GPy's golden values and against `basin prior` on the same files; the
NNGP kernel against `basin kernel`."""

from __future__ import annotations

import json

import numpy as np
import pytest

import basin
from conftest import gp_fixture, run_basin

CASES = [(64, False), (64, True), (300, False), (300, True)]


@pytest.mark.parametrize("n,flip", CASES)
def test_probit_ep_equals_gpy_to_1e_6_nats(n, flip):
    K = gp_fixture(f"K_{n}.npy")
    y = gp_fixture(f"{'yflip' if flip else 'y'}_{n}.npy")
    want = gp_fixture(f"logp_{n}.npy")[int(flip)]
    r = basin.log_prior(K, y, likelihood="probit", method="ep")
    assert r.converged and r.method == "ep" and r.likelihood == "probit"
    assert abs(r.log_prior - want) < 1e-6
    assert r.std_err is None
    assert r.log10_prior == pytest.approx(r.log_prior / np.log(10), rel=1e-15)


def test_fortran_order_float32_and_pm1_labels_give_the_same_value():
    K = gp_fixture("K_64.npy")
    y = gp_fixture("y_64.npy")
    base = basin.log_prior(K, y).log_prior
    assert basin.log_prior(np.asfortranarray(K), y).log_prior == base
    pm = np.where(np.asarray(y) > 0, 1.0, -1.0)
    assert basin.log_prior(K, pm).log_prior == base
    f32 = basin.log_prior(K.astype(np.float32), y)
    assert f32.log_prior == pytest.approx(base, abs=1e-3)


@pytest.mark.parametrize(
    "likelihood,method,options",
    [
        ("probit", "ep", {}),
        ("step", "ep", {}),
        ("step", "ep-sequential", {"seed": 3}),
        ("probit", "laplace", {}),
        ("probit", "tilting", {"samples": 1024, "seed": 5}),
        ("step", "smc", {"particles": 64, "replicates": 4, "seed": 2}),
    ],
)
def test_log_prior_equals_basin_prior_on_the_same_files(tmp_path, likelihood, method, options):
    K = gp_fixture("K_64.npy")
    y = gp_fixture("yflip_64.npy")
    np.save(tmp_path / "K.npy", K)
    np.save(tmp_path / "y.npy", y)
    flags = []
    for key, value in options.items():
        flags += [f"--{key.replace('_', '-')}", str(value)]
    cli = json.loads(
        run_basin(
            "prior",
            "--kernel", str(tmp_path / "K.npy"),
            "--labels", str(tmp_path / "y.npy"),
            "--likelihood", likelihood,
            "--method", method,
            "--threads", "1",
            "--json",
            *flags,
        )
    )
    py = basin.log_prior(K, y, likelihood=likelihood, method=method, threads=1, **options)
    assert py.log_prior == cli["log_prior"]
    assert py.std_err == cli["std_err"]
    assert py.converged == cli["converged"]
    assert py.iterations == cli["iterations"]
    for key in ("wall_s", "estimate_wall_s", "samples_wall_s", "smc_wall_s"):
        cli.pop(key, None)
    d = py.to_dict()
    for key, value in cli.items():
        if not key.endswith("wall_s"):
            assert d[key] == value, key


def test_nngp_kernel_equals_basin_kernel(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 7))
    y = (rng.random(40) > 0.5).astype(np.float64)
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", y)
    run_basin(
        "kernel",
        "--data", f"npy:{tmp_path / 'x.npy'},{tmp_path / 'y.npy'}",
        "--set", "whole",
        "--hidden", "30,30",
        "--output", str(tmp_path / "K.npy"),
    )
    want = np.load(tmp_path / "K.npy")
    got = basin.nngp_kernel(X, hidden=[30, 30])
    assert got.shape == (40, 40)
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=0)


def test_the_relu_kernel_has_its_closed_form_diagonal():
    # One hidden ReLU layer: K(x, x) = σ_b² + σ_w² (σ_b² + σ_w² |x|²/d) / 2.
    rng = np.random.default_rng(2)
    X = rng.normal(size=(5, 3))
    K = basin.nngp_kernel(X, hidden=[10], sigma_w=1.3, sigma_b=0.4)
    inner = 0.4**2 + 1.3**2 * (X**2).sum(1) / 3
    np.testing.assert_allclose(np.diag(K), 0.4**2 + 1.3**2 * inner / 2, rtol=1e-13)


def test_the_empirical_kernel_of_one_hidden_layer_is_unbiased():
    # With one hidden layer the features' expectation is the NNGP kernel exactly, at any
    # width: the Monte Carlo kernel is within a few standard errors of the closed form.
    rng = np.random.default_rng(3)
    X = rng.normal(size=(12, 4))
    K, se = basin.empirical_kernel(X, hidden=[64], samples=300, seed=1, with_std_err=True)
    exact = basin.nngp_kernel(X, hidden=[64])
    assert K.shape == se.shape == (12, 12)
    assert (np.abs(K - exact) < 5 * se + 1e-12).mean() > 0.98
    np.testing.assert_allclose(K, K.T, rtol=0, atol=1e-12)


def test_the_empirical_kernel_equals_basin_kernel_for_fcn_and_resnet(tmp_path):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(9, 5))
    y = np.tile([0.0, 1.0, 1.0], 3)
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", y)
    data = f"npy:{tmp_path / 'x.npy'},{tmp_path / 'y.npy'}"
    common = ["--method", "mc", "--samples", "6", "--seed", "2", "--blocks", "1"]
    run_basin("kernel", "--data", data, "--set", "whole", "--hidden", "16,16",
              "--activation", "tanh", *common, "--output", str(tmp_path / "K.npy"))
    K = basin.empirical_kernel(X, hidden=[16, 16], activation="tanh", samples=6, seed=2)
    np.testing.assert_allclose(K, np.load(tmp_path / "K.npy"), rtol=1e-12, atol=0)

    images = rng.normal(size=(5, 3, 8, 8)).astype(np.float32)
    np.save(tmp_path / "img.npy", images)
    np.save(tmp_path / "ylab.npy", np.array([0.0, 1.0, 0.0, 1.0, 1.0]))
    run_basin("kernel", "--data", f"npy:{tmp_path / 'img.npy'},{tmp_path / 'ylab.npy'}",
              "--set", "whole", "--arch", "basic:1,1:4", *common,
              "--output", str(tmp_path / "R.npy"))
    R = basin.empirical_kernel(images, arch="basic:1,1:4", samples=6, seed=2, threads=1)
    np.testing.assert_allclose(R, np.load(tmp_path / "R.npy"), rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match=r"X: a ResNet takes images of shape \(n, C, H, W\)"):
        basin.empirical_kernel(X, arch="basic:1,1:4")
