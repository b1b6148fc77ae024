//! `basin-lab` owns basin's experiments: the TOML experiment specs, the runners that expand a
//! spec into runs, the result store (`results.jsonl`, appended with flush and fsync), the
//! statistics (Pearson, Spearman, Kendall τ), the plots and the Markdown reports (see
//! `ARCHITECTURE.md`). The statistics and the store are in place; the specs, runners, plots
//! and reports come with the attack-set experiment.

pub mod plot;
pub mod stats;
pub mod store;
