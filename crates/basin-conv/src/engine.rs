//! The graph engine: the forward pass, backpropagation, and Pearlmutter's R-operator
//! (forward-over-reverse) for exact Hessian-vector products, through conv, BatchNorm, the
//! activation, residual adds and average pooling.
//!
//! Activations are stored channel-major, `[C, N, H, W]` per node, in buffers kept between
//! calls. For node `y = f(x; θ)` with adjoint `g = ∂L/∂y` and direction `v` (`V_W`, `V_γ`, …):
//!
//! | op | R-forward `Ry` | backward `g_x` | R-backward `R g_x`, `(Hv)_θ` |
//! |---|---|---|---|
//! | conv `W·U(x) + b` | `W·U(Rx) + V_W·U(x) + V_b` | `F(Wᵀ g)` | `F(Wᵀ Rg + V_Wᵀ g)`; `Rg·U(x)ᵀ + g·U(Rx)ᵀ`, `Σ Rg` |
//! | BN (eval) `γ·x̂ + β`, `x̂ = (x − μ)·s` | `γ s Rx + V_γ x̂ + V_β` | `γ s g` | `γ s Rg + V_γ s g`; `Σ(Rg x̂ + g s Rx)`, `Σ Rg` |
//! | `φ(x)` | `φ′(x) Rx` | `φ′(x) g` | `φ′(x) Rg + φ″(x) Rx g` |
//! | add, pool | linear | adjoint | adjoint |
//!
//! `U` unfolds (im2col) and `F` folds ([`crate::conv`]). BatchNorm in training mode (batch
//! statistics) has the forward and backward passes only: every curvature measure is taken in
//! eval mode.

use basin_nn::{Activation, Real};
use faer::{Accum, Par};

use crate::conv::{self, Products};
use crate::graph::{BatchNorm, Conv, Graph, Op};
use crate::state::{BN_EPS, BnMode, BnState};

/// A graph with its activation buffers for batches of up to `cap` examples.
#[derive(Debug, Clone)]
pub struct Engine<T> {
    graph: Graph,
    cap: usize,
    par: Par,
    val: Vec<Vec<T>>,
    adj: Vec<Vec<T>>,
    rval: Vec<Vec<T>>,
    radj: Vec<Vec<T>>,
    col: Vec<T>,
    /// Per BatchNorm layer, the mean and the inverse standard deviation of the last forward
    /// pass (the batch's in training mode, the running ones in eval mode).
    bn_mean: Vec<Vec<T>>,
    bn_inv: Vec<Vec<T>>,
    mode: BnMode,
}

/// Splits `bufs` into node `src`'s buffer (read) and node `dst`'s (written), `src < dst`.
fn read_write<T>(bufs: &mut [Vec<T>], src: usize, dst: usize) -> (&[T], &mut [T]) {
    debug_assert!(src < dst);
    let (lo, hi) = bufs.split_at_mut(dst);
    (&lo[src], &mut hi[0])
}

/// Splits `bufs` into node `src`'s buffer (read) and node `dst`'s (written), `dst < src`.
fn read_back<T>(bufs: &mut [Vec<T>], src: usize, dst: usize) -> (&[T], &mut [T]) {
    debug_assert!(dst < src);
    let (lo, hi) = bufs.split_at_mut(src);
    (&hi[0], &mut lo[dst])
}

impl<T: Real> Engine<T> {
    /// An engine for `graph` with buffers for `cap` examples, its matrix products on `par`.
    pub fn new(graph: Graph, cap: usize, par: Par) -> Self {
        let mut engine = Self::forward_only(graph, cap, par);
        engine.ensure_adjoint_buffers();
        engine
    }

    /// An engine for forward passes only (half the memory of [`Self::new`]): the adjoint
    /// buffers are allocated by the first [`Self::backward`].
    pub fn forward_only(graph: Graph, cap: usize, par: Par) -> Self {
        let sizes: Vec<usize> = graph.nodes.iter().map(|n| n.shape.len() * cap).collect();
        let col = graph
            .nodes
            .iter()
            .filter_map(|n| match n.op {
                Op::Conv(c) => Some(conv::scratch_len(&c, graph.nodes[n.inputs[0]].shape, cap)),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        let bn = |f: f64| {
            graph
                .bns
                .iter()
                .map(|b| vec![T::from_f64(f); b.c])
                .collect()
        };
        Self {
            val: sizes.iter().map(|&s| vec![T::ZERO; s]).collect(),
            adj: Vec::new(),
            rval: Vec::new(),
            radj: Vec::new(),
            col: vec![T::ZERO; col],
            bn_mean: bn(0.0),
            bn_inv: bn(1.0),
            mode: BnMode::Eval,
            graph,
            cap,
            par,
        }
    }

    /// The bytes of the forward activations for `cap` examples (an engine built by
    /// [`Self::forward_only`] that never runs backward).
    pub fn forward_bytes(graph: &Graph, cap: usize) -> u128 {
        Self::memory_bytes(graph, cap, false) / 2
    }

    /// The bytes of the buffers for `cap` examples: the forward and backward activations, and
    /// with `curvature` their R-operator twins.
    pub fn memory_bytes(graph: &Graph, cap: usize, curvature: bool) -> u128 {
        let per: u128 = graph.nodes.iter().map(|n| n.shape.len() as u128).sum();
        let copies = if curvature { 4 } else { 2 };
        per * cap as u128 * copies * size_of::<T>() as u128
    }

    /// The graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The examples a pass may hold.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// The input buffer (`[C, N, H, W]` for the batch's `N`), to fill before [`Self::forward`].
    pub fn input_mut(&mut self) -> &mut [T] {
        &mut self.val[0]
    }

    /// The values of node `node` in the last forward pass over `nb` examples, `[C, N, H, W]`.
    pub fn values(&self, node: usize, nb: usize) -> &[T] {
        &self.val[node][..self.graph.nodes[node].shape.len() * nb]
    }

    /// The logits of the last forward pass, one per example.
    pub fn logits(&self, nb: usize) -> &[T] {
        &self.val[self.graph.nodes.len() - 1][..nb]
    }

    /// The logits and their adjoint, to set before [`Self::backward`].
    pub fn logit_adjoint_mut(&mut self, nb: usize) -> (&[T], &mut [T]) {
        self.ensure_adjoint_buffers();
        let last = self.graph.nodes.len() - 1;
        (&self.val[last][..nb], &mut self.adj[last][..nb])
    }

    /// The logits, their R-forward tangents (after [`Self::r_forward`]), and their R-adjoint,
    /// to set before [`Self::r_backward`].
    pub fn logit_r_adjoint_mut(&mut self, nb: usize) -> (&[T], &[T], &mut [T]) {
        let last = self.graph.nodes.len() - 1;
        (
            &self.val[last][..nb],
            &self.rval[last][..nb],
            &mut self.radj[last][..nb],
        )
    }

    /// The forward pass over the `nb` examples in the input buffer. In [`BnMode::Train`]
    /// BatchNorm uses the batch's statistics and folds them into `state`; in eval mode it
    /// uses `state`'s.
    pub fn forward(&mut self, theta: &[T], nb: usize, mode: BnMode, state: &mut BnState) {
        assert!(
            nb <= self.cap && nb > 0,
            "batch of {nb} for buffers of {}",
            self.cap
        );
        self.mode = mode;
        for i in 1..self.graph.nodes.len() {
            let node = self.graph.nodes[i];
            let len = node.shape.len() * nb;
            let [a, b] = node.inputs;
            let in_shape = self.graph.nodes[a].shape;
            match node.op {
                Op::Input => {}
                Op::Conv(c) => {
                    let (x, y) = read_write(&mut self.val, a, i);
                    let prod = Products {
                        conv: &c,
                        input: in_shape,
                        nb,
                        par: self.par,
                    };
                    prod.forward(
                        &theta[c.w..],
                        c.b.map(|o| &theta[o..o + c.cout]),
                        x,
                        y,
                        &mut self.col,
                        Accum::Replace,
                    );
                }
                Op::BatchNorm(bn) => {
                    let m = nb * in_shape.spatial();
                    self.bn_stats(bn, m, mode, state, a);
                    self.bn_forward(bn, theta, m, a, i);
                }
                Op::Act(act) => {
                    let (x, y) = read_write(&mut self.val, a, i);
                    apply(act, &x[..len], &mut y[..len]);
                }
                Op::Add => sum_into(&mut self.val, i, [a, b], len),
                Op::Pool => {
                    let (x, y) = read_write(&mut self.val, a, i);
                    pool(x, y, len, in_shape.spatial());
                }
            }
        }
    }

    /// BatchNorm's forward pass over `m` values per channel, with this pass's statistics:
    /// `y = γ (x − μ) s + β`.
    fn bn_forward(&mut self, bn: BatchNorm, theta: &[T], m: usize, a: usize, i: usize) {
        let (x, y) = read_write(&mut self.val, a, i);
        let (mean, inv) = (&self.bn_mean[bn.state], &self.bn_inv[bn.state]);
        for ch in 0..bn.c {
            let scale = theta[bn.gamma + ch] * inv[ch];
            let shift = theta[bn.beta + ch] - scale * mean[ch];
            let rows = ch * m..(ch + 1) * m;
            for (yv, xv) in y[rows.clone()].iter_mut().zip(&x[rows]) {
                *yv = scale * *xv + shift;
            }
        }
    }

    /// BatchNorm's R-forward step (eval mode): `Ry = γ s Rx + V_γ x̂ + V_β`.
    fn bn_r_forward(&mut self, bn: BatchNorm, theta: &[T], v: &[T], m: usize, a: usize, i: usize) {
        let (mean, inv) = (&self.bn_mean[bn.state], &self.bn_inv[bn.state]);
        let x = &self.val[a];
        let (rx, ry) = read_write(&mut self.rval, a, i);
        for ch in 0..bn.c {
            let s = inv[ch];
            let scale = theta[bn.gamma + ch] * s;
            let (vg, vb, mu) = (v[bn.gamma + ch], v[bn.beta + ch], mean[ch]);
            let rows = ch * m..(ch + 1) * m;
            let ys = ry[rows.clone()].iter_mut();
            for ((r, xv), rxv) in ys.zip(&x[rows.clone()]).zip(&rx[rows]) {
                *r = scale * *rxv + vg * (*xv - mu) * s + vb;
            }
        }
    }

    /// BatchNorm's R-backward step (eval mode): `R g_x += γ s Rg + V_γ s g`,
    /// `(Hv)_γ += Σ(Rg x̂ + g s Rx)`, `(Hv)_β += Σ Rg`. `nodes` is (input, output).
    fn bn_r_backward(
        &mut self,
        bn: BatchNorm,
        theta: &[T],
        v: &[T],
        m: usize,
        nodes: (usize, usize),
        hv: &mut [T],
    ) {
        let (a, i) = nodes;
        let (mean, inv) = (&self.bn_mean[bn.state], &self.bn_inv[bn.state]);
        let (x, rx, g) = (&self.val[a], &self.rval[a], &self.adj[i]);
        let (rg, rgx) = read_back(&mut self.radj, i, a);
        for ch in 0..bn.c {
            let (mu, s) = (mean[ch], inv[ch]);
            let scale = theta[bn.gamma + ch] * s;
            let vgs = v[bn.gamma + ch] * s;
            let rows = ch * m..(ch + 1) * m;
            let (mut h_gamma, mut h_beta) = (T::ZERO, T::ZERO);
            let outs = rgx[rows.clone()]
                .iter_mut()
                .zip(&rg[rows.clone()])
                .zip(&g[rows.clone()]);
            for (((d, r), gv), (xv, rxv)) in outs.zip(x[rows.clone()].iter().zip(&rx[rows])) {
                h_gamma += *r * (*xv - mu) * s + *gv * s * *rxv;
                h_beta += *r;
                *d += scale * *r + vgs * *gv;
            }
            hv[bn.gamma + ch] += h_gamma;
            hv[bn.beta + ch] += h_beta;
        }
    }

    /// Sets BatchNorm layer `bn`'s mean and inverse standard deviation for this pass, from the
    /// batch (training mode, folding them into the running statistics) or from `state`.
    fn bn_stats(
        &mut self,
        bn: BatchNorm,
        m: usize,
        mode: BnMode,
        state: &mut BnState,
        input: usize,
    ) {
        let running = &mut state.layers[bn.state];
        let (mean, inv) = (&mut self.bn_mean[bn.state], &mut self.bn_inv[bn.state]);
        match mode {
            BnMode::Eval => {
                for ch in 0..bn.c {
                    mean[ch] = T::from_f64(running.mean[ch]);
                    inv[ch] = T::from_f64(1.0 / (running.var[ch] + BN_EPS).sqrt());
                }
            }
            BnMode::Train => {
                let x = &self.val[input];
                for ch in 0..bn.c {
                    let row = &x[ch * m..(ch + 1) * m];
                    let mu = row.iter().map(|v| v.to_f64()).sum::<f64>() / m as f64;
                    let var = row.iter().map(|v| (v.to_f64() - mu).powi(2)).sum::<f64>() / m as f64;
                    mean[ch] = T::from_f64(mu);
                    inv[ch] = T::from_f64(1.0 / (var + BN_EPS).sqrt());
                    running.fold(ch, mu, var, m);
                }
                running.batches += 1;
            }
        }
    }

    /// Backpropagates the logits' adjoint (set with [`Self::logit_adjoint_mut`]) through the
    /// last forward pass, adding the gradient to `grad` when given (the node adjoints are kept
    /// for [`Self::r_backward`]).
    pub fn backward(&mut self, theta: &[T], nb: usize, mut grad: Option<&mut [T]>) {
        self.ensure_adjoint_buffers();
        let n = self.graph.nodes.len();
        for buf in &mut self.adj[..n - 1] {
            buf.fill(T::ZERO);
        }
        for i in (1..n).rev() {
            let node = self.graph.nodes[i];
            let [a, b] = node.inputs;
            let in_shape = self.graph.nodes[a].shape;
            let len = node.shape.len() * nb;
            match node.op {
                Op::Input => {}
                Op::Conv(c) => {
                    let prod = Products {
                        conv: &c,
                        input: in_shape,
                        nb,
                        par: self.par,
                    };
                    if let Some(g) = grad.as_deref_mut() {
                        let (gw, gb) = conv_grads(&c, g);
                        prod.weight_grad(&self.adj[i], &self.val[a], gw, gb, &mut self.col);
                    }
                    if a > 0 {
                        let (gy, gx) = read_back(&mut self.adj, i, a);
                        prod.input_grad(&theta[c.w..], gy, gx, &mut self.col);
                    }
                }
                Op::BatchNorm(bn) => self.bn_backward(
                    bn,
                    theta,
                    nb * in_shape.spatial(),
                    a,
                    i,
                    grad.as_deref_mut(),
                ),
                Op::Act(act) => {
                    let x = &self.val[a][..len];
                    let (gy, gx) = read_back(&mut self.adj, i, a);
                    add_derivative(act, x, &gy[..len], &mut gx[..len]);
                }
                Op::Add => {
                    for src in [a, b] {
                        let (gy, gx) = read_back(&mut self.adj, i, src);
                        accumulate(&gy[..len], &mut gx[..len]);
                    }
                }
                Op::Pool => {
                    let (gy, gx) = read_back(&mut self.adj, i, a);
                    unpool(gy, gx, len, in_shape.spatial());
                }
            }
        }
    }

    /// BatchNorm's backward pass over `m` values per channel: in eval mode an affine map per
    /// channel; in training mode through the batch statistics too.
    fn bn_backward(
        &mut self,
        bn: BatchNorm,
        theta: &[T],
        m: usize,
        a: usize,
        i: usize,
        grad: Option<&mut [T]>,
    ) {
        let (mean, inv) = (&self.bn_mean[bn.state], &self.bn_inv[bn.state]);
        let x = &self.val[a];
        let (gy, gx) = read_back(&mut self.adj, i, a);
        let mut grad = grad;
        for ch in 0..bn.c {
            let rows = ch * m..(ch + 1) * m;
            let (xs, gs) = (&x[rows.clone()], &gy[rows.clone()]);
            let (mu, s) = (mean[ch], inv[ch]);
            let (mut sum_g, mut sum_gx) = (T::ZERO, T::ZERO);
            for (xv, g) in xs.iter().zip(gs) {
                sum_g += *g;
                sum_gx += *g * (*xv - mu) * s;
            }
            if let Some(grad) = grad.as_deref_mut() {
                grad[bn.gamma + ch] += sum_gx;
                grad[bn.beta + ch] += sum_g;
            }
            let scale = theta[bn.gamma + ch] * s;
            let dx = &mut gx[rows];
            match self.mode {
                BnMode::Eval => dx.iter_mut().zip(gs).for_each(|(d, g)| *d += scale * *g),
                BnMode::Train => {
                    let mt = T::from_f64(1.0 / m as f64);
                    let (mg, mgx) = (sum_g * mt, sum_gx * mt);
                    for ((d, g), xv) in dx.iter_mut().zip(gs).zip(xs) {
                        *d += scale * (*g - mg - (*xv - mu) * s * mgx);
                    }
                }
            }
        }
    }

    /// Allocates the adjoint buffers (an engine built by [`Self::forward_only`] has none).
    fn ensure_adjoint_buffers(&mut self) {
        if self.adj.is_empty() {
            self.adj = self.val.iter().map(|v| vec![T::ZERO; v.len()]).collect();
        }
    }

    /// Allocates the R-operator buffers (done by the first R-forward pass otherwise).
    pub fn ensure_r_buffers(&mut self) {
        if self.rval.is_empty() {
            self.rval = self.val.iter().map(|v| vec![T::ZERO; v.len()]).collect();
            self.radj = self.val.iter().map(|v| vec![T::ZERO; v.len()]).collect();
        }
    }

    /// The R-forward pass along `v` at the last forward pass's point (eval mode only).
    pub fn r_forward(&mut self, theta: &[T], v: &[T], nb: usize) {
        assert_eq!(self.mode, BnMode::Eval, "the R-operator runs in eval mode");
        self.ensure_r_buffers();
        for i in 1..self.graph.nodes.len() {
            let node = self.graph.nodes[i];
            let len = node.shape.len() * nb;
            let [a, b] = node.inputs;
            let in_shape = self.graph.nodes[a].shape;
            match node.op {
                Op::Input => {}
                Op::Conv(c) => {
                    let prod = Products {
                        conv: &c,
                        input: in_shape,
                        nb,
                        par: self.par,
                    };
                    let vb = c.b.map(|o| &v[o..o + c.cout]);
                    prod.forward(
                        &v[c.w..],
                        vb,
                        &self.val[a],
                        &mut self.rval[i],
                        &mut self.col,
                        Accum::Replace,
                    );
                    if a > 0 {
                        let (rx, ry) = read_write(&mut self.rval, a, i);
                        prod.forward(&theta[c.w..], None, rx, ry, &mut self.col, Accum::Add);
                    }
                }
                Op::BatchNorm(bn) => self.bn_r_forward(bn, theta, v, nb * in_shape.spatial(), a, i),
                Op::Act(act) => {
                    let x = &self.val[a][..len];
                    let (rx, ry) = read_write(&mut self.rval, a, i);
                    for ((r, xv), rxv) in ry[..len].iter_mut().zip(x).zip(&rx[..len]) {
                        *r = act.derivative(*xv) * *rxv;
                    }
                }
                Op::Add => sum_into(&mut self.rval, i, [a, b], len),
                Op::Pool => {
                    let (rx, ry) = read_write(&mut self.rval, a, i);
                    pool(rx, ry, len, in_shape.spatial());
                }
            }
        }
    }

    /// The R-backward pass along `v`: with the adjoints of [`Self::backward`] and the tangents
    /// of [`Self::r_forward`], propagates the logits' R-adjoint (set with
    /// [`Self::logit_r_adjoint_mut`]) and adds `H v` to `hv`.
    pub fn r_backward(&mut self, theta: &[T], v: &[T], nb: usize, hv: &mut [T]) {
        let n = self.graph.nodes.len();
        for buf in &mut self.radj[..n - 1] {
            buf.fill(T::ZERO);
        }
        for i in (1..n).rev() {
            let node = self.graph.nodes[i];
            let [a, b] = node.inputs;
            let in_shape = self.graph.nodes[a].shape;
            let len = node.shape.len() * nb;
            match node.op {
                Op::Input => {}
                Op::Conv(c) => self.conv_r_backward(&c, theta, v, nb, a, i, hv),
                Op::BatchNorm(bn) => {
                    let m = nb * in_shape.spatial();
                    self.bn_r_backward(bn, theta, v, m, (a, i), hv);
                }
                Op::Act(act) => {
                    let (x, rx, g) = (
                        &self.val[a][..len],
                        &self.rval[a][..len],
                        &self.adj[i][..len],
                    );
                    let (rg, rgx) = read_back(&mut self.radj, i, a);
                    add_derivative(act, x, &rg[..len], &mut rgx[..len]);
                    if !act.is_piecewise_linear() {
                        for (((d, xv), rxv), gv) in rgx[..len].iter_mut().zip(x).zip(rx).zip(g) {
                            *d += act.second_derivative(*xv) * *rxv * *gv;
                        }
                    }
                }
                Op::Add => {
                    for src in [a, b] {
                        let (rg, rgx) = read_back(&mut self.radj, i, src);
                        accumulate(&rg[..len], &mut rgx[..len]);
                    }
                }
                Op::Pool => {
                    let (rg, rgx) = read_back(&mut self.radj, i, a);
                    unpool(rg, rgx, len, in_shape.spatial());
                }
            }
        }
    }

    /// The conv's R-backward step: `(Hv)_W += Rg·U(x)ᵀ + g·U(Rx)ᵀ`, `(Hv)_b += Σ Rg`,
    /// `R g_x += F(Wᵀ Rg + V_Wᵀ g)`.
    #[allow(clippy::too_many_arguments)]
    fn conv_r_backward(
        &mut self,
        c: &Conv,
        theta: &[T],
        v: &[T],
        nb: usize,
        a: usize,
        i: usize,
        hv: &mut [T],
    ) {
        let in_shape = self.graph.nodes[a].shape;
        let prod = Products {
            conv: c,
            input: in_shape,
            nb,
            par: self.par,
        };
        let (hw, hb) = conv_grads(c, hv);
        prod.weight_grad(&self.radj[i], &self.val[a], hw, hb, &mut self.col);
        if a > 0 {
            let (hw, _) = conv_grads(c, hv);
            prod.weight_grad(&self.adj[i], &self.rval[a], hw, None, &mut self.col);
            let (rg, rgx) = read_back(&mut self.radj, i, a);
            prod.input_grad(&theta[c.w..], rg, rgx, &mut self.col);
            prod.input_grad(&v[c.w..], &self.adj[i], rgx, &mut self.col);
        }
    }
}

/// A conv's weight and bias slices of a gradient-shaped vector.
fn conv_grads<'g, T>(c: &Conv, g: &'g mut [T]) -> (&'g mut [T], Option<&'g mut [T]>) {
    let nw = c.cout * c.fan_in();
    match c.b {
        Some(b) => {
            debug_assert_eq!(b, c.w + nw, "a conv's bias follows its weight");
            let (w, rest) = g[c.w..].split_at_mut(nw);
            (w, Some(&mut rest[..c.cout]))
        }
        None => (&mut g[c.w..c.w + nw], None),
    }
}

/// Node `i` of `bufs` becomes the sum of nodes `inputs` (the residual add).
fn sum_into<T: Real>(bufs: &mut [Vec<T>], i: usize, inputs: [usize; 2], len: usize) {
    let (lo, hi) = bufs.split_at_mut(i);
    let (a, b) = (&lo[inputs[0]][..len], &lo[inputs[1]][..len]);
    for ((y, u), w) in hi[0][..len].iter_mut().zip(a).zip(b) {
        *y = *u + *w;
    }
}

/// `dx += g`.
fn accumulate<T: Real>(g: &[T], dx: &mut [T]) {
    dx.iter_mut().zip(g).for_each(|(d, v)| *d += *v);
}

/// `y` (`len` values) = the means of `x`'s consecutive runs of `hw` (global average pooling).
fn pool<T: Real>(x: &[T], y: &mut [T], len: usize, hw: usize) {
    let scale = T::from_f64(1.0 / hw as f64);
    for (yv, xs) in y[..len].iter_mut().zip(x[..len * hw].chunks_exact(hw)) {
        *yv = xs.iter().copied().sum::<T>() * scale;
    }
}

/// The adjoint of [`pool`]: adds `g / hw` to each of its run of `hw` in `dx`.
fn unpool<T: Real>(g: &[T], dx: &mut [T], len: usize, hw: usize) {
    let scale = T::from_f64(1.0 / hw as f64);
    for (gv, run) in g[..len].iter().zip(dx[..len * hw].chunks_exact_mut(hw)) {
        let v = *gv * scale;
        run.iter_mut().for_each(|d| *d += v);
    }
}

/// `y = φ(x)`, with the `match` outside the loop.
fn apply<T: Real>(act: Activation, x: &[T], y: &mut [T]) {
    match act {
        Activation::Relu => y.iter_mut().zip(x).for_each(|(o, i)| *o = i.max(T::ZERO)),
        Activation::Linear => y.copy_from_slice(x),
        _ => y.iter_mut().zip(x).for_each(|(o, i)| *o = act.apply(*i)),
    }
}

/// `dx += φ′(x) ⊙ g`.
fn add_derivative<T: Real>(act: Activation, x: &[T], g: &[T], dx: &mut [T]) {
    match act {
        Activation::Relu => {
            for ((d, xv), gv) in dx.iter_mut().zip(x).zip(g) {
                if *xv > T::ZERO {
                    *d += *gv;
                }
            }
        }
        _ => {
            for ((d, xv), gv) in dx.iter_mut().zip(x).zip(g) {
                *d += act.derivative(*xv) * *gv;
            }
        }
    }
}
