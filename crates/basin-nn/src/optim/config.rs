//! [`OptimizerConfig`]: the choice of optimizer and its hyper-parameters as one serde value,
//! and the checks shared by the per-algorithm configs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{
    Adagrad, AdagradConfig, Adam, AdamConfig, EntropySgd, EntropySgdConfig, GdConfig, Momentum,
    MomentumConfig, Optimizer, RmsProp, RmsPropConfig, Sgd, SgdConfig,
};
use crate::real::Real;

/// A hyper-parameter out of range, or an unknown optimizer name. The messages name the field
/// as `kind.field` (as `adam.beta1`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A learning rate or ε that is not finite and positive.
    #[error("{field} must be positive and finite, got {value}")]
    NotPositive {
        /// The field, as `kind.field`.
        field: &'static str,
        /// The value given.
        value: f64,
    },
    /// A noise level or coupling that is negative or not finite.
    #[error("{field} must be non-negative and finite, got {value}")]
    Negative {
        /// The field, as `kind.field`.
        field: &'static str,
        /// The value given.
        value: f64,
    },
    /// A decay rate or momentum outside [0, 1).
    #[error("{field} must be in [0, 1), got {value}")]
    NotADecay {
        /// The field, as `kind.field`.
        field: &'static str,
        /// The value given.
        value: f64,
    },
    /// A count that must be at least 1.
    #[error("{field} must be at least 1, got 0")]
    Zero {
        /// The field, as `kind.field`.
        field: &'static str,
    },
    /// A name that is no optimizer.
    #[error("unknown optimizer {name:?}; expected one of {}", OptimizerConfig::KINDS.join(", "))]
    UnknownKind {
        /// The name given.
        name: String,
    },
}

/// Checks that `x` is finite and positive.
pub(crate) fn positive(field: &'static str, value: f64) -> Result<(), ConfigError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(ConfigError::NotPositive { field, value })
    }
}

/// Checks that `x` is finite and non-negative.
pub(crate) fn non_negative(field: &'static str, value: f64) -> Result<(), ConfigError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(ConfigError::Negative { field, value })
    }
}

/// Checks that `x` (a decay rate or momentum) is in [0, 1).
pub(crate) fn decay(field: &'static str, value: f64) -> Result<(), ConfigError> {
    if (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::NotADecay { field, value })
    }
}

/// An optimizer and its hyper-parameters. In JSON or TOML the kind is the field `kind` and
/// the hyper-parameters sit beside it; any left out take their defaults, and unknown ones are
/// rejected: `{"kind": "adam", "lr": 0.001}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OptimizerConfig {
    /// Minibatch SGD (`sgd`).
    Sgd(SgdConfig),
    /// Momentum SGD, Keras form (`momentum`).
    Momentum(MomentumConfig),
    /// Adam, tf.keras form (`adam`).
    Adam(AdamConfig),
    /// Adagrad, tf.keras form (`adagrad`).
    Adagrad(AdagradConfig),
    /// RMSProp, tf.keras form (`rmsprop`).
    #[serde(rename = "rmsprop")]
    RmsProp(RmsPropConfig),
    /// Full-batch gradient descent (`gd`): the SGD update on one batch of all examples.
    Gd(GdConfig),
    /// Entropy-SGD (`entropy_sgd`).
    EntropySgd(EntropySgdConfig),
}

impl OptimizerConfig {
    /// The kind names, in the order of the variants.
    pub const KINDS: [&'static str; 7] = [
        "sgd",
        "momentum",
        "adam",
        "adagrad",
        "rmsprop",
        "gd",
        "entropy_sgd",
    ];

    /// The kind name (`sgd`, `momentum`, `adam`, `adagrad`, `rmsprop`, `gd`, `entropy_sgd`),
    /// as in serde and [`FromStr`].
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sgd(_) => "sgd",
            Self::Momentum(_) => "momentum",
            Self::Adam(_) => "adam",
            Self::Adagrad(_) => "adagrad",
            Self::RmsProp(_) => "rmsprop",
            Self::Gd(_) => "gd",
            Self::EntropySgd(_) => "entropy_sgd",
        }
    }

    /// Whether the training loop should use one batch of all examples (only `gd`).
    pub fn full_batch(&self) -> bool {
        matches!(self, Self::Gd(_))
    }

    /// The learning rate (for Entropy-SGD, the outer one).
    pub fn lr(&self) -> f64 {
        match self {
            Self::Sgd(c) => c.lr,
            Self::Momentum(c) => c.lr,
            Self::Adam(c) => c.lr,
            Self::Adagrad(c) => c.lr,
            Self::RmsProp(c) => c.lr,
            Self::Gd(c) => c.lr,
            Self::EntropySgd(c) => c.lr,
        }
    }

    /// The same optimizer with learning rate `lr` (for Entropy-SGD, the outer one), for a
    /// command line's `--lr`. It does not validate; call [`OptimizerConfig::validate`].
    pub fn with_lr(mut self, lr: f64) -> Self {
        match &mut self {
            Self::Sgd(c) => c.lr = lr,
            Self::Momentum(c) => c.lr = lr,
            Self::Adam(c) => c.lr = lr,
            Self::Adagrad(c) => c.lr = lr,
            Self::RmsProp(c) => c.lr = lr,
            Self::Gd(c) => c.lr = lr,
            Self::EntropySgd(c) => c.lr = lr,
        }
        self
    }

    /// The optimizer of a run seeded `run_seed`: Entropy-SGD's Langevin noise draws from the
    /// run's own stream ([`crate::derive_seed`]`(run_seed, 2)`) unless its seed was given
    /// (`noise_seed_given`); other optimizers draw nothing.
    pub fn for_run(mut self, run_seed: u64, noise_seed_given: bool) -> Self {
        if let Self::EntropySgd(c) = &mut self
            && !noise_seed_given
        {
            c.seed = crate::derive_seed(run_seed, 2);
        }
        self
    }

    /// Checks the hyper-parameters (learning rates positive and finite, decay rates and
    /// momenta in [0, 1), ε positive, L ≥ 1, …). The error names the bad field, as
    /// `adam.beta1 must be in [0, 1), got 1`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            Self::Sgd(c) => c.validate(),
            Self::Momentum(c) => c.validate(),
            Self::Adam(c) => c.validate(),
            Self::Adagrad(c) => c.validate(),
            Self::RmsProp(c) => c.validate(),
            Self::Gd(c) => c.validate(),
            Self::EntropySgd(c) => c.validate(),
        }
    }

    /// The optimizer, with its state allocated for `n_params` parameters.
    ///
    /// # Panics
    ///
    /// If [`OptimizerConfig::validate`] fails; callers validate user input first.
    pub fn build<T: Real>(&self, n_params: usize) -> Box<dyn Optimizer<T>> {
        if let Err(e) = self.validate() {
            panic!("invalid optimizer config: {e}");
        }
        match self {
            Self::Sgd(c) => Box::new(Sgd::new(c, n_params)),
            Self::Momentum(c) => Box::new(Momentum::new(c, n_params)),
            Self::Adam(c) => Box::new(Adam::new(c, n_params)),
            Self::Adagrad(c) => Box::new(Adagrad::new(c, n_params)),
            Self::RmsProp(c) => Box::new(RmsProp::new(c, n_params)),
            Self::Gd(c) => Box::new(Sgd::full_batch(c, n_params)),
            Self::EntropySgd(c) => Box::new(EntropySgd::new(c, n_params)),
        }
    }
}

/// Writes the kind name.
impl fmt::Display for OptimizerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses a kind name into that optimizer with its default hyper-parameters.
impl FromStr for OptimizerConfig {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        Ok(match s {
            "sgd" => Self::Sgd(SgdConfig::default()),
            "momentum" => Self::Momentum(MomentumConfig::default()),
            "adam" => Self::Adam(AdamConfig::default()),
            "adagrad" => Self::Adagrad(AdagradConfig::default()),
            "rmsprop" => Self::RmsProp(RmsPropConfig::default()),
            "gd" => Self::Gd(GdConfig::default()),
            "entropy_sgd" => Self::EntropySgd(EntropySgdConfig::default()),
            _ => return Err(ConfigError::UnknownKind { name: s.to_owned() }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind with its defaults.
    fn all_defaults() -> Vec<OptimizerConfig> {
        OptimizerConfig::KINDS
            .iter()
            .map(|k| k.parse().unwrap())
            .collect()
    }

    #[test]
    fn from_str_and_display_round_trip_every_kind() {
        for (cfg, kind) in all_defaults().iter().zip(OptimizerConfig::KINDS) {
            assert_eq!(cfg.name(), kind);
            assert_eq!(cfg.to_string(), kind);
            assert_eq!(cfg.full_batch(), kind == "gd");
            cfg.validate().unwrap();
        }
        let err = "adamw".parse::<OptimizerConfig>().unwrap_err().to_string();
        assert!(
            err.contains("adamw") && err.contains("entropy_sgd"),
            "{err}"
        );
    }

    #[test]
    fn serde_json_round_trip_and_the_kind_tag() {
        for cfg in all_defaults() {
            let json = serde_json::to_string(&cfg).unwrap();
            assert!(
                json.starts_with(&format!(r#"{{"kind":"{}""#, cfg.name())),
                "{json}"
            );
            let back: OptimizerConfig = serde_json::from_str(&json).unwrap();
            assert_eq!(back, cfg);
        }
        let cfg = OptimizerConfig::EntropySgd(EntropySgdConfig {
            seed: u64::MAX,
            ..Default::default()
        });
        let back: OptimizerConfig =
            serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(back, cfg);
    }

    #[test]
    fn missing_fields_take_defaults() {
        let cfg: OptimizerConfig = serde_json::from_str(r#"{"kind": "adam", "lr": 0.01}"#).unwrap();
        assert_eq!(
            cfg,
            OptimizerConfig::Adam(AdamConfig {
                lr: 0.01,
                ..Default::default()
            })
        );
        let cfg: OptimizerConfig = serde_json::from_str(r#"{"kind": "gd"}"#).unwrap();
        assert_eq!(cfg, OptimizerConfig::Gd(GdConfig::default()));
        let json = r#"{"kind": "entropy_sgd", "lr": 1, "langevin_steps": 5}"#;
        let cfg: OptimizerConfig = serde_json::from_str(json).unwrap();
        let want = EntropySgdConfig {
            lr: 1.0,
            langevin_steps: 5,
            ..Default::default()
        };
        assert_eq!(cfg, OptimizerConfig::EntropySgd(want));
    }

    #[test]
    fn unknown_fields_and_kinds_are_rejected() {
        for json in [
            r#"{"kind": "adam", "lr": 0.01, "beta3": 0.5}"#,
            r#"{"kind": "sgd", "momentum": 0.9}"#,
            r#"{"kind": "entropy_sgd", "L": 20}"#,
            r#"{"kind": "adamw"}"#,
            r#"{"lr": 0.01}"#,
        ] {
            assert!(
                serde_json::from_str::<OptimizerConfig>(json).is_err(),
                "accepted {json}"
            );
        }
    }

    #[test]
    fn with_lr_sets_the_learning_rate_of_every_kind() {
        for cfg in all_defaults() {
            let kind = cfg.name();
            let cfg = cfg.with_lr(0.125);
            assert_eq!((cfg.lr(), cfg.name()), (0.125, kind));
        }
    }

    /// Each bad value is caught, and the message names the field.
    #[test]
    fn validate_names_the_bad_field() {
        let nan = f64::NAN;
        let cases = [
            (OptimizerConfig::Sgd(SgdConfig { lr: 0.0 }), "sgd.lr"),
            (OptimizerConfig::Gd(GdConfig { lr: f64::INFINITY }), "gd.lr"),
            (
                OptimizerConfig::Sgd(SgdConfig::default()).with_lr(-1.0),
                "sgd.lr",
            ),
            (
                OptimizerConfig::Momentum(MomentumConfig {
                    momentum: 1.0,
                    ..Default::default()
                }),
                "momentum.momentum",
            ),
            (
                OptimizerConfig::Adam(AdamConfig {
                    beta1: 1.0,
                    ..Default::default()
                }),
                "adam.beta1",
            ),
            (
                OptimizerConfig::Adam(AdamConfig {
                    beta2: -0.1,
                    ..Default::default()
                }),
                "adam.beta2",
            ),
            (
                OptimizerConfig::Adam(AdamConfig {
                    epsilon: 0.0,
                    ..Default::default()
                }),
                "adam.epsilon",
            ),
            (
                OptimizerConfig::Adagrad(AdagradConfig {
                    initial_accumulator: -1.0,
                    ..Default::default()
                }),
                "adagrad.initial_accumulator",
            ),
            (
                OptimizerConfig::Adagrad(AdagradConfig {
                    epsilon: nan,
                    ..Default::default()
                }),
                "adagrad.epsilon",
            ),
            (
                OptimizerConfig::RmsProp(RmsPropConfig {
                    rho: nan,
                    ..Default::default()
                }),
                "rmsprop.rho",
            ),
            (
                OptimizerConfig::RmsProp(RmsPropConfig {
                    lr: nan,
                    ..Default::default()
                }),
                "rmsprop.lr",
            ),
            (esgd(|c| c.langevin_steps = 0), "entropy_sgd.langevin_steps"),
            (esgd(|c| c.langevin_lr = 0.0), "entropy_sgd.langevin_lr"),
            (esgd(|c| c.noise = -1e-4), "entropy_sgd.noise"),
            (esgd(|c| c.gamma0 = f64::INFINITY), "entropy_sgd.gamma0"),
            (esgd(|c| c.gamma1 = -0.5), "entropy_sgd.gamma1"),
            (esgd(|c| c.alpha = 1.0), "entropy_sgd.alpha"),
            (esgd(|c| c.momentum = 1.5), "entropy_sgd.momentum"),
            (
                esgd(|c| c.langevin_momentum = -0.1),
                "entropy_sgd.langevin_momentum",
            ),
        ];
        for (cfg, field) in cases {
            let err = cfg.validate().unwrap_err().to_string();
            assert!(err.starts_with(&format!("{field} ")), "{field}: {err}");
        }
    }

    /// Entropy-SGD's defaults with one change.
    fn esgd(change: impl FnOnce(&mut EntropySgdConfig)) -> OptimizerConfig {
        let mut c = EntropySgdConfig::default();
        change(&mut c);
        OptimizerConfig::EntropySgd(c)
    }

    #[test]
    fn build_gives_the_named_optimizer() {
        for cfg in all_defaults() {
            let want = cfg.name();
            assert_eq!(cfg.build::<f64>(10).name(), want);
            assert_eq!(cfg.build::<f32>(10).name(), want);
        }
    }

    #[test]
    #[should_panic(expected = "adam.lr")]
    fn build_rejects_an_invalid_config() {
        let _ = OptimizerConfig::Adam(AdamConfig::default())
            .with_lr(0.0)
            .build::<f64>(3);
    }
}
