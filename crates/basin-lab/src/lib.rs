//! `basin-lab` owns basin's experiments: the TOML experiment specs, the runners that expand a
//! spec into runs, the result store (`results.jsonl`, appended with flush and fsync), the
//! statistics (Pearson, Spearman, Kendall τ), the plots and the Markdown reports (see
//! `ARCHITECTURE.md`). The specs, statistics, store and plots are in place; the runner and
//! the reports come with the attack-set experiment.

pub mod plot;
pub mod spec;
pub mod stats;
pub mod store;
