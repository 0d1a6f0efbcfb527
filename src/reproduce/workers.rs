//! `--jobs N`: the models of an invocation trained and evaluated by N child processes, each a
//! `reproduce --worker JOB` of the same binary. Processes, not threads: flex's random-number
//! generator is one per process, so two trainings initialising at once in one process would
//! interleave their draws. A worker does exactly what the serial path does (the same functions,
//! the same configs), so `--jobs` changes the wall time and nothing else; `tests/reproduce.rs`
//! checks that a table comes out the same with 1 and 2 jobs.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::Runner;
use super::cache;
use super::config::{Kind, Reproduction};
use super::interrupt;
use super::training::trained_model;
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
    /// `--fresh`: empty the run folder before training (the first use in an invocation).
    fresh: bool,
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
    /// fewer than two models have work left (the serial path then does it all). Every
    /// evaluation is kept in its run folder as it finishes: a failed or interrupted worker loses
    /// nothing the others did, and the same command run again redoes only what is missing.
    pub(super) fn run_workers(&mut self, repros: &[Reproduction]) -> Result<()> {
        let mut groups = self.groups(repros)?;
        for g in &mut groups {
            g.fresh = self.take_fresh(&RunDir::new(&g.dir));
        }
        let jobs = self.jobs().min(groups.len());
        if jobs < 2 {
            // One job: the same work in this process, group by group.
            let tick = || self.bar.inc(1);
            for g in &groups {
                run_group(g, self.options.backend, &tick)?;
            }
            return self.collect(&groups);
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
            let log = folder.join(format!("worker-{i}.log"));
            let job = Job {
                backend: self.options.backend,
                groups,
            };
            write_atomic(&path, serde_json::to_string(&job)?.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            let stderr = std::fs::File::create(&log)
                .with_context(|| format!("cannot create {}", log.display()))?;
            let mut command = Command::new(&exe);
            command
                .arg("--worker")
                .arg(&path)
                .stdout(Stdio::piped())
                .stderr(stderr);
            if std::env::var_os("RAYON_NUM_THREADS").is_none() {
                command.env("RAYON_NUM_THREADS", threads.to_string());
            }
            interrupt::as_worker(&mut command);
            let child = command
                .spawn()
                .with_context(|| format!("cannot start worker {i} ({})", exe.display()))?;
            interrupt::register(child.id());
            workers.push((log, child, job.groups));
        }
        // One thread per worker turns its ticks into progress (any bytes: a line that is not
        // UTF-8 is shown as best it can be, and reading goes on to the end, so a worker never
        // blocks on a full pipe); then every worker is waited for, whatever the others did.
        let bar = &self.bar;
        let statuses: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = workers
                .iter_mut()
                .map(|(_, child, _)| {
                    let stdout = child.stdout.take().expect("piped");
                    s.spawn(move || {
                        let mut reader = BufReader::new(stdout);
                        let mut line = Vec::new();
                        while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                            let text = String::from_utf8_lossy(&line);
                            let text = text.trim_end_matches(['\n', '\r']);
                            if text == TICK {
                                bar.inc(1);
                            } else {
                                bar.suspend(|| println!("{text}"));
                            }
                            line.clear();
                        }
                    })
                })
                .collect();
            for h in handles {
                let _ = h.join();
            }
            workers
                .iter_mut()
                .map(|(_, c, _)| {
                    let status = c.wait();
                    interrupt::unregister(c.id());
                    status
                })
                .collect()
        });
        for (_, _, groups) in &workers {
            self.collect(groups)?;
        }
        let mut failures = Vec::new();
        let mut interrupted = interrupt::check().is_err();
        for (i, ((log, _, groups), status)) in workers.iter().zip(statuses).enumerate() {
            let status = status.with_context(|| format!("waiting for worker {i}"))?;
            if status.code() == Some(interrupt::EXIT_INTERRUPTED.into()) {
                interrupted = true;
            } else if !status.success() {
                failures.push(failure(i, &status, log, groups));
            }
        }
        // The job files and logs stay only to explain a failure.
        if failures.is_empty() || interrupted {
            let _ = std::fs::remove_dir_all(&folder);
        }
        if interrupted {
            return Err(interrupt::Interrupted.into());
        }
        if !failures.is_empty() {
            bail!(
                "{}\nThe other workers' results are kept in their run folders; run the same \
                 command again to redo only what is missing (training resumes from the last \
                 checkpoint).",
                failures.join("\n")
            );
        }
        Ok(())
    }

    /// Takes the evaluations of `groups` that were done (and kept in their run folders).
    fn collect(&mut self, groups: &[Group]) -> Result<()> {
        for g in groups {
            for task in &g.evals {
                if let Some(report) = cache::stored_eval(&g.dir, task) {
                    self.evaluated.insert(task.key(&g.dir), report);
                }
            }
        }
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
                    fresh: false,
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

/// Why worker `i` failed: its status, the runs it left unfinished (training or evaluations
/// missing) and the end of its log.
fn failure(i: usize, status: &std::process::ExitStatus, log: &Path, groups: &[Group]) -> String {
    let unfinished: Vec<String> = groups
        .iter()
        .filter(|g| {
            cache::done_steps(&RunDir::new(&g.dir)) < g.config.steps
                || g.evals
                    .iter()
                    .any(|t| cache::stored_eval(&g.dir, t).is_none())
        })
        .map(|g| g.dir.display().to_string())
        .collect();
    let text = std::fs::read(log).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    // The error or panic message, without a backtrace's indented frames.
    let tail: Vec<&str> = text
        .lines()
        .filter(|l| {
            !l.starts_with(' ') && !l.starts_with("stack backtrace") && !l.starts_with("note:")
        })
        .rev()
        .take(5)
        .collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    format!(
        "worker {i} failed ({status}) with these runs unfinished: {}; its log {}{}",
        unfinished.join(", "),
        log.display(),
        if tail.is_empty() {
            " is empty".to_string()
        } else {
            format!(" ends:\n  {}", tail.join("\n  "))
        }
    )
}

/// `reproduce --worker JOB`: trains and evaluates the groups of `JOB` (written by the parent),
/// printing a tick per step and episode; every evaluation goes into its run folder.
pub fn worker(job: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(job).with_context(|| format!("cannot read {}", job.display()))?;
    let job_spec: Job =
        serde_json::from_str(&text).with_context(|| format!("reading {}", job.display()))?;
    // A closed pipe (the parent is gone) must not stop the step that is to be checkpointed.
    let tick = || {
        let _ = writeln!(std::io::stdout(), "{TICK}");
    };
    for g in &job_spec.groups {
        run_group(g, job_spec.backend, &tick)?;
    }
    Ok(())
}

/// Trains the model of `g` if its run has steps left, then does the evaluations not yet kept
/// in its folder: those on the same episodes whose configs share the trained backbone and
/// pyramid in one pass ([`evaluate_many`]: the features once per episode). `tick` after every
/// step and every (episode, evaluation).
fn run_group(g: &Group, backend: BackendKind, tick: &dyn Fn()) -> Result<()> {
    let dir = RunDir::new(&g.dir);
    let model = trained_model(&g.config, &dir, backend, g.fresh, tick)?;
    let mut done: Vec<bool> = g
        .evals
        .iter()
        .map(|t| cache::stored_eval(&g.dir, t).is_some())
        .collect();
    if done.iter().all(|&d| d) {
        return Ok(());
    }
    let bench = g.config.data.open(g.config.image_size, &[Split::Test])?;
    for (i, task) in g.evals.iter().enumerate() {
        if done[i] {
            continue;
        }
        interrupt::check()?;
        let shared = |t: &EvalTask| {
            t.model.backbone == task.model.backbone
                && t.model.pyramid == task.model.pyramid
                && t.settings == task.settings
        };
        let batch: Vec<usize> = (i..g.evals.len())
            .filter(|&j| !done[j] && shared(&g.evals[j]))
            .collect();
        let configs: Vec<ModelConfig> = batch.iter().map(|&j| g.evals[j].model.clone()).collect();
        let model = SrpNet {
            config: task.model.clone(),
            ..model.clone()
        };
        let reports = evaluate_many(&model, &configs, bench.as_ref(), &task.settings, |_, _| {
            tick()
        })
        .with_context(|| format!("evaluating the model in {}", g.dir.display()))?;
        for (j, report) in batch.into_iter().zip(reports) {
            cache::store_eval(&g.dir, &g.evals[j], &report)?;
            done[j] = true;
        }
    }
    Ok(())
}

/// The evaluations the workers did, by [`EvalTask::key`].
pub(super) type Evaluated = HashMap<String, EvalReport>;
