//! `basin-lab` owns basin's experiments: the TOML experiment specs, the experiment kinds, the
//! executor that runs their jobs into the result store (`results.jsonl`, appended with flush
//! and fsync), the measurement stages, the statistics (Pearson, Spearman, Kendall τ), the
//! plots and the Markdown reports (see `ARCHITECTURE.md`).
//!
//! Dependencies point downward:
//! - [`kinds`]: the attack-set, temporal, Boolean and EP-accuracy experiments, and the one
//!   function that picks a spec's kind ([`kinds::experiment`]);
//! - [`experiment`]: the [`experiment::Experiment`] trait the kinds implement;
//! - [`merge`]: the folders `basin report` merges, checked to hold one experiment;
//! - [`reproduce`]: a spec run into its folder and reported, as `basin reproduce` does it;
//! - [`slurm`]: an experiment's or a kernel's shards as a Slurm job array with a merge job
//!   (`basin submit`); [`status`]: where a sharded run stands (`basin status`);
//! - [`exec`]: the locked output folder, jobs, pool, store, records, shards and resume, for
//!   any kind; [`train`] and
//!   [`measure`]: training a network and measuring it; [`report`]: the parts every report
//!   shares;
//! - [`prepare`], [`prior_kernel`], [`net`], [`spec`], [`record`], [`plot`], [`stats`],
//!   [`error`]: the data, the kernel on S ∪ T (analytic, or empirical and cached), the network
//!   of either family (a fully-connected net or a ResNet) and its objectives, the spec
//!   format, the record format and the tools below them.

pub mod error;
pub mod exec;
pub mod experiment;
pub mod kinds;
pub mod measure;
pub mod merge;
pub mod net;
pub mod plot;
pub mod prepare;
pub mod prior_kernel;
pub mod record;
pub mod report;
pub mod reproduce;
pub mod slurm;
pub mod spec;
pub mod stats;
pub mod status;
pub mod train;

/// The examples of the crate's README.md, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
