//! `reproduce <id>`: the paper's tables and figures, each described by a config file under
//! `reproductions/` (what to train, what to evaluate), run by this one pipeline. Trained runs are
//! cached by a hash of their training config and the code that trains them, so `all` never
//! trains the same model twice and a rerun after an interruption resumes.
//!
//! One file per step: `config` (the files), `cache` (run folders, their key and lock),
//! `code_hash` (the training sources' hash), `interrupt` (Ctrl-C, SIGTERM, workers), `training`,
//! `tables`, `compare` (paired differences), `scale` (fidelity's effective logit scale), `verify` (a fresh rerun against the committed
//! CSV) and `figures`.

mod cache;
mod code_hash;
mod compare;
mod config;
mod figures;
mod interrupt;
mod plan;
mod scale;
mod tables;
mod training;
mod verify;
mod workers;

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};

use crate::backend::BackendKind;
use crate::data::Split;
use crate::eval::{EvalReport, EvalSettings, evaluate};
use crate::experiment::{BenchmarkName, DataConfig};
use crate::model::Profile;
use crate::train::TrainConfig;

pub use cache::{cache_key, fnv1a};
pub use code_hash::{TRAINING_SOURCES, training_code_hash};
pub use compare::Difference;
pub use config::{
    Budget, Kind, MethodPreset, MethodSpec, ORDER, Reproduction, configs_dir,
    has_embedded_stand_in, list, merge, read,
};
pub use interrupt::{EXIT_INTERRUPTED, Interrupted, install as install_interrupt_handler};
pub use tables::{
    ReferenceNumber, cpu_model, csv_field, describe_cpu, differences_csv, read_reference_numbers,
    table_csv, table_markdown, utc_date,
};
pub use verify::{Check, compare, first_difference, report, same_computation};
pub use workers::{default_jobs, worker};

/// Command-line choices that override a reproduction's file.
#[derive(Debug, Clone)]
pub struct Options {
    pub data_root: Option<PathBuf>,
    pub backend: BackendKind,
    pub profile: Option<Profile>,
    /// Evaluation seeds, instead of the reproduction's.
    pub seeds: Option<Vec<u64>>,
    /// Training seeds, instead of the reproduction's.
    pub train_seeds: Option<Vec<u64>>,
    pub episodes: Option<u64>,
    /// Training steps (for smoke runs: the numbers then mean nothing).
    pub steps: Option<u64>,
    /// Results go to `out` (default `reproductions/results`), figures to `out/figures`
    /// (default `figures/`), cached runs to `out/runs` (default `reproductions/runs`).
    pub out: Option<PathBuf>,
    pub quiet: bool,
    /// Ignore the run cache: train every model this invocation needs anew.
    pub fresh: bool,
    /// The backbone's starting weights (`--weights`): a file, `fetched` or `random`; default the
    /// profile's (the fetched ImageNet weights for the paper profile).
    pub weights: Option<String>,
    /// Print the plan and a measured projection of its cost, and train nothing.
    pub plan: bool,
    /// Child processes that train and evaluate (`--jobs`); 1 does everything in this process.
    /// Default: [`default_jobs`].
    pub jobs: Option<usize>,
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
    /// With `--fresh`: the runs already retrained by this invocation.
    fresh: RefCell<HashSet<PathBuf>>,
    /// The steps each run folder had before this invocation trained anything (what the
    /// provenance's `models` line reports: trained here, continued, or from the cache).
    steps_before: HashMap<PathBuf, u64>,
    /// Evaluations done by the `--jobs` workers.
    evaluated: workers::Evaluated,
    /// How the work ran, for the provenance: worker processes and the threads each had.
    processes: String,
}

// ANCHOR: run
/// Runs `id` (every id for `all`; several for a comma-separated list) and returns the files
/// written. One invocation trains each model once, however many of its ids use it.
pub fn run(id: &str, options: Options) -> Result<Vec<PathBuf>> {
    let ids: Vec<String> = if id == "all" {
        ORDER.iter().map(|s| s.to_string()).collect()
    } else {
        id.split(',').map(|s| s.trim().to_string()).collect()
    };
    let repros: Vec<Reproduction> = ids.iter().map(|i| read(i)).collect::<Result<_>>()?;
    options.backend.device(false)?;
    let root = crate::data::data_root(options.data_root.as_deref());
    // No data root: a reproduction runs only where an embedded benchmark has its shape.
    let repros: Vec<Reproduction> = repros
        .into_iter()
        .filter(|r| {
            let runs = root.is_some() || has_embedded_stand_in(r);
            if !runs {
                println!(
                    "reproduce {}: needs {:?} data and there is no embedded stand-in for it \
                     (synthetic-5i has PASCAL-5i's shape only); nothing run, nothing written. \
                     Pass --data-root DIR (or set SRPNET_DATA) with the benchmark to run it.",
                    r.id, r.benchmark
                );
            }
            runs
        })
        .collect();
    let profile = options.profile.unwrap_or(if root.is_some() {
        Profile::Paper
    } else {
        Profile::Embedded
    });
    // The data root first: a wrong folder is named before missing weights are, and before any
    // output folder is created.
    for r in &repros {
        data_config(r, options.data_root.as_deref()).check_root()?;
    }
    let paths = Paths::new(options.out.as_deref());
    let folders = if options.plan {
        vec![]
    } else {
        vec![&paths.results, &paths.figures, &paths.runs]
    };
    for dir in folders {
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
        fresh: RefCell::new(HashSet::new()),
        steps_before: HashMap::new(),
        evaluated: Default::default(),
        processes: "1 (this process)".into(),
        options,
    };
    let total: u64 = repros.iter().map(|r| ctx.work(r)).sum::<Result<u64>>()?;
    if ctx.options.plan {
        for r in &repros {
            ctx.data = ctx.data_config(r);
            print!("{}", ctx.projection(r)?);
        }
        return Ok(Vec::new());
    }
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
        if ctx.is_long(r)? {
            // A long run shows what it will cost before it spends it.
            let projection = ctx.projection(r)?;
            ctx.bar.suspend(|| print!("{projection}"));
        }
    }
    ctx.run_workers(&repros)?;
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
        data_config(r, self.options.data_root.as_deref())
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
        if let Some(seeds) = &self.options.train_seeds {
            b.train_seeds = seeds.clone();
        }
        b
    }

    /// The training seeds `r` uses: all of them for tables and for the bound figure (every
    /// trained model's episodes); the picture figure draws the models of the first seed only.
    pub(super) fn trained_seeds<'a>(&self, r: &Reproduction, budget: &'a Budget) -> &'a [u64] {
        match r.kind {
            Kind::Table | Kind::FigBound => &budget.train_seeds[..],
            Kind::Fig1 => &budget.train_seeds[..1],
        }
    }

    /// Units of work (training steps still to do + evaluation episodes) for the progress bar.
    fn work(&mut self, r: &Reproduction) -> Result<u64> {
        self.data = self.data_config(r);
        let budget = self.budget(r);
        let mut total = 0;
        let mut seen = HashSet::new();
        let seeds = self.trained_seeds(r, &budget);
        for m in &r.methods {
            for &fold in &r.folds {
                for &seed in seeds {
                    let c = self.train_config(r, m, fold, seed)?;
                    let dir = self.run_dir(&c);
                    if seen.insert(dir.root.clone()) {
                        // A run whose stored key differs is retrained: none of its steps count.
                        let key = cache_key(&c, self.options.backend.name());
                        let done = if cache::stale(&dir, &key).is_some() {
                            0
                        } else {
                            self.done_steps(&dir)
                        };
                        self.steps_before.insert(dir.root.clone(), done);
                        total += c.steps.saturating_sub(done);
                    }
                    total += match r.kind {
                        Kind::Fig1 => r.rows as u64,
                        _ => {
                            budget.eval_episodes
                                * budget.eval_seeds.len() as u64
                                * r.shots.len() as u64
                        }
                    };
                }
            }
        }
        Ok(total)
    }

    fn reproduce(&mut self, r: &Reproduction) -> Result<Vec<PathBuf>> {
        match r.kind {
            Kind::Table => self.table(r),
            Kind::FigBound => self.fig_bound(r),
            Kind::Fig1 => self.fig1(r),
        }
    }

    /// The evaluation settings of `shots`-shot episodes for a model trained with `config`.
    fn eval_settings(&self, budget: &Budget, config: &TrainConfig, shots: usize) -> EvalSettings {
        EvalSettings {
            fold: config.fold,
            shots,
            episodes: budget.eval_episodes,
            seeds: budget.eval_seeds.clone(),
            image_size: config.image_size,
            normalization: config.normalization,
            original_size: false,
        }
    }

    /// Evaluates every (method, fold, training seed, shots) of `r` on the same test episodes
    /// (or takes the evaluation a `--jobs` worker did).
    fn evaluations(&self, r: &Reproduction) -> Result<Vec<Evaluation>> {
        let budget = self.budget(r);
        let seeds = self.trained_seeds(r, &budget);
        let mut out = Vec::new();
        for method in &r.methods {
            for (&fold, &train_seed) in r
                .folds
                .iter()
                .flat_map(|f| seeds.iter().map(move |s| (f, s)))
            {
                let config = self.train_config(r, method, fold, train_seed)?;
                let dir = self.run_dir(&config);
                let eval_model = merge(&config.model, &method.eval).with_context(|| {
                    format!("{}: the `eval` overrides of {:?}", r.id, method.name)
                })?;
                let mut loaded = None;
                for &shots in &r.shots {
                    let settings = self.eval_settings(&budget, &config, shots);
                    let task = workers::EvalTask {
                        model: eval_model.clone(),
                        settings: settings.clone(),
                    };
                    let kept = self.evaluated.get(&task.key(&dir.root)).cloned();
                    let report = match kept.or_else(|| cache::stored_eval(&dir.root, &task)) {
                        Some(report) => report,
                        None => {
                            interrupt::check()?;
                            if loaded.is_none() {
                                let model = self.trained_seed(r, method, fold, train_seed)?.0;
                                let bench = config.data.open(config.image_size, &[Split::Test])?;
                                loaded = Some((model, bench));
                            }
                            let (model, bench) = loaded.as_ref().expect("loaded above");
                            self.bar.set_message(format!(
                                "eval {} fold {fold} seed {train_seed} {shots}-shot",
                                method.name
                            ));
                            let report =
                                evaluate(model, bench.as_ref(), &settings, |_, _| self.bar.inc(1))?;
                            cache::store_eval(&dir.root, &task, &report)?;
                            report
                        }
                    };
                    out.push(Evaluation {
                        method: method.name.clone(),
                        fold,
                        shots,
                        train_seed,
                        report,
                        run: dir.root.clone(),
                    });
                }
            }
        }
        Ok(out)
    }
}

/// The data `r` runs on: its benchmark under a data root (`--data-root` or `$SRPNET_DATA`),
/// synthetic-5i without one.
fn data_config(r: &Reproduction, data_root: Option<&Path>) -> DataConfig {
    let root = crate::data::data_root(data_root);
    DataConfig {
        benchmark: root.as_deref().map_or(BenchmarkName::Synthetic5i, |root| {
            config::benchmark_under(r, root)
        }),
        root,
        ..DataConfig::default()
    }
}

/// One evaluated (method, fold, shots, training seed).
pub struct Evaluation {
    pub method: String,
    pub fold: usize,
    pub shots: usize,
    pub train_seed: u64,
    pub report: EvalReport,
    pub run: PathBuf,
}

// ANCHOR: verify
/// `reproduce <id> --verify`: trains every model of `id` afresh (into `options.out`, or a
/// temporary folder), then compares each table's new CSV with the committed one under
/// `against`. Returns the report and whether every mean over folds lies inside its committed
/// interval.
pub fn verify(id: &str, mut options: Options, against: &Path) -> Result<(String, bool)> {
    let out = options.out.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("srpnet-verify-{}", std::process::id()))
    });
    options.out = Some(out.clone());
    options.fresh = true;
    let written = run(id, options)?;
    let mut text = format!("fresh results in {}\n", out.display());
    let mut ok = true;
    let mut compared = 0;
    for new in written.iter().filter(|p| {
        p.extension().is_some_and(|e| e == "csv")
            && !p.to_string_lossy().ends_with(".differences.csv")
    }) {
        let name = new.file_name().expect("a written file has a name");
        let committed = against.join(name);
        let old = std::fs::read_to_string(&committed).with_context(|| {
            format!(
                "no committed results to verify against: {} (pass --against DIR)",
                committed.display()
            )
        })?;
        let new_text =
            std::fs::read_to_string(new).with_context(|| format!("reading {}", new.display()))?;
        // The same computation must give the same bits; only another one is judged by an interval.
        match verify::same_computation(&old, &new_text) {
            Ok(()) => {
                let difference = verify::first_difference(&old, &new_text);
                text += &format!(
                    "verify {id} against {}: the same code hash, build, backend, data and seeds, \
                     so every cell must match exactly: {}\n",
                    committed.display(),
                    difference
                        .as_deref()
                        .map_or("it does".to_string(), |d| format!(
                            "it does NOT, first at {d}"
                        ))
                );
                ok &= difference.is_none();
            }
            Err(why) => {
                let checks = compare(&old, &new_text).with_context(|| {
                    format!("comparing {} with {}", new.display(), committed.display())
                })?;
                let (section, inside) = report(id, &committed, &checks);
                text += &format!("not the same computation ({why}): judged by an interval\n");
                text += &section;
                ok &= inside;
            }
        }
        compared += 1;
    }
    if compared == 0 {
        text += &format!("{id}: no table to verify (figures carry no committed numbers)\n");
    }
    Ok((text, ok))
}
// ANCHOR_END: verify
