//! The EP-accuracy study (`ep-accuracy`): EP's error on log P(f) against minimax tilting,
//! which gives log P(f) with a standard error, as a function of the number of points N and of
//! the function's error.
//!
//! The points are the first N of S then T of the spec's split, with the NNGP kernel of the
//! spec's network. A function is the true labels with a seeded random fraction φ of them
//! flipped (its error against the truth is φ). For each (N, φ, replicate) and likelihood,
//! [`basin_prior::ep_accuracy::ep_vs_tilting`] gives EP's log Z, tilting's log P̂ ± s.e., and
//! EP's bias log Z_EP − log P̂, with a flag for whether tilting's error bar can be trusted.
//!
//! A record per (N, φ, replicate): `variant` = `N = <n>`, `test_error` = the flipped fraction,
//! and per likelihood `<lik>` the measures `ep_<lik>`, `tilting_<lik>`,
//! `tilting_<lik>_std_err`, `bias_<lik>`, `bias_<lik>_z`, `ess_<lik>` and `reliable_<lik>`
//! (1 or 0), with tilting's issues as the note `<lik>`. With `[ep_accuracy.smc]`, on the cells of
//! `smc_sizes` × `smc_flip_fractions`, annealed SMC is a second reference for the step
//! likelihood: `smc_step`, `smc_step_std_err`, `bias_smc_step`, `bias_smc_step_z`,
//! `reliable_smc_step`, note `smc_step`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use basin_nn::derive_seed;
use basin_prior::ep::{EpConfig, EpSchedule};
use basin_prior::ep_accuracy::{ComparisonConfig, ep_vs_smc, ep_vs_tilting};
use basin_prior::estimate::issues_note;
use basin_prior::likelihood::Likelihood;
use basin_prior::tilting::TiltingConfig;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::LabError;
use crate::exec::jobs::Job;
use crate::experiment::Experiment;
use crate::measure::function_hash;
use crate::plot::{ScatterPlot, Series};
use crate::prepare::Prepared;
use crate::record::RunRecord;
use crate::report::{ReportError, Summary, heading, spec_section, write_figure, write_markdown};
use crate::spec::{EpAccuracySpec, ExperimentSpec, Kind, RunKey};

/// The EP-accuracy study of a spec with an `[ep_accuracy]` table.
#[derive(Debug, Clone, Copy)]
pub struct EpAccuracy<'a> {
    spec: &'a ExperimentSpec,
    e: &'a EpAccuracySpec,
}

impl<'a> EpAccuracy<'a> {
    /// The study of `spec`, whose `[ep_accuracy]` table is `e`.
    pub fn new(spec: &'a ExperimentSpec, e: &'a EpAccuracySpec) -> Self {
        Self { spec, e }
    }
}

/// The EP-accuracy section of `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpAccuracySection {
    /// EP's bias per cell.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ep_accuracy: Vec<BiasRow>,
}

/// The prepared data and each run's cell, by run id.
pub struct Cells {
    prep: Prepared,
    cells: BTreeMap<String, Cell>,
}

impl Experiment for EpAccuracy<'_> {
    type Data = Cells;
    type Section = EpAccuracySection;

    fn spec(&self) -> &ExperimentSpec {
        self.spec
    }

    fn quick(&self) -> ExperimentSpec {
        let mut spec = self.spec.quick_sizes();
        spec.kind = Kind::EpAccuracy(self.e.clone());
        spec
    }

    fn prepare(&self, _out: &Path, _threads: usize) -> Result<Cells, LabError> {
        let cells = keys(self.spec, self.e)
            .into_iter()
            .map(|(k, c)| (k.id.clone(), c))
            .collect();
        Ok(Cells {
            prep: Prepared::new(self.spec)?,
            cells,
        })
    }

    fn jobs(&self, _data: &Cells) -> Vec<Job> {
        Job::group(
            keys(self.spec, self.e)
                .into_iter()
                .map(|(k, _)| k)
                .collect(),
        )
    }

    fn compute(&self, data: &Cells, job: &Job) -> Result<Vec<RunRecord>, LabError> {
        let key = job.first();
        compare(&data.prep, self.e, key, data.cells[&key.id]).map(|r| vec![r])
    }

    fn summarise(&self, records: &[RunRecord]) -> Summary<EpAccuracySection> {
        Summary::of_section(
            records.len(),
            records.len(),
            EpAccuracySection {
                ep_accuracy: bias_rows(records),
            },
        )
    }

    /// Writes `bias.png`/`.svg` (EP's bias against the flipped fraction, one line per N, per
    /// likelihood) and `report.md`.
    fn write_report(
        &self,
        dir: &Path,
        _records: &[RunRecord],
        summary: &Summary<EpAccuracySection>,
    ) -> Result<(), ReportError> {
        let rows = &summary.section.ep_accuracy;
        let panels: Vec<ScatterPlot> =
            [("probit", "tilting"), ("step", "tilting"), ("step", "smc")]
                .iter()
                .filter_map(|(lik, reference)| bias_plot(rows, lik, reference))
                .collect();
        if !panels.is_empty() {
            write_figure(dir, "bias", &panels, 1, (800 * panels.len() as u32, 650))?;
        }
        write_markdown(dir, &markdown(self.spec, rows, !panels.is_empty()))
    }

    fn highlights(&self, summary: &Summary<EpAccuracySection>) -> Vec<String> {
        summary.section.ep_accuracy.iter().map(highlight).collect()
    }
}

/// One cell's line: EP's bias against its reference.
fn highlight(r: &BiasRow) -> String {
    let bias = match (r.mean_bias, r.std_err) {
        (Some(b), Some(s)) => format!("{b:+.3} ± {s:.3} nats"),
        _ => format!("not measurable ({}'s error bar untrustworthy)", r.reference),
    };
    format!(
        "  N = {:<5} flipped {:.2} {:<7} vs {:<7} EP bias {bias}",
        r.n, r.flip_fraction, r.likelihood, r.reference
    )
}

/// One cell of the study.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Cell {
    n: usize,
    flip: f64,
}

/// The runs of the study with their cells: one per size, flipped fraction and replicate.
fn keys(spec: &ExperimentSpec, e: &EpAccuracySpec) -> Vec<(RunKey, Cell)> {
    let opt = &spec.training.optimizer_list()[0];
    let hash = spec.settings_hash(opt, 0);
    let mut out = Vec::new();
    for &n in &e.sizes {
        for (k, &flip) in e.flip_fractions.iter().enumerate() {
            for r in 0..spec.data.networks_per_size {
                let seed = derive_seed(
                    derive_seed(derive_seed(spec.seed, n as u64), k as u64),
                    r as u64,
                );
                let key = RunKey {
                    id: format!("{}-{hash}-n{n}-e{flip}-r{r}", spec.name),
                    variant: format!("N = {n}"),
                    optimizer: opt.clone(),
                    overtrain_epochs: 0,
                    alpha: None,
                    attack_size: 0,
                    replicate: r,
                    seed,
                };
                out.push((key, Cell { n, flip }));
            }
        }
    }
    out
}

/// The true labels of the first `n` points of S ∪ T (±1) with a seeded `flip` fraction of
/// them flipped; returns the labels and the number flipped.
fn flipped_labels(
    prep: &Prepared,
    n: usize,
    flip: f64,
    seed: u64,
) -> Result<(Vec<f64>, usize), LabError> {
    let truth = prep
        .s_and_t
        .labels()
        .filter(|l| l.len() >= n)
        .ok_or_else(|| prep.setup_err("the data needs labels on S ∪ T"))?;
    let mut labels: Vec<f64> = truth[..n]
        .iter()
        .map(|&l| if l == 1 { 1.0 } else { -1.0 })
        .collect();
    let m = (flip * n as f64).round() as usize;
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    for &i in &order[..m.min(n)] {
        labels[i] = -labels[i];
    }
    Ok((labels, m))
}

/// EP against tilting on one cell, for each likelihood of the spec.
fn compare(
    prep: &Prepared,
    e: &EpAccuracySpec,
    key: &RunKey,
    cell: Cell,
) -> Result<RunRecord, LabError> {
    let kernel = prep.kernel.as_ref().ok_or_else(|| {
        prep.setup_err("the EP-accuracy study needs [measures.prior] (the kernel)")
    })?;
    let (labels, flipped) = flipped_labels(prep, cell.n, cell.flip, key.seed)?;
    let k = kernel.as_ref().submatrix(0, 0, cell.n, cell.n);
    let cfg = ComparisonConfig {
        ep: EpConfig {
            schedule: EpSchedule::Parallel,
            check_psd: false,
            ..EpConfig::default()
        },
        tilting: TiltingConfig {
            samples: e.samples,
            target_std_err: e.target_std_err,
            seed: derive_seed(key.seed, 1),
            ..TiltingConfig::default()
        },
    };
    let bits: Vec<u8> = labels.iter().map(|&l| u8::from(l > 0.0)).collect();
    let mut record = RunRecord {
        id: key.id.clone(),
        experiment: prep.spec.name.clone(),
        variant: key.variant.clone(),
        optimizer: key.optimizer.name().to_owned(),
        overtrain_epochs: 0,
        attack_size: 0,
        replicate: key.replicate,
        seed: key.seed,
        status: basin_nn::TrainStatus::Converged,
        epochs: 0,
        train_error: 0.0,
        attack_error: None,
        test_error: Some(flipped as f64 / cell.n as f64),
        function_hash: function_hash(&bits),
        measures: BTreeMap::from([
            ("points".to_owned(), Some(cell.n as f64)),
            ("flip_fraction".to_owned(), Some(cell.flip)),
        ]),
        notes: BTreeMap::new(),
        stage_s: BTreeMap::new(),
        trajectory: Vec::new(),
    };
    let likelihoods = prep
        .spec
        .measures
        .prior
        .as_ref()
        .map_or(Vec::new(), |p| p.likelihoods.clone());
    for lik in likelihoods {
        let (likelihood, name) = (lik, lik.name());
        match ep_vs_tilting(k, &labels, likelihood, &cfg) {
            Ok(c) => {
                let m = &mut record.measures;
                m.insert(format!("ep_{name}"), Some(c.ep.log_p));
                m.insert(format!("tilting_{name}"), Some(c.reference.log_p));
                m.insert(format!("tilting_{name}_std_err"), Some(c.bias_std_err));
                m.insert(format!("bias_{name}"), Some(c.bias));
                m.insert(format!("bias_{name}_z"), Some(c.z));
                m.insert(format!("ess_{name}"), Some(c.diagnostics.ess));
                m.insert(
                    format!("reliable_{name}"),
                    Some(f64::from(u8::from(c.reliable))),
                );
                if !c.issues.is_empty() {
                    record.notes.insert(name.into(), issues_note(&c.issues));
                }
                record.stage_s.insert(format!("ep_{name}"), c.ep_wall_s);
                record
                    .stage_s
                    .insert(format!("tilting_{name}"), c.reference_wall_s);
            }
            Err(err) => {
                record.notes.insert(name.into(), err.to_string());
            }
        }
    }
    if let Some(smc) = e.smc.as_ref().filter(|_| e.smc_at(cell.n, cell.flip)) {
        compare_smc(k, &labels, &cfg.ep, smc, key.seed, &mut record);
    }
    Ok(record)
}

/// EP against annealed SMC on the step likelihood: measures `smc_step`,
/// `smc_step_std_err`, `bias_smc_step`, `bias_smc_step_z`, `reliable_smc_step`,
/// `smc_step_probit_checkpoint` (± `_std_err`: the same paths at s = 1, to set against
/// `ep_probit`), `smc_step_spread` (sd of the replicates' log Ẑ) and `smc_step_levels`; stage
/// `smc_step`; SMC's issues as the note `smc_step`.
fn compare_smc(
    k: basin_prior::faer::MatRef<'_, f64>,
    labels: &[f64],
    ep_cfg: &EpConfig,
    smc: &crate::spec::SmcSpec,
    seed: u64,
    record: &mut RunRecord,
) {
    let cfg = smc.config(derive_seed(seed, 2));
    match ep_vs_smc(k, labels, Likelihood::Step, ep_cfg, &cfg) {
        Ok(c) => {
            let m = &mut record.measures;
            m.insert("smc_step".into(), Some(c.reference.log_p));
            m.insert("smc_step_std_err".into(), Some(c.bias_std_err));
            m.insert("bias_smc_step".into(), Some(c.bias));
            m.insert("bias_smc_step_z".into(), Some(c.z));
            m.insert(
                "reliable_smc_step".into(),
                Some(f64::from(u8::from(c.reliable))),
            );
            let d = &c.diagnostics;
            m.insert("smc_step_probit_checkpoint".into(), d.probit.map(|p| p.0));
            m.insert(
                "smc_step_probit_checkpoint_std_err".into(),
                d.probit.map(|p| p.1),
            );
            m.insert("smc_step_spread".into(), Some(d.log_z_spread));
            m.insert("smc_step_levels".into(), Some(d.mean_temperatures));
            if !c.issues.is_empty() {
                record
                    .notes
                    .insert("smc_step".into(), issues_note(&c.issues));
            }
            record.stage_s.insert("smc_step".into(), c.reference_wall_s);
        }
        Err(err) => {
            record.notes.insert("smc_step".into(), err.to_string());
        }
    }
}

/// EP's bias in one cell (N, φ, likelihood), over its replicates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BiasRow {
    /// Points.
    pub n: usize,
    /// Fraction of labels flipped (the function's error).
    pub flip_fraction: f64,
    /// `probit` or `step`.
    pub likelihood: String,
    /// The reference EP is compared with: `tilting` or `smc`.
    pub reference: String,
    /// Replicates compared.
    pub runs: usize,
    /// Replicates whose reference error bar is trustworthy.
    pub reliable: usize,
    /// Mean of EP − reference over the reliable replicates (nats; null if none).
    pub mean_bias: Option<f64>,
    /// Its standard error (from the reference's standard errors).
    pub std_err: Option<f64>,
    /// Mean wall seconds of the reference per replicate.
    pub reference_s: f64,
}

/// The measure names of a (likelihood, reference) pair: bias, reliable flag, standard error
/// and wall-time stage.
fn names(lik: &str, reference: &str) -> [String; 4] {
    match reference {
        "smc" => [
            format!("bias_smc_{lik}"),
            format!("reliable_smc_{lik}"),
            format!("smc_{lik}_std_err"),
            format!("smc_{lik}"),
        ],
        _ => [
            format!("bias_{lik}"),
            format!("reliable_{lik}"),
            format!("tilting_{lik}_std_err"),
            format!("tilting_{lik}"),
        ],
    }
}

type CellKey<'a> = (usize, u64, &'a str, &'a str);

fn bias_rows(records: &[RunRecord]) -> Vec<BiasRow> {
    let mut cells: BTreeMap<CellKey<'_>, Vec<&RunRecord>> = BTreeMap::new();
    for r in records {
        let (Some(n), Some(f)) = (r.measure("points"), r.measure("flip_fraction")) else {
            continue;
        };
        for lik in ["probit", "step"] {
            for reference in ["tilting", "smc"] {
                if r.measures.contains_key(&names(lik, reference)[0]) {
                    cells
                        .entry((n as usize, f.to_bits(), lik, reference))
                        .or_default()
                        .push(r);
                }
            }
        }
    }
    cells
        .into_iter()
        .map(|((n, f, lik, reference), rs)| bias_row(n, f64::from_bits(f), lik, reference, &rs))
        .collect()
}

/// One cell's row: the mean bias over its reliable replicates with its standard error.
fn bias_row(n: usize, flip: f64, lik: &str, reference: &str, rs: &[&RunRecord]) -> BiasRow {
    let [bias, reliable, se, stage] = names(lik, reference);
    let ok: Vec<&&RunRecord> = rs
        .iter()
        .filter(|r| r.measure(&reliable) == Some(1.0))
        .collect();
    let k = ok.len() as f64;
    let mean_bias =
        (!ok.is_empty()).then(|| ok.iter().filter_map(|r| r.measure(&bias)).sum::<f64>() / k);
    let std_err = (!ok.is_empty()).then(|| {
        ok.iter()
            .filter_map(|r| r.measure(&se))
            .map(|s| s * s)
            .sum::<f64>()
            .sqrt()
            / k
    });
    let reference_s =
        rs.iter().filter_map(|r| r.stage_s.get(&stage)).sum::<f64>() / rs.len() as f64;
    BiasRow {
        n,
        flip_fraction: flip,
        likelihood: lik.to_owned(),
        reference: reference.to_owned(),
        runs: rs.len(),
        reliable: ok.len(),
        mean_bias,
        std_err,
        reference_s,
    }
}

fn bias_plot(rows: &[BiasRow], lik: &str, reference: &str) -> Option<ScatterPlot> {
    let mut by_n: BTreeMap<usize, Vec<(f64, f64)>> = BTreeMap::new();
    for r in rows
        .iter()
        .filter(|r| r.likelihood == lik && r.reference == reference)
    {
        if let Some(b) = r.mean_bias {
            by_n.entry(r.n).or_default().push((r.flip_fraction, b));
        }
    }
    (!by_n.is_empty()).then(|| ScatterPlot {
        title: format!("EP − {reference}, {lik} likelihood (trustworthy cells)"),
        x_label: "fraction of labels flipped (the function's error)".into(),
        y_label: "EP's bias in log P(f) (nats)".into(),
        series: by_n
            .into_iter()
            .map(|(n, points)| Series {
                label: format!("N = {n}"),
                points,
            })
            .collect(),
        lines: true,
        ..ScatterPlot::default()
    })
}

fn markdown(spec: &ExperimentSpec, rows: &[BiasRow], figure: bool) -> String {
    let mut md = heading(Some(spec), "EP accuracy");
    md.push_str("EP's bias is log Z_EP − log P̂ in nats (positive: EP overestimates P(f)), ");
    md.push_str("averaged over the replicates whose reference error bar is trustworthy. The ");
    md.push_str("references: minimax tilting (converged, effective sample size ≥ 30, standard ");
    md.push_str("error shrinking) and, for the step likelihood where tilting's weights are too ");
    md.push_str(
        "heavy-tailed, annealed SMC over the noise level (standard error from independent ",
    );
    md.push_str("replicates; no move cap hit, replicates consistent).\n\n");
    md.push_str(
        "| N | flipped | likelihood | reference | trustworthy / runs | EP bias (nats) | reference s per run |\n",
    );
    md.push_str("|---|---|---|---|---|---|---|\n");
    for r in rows {
        let bias = match (r.mean_bias, r.std_err) {
            (Some(b), Some(s)) => format!("{b:+.3} ± {s:.3}"),
            _ => "not measurable".into(),
        };
        let _ = writeln!(
            md,
            "| {} | {:.2} | {} | {} | {} / {} | {bias} | {:.2} |",
            r.n, r.flip_fraction, r.likelihood, r.reference, r.reliable, r.runs, r.reference_s
        );
    }
    if figure {
        md.push_str("\n![EP's bias against the flipped fraction](bias.png)\n");
    }
    md.push_str(&spec_section(Some(spec)));
    md
}
