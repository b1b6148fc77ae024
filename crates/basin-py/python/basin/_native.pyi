"""Type stubs of basin's native module. Use the wrappers in ``basin``; these are its
building blocks, returning JSON texts that the wrappers turn into result classes."""

from os import PathLike
from typing import Any, Callable

import numpy as np

class BasinError(Exception):
    """An error reported by basin's Rust libraries, with their message."""

def log_prior_json(
    kernel: np.ndarray, y: np.ndarray, likelihood: str, method: str, options: str
) -> str: ...
def nngp_kernel(
    x: np.ndarray, hidden: list[int], activation: str, sigma_w: float, sigma_b: float
) -> np.ndarray: ...
def empirical_kernel(
    x: np.ndarray,
    arch: str | None,
    hidden: list[int],
    activation: str,
    sigma_w: float,
    sigma_b: float,
    samples: int,
    seed: int,
    precision: str,
    threads: int | None,
    with_std_err: bool,
) -> tuple[np.ndarray, np.ndarray | None]: ...
def lanczos_json(
    hvp: Callable[[np.ndarray], Any], n: int, top_k: int, steps: int, tol: float, seed: int
) -> str: ...
def hutchinson_json(
    hvp: Callable[[np.ndarray], Any], n: int, probes: int, seed: int
) -> str: ...
def spectral_density_json(
    hvp: Callable[[np.ndarray], Any],
    n: int,
    probes: int,
    steps: int,
    seed: int,
    sigma_rel: float,
    grid_points: int,
) -> str: ...
def keskar_json(
    loss_and_grad: Callable[[np.ndarray, np.ndarray], tuple[float, Any]],
    full_loss: Callable[[np.ndarray], float],
    theta0: np.ndarray,
    n_examples: int,
    epsilon: float,
    lr: float,
    epochs: int,
    batch_size: int,
    order: str,
    seed: int,
    method: str,
    max_iter: int,
) -> str: ...
def reproduce_json(
    spec: str,
    out: str | None,
    quick: bool,
    jobs: int | None,
    shard: str | None,
    progress: Callable[[int, int], Any] | None,
) -> str: ...
def load_results_json(dirs: list[str]) -> str: ...

class Fcn:
    def __init__(
        self,
        input_dim: int,
        hidden: list[int],
        activation: str,
        sigma_w: float,
        sigma_b: float,
        seed: int,
        precision: str,
    ) -> None: ...
    @staticmethod
    def load(path: str | PathLike[str]) -> Fcn: ...
    def save(self, path: str | PathLike[str]) -> None: ...
    def spec_json(self) -> str: ...
    @property
    def precision(self) -> str: ...
    @property
    def n_params(self) -> int: ...
    @property
    def theta(self) -> np.ndarray: ...
    @theta.setter
    def theta(self, value: np.ndarray) -> None: ...
    def train_json(
        self,
        x: np.ndarray,
        y: np.ndarray,
        optimizer: str,
        lr: float | None,
        batch_size: int,
        order: str,
        stop_on: str,
        n_train: int | None,
        max_epochs: int,
        overtrain_epochs: int,
        seed: int | None,
    ) -> str: ...
    def logits(self, x: np.ndarray) -> np.ndarray: ...
    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]: ...
    def sharpness_json(
        self,
        x: np.ndarray,
        y: np.ndarray,
        epsilon: float,
        lr: float,
        epochs: int,
        batch_size: int,
        order: str,
        seed: int,
        method: str,
        max_iter: int,
        precision: str | None,
    ) -> str: ...
    def hessian_json(
        self,
        x: np.ndarray,
        y: np.ndarray,
        top_k: int,
        steps: int,
        tol: float,
        seed: int,
        trace_probes: int,
    ) -> str: ...
    def scale(self, alpha: float, layer: int) -> None: ...
