//! The run cache: a trained model lives in `runs/<hash>/`, the hash of its training config.

use super::Runner;
use crate::train::{RunDir, TrainConfig};

impl Runner {
    pub(super) fn run_dir(&self, config: &TrainConfig) -> RunDir {
        let json = serde_json::to_string(config).expect("a config serialises");
        RunDir::new(
            self.paths
                .runs
                .join(format!("{:016x}", fnv1a(json.as_bytes()))),
        )
    }
}

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
