"""Bad arguments and failing callbacks give clear Python exceptions, never a crash; Ctrl-C
interrupts long calls."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

import basin


def identity(v):
    return v


@pytest.mark.parametrize(
    "K,match",
    [
        (np.eye(4, dtype=np.int64), "K: expected float64 or float32 values, got int64"),
        (np.ones((4, 3)), r"K: expected a non-empty square matrix, got shape \(4, 3\)"),
        (np.ones(4), r"K: expected a 2-D array, got shape \[4\]"),
    ],
)
def test_a_bad_kernel_names_k(K, match):
    with pytest.raises(ValueError, match=match):
        basin.log_prior(K, np.ones(4))


def test_bad_labels_name_y():
    with pytest.raises(ValueError, match="y: expected 4 values, got 3"):
        basin.log_prior(np.eye(4), np.ones(3))
    with pytest.raises(ValueError, match="y: labels must be 0/1 or ±1, found 2"):
        basin.log_prior(np.eye(4), [0, 1, 2, 1])
    with pytest.raises(ValueError, match="y: expected numeric labels"):
        basin.log_prior(np.eye(4), ["a", "b", "c", "d"])


def test_bad_options_are_value_errors():
    with pytest.raises(ValueError, match="options: unknown samplez"):
        basin.log_prior(np.eye(3), [1, 0, 1], samplez=3)
    with pytest.raises(ValueError, match="method"):
        basin.log_prior(np.eye(3), [1, 0, 1], method="magic")
    with pytest.raises(ValueError, match="likelihood"):
        basin.log_prior(np.eye(3), [1, 0, 1], likelihood="logit")
    with pytest.raises(ValueError, match='options: unknown value "gibbs"; expected one of slice, hmc'):
        basin.log_prior(np.eye(3), [1, 0, 1], method="smc", mover="gibbs")


def test_a_kernel_with_nan_or_not_psd_is_a_basin_error():
    K = np.eye(3)
    K[0, 1] = K[1, 0] = np.nan
    with pytest.raises(basin.BasinError):
        basin.log_prior(K, [1, 0, 1])
    with pytest.raises(basin.BasinError):
        basin.log_prior(np.array([[1.0, 2.0], [2.0, 1.0]]), [1, 0])


def test_a_callback_that_raises_re_raises_its_exception():
    def hvp(v):
        raise RuntimeError("model exploded")

    with pytest.raises(RuntimeError, match="model exploded"):
        basin.lanczos(hvp, 10)


def test_a_callback_of_the_wrong_shape_or_type_is_a_value_error():
    with pytest.raises(ValueError, match="hvp returned 3 values, expected 10"):
        basin.lanczos(lambda v: v[:3], 10)
    with pytest.raises(ValueError, match="hvp must return a float array"):
        basin.lanczos(lambda v: "nope", 10)
    with pytest.raises(ValueError, match="loss_and_grad must return a tuple"):
        basin.keskar_sharpness(lambda t, i: 1.0, lambda t: 1.0, np.zeros(3), 4, epochs=1)
    with pytest.raises(ValueError, match="full_loss must return a float"):
        basin.keskar_sharpness(
            lambda t, i: (1.0, np.zeros(3)), lambda t: [1, 2], np.zeros(3), 4, epochs=1
        )


def test_a_non_finite_hvp_is_a_basin_error():
    with pytest.raises(basin.BasinError, match="non-finite|not finite|NaN"):
        basin.lanczos(lambda v: v * np.nan, 10)


def test_bad_settings_are_basin_errors():
    with pytest.raises(basin.BasinError, match="steps"):
        basin.lanczos(identity, 10, steps=0)
    with pytest.raises(basin.BasinError, match="probes"):
        basin.hutchinson_trace(identity, 10, probes=1)
    with pytest.raises(ValueError, match="order"):
        basin.keskar_sharpness(
            lambda t, i: (1.0, np.zeros(3)), lambda t: 1.0, np.zeros(3), 4, order="random"
        )


def test_ctrl_c_in_a_long_lanczos_run_raises_keyboard_interrupt():
    calls = []

    def hvp(v):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return d * v

    d = np.linspace(1.0, 2.0, 5000)
    with pytest.raises(KeyboardInterrupt):
        basin.lanczos(hvp, 5000, steps=1000)
    assert len(calls) <= 4


def test_ctrl_c_during_training_raises_keyboard_interrupt_promptly():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 20))
    X[1::2] = X[0::2]  # each input twice with opposite labels: zero error is impossible
    y = np.tile([0.0, 1.0], 200)
    net = basin.Fcn(20, [40, 40])
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    start = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            net.train(X, y, max_epochs=10**9)
    finally:
        timer.cancel()
    assert time.monotonic() - start < 30
    assert np.isfinite(net.theta).all()
