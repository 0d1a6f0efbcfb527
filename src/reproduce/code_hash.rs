// The hash of the sources that can change a trained model. `build.rs` includes this file to
// record the hash in the binary (`SRPNET_CODE_HASH`); the library exposes the same function so
// that a test can check which edits change it.

// `build.rs` includes this file: plain `//` comments (no inner doc comments) and std only.
use std::path::{Path, PathBuf};

// ANCHOR: code_hash
/// What trains a model: the model, the data and its episodes, the weight loaders (they decide
/// the starting weights), the training loop, the backends, the config files' reader, the locked
/// dependency versions (Burn's kernels), and our patched copy of Burn's `burn-backend` (the
/// tree that is compiled; its README and the patch's text beside it are documentation).
/// Evaluation, tables and figures are left out: changing them needs no retraining.
pub const TRAINING_SOURCES: [&str; 9] = [
    "src/model",
    "src/data",
    "src/weights",
    "src/train.rs",
    "src/backend.rs",
    "src/experiment.rs",
    "src/metrics.rs",
    "Cargo.lock",
    "vendor/burn-backend",
];

/// FNV-1a (64 bit) over every file's path (relative to `root`) and bytes, in sorted path order:
/// the same sources give the same hash on every machine, so a rebuild of unchanged code reuses
/// the cache.
pub fn training_code_hash(root: &Path) -> u64 {
    hash_sources(root, &TRAINING_SOURCES)
}
// ANCHOR_END: code_hash

/// FNV-1a over the files under `sources` (relative to `root`).
pub fn hash_sources(root: &Path, sources: &[&str]) -> u64 {
    let mut files: Vec<PathBuf> = Vec::new();
    for source in sources {
        collect(&root.join(source), &mut files);
    }
    files.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for file in files {
        let bytes = std::fs::read(&file).unwrap_or_default();
        let relative = file.strip_prefix(root).unwrap_or(&file);
        let name = relative.to_string_lossy().replace('\\', "/");
        for &b in name.as_bytes().iter().chain(&[0]).chain(&bytes).chain(&[0]) {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
            collect(&entry.path(), out);
        }
    } else if path.is_file() {
        out.push(path.to_path_buf());
    }
}
