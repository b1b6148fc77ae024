//! `basin-lab` owns basin's experiments: the TOML experiment specs, the runners that expand a
//! spec into runs, the result store (`results.jsonl`, appended with flush and fsync), the
//! statistics (Pearson, Spearman, Kendall τ), the plots and the Markdown reports (see
//! `ARCHITECTURE.md`). The attack-set experiment and its variants (optimizers compared,
//! overtraining checkpoints) run in `runner`, the temporal experiment in `temporal`, the Boolean system's in `boolean`,
//! the EP-accuracy study in `ep_accuracy`.

pub mod boolean;
pub mod ep_accuracy;
pub mod plot;
pub mod record;
pub mod report;
pub mod runner;
pub mod spec;
pub mod stats;
pub mod store;
pub mod temporal;

/// The examples of the crate's README.md, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
