//! Records, for the provenance of every output, the git commit the binary is built from and a
//! hash of the sources that determine a trained model (the run cache's key includes it).

use std::process::Command;

// The hash itself (and `use std::path::{Path, PathBuf}`), shared with the library
// (`srpnet::reproduce::code_hash`) so that a test can check which edits change it.
include!("src/reproduce/code_hash.rs");

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The enabled Cargo features, sorted (`fusion`, `x86-v4`, ...; empty for the default build).
fn features() -> String {
    let mut names: Vec<String> = std::env::vars()
        .filter_map(|(k, _)| k.strip_prefix("CARGO_FEATURE_").map(str::to_string))
        .map(|f| f.to_lowercase().replace('_', "-"))
        // `default` is set whenever the default set is (empty here): not a feature of its own.
        .filter(|f| f != "default")
        .collect();
    names.sort();
    names.join(",")
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
    println!(
        "cargo:rustc-env=SRPNET_CODE_HASH={:016x}",
        training_code_hash(Path::new("."))
    );
    println!(
        "cargo:rustc-env=SRPNET_SOURCE_HASH={:016x}",
        // Every source of the binary: what a kept evaluation depends on.
        hash_sources(
            Path::new("."),
            &["src", "Cargo.lock", "vendor/burn-backend"]
        )
    );
    // The compiler and the features change the kernels' code (and so the rounding) too.
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SRPNET_RUSTC={version}");
    println!("cargo:rustc-env=SRPNET_FEATURES={}", features());
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
