//! `basin-lab` owns basin's experiments: the TOML experiment specs, the runners that expand a
//! spec into runs, the result store (`results.jsonl`, appended with flush and fsync), the
//! statistics (Pearson, Spearman, Kendall τ), the plots and the Markdown reports (see
//! `ARCHITECTURE.md`). The specs, records, statistics, store, plots and reports are in place;
//! the runner comes with the attack-set experiment.

pub mod plot;
pub mod record;
pub mod report;
pub mod runner;
pub mod spec;
pub mod stats;
pub mod store;
