"""basin: why deep networks generalize, from Python.

The estimators, spectra and experiments of basin's Rust crates on NumPy arrays:

- ``log_prior(K, y, ...)``: log P(f) of a labelling under a Gaussian-process prior, by EP,
  sequential EP, Laplace, minimax tilting or annealed SMC (in place of GPy);
- ``nngp_kernel(X, ...)``: the NNGP kernel of a fully-connected net, and
  ``empirical_kernel(X, ...)``: the Monte Carlo kernel of any architecture basin has (a
  fully-connected net of any activation, or a ResNet on images);
- ``lanczos``, ``hutchinson_trace``, ``spectral_density``: the Hessian spectrum, trace and
  density of *any* model, from its Hessian-vector product ``hvp(v)`` (PyTorch's
  ``torch.func``, JAX's ``jax.jvp`` of ``jax.grad``, ...);
- ``keskar_sharpness``: Keskar sharpness of any model from ``loss_and_grad`` and
  ``full_loss`` callbacks;
- ``Fcn``: basin's fully-connected pipeline (train, predict, sharpness, Hessian, α-scaling,
  safetensors);
- ``reproduce`` and ``load_results``: basin's experiments and their stored runs.

Every computation runs in Rust with the GIL released; Ctrl-C raises ``KeyboardInterrupt``.
Errors are ``ValueError`` (an argument of the wrong shape, dtype or value, named in the
message) or ``basin.BasinError`` (what basin's libraries refuse or fail at).
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Callable, Sequence

import numpy as np

from . import _native
from ._native import BasinError
from ._results import (
    DensityResult,
    PriorResult,
    ReproduceResult,
    SharpnessResult,
    SpectrumResult,
    TraceResult,
    TrainResult,
)

try:
    from importlib.metadata import version as _version

    __version__ = _version("basin")
except Exception:  # pragma: no cover - an uninstalled source tree
    __version__ = "unknown"

__all__ = [
    "BasinError",
    "DensityResult",
    "empirical_kernel",
    "Fcn",
    "PriorResult",
    "ReproduceResult",
    "SharpnessResult",
    "SpectrumResult",
    "TraceResult",
    "TrainResult",
    "hutchinson_trace",
    "keskar_sharpness",
    "lanczos",
    "load_results",
    "log_prior",
    "nngp_kernel",
    "reproduce",
    "spectral_density",
]

_PRIOR_OPTIONS = (
    "epsilon",
    "damping",
    "max_sweeps",
    "seed",
    "samples",
    "target_std_err",
    "max_samples",
    "particles",
    "replicates",
    "max_replicates",
    "moves",
    "mover",
    "precision",
    "threads",
)


def _array(x: Any) -> Any:
    """``x`` itself when it is a NumPy array (no copy); otherwise ``np.asarray(x)``."""
    return x if isinstance(x, np.ndarray) else np.asarray(x)


def _labels(y: Any) -> np.ndarray:
    """Labels as a contiguous float64 vector (0/1 or ±1 are checked in Rust)."""
    y = np.asarray(y)
    if y.ndim == 2 and 1 in y.shape:
        y = y.reshape(-1)
    if y.dtype.kind not in "biuf":
        raise ValueError(f"y: expected numeric labels (0/1 or ±1), got dtype {y.dtype}")
    return np.ascontiguousarray(y, dtype=np.float64)


def log_prior(
    K: np.ndarray,
    y: Any,
    likelihood: str = "probit",
    method: str = "ep",
    **options: Any,
) -> PriorResult:
    """log P(f) = log ∫ N(z | 0, K) Π p(y_i | z_i) dz of the labels ``y`` (natural log).

    Args:
        K: the (N, N) kernel matrix, float64 (read in place in C or Fortran order) or
            float32.
        y: N labels, 0/1 or ±1.
        likelihood: ``"probit"`` (Φ(y z), GPy's Bernoulli) or ``"step"`` (noise-free,
            P(sign z = y)).
        method: ``"ep"`` (parallel EP, GPy's), ``"ep-sequential"``, ``"laplace"`` (probit
            only), ``"tilting"`` (minimax-tilted importance sampling, with a standard error)
            or ``"smc"`` (annealed SMC, with a standard error).
        **options: the estimator's settings, as ``basin prior``'s flags: ``epsilon`` (1e-6),
            ``damping`` (1.0), ``max_sweeps`` (1000), ``seed`` (0), ``samples`` (10240),
            ``target_std_err``, ``max_samples``, ``particles``, ``replicates``,
            ``max_replicates``, ``moves``, ``mover`` ("hmc" or "slice"), ``precision``
            ("mixed" or "f64") and ``threads`` (EP's dense algebra; default every CPU).

    Returns:
        A :class:`PriorResult`; its values equal ``basin prior --json``'s on the same files.
    """
    unknown = sorted(set(options) - set(_PRIOR_OPTIONS))
    if unknown:
        raise ValueError(
            f"options: unknown {', '.join(unknown)}; known: {', '.join(_PRIOR_OPTIONS)}"
        )
    text = _native.log_prior_json(
        _array(K), _labels(y), likelihood, method, json.dumps(options)
    )
    return PriorResult._from_json(text)


def nngp_kernel(
    X: np.ndarray,
    hidden: Sequence[int] = (40, 40),
    activation: str = "relu",
    sigma_w: float = math.sqrt(2.0),
    sigma_b: float = 1.0,
) -> np.ndarray:
    """The NNGP kernel of the output of a fully-connected net on the rows of ``X``.

    Args:
        X: (N, d) inputs, float64 or float32 (used as given, not rounded).
        hidden: the hidden widths (the kernel is the infinite-width limit; the widths give
            the depth).
        activation: ``"relu"``, ``"erf"`` or ``"linear"`` (those with a closed form; for
            ``"tanh"`` use :func:`empirical_kernel`).
        sigma_w, sigma_b: the init scales, W ~ N(0, σ_w²/fan_in), b ~ N(0, σ_b²).

    Returns:
        The (N, N) float64 kernel.
    """
    return _native.nngp_kernel(_array(X), list(hidden), activation, sigma_w, sigma_b)


def empirical_kernel(
    X: np.ndarray,
    arch: str | None = None,
    hidden: Sequence[int] = (40, 40),
    activation: str = "relu",
    sigma_w: float = math.sqrt(2.0),
    sigma_b: float = 1.0,
    samples: int = 128,
    seed: int = 0,
    precision: str = "f32",
    threads: int | None = None,
    with_std_err: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """The Monte Carlo (empirical) NNGP kernel, as ``basin kernel --method mc`` computes it:
    ``K = (1/M) Σ_m (σ_w²/width) Φ_m Φ_mᵀ + σ_b²`` over M random networks without their
    readout layer (the paper's recipe for its ResNets).

    Args:
        X: inputs: rows (N, d) for a fully-connected net, images (N, C, H, W) for a ResNet.
        arch: a ResNet of the pytorch-cifar family (``"resnet18"``, ..., ``"resnet50"``, or
            ``"KIND:BLOCKS:WIDTH"`` such as ``"basic:1,1:8"``), He-normal, BatchNorm at init in
            eval mode; ``None`` for the fully-connected net of ``hidden``.
        hidden, activation: the fully-connected net (any activation, ``"tanh"`` included).
        sigma_w, sigma_b: the init scales (for a ResNet, of its readout).
        samples: the number of random networks M; network m is drawn from ``(seed, m)``.
        precision: a ResNet's forward pass, ``"f32"`` (the paper's) or ``"f64"``.
        threads: networks drawn at once (default: every CPU); the kernel is the same for
            every count.
        with_std_err: also return each entry's Monte Carlo standard error (M ≥ 2).

    Returns:
        The (N, N) float64 kernel, or ``(kernel, std_err)`` with ``with_std_err``.
    """
    kernel, std_err = _native.empirical_kernel(
        _array(X),
        arch,
        list(hidden),
        activation,
        sigma_w,
        sigma_b,
        int(samples),
        int(seed),
        precision,
        threads,
        bool(with_std_err),
    )
    return (kernel, std_err) if with_std_err else kernel


def lanczos(
    hvp: Callable[[np.ndarray], Any],
    n: int,
    top_k: int = 50,
    steps: int = 200,
    tol: float = 1e-8,
    seed: int = 0,
) -> SpectrumResult:
    """The top (and bottom) ``top_k`` eigenvalues of a symmetric operator, such as a model's
    Hessian, from its products ``hvp(v)``.

    Lanczos with full reorthogonalisation from a seeded Gaussian start vector, as
    ``basin hessian`` runs it. An eigenvalue is converged when its residual bound plus the
    round-off ``m ε ‖T‖`` is at most ``tol · |λ|``.

    Args:
        hvp: takes a float64 vector of length ``n`` and returns H v (any array NumPy can
            convert: NumPy, JAX, a CPU torch tensor).
        n: the number of parameters.
        top_k: eigenvalues reported at each end.
        steps: Lanczos steps, one ``hvp`` call each (capped at ``n``).
        tol: the relative residual tolerance of the converged flags.
        seed: the seed of the start vector.
    """
    return SpectrumResult._from_json(
        _native.lanczos_json(hvp, int(n), int(top_k), int(steps), float(tol), int(seed))
    )


def hutchinson_trace(
    hvp: Callable[[np.ndarray], Any], n: int, probes: int = 100, seed: int = 0
) -> TraceResult:
    """Hutchinson's estimate of the trace of the operator ``hvp`` over ``n`` parameters:
    the mean of zᵀ H z over ``probes`` seeded Rademacher vectors, with its standard error."""
    return TraceResult._from_json(
        _native.hutchinson_json(hvp, int(n), int(probes), int(seed))
    )


def spectral_density(
    hvp: Callable[[np.ndarray], Any],
    n: int,
    probes: int = 10,
    steps: int = 80,
    seed: int = 0,
    sigma_rel: float = 0.01,
    grid_points: int = 1001,
) -> DensityResult:
    """The spectral density of the operator ``hvp`` by stochastic Lanczos quadrature:
    ``probes`` Lanczos runs of ``steps`` steps, broadened by Gaussians of width ``sigma_rel``
    times the spectrum's width, on ``grid_points`` points."""
    return DensityResult._from_json(
        _native.spectral_density_json(
            hvp, int(n), int(probes), int(steps), int(seed), float(sigma_rel), int(grid_points)
        )
    )


def keskar_sharpness(
    loss_and_grad: Callable[[np.ndarray, np.ndarray], tuple[float, Any]],
    full_loss: Callable[[np.ndarray], float],
    theta0: Any,
    n_examples: int,
    epsilon: float = 1e-4,
    lr: float = 1e-3,
    epochs: int = 100,
    batch_size: int = 32,
    order: str = "fixed",
    seed: int = 0,
    method: str = "sgd",
    max_iter: int = 10,
) -> SharpnessResult:
    """Keskar sharpness of any model at ``theta0``, as ``basin sharpness`` measures it.

    ``100 (max L − L(θ)) / (1 + L(θ))`` over the box ``|θ'_i − θ_i| ≤ ε (|θ_i| + 1)``.
    ``method="sgd"`` ascends in minibatches of ``batch_size`` for ``epochs`` epochs, clipping
    into the box after each step and evaluating ``full_loss`` after each (the paper's
    procedure); ``method="lbfgsb"`` maximises the full loss by L-BFGS-B for ``max_iter``
    iterations (Keskar's original code).

    Args:
        loss_and_grad: ``(theta, batch_indices) -> (loss, grad)``: the mean loss over the
            examples ``batch_indices`` (int64) and its gradient (length n).
        full_loss: ``theta -> loss`` over all examples.
        theta0: the trained parameters (converted to float64).
        n_examples: the number of examples the indices run over.
        order: ``"fixed"`` (batches in stored order every epoch, the paper's code) or
            ``"shuffled"`` (a fresh permutation each epoch from ``seed``).
    """
    theta = np.ascontiguousarray(np.asarray(theta0).reshape(-1), dtype=np.float64)
    return SharpnessResult._from_json(
        _native.keskar_json(
            loss_and_grad,
            full_loss,
            theta,
            int(n_examples),
            float(epsilon),
            float(lr),
            int(epochs),
            int(batch_size),
            order,
            int(seed),
            method,
            int(max_iter),
        )
    )


class Fcn:
    """A fully-connected ReLU (or tanh, erf, linear) network with basin's engine.

    ``Fcn(input_dim, hidden=[40, 40])`` initialises one as ``basin train --seed`` does
    (W ~ N(0, σ_w²/fan_in), b ~ N(0, σ_b²)); ``Fcn.load(path)`` reads a safetensors file
    written by ``save`` or ``basin train``. The parameters are one flat vector in the layout
    of a stack of ``torch.nn.Linear`` layers (weights [out, in] row-major, then the bias).
    Training and the measures run in the network's ``precision`` (f32, the paper's, or f64);
    the Hessian always in f64.
    """

    def __init__(
        self,
        input_dim: int,
        hidden: Sequence[int] = (40, 40),
        activation: str = "relu",
        sigma_w: float = math.sqrt(2.0),
        sigma_b: float = 1.0,
        seed: int = 1,
        precision: str = "f32",
    ) -> None:
        self._net = _native.Fcn(
            int(input_dim), list(hidden), activation, sigma_w, sigma_b, int(seed), precision
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "Fcn":
        """A network from a safetensors file (basin's, or a PyTorch ``nn.Linear`` stack saved
        with basin's names ``layers.{i}.weight`` / ``layers.{i}.bias``)."""
        net = cls.__new__(cls)
        net._net = _native.Fcn.load(os.fspath(path))
        return net

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the network as safetensors, in its precision, with its architecture."""
        self._net.save(os.fspath(path))

    @property
    def spec(self) -> dict[str, Any]:
        """The architecture: input_dim, hidden, activation, sigma_w, sigma_b."""
        return json.loads(self._net.spec_json())

    @property
    def precision(self) -> str:
        """"f32" or "f64"."""
        return self._net.precision

    @property
    def n_params(self) -> int:
        """The number of parameters."""
        return self._net.n_params

    @property
    def theta(self) -> np.ndarray:
        """A float64 copy of the flat parameters; assign to replace them."""
        return self._net.theta

    @theta.setter
    def theta(self, value: Any) -> None:
        self._net.theta = np.ascontiguousarray(np.asarray(value).reshape(-1), dtype=np.float64)

    def train(
        self,
        X: np.ndarray,
        y: Any,
        optimizer: str | dict[str, Any] = "sgd",
        lr: float | None = None,
        batch_size: int = 32,
        order: str = "shuffled",
        stop_on: str = "train",
        n_train: int | None = None,
        max_epochs: int = 50_000,
        overtrain_epochs: int = 0,
        seed: int | None = None,
    ) -> TrainResult:
        """Trains in place until every training example is classified correctly.

        Args:
            X, y: the examples and their 0/1 (or ±1) labels: the training set S first, then
                any attack set A (its labels already flipped).
            optimizer: ``"sgd"``, ``"momentum"``, ``"adam"``, ``"adagrad"``, ``"rmsprop"``,
                ``"gd"`` or ``"entropy_sgd"`` with their defaults, or a dict of every
                hyper-parameter such as ``{"kind": "adam", "lr": 1e-3}``.
            lr: the learning rate (overrides the optimizer's).
            order: ``"shuffled"`` every epoch, or ``"fixed"``.
            stop_on: ``"train"`` (zero error on the first ``n_train`` examples) or
                ``"train_and_attack"`` (on all).
            n_train: how many of the first examples are S (default: all).
            max_epochs: give up after this many (status ``not_converged``).
            overtrain_epochs: epochs to go on after zero error.
            seed: the seed of the batch order and the optimizer's noise (default: the
                network's).
        """
        if isinstance(optimizer, dict):
            optimizer = json.dumps(optimizer)
        text = self._net.train_json(
            _array(X),
            _labels(y),
            optimizer,
            lr,
            int(batch_size),
            order,
            stop_on,
            n_train,
            int(max_epochs),
            int(overtrain_epochs),
            seed,
        )
        return TrainResult._from_json(text)

    def logits(self, X: np.ndarray) -> np.ndarray:
        """The output logits on the rows of ``X``."""
        return self._net.logits(_array(X))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The predicted 0/1 labels (logit > 0) on the rows of ``X``, as int8."""
        return (self.logits(X) > 0).astype(np.int8)

    def loss(self, X: np.ndarray, y: Any) -> float:
        """The mean cross-entropy loss on (X, y)."""
        return self._net.evaluate(_array(X), _labels(y))[1]

    def error(self, X: np.ndarray, y: Any) -> float:
        """The error rate on (X, y)."""
        return self._net.evaluate(_array(X), _labels(y))[0]

    def sharpness(
        self,
        X: np.ndarray,
        y: Any,
        epsilon: float = 1e-4,
        lr: float = 1e-3,
        epochs: int = 100,
        batch_size: int = 32,
        order: str = "fixed",
        seed: int = 0,
        method: str = "sgd",
        max_iter: int = 10,
        precision: str | None = None,
    ) -> SharpnessResult:
        """Keskar sharpness on (X, y), as ``basin sharpness`` measures it (see
        :func:`keskar_sharpness` for the arguments); in the network's precision unless
        ``precision`` is given."""
        text = self._net.sharpness_json(
            _array(X),
            _labels(y),
            float(epsilon),
            float(lr),
            int(epochs),
            int(batch_size),
            order,
            int(seed),
            method,
            int(max_iter),
            precision,
        )
        return SharpnessResult._from_json(text)

    def hessian(
        self,
        X: np.ndarray,
        y: Any,
        top_k: int = 50,
        steps: int = 200,
        tol: float = 1e-8,
        seed: int = 0,
        trace_probes: int = 0,
    ) -> SpectrumResult:
        """The Hessian of the mean loss on (X, y) by Lanczos in float64 with exact
        Hessian-vector products (see :func:`lanczos`); with ``trace_probes`` > 0 also
        Hutchinson's trace (``extra["trace"]``, ``extra["trace_std_err"]``)."""
        text = self._net.hessian_json(
            _array(X),
            _labels(y),
            int(top_k),
            int(steps),
            float(tol),
            int(seed),
            int(trace_probes),
        )
        return SpectrumResult._from_json(text)

    def scale(self, alpha: float, layer: int = 0) -> None:
        """α-scales hidden layer ``layer`` in place: its weights and bias times α, the next
        layer's weights over α. A ReLU network's function is unchanged; its flatness is not."""
        self._net.scale(float(alpha), int(layer))

    def __repr__(self) -> str:
        s = self.spec
        return (
            f"Fcn(input_dim={s['input_dim']}, hidden={s['hidden']}, "
            f"activation={s['activation']!r}, precision={self.precision!r})"
        )


def reproduce(
    spec: str | os.PathLike[str] = "fig3-mnist",
    out: str | os.PathLike[str] | None = None,
    quick: bool = False,
    jobs: int | None = None,
    shard: str | None = None,
    progress: Callable[[int, int], Any] | None = None,
) -> ReproduceResult:
    """Runs an experiment as ``basin reproduce`` does and writes its report.

    Args:
        spec: a built-in spec (``"fig3-mnist"``, ``"fig4-optimizers"``, ...) or a TOML file.
        out: the output folder (default ``results/<spec name>``); a rerun into it resumes.
        quick: the shape of the experiment at a fraction of the cost.
        jobs: runs at once (default: the number of CPUs).
        shard: ``"K/N"``: only the K-th of N disjoint subsets of the runs.
        progress: called as ``progress(done, total)`` after each training run and its
            measurements (for example to update a tqdm bar); called from a worker thread.

    Ctrl-C lets the runs in progress finish and be stored, then raises
    ``KeyboardInterrupt``.
    """
    text = _native.reproduce_json(
        os.fspath(spec),
        None if out is None else os.fspath(out),
        bool(quick),
        jobs,
        shard,
        progress,
    )
    return ReproduceResult._from_json(text)


def load_results(
    *dirs: str | os.PathLike[str], as_frame: bool = False
) -> list[dict[str, Any]] | Any:
    """The runs stored in one or more output folders (``results.jsonl``), each id once.

    Returns a list of dicts (the records' fields, as ``results.jsonl`` documents them), or
    with ``as_frame=True`` a pandas DataFrame with the measures as columns ``measures.<name>``.
    """
    records = json.loads(_native.load_results_json([os.fspath(d) for d in dirs]))
    if not as_frame:
        return records
    try:
        import pandas as pd
    except ImportError as e:
        raise ImportError("as_frame=True needs pandas: pip install pandas") from e
    return pd.json_normalize(records)
