//! Expectation Propagation (EP) for log P(f) = log ∫ N(z | 0, K) Πᵢ p(yᵢ | zᵢ) dz, with the
//! probit or the step likelihood.
//!
//! Each label gets a Gaussian site t̃ᵢ(z) ∝ exp(−½τ̃ᵢzᵢ² + ν̃ᵢzᵢ); the posterior is
//! q(z) = N(μ, Σ) with Σ = (K⁻¹ + S)⁻¹, S = diag(τ̃), μ = Σν̃. A site update forms the cavity
//! τ₋ = 1/Σᵢᵢ − τ̃ᵢ, ν₋ = μᵢ/Σᵢᵢ − ν̃ᵢ, matches the moments of the tilted distribution
//! ([`crate::likelihood::Likelihood::tilted_moments`]) and sets τ̃ᵢ += δ(1/σ̂² − 1/Σᵢᵢ), ν̃ᵢ += δ(μ̂/σ̂² − μᵢ/Σᵢᵢ)
//! (δ = [`EpConfig::damping`]; τ̃ᵢ is kept ≥ 2.2e-16, so site precisions stay positive).
//!
//! This is a re-implementation of GPy 1.15's `EP` (`GPy.inference.latent_function_inference.
//! expectation_propagation.EP`, whose golden values `tests/fixtures/gp` holds): same start
//! (sites 0, Σ = K + 10⁻⁷I for the first sweep), same stopping rule (from the second sweep on,
//! mean((τ̃ − τ̃_prev)²) < ε and mean((ν̃ − ν̃_prev)²) < ε, ε = 10⁻⁶), same log Z_EP. One
//! stopping rule is added: where a nearly singular kernel drives site precisions to 10⁶ and
//! more, their round-off keeps that change above ε for ever; EP then stops when
//! [`FLOOR_SWEEPS`] consecutive sweeps with change below [`FLOOR_CHANGE`] agree on log Z to
//! [`FLOOR_LOG_Z_ABS`] nats ([`FLOOR_LOG_Z_REL`] relative), and says so
//! ([`EpDiagnostics::stopped_at_floor`]). log Z_EP is:
//!
//! log Z_EP = ½(−log|B| + ν̃ᵀΣν̃) + Σᵢ [log Ẑᵢ + ½log(1 + τ̃ᵢ/τ₋ᵢ) − ½ν̃ᵢ²/(τ₋ᵢ + τ̃ᵢ)
//! + ½ν₋ᵢ((τ̃ᵢ/τ₋ᵢ)ν₋ᵢ − 2ν̃ᵢ)/(τ₋ᵢ + τ̃ᵢ)],
//!
//! with B = I + S½KS½, Σ from the final sites, and Ẑ and the cavities of the last sweep
//! (GPy's ±½N·log 2π terms cancel and are left out; log Ẑ is used directly where GPy takes
//! log(exp(log Ẑ)), which differs only where exp underflows, below z ≈ −38).
//!
//! Two schedules:
//! * [`EpSchedule::Parallel`]: all sites from the same posterior, then the posterior is
//!   recomputed. Unlike GPy, which forms all of Σ (a Cholesky, a triangular solve with N
//!   right-hand sides and VᵀV: ⅓N³ + 2N³ flops), this needs only diag(Σ) and μ. With
//!   L = chol(B), M = L⁻¹ and S > 0, K = S^-½(B − I)S^-½ gives S½ΣS½ = I − B⁻¹, so
//!   τ̃ᵢΣᵢᵢ = 1 − (B⁻¹)ᵢᵢ = 1 − ‖Meᵢ‖²: a Cholesky plus the columns of M, by triangular
//!   solves 64 columns at a time (⅔N³ flops in all). The subtraction from 1 is done exactly:
//!   1 − ‖Meᵢ‖² = (Lᵢᵢ² − 1)/Lᵢᵢ² − Σₖ₍ₖ₌ᵢ₊₁..ₙ₎ Mₖᵢ² with
//!   Lᵢᵢ² − 1 = τ̃ᵢKᵢᵢ − Σⱼ₍ⱼ₌₀..ᵢ₎ Lᵢⱼ², every term proportional to τ̃ᵢ, so Σᵢᵢ keeps its
//!   relative precision however small τ̃ᵢ is (`Factor::sigma_diag` states the error bound;
//!   zero sites take GPy's formula). μ takes two triangular solves and no second product
//!   with K (`Factor::mean`). After the last sweep only log|B| and μ are needed: a Cholesky.
//!   With [`EpPrecision::Mixed`] (the default) the early posteriors are f32 factorisations
//!   (twice as fast; μ refined to f64 accuracy), while the next sweep's change is predicted
//!   (from the last two, EP converging about quadratically) to exceed ten times both ε and
//!   an upper estimate of what f32's errors in Σ do to the sites (`f32_risk`). A sweep fed
//!   by f32 whose change lands within that noise of ε is redone from the f64 posterior, so the
//!   stopping decision, and hence the number of sweeps, is GPy's; log Z is always f64. The
//!   early sweeps' errors are damped by the later f64 ones (a 10⁻³ relative error in the
//!   first posterior moves the N = 1500 log Z by 5·10⁻¹²).
//!   With [`EpConfig::par`] of two or more threads the Cholesky factorisations are faer's
//!   parallel ones, the blocks of columns of M are split between the threads in parts of
//!   equal cost (each column's sum is still formed by one thread, in the same order), and the
//!   kernel's own Cholesky check ([`EpConfig::check_psd`]) runs on one thread while the
//!   sweeps start on the other (`parallel_checking_alongside`): the first posterior's
//!   Cholesky then runs on one thread (always the first, so the result does not depend on
//!   timing), diag(Σ)'s parts are tasks any free thread takes, and a check that passes hands
//!   its n × n buffer to the f64 factor. An exactly symmetric row-major kernel is read as its
//!   column-major transpose, without a copy.
//! * [`EpSchedule::Sequential`]: sites in a seeded random order, each followed by the exact
//!   rank-1 update of Σ and μ (GPy's `parallel_updates=False`); the rank-1 updates are
//!   accumulated in blocks of [`SEQ_BLOCK`] and applied as one matrix product. The posterior is
//!   recomputed from the sites after every sweep, as GPy does.
//!
//! The code is split by concern, each module depending only on those listed before it:
//! `config` (the settings), `site` (the sites and one site update), `result` (what a run
//! returns), `factor` (the factorisation of B and diag(Σ) from it), `log_z` (log Z_EP),
//! `parallel` (the parallel schedule and its mixed precision), `sequential` (the sequential
//! schedule), `run` (the kernel checks and the choice of schedule: [`ep`]) and `fixed_point`
//! (damping where undamped EP oscillates: [`ep_to_fixed_point`]). This file only declares
//! them.

mod config;
mod factor;
mod fixed_point;
mod log_z;
mod parallel;
mod result;
mod run;
mod sequential;
mod site;

pub use config::{
    EpConfig, EpPrecision, EpSchedule, FIRST_SWEEP_JITTER, FLOOR_CHANGE, FLOOR_LOG_Z_ABS,
    FLOOR_LOG_Z_REL, FLOOR_SWEEPS, MIN_SITE_PRECISION, SEQ_BLOCK,
};
pub use fixed_point::{FALLBACK_DAMPINGS, UNDAMPED_SWEEPS, ep_to_fixed_point};
pub use result::{EpDiagnostics, EpResult};
pub use run::ep;
pub use site::Sites;
