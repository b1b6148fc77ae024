"""Result classes: small, frozen, with ``to_dict()``.

Each result keeps every field basin reports (the same keys as the command line's ``--json``
output). The common ones are attributes; the rest are in ``extra`` and in ``to_dict()``.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Mapping

import numpy as np


def _split(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
    known = {k: data[k] for k in names if k in data}
    missing = names - known.keys()
    for name in missing:
        known[name] = None
    known["extra"] = {k: v for k, v in data.items() if k not in names}
    return known


class _Result:
    """The shared behaviour of the result classes."""

    # The JSON keys that become NumPy arrays, with their dtypes, and keys renamed on the way.
    _arrays: Mapping[str, Any] = {}
    _renames: Mapping[str, str] = {}

    @classmethod
    def _from_json(cls, text: str):
        data = json.loads(text)
        for old, new in cls._renames.items():
            data[new] = data.pop(old)
        for key, dtype in cls._arrays.items():
            if key in data:
                data[key] = np.asarray(data[key], dtype=dtype)
        return cls(**_split(cls, data))

    def to_dict(self) -> dict[str, Any]:
        """Every field as a plain dict (lists, floats, strings), as the CLI's JSON has it."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            out[f.name] = value.tolist() if isinstance(value, np.ndarray) else value
        out.update(self.extra)
        return out


@dataclasses.dataclass(frozen=True)
class PriorResult(_Result):
    """log P(f) by one estimator (``basin prior --json``'s fields).

    ``log_prior`` is in nats; ``std_err`` is None for methods without one (EP, Laplace);
    ``converged`` is False when the method did not converge or the value is not finite, with
    the reasons in ``issues``. The method's diagnostics (EP's sweeps, tilting's samples, SMC's
    replicates, ...) are in ``extra``.
    """

    log_prior: float
    log10_prior: float
    std_err: float | None
    converged: bool
    iterations: int
    method: str
    likelihood: str
    jitter: float
    issues: list[str]
    wall_s: float
    extra: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class SpectrumResult(_Result):
    """The top and bottom eigenvalues of a Hessian by Lanczos (``basin hessian --json``).

    ``eigenvalues`` are the top k, descending, with their ``residuals`` and ``converged``
    flags; ``bottom_eigenvalues`` ascend from λmin. ``log_product_top_k`` sums ln λ over the
    positive ones among the top k.
    """

    eigenvalues: np.ndarray
    residuals: np.ndarray
    converged: np.ndarray
    n_converged: int
    bottom_eigenvalues: np.ndarray
    lambda_max: float
    lambda_min: float
    spectral_norm: float
    log_product_top_k: float
    n_positive_top_k: int
    lanczos_steps: int
    extra: dict[str, Any]

    _renames = {"top_eigenvalues": "eigenvalues"}
    _arrays = {
        "eigenvalues": np.float64,
        "residuals": np.float64,
        "converged": bool,
        "bottom_eigenvalues": np.float64,
    }


@dataclasses.dataclass(frozen=True)
class TraceResult(_Result):
    """Hutchinson's estimate of the trace, with its standard error over the probes."""

    trace: float
    trace_std_err: float
    trace_probes: int
    extra: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class DensityResult(_Result):
    """A spectral density by stochastic Lanczos quadrature: ``density`` on ``grid``
    (integrating to 1), from the quadrature ``nodes`` and ``weights``."""

    grid: np.ndarray
    density: np.ndarray
    nodes: np.ndarray
    weights: np.ndarray
    sigma: float
    mean: float
    extra: dict[str, Any]

    _arrays = dict.fromkeys(("grid", "density", "nodes", "weights"), np.float64)


@dataclasses.dataclass(frozen=True)
class SharpnessResult(_Result):
    """Keskar sharpness: ``100 (max_loss − loss) / (1 + loss)`` over the box
    ``|θ'_i − θ_i| ≤ ε (|θ_i| + 1)``, by ``method`` ("sgd" ascent or "lbfgsb"). For the SGD
    ascent ``loss_trace`` is the full-set loss after every step."""

    sharpness: float
    log10_sharpness: float | None
    loss: float
    max_loss: float
    steps: int
    evaluations: int
    method: str
    wall_s: float
    loss_trace: np.ndarray | None
    extra: dict[str, Any]

    _arrays = {"loss_trace": np.float64}


@dataclasses.dataclass(frozen=True)
class TrainResult(_Result):
    """How training ended: ``status`` (converged, not_converged, stopped, diverged), the
    ``epochs`` to zero error, all epochs run, and the error and loss on the training data."""

    status: str
    epochs: int
    total_epochs: int
    wall_s: float
    seconds_per_epoch: float
    train_error: float
    train_loss: float
    extra: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class ReproduceResult(_Result):
    """An experiment's outcome: its ``summary`` (the content of ``summary.json``), the
    headline lines, the runs computed now and those reused from the store, and the folder."""

    summary: dict[str, Any]
    highlights: list[str]
    computed: int
    skipped: int
    out: str
    extra: dict[str, Any]
