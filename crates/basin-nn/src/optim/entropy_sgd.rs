//! Entropy-SGD (Chaudhari et al., "Entropy-SGD: biasing gradient descent into wide valleys",
//! ICLR 2017 / J. Stat. Mech. 2019), following the algorithm of the authors' PyTorch code
//! (`ucla-vision/entropy-sgd`, `python/optim.py`).
//!
//! See [`EntropySgd`] for the algorithm and where basin departs from the original code.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::config::{ConfigError, decay, non_negative, positive};
use super::{Optimizer, check_lengths};
use crate::objective::Objective;
use crate::real::Real;

/// Hyper-parameters of Entropy-SGD; see [`EntropySgd`] for the algorithm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EntropySgdConfig {
    /// The outer learning rate, applied to the displacement G = x − μ. Default 1.0: the
    /// first-epochs rate of the authors' MNIST schedule for Entropy-SGD (`train.lua`, which
    /// then drops it to 0.1 and 0.01).
    pub lr: f64,
    /// The outer momentum, in [0, 1). Default 0.9: the authors' setting (`train.py`,
    /// `train.lua`).
    pub momentum: f64,
    /// Whether the outer momentum is Nesterov's. Default true: the authors' setting.
    pub nesterov: bool,
    /// L, the number of Langevin steps per outer step, ≥ 1. Default 20: the authors' setting
    /// ("usually set to 20 in our experiments", README).
    pub langevin_steps: usize,
    /// η', the Langevin step size. Default 0.1: hard-coded in the authors' code.
    pub langevin_lr: f64,
    /// ε ≥ 0, the thermal noise: the Langevin noise has standard deviation ε/√(η'/2) in the
    /// direction. Default 1e-4: the authors' setting (`--noise 1e-4`).
    pub noise: f64,
    /// γ₀ ≥ 0, the initial scope (coupling to the anchor). Default 1e-4: the authors' MNIST
    /// setting (README, `--gamma 1e-4`); they use 0.03 for CIFAR-10.
    pub gamma0: f64,
    /// γ₁ ≥ 0, the scoping rate: γ = γ₀(1+γ₁)ᵗ. Default 1e-3: the authors' setting
    /// (`--scoping 1e-3`).
    pub gamma1: f64,
    /// α, the running-average coefficient μ ← αμ + (1−α)θ', in [0, 1). Default 0.75:
    /// hard-coded in the authors' code (`beta1 = 0.75`).
    pub alpha: f64,
    /// The Langevin momentum, in [0, 1). Default 0.9: the original applies the outer momentum
    /// setting in the inner loop too (with its own buffer, zeroed every outer step).
    pub langevin_momentum: f64,
    /// Whether the Langevin momentum is Nesterov's. Default true: as the outer one, as in the
    /// original.
    pub langevin_nesterov: bool,
    /// The seed of the minibatch draws and the noise. Default 0 (basin's convention; set it
    /// per run).
    pub seed: u64,
}

impl Default for EntropySgdConfig {
    fn default() -> Self {
        Self {
            lr: 1.0,
            momentum: 0.9,
            nesterov: true,
            langevin_steps: 20,
            langevin_lr: 0.1,
            noise: 1e-4,
            gamma0: 1e-4,
            gamma1: 1e-3,
            alpha: 0.75,
            langevin_momentum: 0.9,
            langevin_nesterov: true,
            seed: 0,
        }
    }
}

impl EntropySgdConfig {
    /// Checks `lr`, `langevin_lr` > 0; `momentum`, `langevin_momentum`, `alpha` in [0, 1);
    /// `noise`, `gamma0`, `gamma1` ≥ 0 (all finite); `langevin_steps` ≥ 1. The error names
    /// the bad field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        positive("entropy_sgd.lr", self.lr)?;
        decay("entropy_sgd.momentum", self.momentum)?;
        if self.langevin_steps == 0 {
            return Err(ConfigError::Zero {
                field: "entropy_sgd.langevin_steps",
            });
        }
        positive("entropy_sgd.langevin_lr", self.langevin_lr)?;
        non_negative("entropy_sgd.noise", self.noise)?;
        non_negative("entropy_sgd.gamma0", self.gamma0)?;
        non_negative("entropy_sgd.gamma1", self.gamma1)?;
        decay("entropy_sgd.alpha", self.alpha)?;
        decay("entropy_sgd.langevin_momentum", self.langevin_momentum)
    }
}

/// The stream of the minibatch draws.
const BATCH_STREAM: u64 = 1;
/// The stream of the Langevin noise.
const NOISE_STREAM: u64 = 2;

/// Entropy-SGD. Its state is the step count t, the outer momentum buffer, scratch for the
/// Langevin loop, and its two random streams.
///
/// # The algorithm
///
/// Entropy-SGD descends the *local entropy*, a smoothed loss whose gradient at θ is
/// γ(θ − ⟨θ'⟩), where ⟨θ'⟩ is the mean of a Gibbs distribution ∝ exp(−L(θ') − γ/2‖θ' − θ‖²)
/// that keeps θ' near θ. One outer step at θ estimates that mean with a short run of
/// stochastic-gradient Langevin dynamics and then moves θ towards it:
///
/// 1. Keep θ as the anchor x; start the running average μ at θ and the Langevin momentum
///    buffer at zero.
/// 2. Repeat L times, at the current inner point θ': take a minibatch gradient; pass it
///    through the Langevin momentum (the buffer becomes m·buffer + gradient; the direction is
///    gradient + m·buffer with Nesterov, else the buffer); add the pull back to the anchor
///    γ(θ' − x) and Gaussian thermal noise of standard deviation ε/√(η'/2) per parameter;
///    move θ' by −η' times that direction; fold θ' into the average, μ ← αμ + (1−α)θ'.
/// 3. Return to the anchor, θ = x, and use the displacement G = x − μ as the outer gradient
///    (γ is left out, as in the original: it is absorbed by the learning rate). G goes
///    through the outer momentum (same rule; this buffer persists across steps) and θ moves
///    by −lr times the result.
/// 4. Advance the step count t, so that the scope γ = γ₀(1+γ₁)ᵗ grows ("scoping").
///
/// # Where basin differs from the original code
///
/// - **t is incremented.** The PyTorch code never advances its step counter, so its γ stays
///   at γ₀ whatever γ₁ is. basin advances t after every step, as the paper's scoping and the
///   authors' Lua code (`entropyoptim.lua`, the code behind the paper's experiments) do; step
///   k (from 0) uses γ₀(1+γ₁)ᵏ (the Lua code counts from 1).
/// - **Minibatches.** The original evaluates a fresh minibatch for every Langevin step (and
///   one more, unused by the update, for the returned loss). basin uses the `batch` given to
///   [`Optimizer::step`] for Langevin step 0 (its loss is the one returned) and draws a fresh
///   batch of the same size for each of steps 1..L: indices uniform without replacement
///   within the batch, from `0..n_examples`, by a partial Fisher–Yates shuffle of a
///   persistent pool of all indices (any arrangement of the pool gives uniform draws).
/// - **Non-Nesterov Langevin momentum.** Without Nesterov the original's direction *is* the
///   momentum buffer (an alias), so the coupling and the noise it adds also leak into the
///   buffer. basin copies the buffer instead, as the algorithm is written. The default is
///   Nesterov, where the two agree.
/// - The Lua code applies no momentum to the outer step; the PyTorch code (and basin) does.
///
/// # Randomness and allocation
///
/// The minibatch draws and the noise come from two ChaCha8 streams seeded with `seed`
/// (streams 1 and 2; stream 0, the default, is left to other users of the same seed). The
/// noise is drawn in f64 (`StandardNormal`) and rounded to `T`; with ε = 0 none is drawn.
/// The parameter-sized buffers are allocated at construction; the index pool is allocated on
/// the first [`Optimizer::step`] (it needs `n_examples`, which the constructor does not know)
/// and only reallocated if `n_examples` changes. Nothing else allocates.
#[derive(Clone, Debug)]
pub struct EntropySgd<T: Real> {
    cfg: EntropySgdConfig,
    lr: T,
    momentum: T,
    langevin_lr: T,
    langevin_momentum: T,
    alpha: T,
    one_minus_alpha: T,
    /// ε/√(η'/2), the standard deviation of the noise in the Langevin direction.
    noise_std: f64,
    t: u64,
    anchor: Vec<T>,
    mean: Vec<T>,
    inner_buf: Vec<T>,
    outer_buf: Vec<T>,
    pool: Vec<usize>,
    batch_rng: ChaCha8Rng,
    noise_rng: ChaCha8Rng,
}

/// A ChaCha8 generator on stream `stream` of `seed`.
fn stream_rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

impl<T: Real> EntropySgd<T> {
    /// Entropy-SGD over `n_params` parameters, at t = 0 with a zero outer momentum buffer.
    pub fn new(cfg: &EntropySgdConfig, n_params: usize) -> Self {
        let zeros = vec![T::ZERO; n_params];
        Self {
            cfg: cfg.clone(),
            lr: T::from_f64(cfg.lr),
            momentum: T::from_f64(cfg.momentum),
            langevin_lr: T::from_f64(cfg.langevin_lr),
            langevin_momentum: T::from_f64(cfg.langevin_momentum),
            alpha: T::from_f64(cfg.alpha),
            one_minus_alpha: T::from_f64(1.0 - cfg.alpha),
            noise_std: cfg.noise / (0.5 * cfg.langevin_lr).sqrt(),
            t: 0,
            anchor: zeros.clone(),
            mean: zeros.clone(),
            inner_buf: zeros.clone(),
            outer_buf: zeros,
            pool: Vec::new(),
            batch_rng: stream_rng(cfg.seed, BATCH_STREAM),
            noise_rng: stream_rng(cfg.seed, NOISE_STREAM),
        }
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &EntropySgdConfig {
        &self.cfg
    }

    /// The number of outer steps taken so far ([`Optimizer::update`] does not count).
    pub fn t(&self) -> u64 {
        self.t
    }

    /// The scope γ = γ₀(1+γ₁)ᵗ that the next step uses, in f64.
    pub fn gamma(&self) -> f64 {
        self.cfg.gamma0 * (1.0 + self.cfg.gamma1).powf(self.t as f64)
    }

    /// The outer step on direction `dir`: buffer ← m·buffer + dir; θ ← θ − lr·(dir + m·buffer)
    /// with Nesterov, else θ ← θ − lr·buffer.
    fn outer_step(&mut self, theta: &mut [T], dir: &[T]) {
        let (lr, m, nesterov) = (self.lr, self.momentum, self.cfg.nesterov);
        for ((th, &d), buf) in theta.iter_mut().zip(dir).zip(&mut self.outer_buf) {
            *buf = m * *buf + d;
            *th -= lr * if nesterov { d + m * *buf } else { *buf };
        }
    }

    /// Starts an outer step at θ: anchor x = θ, average μ = θ, Langevin buffer 0.
    fn begin(&mut self, theta: &[T]) {
        self.anchor.copy_from_slice(theta);
        self.mean.copy_from_slice(theta);
        self.inner_buf.fill(T::ZERO);
    }

    /// One Langevin step at θ' = `theta` from the minibatch gradient `grad`, with scope γ.
    fn langevin_step(&mut self, theta: &mut [T], grad: &[T], gamma: T) {
        let (m, eta) = (self.langevin_momentum, self.langevin_lr);
        let (a, b) = (self.alpha, self.one_minus_alpha);
        let (nesterov, std) = (self.cfg.langevin_nesterov, self.noise_std);
        let state = self
            .inner_buf
            .iter_mut()
            .zip(&mut self.mean)
            .zip(&self.anchor);
        for ((th, &g), ((buf, mu), &x)) in theta.iter_mut().zip(grad).zip(state) {
            *buf = m * *buf + g;
            let mut dw = if nesterov { g + m * *buf } else { *buf };
            dw += gamma * (*th - x);
            if std != 0.0 {
                let xi: f64 = StandardNormal.sample(&mut self.noise_rng);
                dw += T::from_f64(std * xi);
            }
            *th -= eta * dw;
            *mu = a * *mu + b * *th;
        }
    }

    /// Draws a batch of `size` (at most `n`) distinct indices from `0..n` into the front of
    /// the pool, by a partial Fisher–Yates shuffle; returns its length.
    fn draw_batch(&mut self, n: usize, size: usize) -> usize {
        if self.pool.len() != n {
            self.pool.clear();
            self.pool.extend(0..n);
        }
        let b = size.min(n);
        for i in 0..b {
            let j = self.batch_rng.random_range(i..n);
            self.pool.swap(i, j);
        }
        b
    }

    /// Ends an outer step: θ back to the anchor x, `grad` = G = x − μ, then the outer step.
    fn finish(&mut self, theta: &mut [T], grad: &mut [T]) {
        let pairs = self.anchor.iter().zip(&self.mean);
        for ((th, g), (&x, &mu)) in theta.iter_mut().zip(grad.iter_mut()).zip(pairs) {
            *th = x;
            *g = x - mu;
        }
        self.outer_step(theta, grad);
    }

    /// The addresses of the state buffers, to check that steps do not reallocate them.
    #[cfg(test)]
    fn buffer_addresses(&self) -> [usize; 5] {
        [
            self.anchor.as_ptr() as usize,
            self.mean.as_ptr() as usize,
            self.inner_buf.as_ptr() as usize,
            self.outer_buf.as_ptr() as usize,
            self.pool.as_ptr() as usize,
        ]
    }
}

impl<T: Real> Optimizer<T> for EntropySgd<T> {
    fn name(&self) -> &'static str {
        "entropy_sgd"
    }

    /// Only the outer step, applied to `grad` as the direction: the outer momentum (Nesterov
    /// or not, its buffer shared with [`Optimizer::step`]) and θ ← θ − lr·(result). This is
    /// what the original code does with L = 0: SGD with momentum. No Langevin loop runs and
    /// t does not advance. Training uses [`Optimizer::step`].
    fn update(&mut self, theta: &mut [T], grad: &[T]) {
        check_lengths(self.anchor.len(), theta, grad);
        self.outer_step(theta, grad);
    }

    /// One Entropy-SGD step (see [`EntropySgd`]): L Langevin steps, the first on `batch` and
    /// the rest on fresh batches of the same size, then the outer step. Returns the loss on
    /// `batch` at θ before the step. On return `grad` holds the outer direction G = x − μ
    /// (before the momentum), not a gradient.
    fn step(
        &mut self,
        obj: &mut dyn Objective<T>,
        theta: &mut [T],
        batch: &[usize],
        grad: &mut [T],
    ) -> T {
        check_lengths(self.anchor.len(), theta, grad);
        self.begin(theta);
        let gamma = T::from_f64(self.gamma());
        let loss = obj.loss_grad(theta, batch, grad);
        self.langevin_step(theta, grad, gamma);
        for _ in 1..self.cfg.langevin_steps {
            let b = self.draw_batch(obj.n_examples(), batch.len());
            obj.loss_grad(theta, &self.pool[..b], grad);
            self.langevin_step(theta, grad, gamma);
        }
        self.finish(theta, grad);
        self.t += 1;
        loss
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::testing::{THETA0, assert_rel};

    /// L(θ; batch) = the mean over the examples k in `batch` of ½ Σᵢ aₖᵢ θᵢ², with its exact
    /// gradient and Hessian. It records every batch it is asked for.
    struct Quadratic {
        a: Vec<[f64; 3]>,
        batches: Vec<Vec<usize>>,
    }

    impl Quadratic {
        fn new(a: &[[f64; 3]]) -> Self {
            Self {
                a: a.to_vec(),
                batches: Vec::new(),
            }
        }

        /// Four examples whose mean coefficients are [1.75, 2, 0.75] (exact in binary).
        fn four() -> Self {
            Self::new(&[
                [1.0, 2.0, 0.5],
                [3.0, 1.0, 0.5],
                [1.0, 1.0, 1.5],
                [2.0, 4.0, 0.5],
            ])
        }

        /// The mean coefficients over `batch`.
        fn coef(&self, batch: &[usize]) -> [f64; 3] {
            let mut c = [0.0; 3];
            for &k in batch {
                (0..3).for_each(|i| c[i] += self.a[k][i]);
            }
            c.map(|x| x / batch.len() as f64)
        }

        /// The loss over all examples, in f64.
        fn full_loss<T: Real>(&mut self, theta: &[T]) -> f64 {
            let all: Vec<usize> = (0..self.a.len()).collect();
            Objective::<T>::loss(self, theta, &all).to_f64()
        }
    }

    impl<T: Real> Objective<T> for Quadratic {
        fn n_params(&self) -> usize {
            3
        }

        fn n_examples(&self) -> usize {
            self.a.len()
        }

        fn loss(&mut self, theta: &[T], batch: &[usize]) -> T {
            let c = self.coef(batch);
            let l: f64 = (0..3).map(|i| 0.5 * c[i] * theta[i].to_f64().powi(2)).sum();
            T::from_f64(l)
        }

        fn loss_grad(&mut self, theta: &[T], batch: &[usize], grad: &mut [T]) -> T {
            self.batches.push(batch.to_vec());
            let c = self.coef(batch);
            (0..3).for_each(|i| grad[i] = T::from_f64(c[i]) * theta[i]);
            self.loss(theta, batch)
        }

        fn hvp(&mut self, _theta: &[T], batch: &[usize], v: &[T], out: &mut [T]) {
            let c = self.coef(batch);
            (0..3).for_each(|i| out[i] = T::from_f64(c[i]) * v[i]);
        }

        /// A regression objective: it has no classification errors.
        fn count_errors(&mut self, _theta: &[T], _batch: &[usize]) -> usize {
            0
        }
    }

    /// `steps` outer steps from [`THETA0`] on the batch `batch`; θ and the loss after each.
    fn run(
        cfg: &EntropySgdConfig,
        obj: &mut Quadratic,
        batch: &[usize],
        steps: usize,
    ) -> Vec<([f64; 3], f64)> {
        let mut opt = EntropySgd::<f64>::new(cfg, 3);
        let (mut theta, mut grad) = (THETA0, [0.0; 3]);
        (0..steps)
            .map(|_| {
                let loss = opt.step(obj, &mut theta, batch, &mut grad);
                (theta, loss)
            })
            .collect()
    }

    /// Checks `run` against hand values (evaluated at 40 digits, rounded to f64) to `tol`
    /// relative.
    fn check(got: &[([f64; 3], f64)], theta: &[[f64; 3]], loss: &[f64], tol: f64) {
        for ((th, l), (want_th, &want_l)) in got.iter().zip(theta.iter().zip(loss)) {
            assert_rel(th, want_th, tol);
            assert_rel(&[*l], &[want_l], tol);
        }
    }

    fn no_noise(langevin_steps: usize) -> EntropySgdConfig {
        EntropySgdConfig {
            noise: 0.0,
            langevin_steps,
            ..EntropySgdConfig::default()
        }
    }

    /// ε = 0, L = 1, defaults otherwise, full batch: one step is
    /// θ ← x − lr(1+m)(1−α)η'(1+m')A x with A = diag(1.75, 2, 0.75), i.e. x(1 − 0.09025 A);
    /// the second step checks that the outer momentum persists. To 1e-15 relative; the
    /// returned losses are ½ Σ A x² before each step.
    #[test]
    fn one_langevin_step_without_noise_matches_hand_values() {
        let mut obj = Quadratic::four();
        let got = run(&no_noise(1), &mut obj, &[0, 1, 2, 3], 2);
        let theta = [
            [0.8420625, -1.639, 0.46615625],
            [0.64173800390625, -1.1892605, 0.420175173828125],
        ];
        check(&got, &theta, &[4.96875, 3.3882447156982423], 1e-15);
        assert_eq!(obj.batches.len(), 2, "one gradient per Langevin step");
    }

    /// ε = 0, L = 3, all examples identical (so the drawn batches do not matter), γ₀ = 0.5 and
    /// γ₁ = 0.5 so that the coupling matters and changes between the two steps: matches a
    /// 40-digit evaluation of the algorithm to 1e-14 relative (about 30 chained operations).
    #[test]
    fn langevin_loop_with_coupling_matches_hand_values() {
        let cfg = EntropySgdConfig {
            gamma0: 0.5,
            gamma1: 0.5,
            ..no_noise(3)
        };
        let mut obj = Quadratic::new(&[[1.0, 2.0, 0.5]; 5]);
        let got = run(&cfg, &mut obj, &[0, 1], 2);
        let theta = [
            [0.495246475, -0.2507251, 0.3647713890625],
            [0.03418700124623109, 0.7105881872594763, 0.2100552017953366],
        ];
        check(&got, &theta, &[4.5625, 0.21876215283961925], 1e-14);
    }

    /// The same without Nesterov (momenta 0.5, lr 0.5), to 1e-14 relative.
    #[test]
    fn plain_momentum_matches_hand_values() {
        let cfg = EntropySgdConfig {
            lr: 0.5,
            momentum: 0.5,
            nesterov: false,
            langevin_momentum: 0.5,
            langevin_nesterov: false,
            gamma0: 0.5,
            gamma1: 0.5,
            ..no_noise(3)
        };
        let mut obj = Quadratic::new(&[[1.0, 2.0, 0.5]; 5]);
        let got = run(&cfg, &mut obj, &[0, 1], 2);
        let theta = [
            [0.92471875, -1.720625, 0.4804765625],
            [0.8185983669433594, -1.344593525390625, 0.4522559101867676],
        ];
        check(&got, &theta, &[4.5625, 3.4458172057037353], 1e-14);
    }

    /// Ten distinct examples, batches of three: the trajectory is bit-for-bit the same for
    /// the same seed, and differs for another seed (through the batches and the noise).
    #[test]
    fn reproducible_for_a_seed_and_different_for_another() {
        let a: Vec<[f64; 3]> = (0..10)
            .map(|k| [1.0 + k as f64, 2.0, 0.5 + 0.1 * k as f64])
            .collect();
        let with_seed = |seed| {
            let cfg = EntropySgdConfig {
                seed,
                lr: 0.1,
                ..EntropySgdConfig::default()
            };
            run(&cfg, &mut Quadratic::new(&a), &[0, 4, 7], 5)
        };
        assert_eq!(with_seed(7), with_seed(7));
        assert_ne!(with_seed(7), with_seed(8));
    }

    /// With identical examples the batches do not matter: the seed changes the result only
    /// through the noise, so it matters when ε > 0 and not when ε = 0.
    #[test]
    fn the_noise_depends_on_the_seed() {
        let with = |seed, noise| {
            let cfg = EntropySgdConfig {
                seed,
                noise,
                lr: 0.1,
                ..EntropySgdConfig::default()
            };
            run(&cfg, &mut Quadratic::new(&[[1.0, 2.0, 0.5]; 4]), &[0, 1], 3)
        };
        assert_ne!(with(1, 1e-4), with(2, 1e-4));
        assert_eq!(with(1, 0.0), with(2, 0.0));
    }

    /// Langevin step 0 uses the given batch; steps 1..L draw batches of the same size, of
    /// distinct indices in range, which over many draws cover every example.
    #[test]
    fn langevin_batches_are_fresh_draws_without_replacement() {
        let mut obj = Quadratic::new(&[[1.0, 1.0, 1.0]; 10]);
        run(
            &EntropySgdConfig {
                lr: 0.1,
                ..EntropySgdConfig::default()
            },
            &mut obj,
            &[2, 5, 9, 0],
            3,
        );
        assert_eq!(obj.batches.len(), 3 * 20);
        let mut seen = [false; 10];
        for (i, b) in obj.batches.iter().enumerate() {
            if i % 20 == 0 {
                assert_eq!(b, &[2, 5, 9, 0]);
            }
            let mut sorted = b.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), 4, "batch {i} is {b:?}");
            b.iter().for_each(|&k| seen[k] = true);
        }
        assert!(seen.iter().all(|&s| s));
    }

    /// t counts steps and γ = γ₀(1+γ₁)ᵗ grows with it (exactly that f64 expression).
    #[test]
    fn gamma_grows_with_t() {
        let cfg = EntropySgdConfig {
            gamma1: 0.1,
            lr: 0.1,
            ..EntropySgdConfig::default()
        };
        let mut opt = EntropySgd::<f64>::new(&cfg, 3);
        let mut obj = Quadratic::four();
        let (mut theta, mut grad) = (THETA0, [0.0; 3]);
        let mut last = 0.0;
        for t in 0..5u64 {
            assert_eq!(opt.t(), t);
            assert_eq!(opt.gamma(), 1e-4 * 1.1f64.powf(t as f64));
            assert!(opt.gamma() > last);
            last = opt.gamma();
            opt.step(&mut obj, &mut theta, &[0, 1], &mut grad);
        }
        assert_eq!(opt.t(), 5);
    }

    /// 200 steps with the defaults, except lr 0.1 (the authors' rate after the first epochs),
    /// on minibatches of two of the four examples: the full loss falls below 1e-3 of its start.
    #[test]
    fn decreases_the_loss_on_a_quadratic() {
        let cfg = EntropySgdConfig {
            lr: 0.1,
            ..EntropySgdConfig::default()
        };
        let mut obj = Quadratic::four();
        let start = obj.full_loss(&THETA0);
        let got = run(&cfg, &mut obj, &[1, 2], 200);
        let end = obj.full_loss(&got[199].0);
        assert!(end < 1e-3 * start, "loss {start} -> {end}");
    }

    /// The same in f32.
    #[test]
    fn decreases_the_loss_in_f32() {
        let cfg = EntropySgdConfig {
            lr: 0.1,
            ..EntropySgdConfig::default()
        };
        let mut opt = EntropySgd::<f32>::new(&cfg, 3);
        let mut obj = Quadratic::four();
        let (mut theta, mut grad) = (THETA0.map(|x| x as f32), [0.0f32; 3]);
        let start = obj.full_loss(&theta);
        for _ in 0..200 {
            opt.step(&mut obj, &mut theta, &[1, 2], &mut grad);
        }
        let end = obj.full_loss(&theta);
        assert!(end < 1e-3 * start, "loss {start} -> {end}");
    }

    /// `update` is the outer step alone: with lr 1 and Nesterov momentum 0.9, θ moves by
    /// −1.9g, then by −(g₂ + 0.9(0.9g + g₂)); t does not advance. Exact in these numbers up
    /// to 1e-15 relative.
    #[test]
    fn update_is_the_outer_momentum_step() {
        let mut opt = EntropySgd::<f64>::new(&EntropySgdConfig::default(), 3);
        let mut theta = THETA0;
        let (g1, g2) = ([0.1, -0.3, 2.0], [-0.2, 0.4, 1.0]);
        opt.update(&mut theta, &g1);
        let want1: Vec<f64> = (0..3).map(|i| THETA0[i] - 1.9 * g1[i]).collect();
        assert_rel(&theta, &want1, 1e-15);
        opt.update(&mut theta, &g2);
        let want2: Vec<f64> = (0..3)
            .map(|i| want1[i] - (g2[i] + 0.9 * (0.9 * g1[i] + g2[i])))
            .collect();
        assert_rel(&theta, &want2, 1e-15);
        assert_eq!(opt.t(), 0);
    }

    /// After the first step (which allocates the index pool), steps reuse every buffer.
    #[test]
    fn steps_do_not_reallocate() {
        let mut opt = EntropySgd::<f64>::new(
            &EntropySgdConfig {
                lr: 0.1,
                ..Default::default()
            },
            3,
        );
        let mut obj = Quadratic::four();
        let (mut theta, mut grad) = (THETA0, [0.0; 3]);
        opt.step(&mut obj, &mut theta, &[0, 1], &mut grad);
        let addresses = opt.buffer_addresses();
        for _ in 0..10 {
            opt.step(&mut obj, &mut theta, &[0, 1], &mut grad);
        }
        assert_eq!(opt.buffer_addresses(), addresses);
    }
}
