//! The run cache: a trained model lives in `runs/<hash>/`, the hash of everything that
//! determines it: its training config, the backend, the crate version, the hash of the training
//! sources (`build.rs`), the enabled Cargo features and the compiler. A code change never reuses
//! a model trained by older code; a rebuild of unchanged code does. A run folder is held by one
//! process at a time (its `lock` file); its finished evaluations are kept beside the model.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::Runner;
use super::workers::EvalTask;
use crate::eval::EvalReport;
use crate::experiment::write_atomic;
use crate::train::{RunDir, TrainConfig};

// ANCHOR: key
/// The cache key of a trained model, as JSON (written beside the model as `cache-key.json`).
pub fn cache_key(config: &TrainConfig, backend: &str) -> String {
    serde_json::to_string_pretty(&serde_json::json!({
        "config": config,
        "backend": backend,
        "srpnet": env!("CARGO_PKG_VERSION"),
        "code hash": env!("SRPNET_CODE_HASH"),
        "features": env!("SRPNET_FEATURES"),
        "rustc": env!("SRPNET_RUSTC"),
    }))
    .expect("a config serialises")
}
// ANCHOR_END: key

impl Runner {
    pub(super) fn run_dir(&self, config: &TrainConfig) -> RunDir {
        let key = cache_key(config, self.options.backend.name());
        RunDir::new(
            self.paths
                .runs
                .join(format!("{:016x}", fnv1a(key.as_bytes()))),
        )
    }

    /// With `--fresh`: true the first time this invocation meets `dir` (so that `all` still
    /// trains each model once).
    pub(super) fn take_fresh(&self, dir: &RunDir) -> bool {
        self.options.fresh && self.fresh.borrow_mut().insert(dir.root.clone())
    }

    /// Steps already trained in `dir`; 0 for a run `--fresh` will retrain.
    pub(super) fn done_steps(&self, dir: &RunDir) -> u64 {
        if self.options.fresh && !self.fresh.borrow().contains(&dir.root) {
            return 0;
        }
        done_steps(dir)
    }
}

// ANCHOR: lock
/// An exclusive hold on a run folder, released when dropped (or when the process dies: the
/// operating system drops the lock with the file descriptor).
pub(super) struct RunLock {
    _file: File,
}

/// Waits for `dir`'s lock (saying which process holds it) and takes it. The lock file lives
/// in the folder and is never removed, so every process locks the same file.
pub(super) fn lock(dir: &RunDir) -> Result<RunLock> {
    std::fs::create_dir_all(&dir.root)
        .with_context(|| format!("cannot create {}", dir.root.display()))?;
    let path = dir.root.join("lock");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    if let Err(std::fs::TryLockError::WouldBlock) = file.try_lock() {
        let holder = std::fs::read_to_string(&path).unwrap_or_default();
        eprintln!(
            "waiting for {}: another reproduce ({}) is using it",
            dir.root.display(),
            match holder.trim() {
                "" => "process unknown".to_string(),
                pid => format!("process {pid}"),
            }
        );
    }
    file.lock()
        .with_context(|| format!("cannot lock {}", path.display()))?;
    file.set_len(0)
        .and_then(|_| write!(file, "{}", std::process::id()))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(RunLock { _file: file })
}

/// With the lock held: empties `dir` if `fresh`, or if its stored key is not `key` (saying
/// why); clears temporary files a killed process left; writes the key.
pub(super) fn prepare(dir: &RunDir, key: &str, fresh: bool) -> Result<()> {
    let why = if fresh { None } else { stale(dir, key) };
    if let Some(why) = &why {
        eprintln!("retraining {}: {why}", dir.root.display());
    }
    for entry in std::fs::read_dir(&dir.root)
        .with_context(|| format!("cannot read {}", dir.root.display()))?
    {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().to_string();
        let stale_temp = name.contains(".tmp");
        if name != "lock" && (fresh || why.is_some() || stale_temp) {
            let path = entry.path();
            if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            }
            .with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    let path = dir.root.join("cache-key.json");
    write_atomic(&path, key.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
}
// ANCHOR_END: lock

// ANCHOR: stale
/// Why the model in `dir` must not be reused under `key` (`None`: it may, or there is none).
pub(super) fn stale(dir: &RunDir, key: &str) -> Option<String> {
    dir.latest_checkpoint()?;
    let path = dir.root.join("cache-key.json");
    let Ok(stored) = std::fs::read_to_string(&path) else {
        return Some("it has no cache-key.json".into());
    };
    let parse = |t: &str| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(t);
    let (Ok(stored), Ok(wanted)) = (parse(&stored), parse(key)) else {
        return Some("its cache-key.json does not read".into());
    };
    let differing: std::collections::BTreeSet<&String> = wanted
        .keys()
        .chain(stored.keys())
        .filter(|k| stored.get(*k) != wanted.get(*k))
        .collect();
    (!differing.is_empty()).then(|| {
        let names: Vec<String> = differing.iter().map(|k| format!("`{k}`")).collect();
        format!(
            "its cache-key.json differs in {} from this build's",
            names.join(", ")
        )
    })
}
// ANCHOR_END: stale

/// Steps the checkpoint in `dir` has done (0 without one).
pub(super) fn done_steps(dir: &RunDir) -> u64 {
    dir.latest_checkpoint()
        .and_then(|c| std::fs::read_to_string(c.join("state.json")).ok())
        .and_then(|t| serde_json::from_str::<crate::train::TrainState>(&t).ok())
        .map_or(0, |s| s.step)
}

/// Where the evaluation `task` of the model in `dir` is kept, and its key: the task and every
/// source of this binary (an evaluation changes with more code than training does).
fn eval_file(dir: &Path, task: &EvalTask) -> (PathBuf, String) {
    let key = format!("{} {}", task.key(dir), env!("SRPNET_SOURCE_HASH"));
    let path = dir
        .join("evals")
        .join(format!("{:016x}.json", fnv1a(key.as_bytes())));
    (path, key)
}

/// The stored result of `task` on the model in `dir`, if this build made it.
pub(super) fn stored_eval(dir: &Path, task: &EvalTask) -> Option<EvalReport> {
    let (path, key) = eval_file(dir, task);
    let text = std::fs::read_to_string(path).ok()?;
    let (stored, report): (String, EvalReport) = serde_json::from_str(&text).ok()?;
    (stored == key).then_some(report)
}

/// Keeps the result of `task` beside the model, so that a rerun after a failure or an
/// interruption redoes only what is missing.
pub(super) fn store_eval(dir: &Path, task: &EvalTask, report: &EvalReport) -> Result<()> {
    let (path, key) = eval_file(dir, task);
    let folder = path.parent().expect("a file in evals/");
    std::fs::create_dir_all(folder)
        .with_context(|| format!("cannot create {}", folder.display()))?;
    write_atomic(&path, serde_json::to_string(&(key, report))?.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// FNV-1a, 64 bit: a stable hash for run folder names (the same on every machine).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}
