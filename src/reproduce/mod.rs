//! `reproduce <id>`: the paper's tables and figures, each described by a config file under
//! `reproductions/` (what to train, what to evaluate), run by this one pipeline. Trained runs are
//! cached by a hash of their training config, so `all` never trains the same model twice and a
//! rerun after an interruption resumes.

mod cache;
mod config;
mod figures;
mod plan;
mod tables;
mod training;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};

use crate::backend::BackendKind;
use crate::data::Split;
use crate::eval::{EvalReport, EvalSettings, evaluate};
use crate::experiment::{BenchmarkName, DataConfig};
use crate::model::Profile;

use cache::done_steps;
pub use cache::fnv1a;
pub use config::{
    Budget, Kind, MethodPreset, MethodSpec, ORDER, Reproduction, configs_dir, list, merge, read,
};
pub use tables::{ReferenceNumber, read_reference_numbers, table_csv, table_markdown};

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
    /// The backbone's starting weights (`--weights`): a file, `fetched` or `random`; default the
    /// profile's (the fetched ImageNet weights for the paper profile).
    pub weights: Option<String>,
    /// Print the plan and a measured projection of its cost, and train nothing.
    pub plan: bool,
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
        if ctx.is_long(r)? {
            // A long run shows what it will cost before it spends it.
            let projection = ctx.projection(r)?;
            ctx.bar.suspend(|| print!("{projection}"));
        }
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
}

/// One evaluated (method, fold, shots).
pub struct Evaluation {
    pub method: String,
    pub fold: usize,
    pub shots: usize,
    pub report: EvalReport,
    pub run: PathBuf,
}
