//! The experiment kinds, one file each, and the one place that picks a spec's kind
//! ([`experiment`]).
//!
//! - [`attack_set`]: networks trained with attack sets of flipped labels (figures 3 and 4),
//!   the kind of a spec without a kind table;
//! - [`temporal`]: measures along training and α-scaling (figure 5), `[temporal]`;
//! - [`boolean`]: the sampled prior of the Boolean system (figure 2), `[boolean]`;
//! - [`ep_accuracy`]: EP against references with error bars, `[ep_accuracy]`.

pub mod attack_set;
pub mod boolean;
pub mod ep_accuracy;
pub mod temporal;

use std::path::Path;

use crate::experiment::{Report, Run};
use crate::record::RunRecord;
use crate::report::ReportError;
use crate::spec::{ExperimentSpec, Kind};

/// The experiment of `spec`, of its kind.
pub fn experiment(spec: &ExperimentSpec) -> Box<dyn Run + '_> {
    match &spec.kind {
        Kind::AttackSet => Box::new(attack_set::AttackSet::new(spec)),
        Kind::Temporal(t) => Box::new(temporal::Temporal::new(spec, t)),
        Kind::Boolean(b) => Box::new(boolean::Boolean::new(spec, b)),
        Kind::EpAccuracy(e) => Box::new(ep_accuracy::EpAccuracy::new(spec, e)),
    }
}

/// Writes the outputs of `records` into `dir`: as their spec's kind, or without a spec as
/// an attack-set experiment's.
pub fn report(
    spec: Option<&ExperimentSpec>,
    dir: &Path,
    records: &[RunRecord],
) -> Result<Report, ReportError> {
    match spec {
        Some(spec) => experiment(spec).report(dir, records),
        None => attack_set::report_without_spec(dir, records),
    }
}
