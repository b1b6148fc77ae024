//! The temporal and α-scaling experiment (the paper's figure 5, appendices F and H): one
//! network trained to zero error on S and overtrained, with its training loss, errors, Keskar
//! sharpness and log P(f) recorded every few epochs, and α-scaled once during overtraining.
//!
//! The prior is cheap per point: the function on S ∪ T is compared with the previous point's,
//! and its log P(f) is reused when it has not changed; when it has, EP starts from the
//! previous point's sites.
//!
//! Outputs: `trajectories.csv` (every point of every run), `summary.json`
//! (per run: the zero-error epoch, the scaling and what it did), `fig5.png`/`fig5.svg` (per α,
//! log10 sharpness, log10 P(f) and the training loss against epoch, with the zero-error and
//! scaling epochs marked) and `report.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use basin_nn::train::run_epoch;
use basin_nn::{FcnObjective, Kernels, Objective, TrainStatus, all_examples, derive_seed};
use basin_prior::ep::{EpConfig, EpSchedule, Sites, ep_to_fixed_point};
use basin_prior::likelihood::Likelihood;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::LabError;
use crate::exec::jobs::Job;
use crate::experiment::Experiment;
use crate::measure::{errors_of, function_hash, predicted_function, sharpness_of};
use crate::net::NetState;
use crate::plot::{ScatterPlot, Series};
use crate::prepare::Prepared;
use crate::record::{RunRecord, TrajectoryPoint};
use crate::report::{ReportError, Summary, heading, spec_section, write_figure, write_markdown};
use crate::spec::{ExperimentSpec, Kind, RunKey, TemporalSpec};
use basin_nn::Precision;

/// The temporal experiment of a spec with a `[temporal]` table.
#[derive(Debug, Clone, Copy)]
pub struct Temporal<'a> {
    spec: &'a ExperimentSpec,
    t: &'a TemporalSpec,
}

impl<'a> Temporal<'a> {
    /// The experiment of `spec`, whose `[temporal]` table is `t`.
    pub fn new(spec: &'a ExperimentSpec, t: &'a TemporalSpec) -> Self {
        Self { spec, t }
    }
}

/// The temporal section of `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemporalSection {
    /// Per temporal run, what its trajectory shows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub temporal: Vec<TrajectorySummary>,
}

impl Experiment for Temporal<'_> {
    type Data = Prepared;
    type Section = TemporalSection;

    fn spec(&self) -> &ExperimentSpec {
        self.spec
    }

    /// A fifth of the overtraining and of the epochs before the scaling (different runs from
    /// the full one's).
    fn quick(&self) -> ExperimentSpec {
        let mut spec = self.spec.quick_sizes();
        spec.kind = Kind::Temporal(TemporalSpec {
            overtrain_epochs: self.t.overtrain_epochs / 5,
            scale_after: self.t.scale_after / 5,
            ..self.t.clone()
        });
        spec
    }

    fn prepare(&self, _out: &Path, _threads: usize) -> Result<Prepared, LabError> {
        Prepared::new(self.spec)
    }

    fn jobs(&self, _data: &Prepared) -> Vec<Job> {
        Job::group(run_keys(self.spec, self.t))
    }

    fn planned_jobs(&self) -> Option<Vec<Job>> {
        Some(Job::group(run_keys(self.spec, self.t)))
    }

    fn compute(&self, data: &Prepared, job: &Job) -> Result<Vec<RunRecord>, LabError> {
        match data.spec.training.precision {
            Precision::F32 => run_temporal::<f32>(data, self.t, job.first()),
            Precision::F64 => run_temporal::<f64>(data, self.t, job.first()),
        }
        .map(|r| vec![r])
    }

    fn summarise(&self, records: &[RunRecord]) -> Summary<TemporalSection> {
        let summaries = trajectories(records)
            .into_iter()
            .map(summarize_run)
            .collect();
        Summary::of_section(
            records.len(),
            crate::report::converged(records).count(),
            TemporalSection {
                temporal: summaries,
            },
        )
    }

    /// Writes `trajectories.csv`, `fig5.png`/`.svg` and `report.md`.
    fn write_report(
        &self,
        dir: &Path,
        records: &[RunRecord],
        summary: &Summary<TemporalSection>,
    ) -> Result<(), ReportError> {
        let runs = trajectories(records);
        basin_data::io::write_atomic(&dir.join("trajectories.csv"), csv(&runs).as_bytes())?;
        let panels = fig5_panels(&runs);
        let cols = panels.len() / 3;
        if cols > 0 {
            write_figure(dir, "fig5", &panels, 3, (700 * cols as u32, 1500))?;
        }
        write_markdown(
            dir,
            &markdown(self.spec, &summary.section.temporal, cols > 0),
        )
    }

    fn highlights(&self, summary: &Summary<TemporalSection>) -> Vec<String> {
        summary.section.temporal.iter().map(highlight).collect()
    }
}

/// The runs of a temporal experiment: one per α and replicate, with ids
/// `<name>-<hash>-x<α>-r<replicate>`; the replicates' seeds do not depend on α.
pub fn run_keys(spec: &ExperimentSpec, t: &TemporalSpec) -> Vec<RunKey> {
    let opt = &spec.training.optimizer_list()[0];
    let hash = spec.settings_hash(opt, t.overtrain_epochs);
    let mut runs = Vec::new();
    for &alpha in &t.alphas {
        for r in 0..spec.data.networks_per_size {
            runs.push(RunKey {
                id: format!("{}-{hash}-x{alpha}-r{r}", spec.name),
                variant: format!("α = {}", short(alpha)),
                optimizer: opt.clone(),
                overtrain_epochs: t.overtrain_epochs,
                alpha: Some(alpha),
                attack_size: 0,
                replicate: r,
                seed: basin_nn::derive_seed(basin_nn::derive_seed(spec.seed, 0), r as u64 + 1),
            });
        }
    }
    runs
}

/// A number with at most four significant digits, for labels (`0.1694915…` → `0.1695`).
fn short(x: f64) -> String {
    let digits = (3 - x.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{x:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// The records with a trajectory, in order of variant and replicate.
fn trajectories(records: &[RunRecord]) -> Vec<&RunRecord> {
    let mut runs: Vec<&RunRecord> = records
        .iter()
        .filter(|r| !r.trajectory.is_empty())
        .collect();
    runs.sort_by(|a, b| (&a.variant, a.replicate).cmp(&(&b.variant, b.replicate)));
    runs
}

/// One run's line: its zero-error epoch and what the scaling did.
fn highlight(t: &TrajectorySummary) -> String {
    let zero = t.zero_error_epoch.map_or("never".into(), |e| e.to_string());
    let scaling = match (t.scaled_at_epoch, t.sharpness_around_scaling) {
        (Some(e), Some((a, b))) => format!(
            "; scaled at epoch {e}: sharpness {a:.3} → {b:.3}, left zero error: {}",
            t.left_zero_error.unwrap_or(false)
        ),
        _ => String::new(),
    };
    format!(
        "  {} #{}: zero error at epoch {zero}{scaling}",
        t.variant, t.replicate
    )
}

/// The measuring state carried along a trajectory: the previous function and its prior.
struct PriorCache {
    hash: Option<String>,
    log_p: Option<f64>,
    sites: Option<Sites>,
}

/// Trains one temporal run (the key's α) and records its trajectory.
fn run_temporal<T: Kernels>(
    prep: &Prepared,
    t: &TemporalSpec,
    key: &RunKey,
) -> Result<RunRecord, LabError> {
    let alpha = key.alpha.unwrap_or(1.0);
    let start = Instant::now();
    let train = &prep.split.train;
    let fcn = prep.net.fcn_spec().ok_or_else(|| {
        prep.setup_err(format!(
            "a temporal experiment α-scales a hidden layer of a fully-connected net, not {}",
            prep.net.describe()
        ))
    })?;
    let mut obj = FcnObjective::<T>::from_dataset(fcn, train).map_err(|e| prep.setup_err(e))?;
    let mut opt = key.optimizer.build::<T>(fcn.n_params());
    let mut theta: Vec<T> = fcn.init(derive_seed(key.seed, 0));
    let mut order: Vec<usize> = (0..train.len()).collect();
    let all = all_examples(train.len());
    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(key.seed, 1));
    let mut grad = vec![T::ZERO; theta.len()];
    let batch = if key.optimizer.full_batch() {
        train.len()
    } else {
        prep.spec.training.batch_size
    };
    let mut cache = PriorCache {
        hash: None,
        log_p: None,
        sites: None,
    };
    let mut points = vec![measure_point(prep, &mut obj, &theta, 0, &mut cache)?];
    let mut converged_at = None;
    let mut scaled_at = None;
    let mut status = TrainStatus::NotConverged;
    let mut epoch = 0;
    while epoch < end_epoch(t, prep.spec.training.max_epochs, converged_at) {
        if prep.spec.training.order == basin_nn::BatchOrder::Shuffled {
            order.shuffle(&mut rng);
        }
        let loss = run_epoch(&mut obj, opt.as_mut(), &mut theta, &order, batch, &mut grad);
        epoch += 1;
        if !loss.is_finite() || theta.iter().any(|v| !v.is_finite()) {
            status = TrainStatus::Diverged;
            break;
        }
        let mut due = epoch % t.every == 0;
        if converged_at.is_none() && obj.count_errors(&theta, &all) == 0 {
            converged_at = Some(epoch);
            status = TrainStatus::Converged;
            due = true;
        }
        if converged_at.is_some_and(|c| epoch == c + t.scale_after) && alpha != 1.0 {
            points.push(measure_point(prep, &mut obj, &theta, epoch, &mut cache)?);
            basin_nn::alpha_scale(fcn, &mut theta, t.layer, alpha)
                .map_err(|e| prep.setup_err(e))?;
            scaled_at = Some(epoch);
            due = true;
        }
        if due {
            points.push(measure_point(prep, &mut obj, &theta, epoch, &mut cache)?);
        }
    }
    if points.last().is_some_and(|p| p.epoch != epoch) {
        points.push(measure_point(prep, &mut obj, &theta, epoch, &mut cache)?);
    }
    let errors = errors_of(prep, &theta, &NetState::none(), 0)?;
    let function = predicted_function(prep, &theta, &NetState::none())?;
    let last = points.last().expect("at least the initial point");
    let mut measures = BTreeMap::from([
        ("alpha".to_owned(), Some(alpha)),
        ("sharpness".to_owned(), last.sharpness),
        ("log_prior_probit".to_owned(), last.log_prior_probit),
    ]);
    measures.insert("scaled_at_epoch".into(), scaled_at.map(|e| e as f64));
    Ok(RunRecord {
        id: key.id.clone(),
        experiment: prep.spec.name.clone(),
        variant: key.variant.clone(),
        optimizer: key.optimizer.name().to_owned(),
        overtrain_epochs: t.overtrain_epochs,
        attack_size: 0,
        replicate: key.replicate,
        seed: key.seed,
        status,
        epochs: converged_at.unwrap_or(epoch),
        train_error: errors.train,
        attack_error: errors.attack,
        test_error: errors.test,
        function_hash: function_hash(&function),
        measures,
        notes: BTreeMap::new(),
        stage_s: BTreeMap::from([("temporal".to_owned(), start.elapsed().as_secs_f64())]),
        trajectory: points,
    })
}

/// The epoch at which the loop stops: `max_epochs` before zero error, then the zero-error
/// epoch plus the overtraining.
fn end_epoch(t: &TemporalSpec, max_epochs: usize, converged_at: Option<usize>) -> usize {
    converged_at.map_or(max_epochs, |c| c + t.overtrain_epochs)
}

/// The loss and errors, the sharpness and the prior at one epoch.
fn measure_point<T: Kernels>(
    prep: &Prepared,
    obj: &mut FcnObjective<T>,
    theta: &[T],
    epoch: usize,
    cache: &mut PriorCache,
) -> Result<TrajectoryPoint, LabError> {
    let n = prep.split.train.len();
    let train_loss = obj.loss(theta, &all_examples(n)).to_f64();
    let state = NetState::none();
    let errors = errors_of(prep, theta, &state, 0)?;
    let sharpness = match &prep.spec.measures.sharpness {
        Some(s) => sharpness_of(prep, theta, &state, s)?.ok(),
        None => None,
    };
    let function = predicted_function(prep, theta, &state)?;
    let hash = function_hash(&function);
    let changed = cache.hash.as_ref() != Some(&hash);
    if changed {
        (cache.log_p, cache.sites) = prior_of(prep, &function, cache.sites.as_ref());
        cache.hash = Some(hash);
    }
    Ok(TrajectoryPoint {
        epoch,
        train_loss,
        train_error: errors.train,
        test_error: errors.test,
        sharpness,
        log_prior_probit: cache.log_p,
        function_changed: changed,
    })
}

/// Probit EP on the prepared kernel from `warm` sites; `None` without a prior section or when
/// EP fails (the next changed function starts cold).
fn prior_of(
    prep: &Prepared,
    function: &[u8],
    warm: Option<&Sites>,
) -> (Option<f64>, Option<Sites>) {
    let Some(kernel) = &prep.kernel else {
        return (None, None);
    };
    let labels: Vec<f64> = function
        .iter()
        .map(|&b| if b == 1 { 1.0 } else { -1.0 })
        .collect();
    let cfg = EpConfig {
        schedule: EpSchedule::Parallel,
        check_psd: false,
        ..EpConfig::default()
    };
    match ep_to_fixed_point(kernel.as_ref(), &labels, Likelihood::Probit, &cfg, warm) {
        Ok((r, _)) => (Some(r.estimate.log_p), Some(r.sites)),
        Err(_) => (None, None),
    }
}

/// What one temporal run did, for `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrajectorySummary {
    /// The run's variant (its α).
    pub variant: String,
    /// The replicate.
    pub replicate: usize,
    /// The epoch of zero training error (null if never reached).
    pub zero_error_epoch: Option<usize>,
    /// The epoch of the α-scaling (null for α = 1 or a run that stopped before).
    pub scaled_at_epoch: Option<usize>,
    /// The sharpness just before and right after the scaling.
    pub sharpness_around_scaling: Option<(f64, f64)>,
    /// Whether the scaling knocked the network off zero training error.
    pub left_zero_error: Option<bool>,
    /// The largest change of log P(f) (nats) between the point before the scaling and any
    /// later point.
    pub max_log_prior_change_after_scaling: Option<f64>,
    /// Sharpness at the zero-error epoch and at the end.
    pub sharpness_at_zero_error_and_end: Option<(f64, f64)>,
    /// The function changed at some point after zero error (before any scaling).
    pub function_changed_while_overtraining: bool,
}

fn summarize_run(r: &RunRecord) -> TrajectorySummary {
    let zero = (r.status == TrainStatus::Converged).then_some(r.epochs);
    let scaled = r.measure("scaled_at_epoch").map(|e| e as usize);
    let pts = &r.trajectory;
    let at = |e: usize| pts.iter().position(|p| p.epoch == e);
    let mut out = TrajectorySummary {
        variant: r.variant.clone(),
        replicate: r.replicate,
        zero_error_epoch: zero,
        scaled_at_epoch: scaled,
        sharpness_around_scaling: None,
        left_zero_error: None,
        max_log_prior_change_after_scaling: None,
        sharpness_at_zero_error_and_end: None,
        function_changed_while_overtraining: false,
    };
    if let Some(z) = zero.and_then(at) {
        let end = scaled.and_then(at).unwrap_or(pts.len());
        out.function_changed_while_overtraining =
            pts[z + 1..end].iter().any(|p| p.function_changed);
        if let (Some(a), Some(b)) = (pts[z].sharpness, pts.last().and_then(|p| p.sharpness)) {
            out.sharpness_at_zero_error_and_end = Some((a, b));
        }
    }
    // The scaling epoch has two points, before and after the scaling.
    if let Some(b) = scaled.and_then(at).filter(|&b| b + 1 < pts.len()) {
        let (before, s) = (&pts[b], b + 1);
        if let (Some(a), Some(b)) = (before.sharpness, pts[s].sharpness) {
            out.sharpness_around_scaling = Some((a, b));
        }
        out.left_zero_error = Some(pts[s + 1..].iter().any(|p| p.train_error > 0.0));
        out.max_log_prior_change_after_scaling = before.log_prior_probit.map(|b| {
            pts[s..]
                .iter()
                .filter_map(|p| p.log_prior_probit)
                .map(|l| l - b)
                .fold(0.0, |m: f64, d| if d.abs() > m.abs() { d } else { m })
        });
    }
    out
}

fn opt_cell(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| format!("{v}"))
}

fn csv(runs: &[&RunRecord]) -> String {
    let mut out = String::from(
        "variant,replicate,epoch,train_loss,train_error,test_error,sharpness,\
         log_prior_probit,function_changed\n",
    );
    for r in runs {
        for p in &r.trajectory {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{}",
                r.variant,
                r.replicate,
                p.epoch,
                p.train_loss,
                p.train_error,
                opt_cell(p.test_error),
                opt_cell(p.sharpness),
                opt_cell(p.log_prior_probit),
                p.function_changed
            );
        }
    }
    out
}

/// Three rows of panels (log10 sharpness, log10 P(f), log10 training loss against epoch), one
/// column per variant, one line per replicate; the zero-error and scaling epochs of the first
/// replicate marked.
fn fig5_panels(runs: &[&RunRecord]) -> Vec<ScatterPlot> {
    let mut by_variant: BTreeMap<&str, Vec<&RunRecord>> = BTreeMap::new();
    for r in runs {
        by_variant.entry(r.variant.as_str()).or_default().push(r);
    }
    type Getter = fn(&TrajectoryPoint) -> Option<f64>;
    let rows: [(&str, Getter); 3] = [
        ("log10 Keskar sharpness", |p| p.sharpness.map(f64::log10)),
        ("log10 P(f), probit", |p| {
            p.log_prior_probit.map(|l| l / std::f64::consts::LN_10)
        }),
        ("log10 training loss", |p| Some(p.train_loss.log10())),
    ];
    let mut grid = vec![Vec::new(); 3];
    for (variant, rs) in &by_variant {
        let marks = marks_of(rs[0]);
        for (row, (label, get)) in rows.iter().enumerate() {
            let series = rs
                .iter()
                .map(|r| Series {
                    label: format!("network {}", r.replicate),
                    points: r
                        .trajectory
                        .iter()
                        .filter_map(|p| get(p).map(|y| (p.epoch as f64, y)))
                        .collect(),
                })
                .collect();
            grid[row].push(ScatterPlot {
                title: format!("{label}, {variant}"),
                x_label: "epoch".into(),
                y_label: (*label).into(),
                series,
                lines: true,
                marks: marks.clone(),
                ..ScatterPlot::default()
            });
        }
    }
    let complete = grid
        .iter()
        .flatten()
        .all(|p| p.series.iter().any(|s| !s.points.is_empty()));
    if complete {
        grid.into_iter().flatten().collect()
    } else {
        Vec::new()
    }
}

fn marks_of(r: &RunRecord) -> Vec<(f64, String)> {
    let mut marks = Vec::new();
    if r.status == TrainStatus::Converged {
        marks.push((r.epochs as f64, "zero training error".to_owned()));
    }
    if let Some(s) = r.measure("scaled_at_epoch") {
        marks.push((s, "α-scaling".to_owned()));
    }
    marks
}

fn fmt_pair(p: Option<(f64, f64)>) -> String {
    p.map_or("–".into(), |(a, b)| format!("{a:.4} → {b:.4}"))
}

fn markdown(spec: &ExperimentSpec, summaries: &[TrajectorySummary], figure: bool) -> String {
    let mut md = heading(Some(spec), "temporal experiment");
    md.push_str("| run | zero error at | scaled at | sharpness at zero error → end | ");
    md.push_str("sharpness before → after scaling | left zero error | ");
    md.push_str("largest log P(f) change after scaling (nats) | function changed while ");
    md.push_str("overtraining |\n|---|---|---|---|---|---|---|---|\n");
    for s in summaries {
        let _ = writeln!(
            md,
            "| {} #{} | {} | {} | {} | {} | {} | {} | {} |",
            s.variant,
            s.replicate,
            s.zero_error_epoch.map_or("never".into(), |e| e.to_string()),
            s.scaled_at_epoch.map_or("–".into(), |e| e.to_string()),
            fmt_pair(s.sharpness_at_zero_error_and_end),
            fmt_pair(s.sharpness_around_scaling),
            s.left_zero_error.map_or("–".into(), |b| b.to_string()),
            s.max_log_prior_change_after_scaling
                .map_or("–".into(), |d| format!("{d:+.2}")),
            s.function_changed_while_overtraining
        );
    }
    if figure {
        md.push_str("\n![sharpness, log P(f) and loss against epoch](fig5.png)\n");
    }
    md.push_str("\nEvery point is in `trajectories.csv`.\n");
    md.push_str(&spec_section(Some(spec)));
    md
}
