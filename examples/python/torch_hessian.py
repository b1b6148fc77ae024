"""The top of a PyTorch model's Hessian spectrum with basin's Lanczos.

Needs ``pip install torch`` (not installed by basin, and not run in CI).

A 784-40-40-1 ReLU ``nn.Sequential`` in float64 is trained briefly by full-batch gradient
descent on synthetic data (random inputs, labels from a random linear teacher). Its
parameters are one flat vector, read back into the module by
``torch.func.functional_call``; the Hessian-vector product is forward-over-reverse
(``torch.func.jvp`` of ``torch.func.grad``), and ``basin.lanczos`` takes it as a callback
that converts NumPy to torch and back.

Run:  pip install crates/basin-py torch  then  python examples/python/torch_hessian.py
"""

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, jvp

import basin

torch.manual_seed(0)
rng = np.random.default_rng(0)
X = torch.from_numpy(rng.random((500, 784)))
y = torch.sign((X - 0.5) @ torch.from_numpy(rng.standard_normal(784)))  # ±1 labels

model = nn.Sequential(
    nn.Linear(784, 40), nn.ReLU(), nn.Linear(40, 40), nn.ReLU(), nn.Linear(40, 1)
).double()
names, shapes = zip(*[(k, p.shape) for k, p in model.named_parameters()])
sizes = [s.numel() for s in shapes]
theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def loss(theta):
    params = {k: t.view(s) for k, t, s in zip(names, theta.split(sizes), shapes)}
    z = functional_call(model, params, (X,)).squeeze(-1)
    return torch.logaddexp(torch.zeros_like(z), -y * z).mean()  # cross-entropy, ±1 labels


for _ in range(200):
    theta = theta - 0.05 * grad(loss)(theta)
print(f"{theta.numel()} parameters, training loss {loss(theta).item():.4f}")


def hvp(v):
    return jvp(grad(loss), (theta,), (torch.from_numpy(v),))[1].detach().numpy()


spectrum = basin.lanczos(hvp, theta.numel(), top_k=50, steps=200)
print("top 10 eigenvalues:", np.array2string(spectrum.eigenvalues[:10], precision=4))
print(f"lambda_max {spectrum.lambda_max:.6g}, lambda_min {spectrum.lambda_min:.6g}")
print(f"log-product of the top 50: {spectrum.log_product_top_k:.4f}")
print(f"{spectrum.n_converged} of {len(spectrum.eigenvalues)} converged "
      f"after {spectrum.lanczos_steps} Lanczos steps ({spectrum.extra['hvp_calls']} HVPs)")
