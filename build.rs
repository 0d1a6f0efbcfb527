//! Records, for the provenance of every output, the git commit the binary is built from and a
//! hash of the sources that determine a trained model (the run cache's key includes it).

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

// ANCHOR: code_hash
/// What trains a model: the model, the data and its episodes, the training loop, the backends,
/// the config files' reader, the locked dependency versions (Burn's kernels), and our patch of
/// Burn's convolution weight gradient (`vendor/`). Evaluation, tables and figures are left out:
/// changing them needs no retraining.
const TRAINING_SOURCES: [&str; 8] = [
    "src/model",
    "src/data",
    "src/train.rs",
    "src/backend.rs",
    "src/experiment.rs",
    "src/metrics.rs",
    "Cargo.lock",
    "vendor",
];

/// FNV-1a (64 bit) over every file's path and bytes, in sorted path order: the same sources
/// give the same hash on every machine, so a rebuild of unchanged code reuses the cache.
fn code_hash() -> u64 {
    let mut files: Vec<PathBuf> = Vec::new();
    for root in TRAINING_SOURCES {
        collect(Path::new(root), &mut files);
    }
    files.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for file in files {
        let bytes = std::fs::read(&file).unwrap_or_default();
        let name = file.to_string_lossy().replace('\\', "/");
        for &b in name.as_bytes().iter().chain(&[0]).chain(&bytes).chain(&[0]) {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}
// ANCHOR_END: code_hash

fn collect(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
            collect(&entry.path(), out);
        }
    } else if path.is_file() {
        out.push(path.to_path_buf());
    }
}

fn main() {
    let commit = match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(c) if !c.is_empty() => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty { format!("{c}-dirty") } else { c }
        }
        _ => "unknown".to_string(),
    };
    println!("cargo:rustc-env=SRPNET_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=SRPNET_CODE_HASH={:016x}", code_hash());
    // A new commit moves HEAD (or the branch it points to) and rewrites the index (in a
    // worktree, both live under the path `git rev-parse --git-dir` prints).
    // Edited sources change the dirty flag and the code hash.
    let git_dir = git(&["rev-parse", "--git-dir"]).unwrap_or_else(|| ".git".into());
    let common = git(&["rev-parse", "--git-common-dir"]).unwrap_or_else(|| git_dir.clone());
    for file in [
        format!("{git_dir}/HEAD"),
        format!("{git_dir}/index"),
        format!("{common}/refs/heads"),
    ] {
        println!("cargo:rerun-if-changed={file}");
    }
    for path in ["src", "vendor", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={path}");
    }
}
