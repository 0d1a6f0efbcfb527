//! `reproduce <id>`: the paper's tables and figures, each described by a config file under
//! `reproductions/` (what to train, what to evaluate), run by this one pipeline. Trained runs are
//! cached by a hash of their training config, so `all` never trains the same model twice and a
//! rerun after an interruption resumes.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use burn::tensor::module::interpolate;

use crate::backend::BackendKind;
use crate::commands::Method;
use crate::data::Split;
use crate::data::transforms::normalize;
use crate::data::{EpisodeSpec, Episodes, Normalization, Transform};
use crate::eval::{EvalReport, EvalSettings, evaluate};
use crate::experiment::{BenchmarkName, DataConfig, Provenance, load_config, write_atomic};
use crate::figures::{
    BoundSeries, Curve, CurvePanel, Fig1Row, Picture, ScoreSample, draw_bound, draw_curves,
    draw_fig1, draw_score_margins, quantile_rows, selection_rule,
};
use crate::metrics::binary_counts;
use crate::metrics::mean_std;
use crate::model::fidelity::similarity;
use crate::model::loss::predicted_mask;
use crate::model::prototype::masked_average_pool;
use crate::model::pyramid::bilinear_to;
use crate::model::{EpisodeTensors, Phase};
use crate::model::{ModelConfig, Profile, SrpNet};
use crate::train::{RunDir, TrainConfig, TrainOptions, load_checkpoint, train};

// ANCHOR: config
/// One reproduction, as written in `reproductions/<id>.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reproduction {
    pub id: String,
    pub title: String,
    pub kind: Kind,
    /// The benchmark the paper used; synthetic-5i stands in when no data root is given.
    pub benchmark: BenchmarkName,
    pub folds: Vec<usize>,
    /// K of the evaluation episodes (every model is trained 1-shot, see `train_shots`).
    pub shots: Vec<usize>,
    pub methods: Vec<MethodSpec>,
    pub embedded: Budget,
    pub paper: Budget,
    /// fig1: how many episodes (rows) to draw.
    #[serde(default = "default_rows")]
    pub rows: usize,
    /// fig-bound: the matched models whose score margins are drawn (rows of `table3` that
    /// differ only in the metric, so the runs come from the same cache).
    #[serde(default)]
    pub score_methods: Vec<MethodSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Table,
    Fig1,
    FigBound,
}

/// A row of a table: a preset plus overrides of its model config. `train` overrides change
/// what is trained; `eval` overrides only how the trained model is run (IQI lives there).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodSpec {
    pub name: String,
    pub preset: MethodPreset,
    #[serde(default)]
    pub train: toml::Table,
    #[serde(default)]
    pub eval: toml::Table,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MethodPreset {
    Srpnet,
    Panet,
}

/// What a profile spends: training steps, shots of the training episodes, evaluation episodes
/// per seed, and the seeds.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    pub train_steps: u64,
    pub train_shots: usize,
    pub eval_episodes: u64,
    pub eval_seeds: Vec<u64>,
}
// ANCHOR_END: config

fn default_rows() -> usize {
    4
}

/// Command-line choices that override a reproduction's file.
#[derive(Debug, Clone)]
pub struct Options {
    pub data_root: Option<PathBuf>,
    pub backend: BackendKind,
    pub profile: Option<Profile>,
    pub seeds: Option<Vec<u64>>,
    pub episodes: Option<u64>,
    /// Training steps (for smoke runs: the numbers then mean nothing).
    pub steps: Option<u64>,
    /// Results go to `out` (default `reproductions/results`), figures to `out/figures`
    /// (default `figures/`), cached runs to `out/runs` (default `reproductions/runs`).
    pub out: Option<PathBuf>,
    pub quiet: bool,
}

/// The repository folder that holds the reproduction configs.
pub fn configs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("reproductions")
}

pub const ORDER: [&str; 6] = ["table1", "table2", "table3", "table4", "fig1", "fig-bound"];

/// Every reproduction id with its title, in the order `all` runs them.
pub fn list() -> Result<Vec<(String, String)>> {
    ORDER
        .iter()
        .map(|id| Ok((id.to_string(), read(id)?.title)))
        .collect()
}

pub fn read(id: &str) -> Result<Reproduction> {
    let path = configs_dir().join(format!("{id}.toml"));
    if !path.is_file() {
        bail!(
            "unknown reproduction id `{id}`: no {} (`reproduce --list` shows the ids)",
            path.display()
        );
    }
    let r: Reproduction = load_config(&path)?;
    ensure!(
        r.id == id,
        "{} says id = {:?}; it must say {id:?}",
        path.display(),
        r.id
    );
    for m in &r.methods {
        ensure!(
            !m.train.contains_key("iqi"),
            "{}: method {:?} sets iqi under `train`; IQI runs only at inference: put it under `eval`",
            path.display(),
            m.name
        );
    }
    Ok(r)
}

/// Where things go for one invocation.
struct Paths {
    results: PathBuf,
    figures: PathBuf,
    runs: PathBuf,
}

impl Paths {
    fn new(out: Option<&Path>) -> Self {
        match out {
            Some(out) => Self {
                results: out.to_path_buf(),
                figures: out.join("figures"),
                runs: out.join("runs"),
            },
            None => {
                let top = Path::new(env!("CARGO_MANIFEST_DIR"));
                Self {
                    results: top.join("reproductions/results"),
                    figures: top.join("figures"),
                    runs: top.join("reproductions/runs"),
                }
            }
        }
    }
}

/// The context every reproduction of one invocation shares.
struct Runner {
    options: Options,
    profile: Profile,
    data: DataConfig,
    paths: Paths,
    bar: indicatif::ProgressBar,
    started: Instant,
}

// ANCHOR: run
/// Runs `id` (or every id, for `all`) and returns the files written.
pub fn run(id: &str, options: Options) -> Result<Vec<PathBuf>> {
    let ids: Vec<String> = if id == "all" {
        ORDER.iter().map(|s| s.to_string()).collect()
    } else {
        vec![id.to_string()]
    };
    let repros: Vec<Reproduction> = ids.iter().map(|i| read(i)).collect::<Result<_>>()?;
    options.backend.device(false)?;
    let root = crate::data::data_root(options.data_root.as_deref());
    let profile = options.profile.unwrap_or(if root.is_some() {
        Profile::Paper
    } else {
        Profile::Embedded
    });
    let paths = Paths::new(options.out.as_deref());
    for dir in [&paths.results, &paths.figures, &paths.runs] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let probe = dir.join(".write-test");
        std::fs::write(&probe, b"")
            .with_context(|| format!("{} is not writable", dir.display()))?;
        let _ = std::fs::remove_file(probe);
    }
    let mut written = Vec::new();
    let mut ctx = Runner {
        data: DataConfig::default(),
        profile,
        paths,
        bar: indicatif::ProgressBar::hidden(),
        started: Instant::now(),
        options,
    };
    let total: u64 = repros.iter().map(|r| ctx.work(r)).sum::<Result<u64>>()?;
    ctx.bar = if ctx.options.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(total)
    };
    ctx.bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:28} [{bar:30}] {percent:>3}% {elapsed} < {eta}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    for r in &repros {
        ctx.data = ctx.data_config(r);
        let header = format!(
            "reproduce {}: {} on {} ({} profile, backend {}){}",
            r.id,
            r.title,
            ctx.data.label(),
            format!("{:?}", ctx.profile).to_lowercase(),
            ctx.options.backend.name(),
            if root.is_none() {
                "\n  no data root given: running on the embedded synthetic-5i benchmark, not the paper's data"
            } else {
                ""
            }
        );
        ctx.bar.suspend(|| println!("{header}"));
        written.extend(ctx.reproduce(r)?);
    }
    ctx.bar.finish_and_clear();
    Ok(written)
}
// ANCHOR_END: run

impl Runner {
    fn data_config(&self, r: &Reproduction) -> DataConfig {
        let root = crate::data::data_root(self.options.data_root.as_deref());
        DataConfig {
            benchmark: if root.is_some() {
                r.benchmark
            } else {
                BenchmarkName::Synthetic5i
            },
            root,
            ..DataConfig::default()
        }
    }

    fn budget(&self, r: &Reproduction) -> Budget {
        let mut b = match self.profile {
            Profile::Embedded => r.embedded.clone(),
            Profile::Paper => r.paper.clone(),
        };
        if let Some(s) = self.options.steps {
            b.train_steps = s;
        }
        if let Some(e) = self.options.episodes {
            b.eval_episodes = e;
        }
        if let Some(seeds) = &self.options.seeds {
            b.eval_seeds = seeds.clone();
        }
        b
    }

    /// The training config of `method` on `fold`.
    fn train_config(
        &self,
        r: &Reproduction,
        method: &MethodSpec,
        fold: usize,
    ) -> Result<TrainConfig> {
        let preset = match method.preset {
            MethodPreset::Srpnet => Method::Srpnet,
            MethodPreset::Panet => Method::Panet,
        };
        let model = merge(&preset.model(self.profile), &method.train)
            .with_context(|| format!("{}: the `train` overrides of {:?}", r.id, method.name))?;
        let budget = self.budget(r);
        let mut c = TrainConfig::preset(model, self.profile);
        c.data = self.data_config(r);
        c.fold = fold;
        c.shots = budget.train_shots;
        if c.steps != budget.train_steps {
            // Keep the schedule's shape when the budget changes the length.
            let scale = budget.train_steps as f64 / c.steps as f64;
            c.lr_milestones = c
                .lr_milestones
                .iter()
                .map(|m| (*m as f64 * scale) as u64)
                .collect();
            c.checkpoint_every = (budget.train_steps / 4).max(1);
            c.log_every = (budget.train_steps / 100).max(1);
            c.steps = budget.train_steps;
        }
        Ok(c)
    }

    fn run_dir(&self, config: &TrainConfig) -> RunDir {
        let json = serde_json::to_string(config).expect("a config serialises");
        RunDir::new(
            self.paths
                .runs
                .join(format!("{:016x}", fnv1a(json.as_bytes()))),
        )
    }

    /// Units of work (training steps still to do + evaluation episodes) for the progress bar.
    fn work(&mut self, r: &Reproduction) -> Result<u64> {
        self.data = self.data_config(r);
        let budget = self.budget(r);
        let mut total = 0;
        let mut seen = std::collections::HashSet::new();
        for m in &r.methods {
            for &fold in &r.folds {
                let c = self.train_config(r, m, fold)?;
                let dir = self.run_dir(&c);
                if seen.insert(dir.root.clone()) {
                    total += c.steps.saturating_sub(done_steps(&dir));
                }
                total += match r.kind {
                    Kind::Fig1 => r.rows as u64,
                    _ => {
                        budget.eval_episodes * budget.eval_seeds.len() as u64 * r.shots.len() as u64
                    }
                };
            }
        }
        Ok(total)
    }

    /// Trains (or finds in the cache) the model of `method` on `fold`.
    fn trained(
        &self,
        r: &Reproduction,
        method: &MethodSpec,
        fold: usize,
    ) -> Result<(SrpNet, TrainConfig, RunDir)> {
        let config = self.train_config(r, method, fold)?;
        let dir = self.run_dir(&config);
        let done = done_steps(&dir);
        if done < config.steps {
            self.bar
                .set_message(format!("train {} fold {fold}", method.name));
            let bench = config.data.open(config.image_size, &[Split::Train])?;
            let interrupt = AtomicBool::new(false);
            let tick = || self.bar.inc(1);
            train(
                &config,
                &dir,
                bench.as_ref(),
                &TrainOptions {
                    backend: self.options.backend,
                    resume: dir.latest_checkpoint().is_some(),
                    progress: false,
                    interrupt: &interrupt,
                    on_step: Some(&tick),
                },
            )
            .with_context(|| {
                format!(
                    "training {} on fold {fold} in {}",
                    method.name,
                    dir.root.display()
                )
            })?;
        }
        let device = self.options.backend.device(false)?;
        let model = config.model.init(&device)?;
        let checkpoint = dir
            .latest_checkpoint()
            .context("a finished run has a checkpoint")?;
        let (model, _) = load_checkpoint(&checkpoint, model)?;
        let eval_config = merge(&config.model, &method.eval)
            .with_context(|| format!("{}: the `eval` overrides of {:?}", r.id, method.name))?;
        Ok((
            SrpNet {
                config: eval_config,
                ..model
            },
            config,
            dir,
        ))
    }

    fn reproduce(&mut self, r: &Reproduction) -> Result<Vec<PathBuf>> {
        match r.kind {
            Kind::Table => self.table(r),
            Kind::FigBound => self.fig_bound(r),
            Kind::Fig1 => self.fig1(r),
        }
    }

    /// Evaluates every (method, fold, shots) of `r`.
    fn evaluations(&self, r: &Reproduction) -> Result<Vec<Evaluation>> {
        let budget = self.budget(r);
        let mut out = Vec::new();
        for method in &r.methods {
            for &fold in &r.folds {
                let (model, config, dir) = self.trained(r, method, fold)?;
                let bench = config.data.open(config.image_size, &[Split::Test])?;
                for &shots in &r.shots {
                    self.bar
                        .set_message(format!("eval {} fold {fold} {shots}-shot", method.name));
                    let settings = EvalSettings {
                        fold,
                        shots,
                        episodes: budget.eval_episodes,
                        seeds: budget.eval_seeds.clone(),
                        image_size: config.image_size,
                        normalization: config.normalization,
                    };
                    let report =
                        evaluate(&model, bench.as_ref(), &settings, |_, _| self.bar.inc(1))?;
                    out.push(Evaluation {
                        method: method.name.clone(),
                        fold,
                        shots,
                        report,
                        run: dir.root.clone(),
                    });
                }
            }
        }
        Ok(out)
    }

    fn provenance(&self, r: &Reproduction) -> Provenance {
        let budget = self.budget(r);
        let mut p = Provenance::new(self.options.backend.name());
        p.push("reproduction", format!("{} ({})", r.id, r.title))
            .push("dataset", self.data.label())
            .push("profile", format!("{:?}", self.profile).to_lowercase())
            .push(
                "training",
                format!(
                    "{} steps of {}-shot episodes per model, one model per method and fold",
                    budget.train_steps, budget.train_shots
                ),
            )
            .push(
                "evaluation",
                format!(
                    "{} episodes x seeds {:?} per fold and shots",
                    budget.eval_episodes, budget.eval_seeds
                ),
            )
            .push(
                "wall time so far",
                format!("{:.0} s", self.started.elapsed().as_secs_f64()),
            );
        if self.options.steps.is_some() {
            p.push(
                "warning",
                "--steps overrode the training budget: a smoke run, not a result",
            );
        }
        p
    }

    fn stem(&self, r: &Reproduction) -> String {
        format!("{}.{}", r.id, self.data.label().replace('/', "-"))
    }

    fn table(&mut self, r: &Reproduction) -> Result<Vec<PathBuf>> {
        let evals = self.evaluations(r)?;
        let provenance = self.provenance(r);
        let stem = self.stem(r);
        let csv = self.paths.results.join(format!("{stem}.csv"));
        let md = self.paths.results.join(format!("{stem}.md"));
        write_atomic(&csv, table_csv(&evals, &provenance).as_bytes())?;
        let references =
            read_reference_numbers(&configs_dir().join("reference-numbers.csv"), &self.data)?;
        let text = table_markdown(r, &evals, &provenance, &references, &self.data);
        write_atomic(&md, text.as_bytes())?;
        self.bar.suspend(|| println!("{text}"));
        let mut written = vec![csv, md];
        if r.id == "table1" {
            written.extend(self.training_curves(r, &evals)?);
        }
        Ok(written)
    }
}

/// One evaluated (method, fold, shots).
pub struct Evaluation {
    pub method: String,
    pub fold: usize,
    pub shots: usize,
    pub report: EvalReport,
    pub run: PathBuf,
}

fn done_steps(dir: &RunDir) -> u64 {
    dir.latest_checkpoint()
        .and_then(|c| std::fs::read_to_string(c.join("state.json")).ok())
        .and_then(|t| serde_json::from_str::<crate::train::TrainState>(&t).ok())
        .map_or(0, |s| s.step)
}

/// `base` with `overrides` merged in, field by field (nested tables merge, values replace).
pub fn merge(base: &ModelConfig, overrides: &toml::Table) -> Result<ModelConfig> {
    fn deep(into: &mut serde_json::Value, from: serde_json::Value) {
        match (into, from) {
            (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
                for (k, v) in b {
                    deep(a.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
            (slot, v) => *slot = v,
        }
    }
    let mut value = serde_json::to_value(base)?;
    deep(&mut value, serde_json::to_value(overrides)?);
    let merged: ModelConfig = serde_json::from_value(value)?;
    merged.validate()?;
    Ok(merged)
}

/// FNV-1a, 64 bit: a stable hash for run folder names (the same on every machine).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

// ANCHOR: outputs
/// Every seed's numbers, one row each.
pub fn table_csv(evals: &[Evaluation], provenance: &Provenance) -> String {
    let mut text = provenance.header();
    text += "method,fold,shots,seed,miou,fb_iou,support_miou,episodes\n";
    for e in evals {
        for s in &e.report.seeds {
            let episodes = e
                .report
                .episodes
                .iter()
                .filter(|x| x.seed == s.seed)
                .count();
            text += &format!(
                "{},{},{},{},{:.6},{:.6},{:.6},{episodes}\n",
                e.method, e.fold, e.shots, s.seed, s.miou, s.fb_iou, s.support_miou
            );
        }
    }
    text
}
// ANCHOR_END: outputs

/// The Markdown table: per shots and metric, methods as rows, folds and their mean as columns
/// (mean +- std over seeds), then the published reference numbers with their sources.
pub fn table_markdown(
    r: &Reproduction,
    evals: &[Evaluation],
    provenance: &Provenance,
    references: &[ReferenceNumber],
    data: &DataConfig,
) -> String {
    let mut md = format!("# {}: {}\n\n", r.id, r.title);
    for (k, v) in &provenance.fields {
        md += &format!("- {k}: {v}\n");
    }
    md.push('\n');
    type Pick = fn(&crate::eval::SeedResult) -> f64;
    let metrics: [(&str, Pick); 3] = [
        ("mIoU", |s| s.miou),
        ("FB-IoU", |s| s.fb_iou),
        ("support-recovery mIoU", |s| s.support_miou),
    ];
    for &shots in &r.shots {
        for (metric, pick) in metrics {
            md += &format!("## {shots}-shot {metric} (%)\n\n| method |");
            for f in &r.folds {
                md += &format!(" fold {f} |");
            }
            md += " mean |\n|---|";
            md += &"---:|".repeat(r.folds.len() + 1);
            md.push('\n');
            for method in r.methods.iter().map(|m| &m.name) {
                md += &format!("| {method} |");
                let mut per_fold = Vec::new();
                for &fold in &r.folds {
                    match evals
                        .iter()
                        .find(|e| &e.method == method && e.fold == fold && e.shots == shots)
                    {
                        Some(e) => {
                            let values: Vec<f64> = e.report.seeds.iter().map(pick).collect();
                            let (m, s) = mean_std(&values);
                            per_fold.push(values);
                            md += &format!(" {:.1} ± {:.1} |", 100.0 * m, 100.0 * s);
                        }
                        None => md += " – |",
                    }
                }
                // The paper-style number: the mean over folds, per seed; then mean +- std over seeds.
                let seeds = per_fold.first().map_or(0, |v| v.len());
                let over_folds: Vec<f64> = (0..seeds)
                    .map(|i| per_fold.iter().map(|v| v[i]).sum::<f64>() / per_fold.len() as f64)
                    .collect();
                let (m, s) = mean_std(&over_folds);
                md += &format!(" **{:.1}** ± {:.1} |\n", 100.0 * m, 100.0 * s);
            }
            if metric != "support-recovery mIoU" {
                let rows: Vec<&ReferenceNumber> = references
                    .iter()
                    .filter(|n| n.shots == shots && n.metric == metric)
                    .collect();
                for n in &rows {
                    md += &format!("| {} ({}, published) |", n.method, n.backbone);
                    md += &" |".repeat(r.folds.len());
                    md += &format!(" {} [^{}] |\n", n.value, n.key());
                }
            }
            md.push('\n');
        }
    }
    if data.benchmark == BenchmarkName::Synthetic5i {
        md += "No published numbers exist for synthetic-5i, the embedded benchmark: the rows above \
               are ours only. They show how the methods compare under one small budget, not what \
               they reach on PASCAL-5i or COCO-20i.\n\n";
    } else {
        md += "SRPNet's own published table was not available to us (only the abstract was), so \
               no SRPNet reference row is printed.\n\n";
    }
    for n in references {
        md += &format!(
            "[^{}]: {} {} {}: {}\n",
            n.key(),
            n.method,
            n.dataset,
            n.protocol,
            n.source
        );
    }
    md
}

/// One row of `reproductions/reference-numbers.csv`.
#[derive(Debug, Clone, Deserialize)]
pub struct ReferenceNumber {
    pub method: String,
    pub backbone: String,
    pub dataset: String,
    pub protocol: String,
    pub shots: usize,
    pub fold: String,
    pub metric: String,
    pub value: f64,
    pub source: String,
}

impl ReferenceNumber {
    fn key(&self) -> String {
        format!("{}-{}-{}", self.method, self.backbone, self.protocol).replace([' ', '*', '/'], "")
    }
}

/// Reads the reference numbers that apply to `data`.
pub fn read_reference_numbers(path: &Path, data: &DataConfig) -> Result<Vec<ReferenceNumber>> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for row in reader.deserialize() {
        let n: ReferenceNumber =
            row.with_context(|| format!("a malformed row in {}", path.display()))?;
        // A number counts only on the same dataset under the same protocol or fold convention:
        // PANet's and OSLSM's PASCAL-5i test sets are not comparable.
        let (dataset, protocol) = match data.benchmark {
            BenchmarkName::Pascal5i => ("pascal-5i", data.pascal_protocol.name()),
            BenchmarkName::Coco20i => ("coco-20i", data.coco_folds.name()),
            BenchmarkName::Synthetic5i => ("synthetic-5i", ""),
        };
        if n.dataset == dataset && n.protocol == protocol && n.fold == "mean" {
            out.push(n);
        }
    }
    Ok(out)
}

// ANCHOR: figures
impl Runner {
    /// A one-line caption: what produced the figure.
    fn caption(&self, r: &Reproduction) -> String {
        let b = self.budget(r);
        format!(
            "srpnet {} ({}), {}, {} profile, {} steps/model, {} episodes x {} seeds, backend {}",
            env!("CARGO_PKG_VERSION"),
            crate::experiment::git_commit(),
            self.data.label(),
            format!("{:?}", self.profile).to_lowercase(),
            b.train_steps,
            b.eval_episodes,
            b.eval_seeds.len(),
            self.options.backend.name()
        )
    }

    /// The loss terms of every method's run, one panel per fold, from the runs' CSV logs, with
    /// the learning-rate drops of the schedule that ran.
    fn training_curves(&self, r: &Reproduction, evals: &[Evaluation]) -> Result<Vec<PathBuf>> {
        let mut panels = Vec::new();
        let mut drops = std::collections::BTreeSet::new();
        for &fold in &r.folds {
            let mut curves = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for e in evals.iter().filter(|e| e.fold == fold) {
                if !seen.insert(e.run.clone()) {
                    continue;
                }
                if let Some(method) = r.methods.iter().find(|m| m.name == e.method) {
                    let config = self.train_config(r, method, fold)?;
                    drops.extend(config.lr_milestones.iter().copied());
                }
                for (term, points) in loss_terms(&e.run.join("train-log.csv"))? {
                    curves.push(Curve {
                        method: e.method.clone(),
                        term: term.to_string(),
                        points,
                    });
                }
            }
            panels.push(CurvePanel {
                label: format!("fold {fold}"),
                curves,
            });
        }
        let drops: Vec<f64> = drops.into_iter().map(|s| s as f64).collect();
        let stem = self.paths.figures.join(format!("{}-training-curves", r.id));
        Ok(draw_curves(
            &panels,
            &drops,
            &format!("Training losses per fold, {}", self.data.label()),
            "cross-entropy (nats)",
            &format!(
                "Each line: the mean of the last {LOSS_WINDOW} logged steps. {}",
                self.caption(r)
            ),
            &stem,
        )?)
    }

    /// Support-recovery IoU against query IoU per episode, and the score margins of the matched
    /// metric ablation (`score_methods`: models that differ only in the metric).
    fn fig_bound(&mut self, r: &Reproduction) -> Result<Vec<PathBuf>> {
        let evals = self.evaluations(r)?;
        let series: Vec<BoundSeries> = r
            .methods
            .iter()
            .map(|m| BoundSeries {
                label: m.name.clone(),
                points: evals
                    .iter()
                    .filter(|e| e.method == m.name && e.shots == r.shots[0])
                    .flat_map(|e| e.report.episodes.iter())
                    .filter_map(|ep| Some((ep.support_iou?, ep.query_iou?)))
                    .collect(),
            })
            .collect();
        let mut written = draw_bound(
            &series,
            &format!(
                "{}-shot, folds {:?}, {}",
                r.shots[0],
                r.folds,
                self.data.label()
            ),
            &self.caption(r),
            &self.paths.figures.join(&r.id),
        )?;
        if r.score_methods.is_empty() {
            return Ok(written);
        }
        let mut samples = Vec::new();
        for method in &r.score_methods {
            let (model, config, _) = self.trained(r, method, r.folds[0])?;
            samples.push(self.score_margins(&method.name, &model, &config, r)?);
        }
        let names: Vec<&str> = r.score_methods.iter().map(|m| m.name.as_str()).collect();
        written.extend(draw_score_margins(
            &samples,
            &format!(
                "Foreground - background score margin of query pixels: {} (fold {}, same training, only the metric differs)",
                names.join(" vs "),
                r.folds[0]
            ),
            &format!(
                "{SCORE_EPISODES} test episodes (seed 1234), every labelled query pixel. {}",
                self.caption(r)
            ),
            &self.paths.figures.join(format!("{}-scores", r.id)),
        )?);
        Ok(written)
    }

    /// Per query pixel of the first test episodes: similarity to the foreground prototype minus
    /// similarity to the background prototype, split by the pixel's true label.
    fn score_margins(
        &self,
        name: &str,
        model: &SrpNet,
        config: &TrainConfig,
        r: &Reproduction,
    ) -> Result<ScoreSample> {
        let device = self.options.backend.device(false)?;
        let bench = config.data.open(config.image_size, &[Split::Test])?;
        let spec = EpisodeSpec {
            fold: r.folds[0],
            split: Split::Test,
            shots: 1,
            seed: 1234,
        };
        let stream = Episodes::new(
            bench.as_ref(),
            spec,
            Transform::eval(config.image_size, config.normalization),
        );
        let (mut fg, mut bg) = (Vec::new(), Vec::new());
        for episode in stream.take(SCORE_EPISODES) {
            let episode = episode?;
            let t = EpisodeTensors::from_episode(&episode, &device)?;
            let features = model.features(burn::tensor::Tensor::cat(
                vec![t.support_images.clone(), t.query_image.clone()],
                0,
            ));
            let [_, c, h, w] = features.dims();
            let support = features.clone().slice([0..1, 0..c, 0..h, 0..w]);
            let query = features.slice([1..2, 0..c, 0..h, 0..w]);
            let Ok(prototypes) =
                masked_average_pool(support, t.support_masks.clone(), model.config.pooling)
            else {
                continue;
            };
            let sim = similarity(query, &prototypes, model.config.metric.metric);
            let sim = interpolate(sim, bilinear_to(t.image_size()));
            let margin = sim.clone().slice([0..1, 1..2]) - sim.slice([0..1, 0..1]);
            let values = margin
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            for (v, &label) in values.iter().zip(&episode.query.mask.data) {
                match label {
                    1 => fg.push(*v),
                    0 => bg.push(*v),
                    _ => {}
                }
            }
        }
        Ok(ScoreSample {
            label: name.to_string(),
            foreground: fg,
            background: bg,
        })
    }

    /// Fig. 1: the first `FIG1_CANDIDATES_PER_ROW * rows` test episodes are run through both
    /// models; the rows are the episodes at the quantiles of SRP's support-recovery gain
    /// (`quantile_rows`), a rule the caption states.
    fn fig1(&mut self, r: &Reproduction) -> Result<Vec<PathBuf>> {
        ensure!(
            r.methods.len() == 2,
            "{}: fig1 compares exactly two methods (baseline, SRPNet)",
            r.id
        );
        let fold = r.folds[0];
        let (baseline, config, _) = self.trained(r, &r.methods[0], fold)?;
        let (srpnet, _, _) = self.trained(r, &r.methods[1], fold)?;
        let device = self.options.backend.device(false)?;
        let bench = config.data.open(config.image_size, &[Split::Test])?;
        let spec = EpisodeSpec {
            fold,
            split: Split::Test,
            shots: 1,
            seed: 1234,
        };
        // Pictures unnormalised; the models get them normalised below.
        let stream = Episodes::new(
            bench.as_ref(),
            spec,
            Transform::eval(config.image_size, Normalization::None),
        );
        let candidates = FIG1_CANDIDATES_PER_ROW * r.rows;
        let mut rows = Vec::new();
        for episode in stream.take(candidates) {
            let raw = episode?;
            let mut normalised = raw.clone();
            for shot in normalised
                .supports
                .iter_mut()
                .chain(std::iter::once(&mut normalised.query))
            {
                shot.image = normalize(shot.image.clone(), config.normalization);
            }
            let t = EpisodeTensors::from_episode(&normalised, &device)?;
            let (Ok(b), Ok(s)) = (
                baseline.forward(&t, Phase::Infer),
                srpnet.forward(&t, Phase::Infer),
            ) else {
                continue;
            };
            let picture = |img: &crate::data::Image| Picture {
                height: img.height,
                width: img.width,
                rgb: img.to_rgb8(),
            };
            let support_truth = raw.supports[0].mask.data.clone();
            let query_truth = raw.query.mask.data.clone();
            let iou = |pred: &[u8], truth: &[u8]| binary_counts(pred, truth).0.iou().unwrap_or(1.0);
            let sb = predicted_mask(b.support_logits)?;
            let ss = predicted_mask(s.support_logits)?;
            let qb = predicted_mask(b.query_probabilities)?;
            let qs = predicted_mask(s.query_probabilities)?;
            rows.push(Fig1Row {
                class_name: raw.class_name.clone(),
                support: picture(&raw.supports[0].image),
                support_baseline_iou: iou(&sb, &support_truth),
                support_srp_iou: iou(&ss, &support_truth),
                support_baseline: sb,
                support_srp: ss,
                support_truth,
                query: picture(&raw.query.image),
                query_baseline_iou: iou(&qb, &query_truth),
                query_srpnet_iou: iou(&qs, &query_truth),
                query_baseline: qb,
                query_srpnet: qs,
                query_truth,
            });
            self.bar.inc(1);
        }
        ensure!(!rows.is_empty(), "{}: no test episode could be drawn", r.id);
        let gains: Vec<f64> = rows
            .iter()
            .map(|row| row.support_srp_iou - row.support_baseline_iou)
            .collect();
        let picked: Vec<Fig1Row> = quantile_rows(&gains, r.rows)
            .into_iter()
            .map(|i| rows[i].clone())
            .collect();
        Ok(draw_fig1(
            &picked,
            (&r.methods[0].name, &r.methods[1].name),
            &selection_rule(rows.len(), r.rows, fold),
            &format!(
                "Support recovery and query prediction: {} vs {} (fold {fold}, {})",
                r.methods[0].name,
                r.methods[1].name,
                self.data.label()
            ),
            &self.caption(r),
            &self.paths.figures.join(&r.id),
        )?)
    }
}

/// Test episodes whose query pixels make the score-margin figure.
const SCORE_EPISODES: usize = 20;
/// Fig. 1 picks its rows among this many episodes per row.
const FIG1_CANDIDATES_PER_ROW: usize = 10;
/// Training curves show the mean of a sliding window of this many logged steps (one episode's
/// loss is noisy).
const LOSS_WINDOW: usize = 10;

/// The loss terms of a run's CSV log (`step, ..., L_que, L_sup, L_PAR`), in that order,
/// smoothed over `LOSS_WINDOW` logged steps; terms the run did not log are left out.
fn loss_terms(log: &Path) -> Result<Vec<(&'static str, Vec<(f64, f64)>)>> {
    let mut reader =
        csv::Reader::from_path(log).with_context(|| format!("reading {}", log.display()))?;
    let mut terms: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    for row in reader.records() {
        let row = row.with_context(|| format!("a malformed row in {}", log.display()))?;
        let step: f64 = row[0].parse().unwrap_or(f64::NAN);
        for (col, name) in [(3, "L_que"), (4, "L_sup"), (5, "L_PAR")] {
            if let Some(v) = row.get(col).and_then(|v| v.parse::<f64>().ok()) {
                terms.entry(name).or_default().push((step, v));
            }
        }
    }
    let mut terms: Vec<(&str, Vec<(f64, f64)>)> = ["L_que", "L_sup", "L_PAR"]
        .into_iter()
        .filter_map(|name| terms.remove(name).map(|points| (name, points)))
        .collect();
    for (_, points) in &mut terms {
        let smooth = (0..points.len())
            .map(|i| {
                let w = &points[i.saturating_sub(LOSS_WINDOW - 1)..=i];
                (
                    points[i].0,
                    w.iter().map(|p| p.1).sum::<f64>() / w.len() as f64,
                )
            })
            .collect();
        *points = smooth;
    }
    Ok(terms)
}
// ANCHOR_END: figures

#[cfg(test)]
mod figure_tests {
    use super::*;

    #[test]
    fn the_score_models_are_table3s_rows_that_differ_only_in_the_metric() {
        let bound = read("fig-bound").unwrap();
        let table3 = read("table3").unwrap();
        assert_eq!(bound.score_methods.len(), 2);
        for m in &bound.score_methods {
            let row = table3
                .methods
                .iter()
                .find(|t| t.name == m.name)
                .unwrap_or_else(|| panic!("table3 has no row {:?}", m.name));
            // Same preset and overrides: the same training config, hence the same cached run.
            assert_eq!(format!("{:?}", row.preset), format!("{:?}", m.preset));
            assert_eq!(row.train, m.train, "{}", m.name);
            assert_eq!(row.eval, m.eval, "{}", m.name);
        }
        let without_metric = |m: &MethodSpec| {
            let mut t = m.train.clone();
            t.remove("metric");
            t
        };
        let (a, b) = (&bound.score_methods[0], &bound.score_methods[1]);
        assert_eq!(
            without_metric(a),
            without_metric(b),
            "they differ in more than the metric"
        );
        assert_ne!(
            a.train.get("metric"),
            b.train.get("metric"),
            "they have the same metric"
        );
    }

    #[test]
    fn loss_terms_are_smoothed_over_the_window() {
        let dir = std::env::temp_dir().join(format!("srpnet-loss-terms-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("train-log.csv");
        let mut text = String::from("step,lr,loss,L_que,L_sup,L_PAR\n");
        for step in 0..12 {
            text.push_str(&format!("{step},0.1,0,{step},1,\n"));
        }
        std::fs::write(&log, text).unwrap();
        let terms = loss_terms(&log).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let names: Vec<&str> = terms.iter().map(|t| t.0).collect();
        assert_eq!(names, ["L_que", "L_sup"], "an empty column is not a term");
        let que = &terms[0].1;
        assert_eq!(que[0], (0.0, 0.0));
        // Step 11: the mean of steps 2..=11.
        assert_eq!(que[11], (11.0, 6.5));
        assert!(terms[1].1.iter().all(|p| p.1 == 1.0));
    }
}
