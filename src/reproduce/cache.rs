//! The run cache: a trained model lives in `runs/<hash>/`, the hash of everything that
//! determines it: its training config, the backend, the crate version and the hash of the
//! training sources (`build.rs`). A code change never reuses a model trained by older code; a
//! rebuild of unchanged code does.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::Runner;
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

    /// Before a model is trained: with `--fresh`, its cached run goes (once per invocation,
    /// so that `all` still trains each model once); the key is written beside it.
    pub(super) fn prepare_run(&self, config: &TrainConfig, dir: &RunDir) -> Result<()> {
        if self.options.fresh
            && self.fresh.borrow_mut().insert(dir.root.clone())
            && dir.root.exists()
        {
            std::fs::remove_dir_all(&dir.root)
                .with_context(|| format!("--fresh: cannot remove {}", dir.root.display()))?;
        }
        std::fs::create_dir_all(&dir.root)
            .with_context(|| format!("cannot create {}", dir.root.display()))?;
        let path: PathBuf = dir.root.join("cache-key.json");
        write_atomic(
            &path,
            cache_key(config, self.options.backend.name()).as_bytes(),
        )
        .with_context(|| format!("cannot write {}", path.display()))
    }

    /// Steps already trained in `dir`; 0 for a run `--fresh` will retrain.
    pub(super) fn done_steps(&self, dir: &RunDir) -> u64 {
        if self.options.fresh && !self.fresh.borrow().contains(&dir.root) {
            return 0;
        }
        done_steps(dir)
    }
}

/// Steps the checkpoint in `dir` has done (0 without one).
pub(super) fn done_steps(dir: &RunDir) -> u64 {
    dir.latest_checkpoint()
        .and_then(|c| std::fs::read_to_string(c.join("state.json")).ok())
        .and_then(|t| serde_json::from_str::<crate::train::TrainState>(&t).ok())
        .map_or(0, |s| s.step)
}

/// FNV-1a, 64 bit: a stable hash for run folder names (the same on every machine).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}
