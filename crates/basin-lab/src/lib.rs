//! `basin-lab` owns basin's experiments: the TOML experiment specs, the runners that expand a
//! spec into runs, the result store (`results.jsonl`, appended with flush and fsync), the
//! statistics (Pearson, Spearman, Kendall τ), the plots and the Markdown reports. It is empty
//! until the attack-set experiment lands (see `ARCHITECTURE.md`).
