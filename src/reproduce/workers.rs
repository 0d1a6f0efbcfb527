//! `--jobs N`: the models of an invocation trained and evaluated by N child processes, each a
//! `reproduce --worker JOB` of the same binary. Processes, not threads: flex's random-number
//! generator is one per process, so two trainings initialising at once in one process would
//! interleave their draws. A worker does exactly what the serial path does (the same functions,
//! the same configs), so `--jobs` changes the wall time and nothing else; `tests/reproduce.rs`
//! checks that a table comes out the same with 1 and 2 jobs.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::Runner;
use super::cache;
use super::config::{Kind, Reproduction};
use super::training::{load_run, train_run};
use crate::backend::BackendKind;
use crate::data::Split;
use crate::eval::{EvalReport, EvalSettings, evaluate_many};
use crate::experiment::write_atomic;
use crate::model::{ModelConfig, Profile, SrpNet};
use crate::train::{RunDir, TrainConfig};

/// One trained model and the evaluations it serves.
#[derive(Serialize, Deserialize)]
struct Group {
    config: TrainConfig,
    dir: PathBuf,
    evals: Vec<EvalTask>,
}

/// One evaluation: the model config it runs with (IQI lives there) and the episodes.
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct EvalTask {
    pub model: ModelConfig,
    pub settings: EvalSettings,
}

impl EvalTask {
    /// What identifies an evaluation's result: the run it loads and everything it runs with.
    pub(super) fn key(&self, dir: &Path) -> String {
        serde_json::to_string(&(dir, &self.model, &self.settings)).expect("serialises")
    }
}

/// What one worker process is given: its groups, in order.
#[derive(Serialize, Deserialize)]
struct Job {
    backend: BackendKind,
    groups: Vec<Group>,
}

/// The line a worker prints for every training step and evaluation episode (the parent's
/// progress bar counts them).
const TICK: &str = "tick";

/// The number of worker processes when `--jobs` is not given: one per core for the embedded
/// profile on the CPU backends (its tensors are too small for a second thread to help one
/// process); one for the paper profile (a ResNet-50 process takes 2.3 GB and all the cores it
/// gets) and on a GPU (two processes would share its memory).
pub fn default_jobs(backend: BackendKind, profile: Profile) -> usize {
    match (backend, profile) {
        (BackendKind::Flex | BackendKind::Tch, Profile::Embedded) => {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
        _ => 1,
    }
}

// ANCHOR: workers
impl Runner {
    /// Trains and evaluates every model of `repros` in [`Runner::jobs`] child processes and
    /// keeps their evaluations for [`Runner::evaluations`]. Does nothing with one job, or when
    /// fewer than two models have work left (the serial path then does it all).
    pub(super) fn run_workers(&mut self, repros: &[Reproduction]) -> Result<()> {
        let groups = self.groups(repros)?;
        let jobs = self.jobs().min(groups.len());
        for g in &groups {
            if self.done_steps(&RunDir::new(&g.dir)) < g.config.steps {
                self.prepare_run(&g.config, &RunDir::new(&g.dir))?;
            }
        }
        if jobs < 2 {
            // One job: the same work in this process, group by group.
            let tick = || self.bar.inc(1);
            let mut evaluated = Vec::new();
            for g in &groups {
                let reports = run_group(g, self.options.backend, &tick)?;
                for (task, report) in g.evals.iter().zip(reports) {
                    evaluated.push((task.key(&g.dir), report));
                }
            }
            self.evaluated.extend(evaluated);
            return Ok(());
        }
        // Longest first onto the least-loaded worker: the workers finish close together.
        let cost = |g: &Group| {
            g.config.steps
                + g.evals
                    .iter()
                    .map(|e| e.settings.episodes * e.settings.seeds.len() as u64)
                    .sum::<u64>()
        };
        let mut sorted: Vec<Group> = groups;
        sorted.sort_by_key(|g| std::cmp::Reverse(cost(g)));
        let mut shares: Vec<(u64, Vec<Group>)> = (0..jobs).map(|_| (0, Vec::new())).collect();
        for g in sorted {
            let least = shares
                .iter_mut()
                .min_by_key(|(load, _)| *load)
                .expect("at least two shares");
            least.0 += cost(&g);
            least.1.push(g);
        }
        let folder = self.paths.runs.join(format!("jobs-{}", std::process::id()));
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("cannot create {}", folder.display()))?;
        let exe = std::env::current_exe().context("cannot locate the reproduce binary")?;
        let threads = (std::thread::available_parallelism().map_or(1, |n| n.get()) / jobs).max(1);
        self.bar
            .set_message(format!("{jobs} worker processes (--jobs)"));
        self.processes = format!(
            "{jobs} worker processes (--jobs), RAYON_NUM_THREADS={} each",
            std::env::var("RAYON_NUM_THREADS").unwrap_or(threads.to_string())
        );
        let mut workers = Vec::new();
        for (i, (_, groups)) in shares.into_iter().enumerate() {
            let path = folder.join(format!("worker-{i}.json"));
            let job = Job {
                backend: self.options.backend,
                groups,
            };
            write_atomic(&path, serde_json::to_string(&job)?.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            let mut command = Command::new(&exe);
            command.arg("--worker").arg(&path).stdout(Stdio::piped());
            if std::env::var_os("RAYON_NUM_THREADS").is_none() {
                command.env("RAYON_NUM_THREADS", threads.to_string());
            }
            let child = command
                .spawn()
                .with_context(|| format!("cannot start worker {i} ({})", exe.display()))?;
            workers.push((path, job, child));
        }
        // One thread per worker turns its ticks into progress; then every worker is waited for.
        let bar = &self.bar;
        let statuses: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = workers
                .iter_mut()
                .map(|(_, _, child)| {
                    let stdout = child.stdout.take().expect("piped");
                    s.spawn(move || {
                        for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                            if line == TICK {
                                bar.inc(1);
                            } else {
                                bar.suspend(|| println!("{line}"));
                            }
                        }
                    })
                })
                .collect();
            for h in handles {
                let _ = h.join();
            }
            workers.iter_mut().map(|(_, _, c)| c.wait()).collect()
        });
        for (i, ((path, job, _), status)) in workers.into_iter().zip(statuses).enumerate() {
            let status = status.with_context(|| format!("waiting for worker {i}"))?;
            if !status.success() {
                bail!(
                    "worker {i} ({}) failed ({status}); its error is printed above. Training \
                     resumes from its checkpoints when you run the same command again.",
                    path.display()
                );
            }
            let results = path.with_extension("results.json");
            let text = std::fs::read_to_string(&results)
                .with_context(|| format!("worker {i} wrote no {}", results.display()))?;
            let reports: Vec<Vec<EvalReport>> = serde_json::from_str(&text)
                .with_context(|| format!("reading {}", results.display()))?;
            for (g, reports) in job.groups.iter().zip(reports) {
                for (task, report) in g.evals.iter().zip(reports) {
                    self.evaluated.insert(task.key(&g.dir), report);
                }
            }
        }
        let _ = std::fs::remove_dir_all(&folder);
        Ok(())
    }

    /// `--jobs`, or its default for this backend and profile.
    pub(super) fn jobs(&self) -> usize {
        self.options
            .jobs
            .unwrap_or_else(|| default_jobs(self.options.backend, self.profile))
    }

    /// Every distinct model of `repros` that has training or evaluation left, with its
    /// evaluations (each once: `all` evaluates the same SRPNet row in two tables).
    fn groups(&mut self, repros: &[Reproduction]) -> Result<Vec<Group>> {
        let mut groups: BTreeMap<PathBuf, Group> = BTreeMap::new();
        for r in repros {
            self.data = self.data_config(r);
            let budget = self.budget(r);
            for model in self.plan(r)?.models {
                let dir = self.run_dir(&model.config).root;
                let evals = match r.kind {
                    Kind::Fig1 => vec![],
                    _ => r
                        .shots
                        .iter()
                        .map(|&shots| EvalTask {
                            model: model.eval_model.clone(),
                            settings: self.eval_settings(&budget, &model.config, shots),
                        })
                        .collect(),
                };
                let group = groups.entry(dir.clone()).or_insert_with(|| Group {
                    config: model.config.clone(),
                    dir: dir.clone(),
                    evals: vec![],
                });
                for task in evals {
                    let key = task.key(&dir);
                    if !group.evals.iter().any(|e| e.key(&dir) == key) {
                        group.evals.push(task);
                    }
                }
            }
        }
        Ok(groups
            .into_values()
            .filter(|g| {
                !g.evals.is_empty() || self.done_steps(&RunDir::new(&g.dir)) < g.config.steps
            })
            .collect())
    }
}
// ANCHOR_END: workers

/// `reproduce --worker JOB`: trains and evaluates the groups of `JOB` (written by the parent),
/// printing a tick per step and episode, and writes the evaluations beside it.
pub fn worker(job: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(job).with_context(|| format!("cannot read {}", job.display()))?;
    let job_spec: Job =
        serde_json::from_str(&text).with_context(|| format!("reading {}", job.display()))?;
    let tick = || println!("{TICK}");
    let reports = job_spec
        .groups
        .iter()
        .map(|g| run_group(g, job_spec.backend, &tick))
        .collect::<Result<Vec<_>>>()?;
    let results = job.with_extension("results.json");
    write_atomic(&results, serde_json::to_string(&reports)?.as_bytes())
        .with_context(|| format!("cannot write {}", results.display()))?;
    Ok(())
}

/// Trains the model of `g` if its run has steps left, then does its evaluations: those on the
/// same episodes whose configs share the trained backbone and pyramid in one pass
/// ([`evaluate_many`]: the features once per episode). `tick` after every step and every
/// (episode, evaluation). The reports in the order of `g.evals`.
fn run_group(g: &Group, backend: BackendKind, tick: &dyn Fn()) -> Result<Vec<EvalReport>> {
    let dir = RunDir::new(&g.dir);
    if cache::done_steps(&dir) < g.config.steps {
        train_run(&g.config, &dir, backend, tick)?;
    }
    let mut reports: Vec<Option<EvalReport>> = vec![None; g.evals.len()];
    if g.evals.is_empty() {
        return Ok(Vec::new());
    }
    let model = load_run(&g.config, &dir, backend)?;
    let bench = g.config.data.open(g.config.image_size, &[Split::Test])?;
    for (i, task) in g.evals.iter().enumerate() {
        if reports[i].is_some() {
            continue;
        }
        let shared = |t: &EvalTask| {
            t.model.backbone == task.model.backbone
                && t.model.pyramid == task.model.pyramid
                && t.settings == task.settings
        };
        let batch: Vec<usize> = (i..g.evals.len())
            .filter(|&j| reports[j].is_none() && shared(&g.evals[j]))
            .collect();
        let configs: Vec<ModelConfig> = batch.iter().map(|&j| g.evals[j].model.clone()).collect();
        let model = SrpNet {
            config: task.model.clone(),
            ..model.clone()
        };
        let done = evaluate_many(&model, &configs, bench.as_ref(), &task.settings, |_, _| {
            tick()
        })
        .with_context(|| format!("evaluating the model in {}", g.dir.display()))?;
        for (j, report) in batch.into_iter().zip(done) {
            reports[j] = Some(report);
        }
    }
    Ok(reports
        .into_iter()
        .map(|r| r.expect("every evaluation ran"))
        .collect())
}

/// The evaluations the workers did, by [`EvalTask::key`].
pub(super) type Evaluated = HashMap<String, EvalReport>;
