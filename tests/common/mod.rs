//! Small helpers shared by the property tests.
#![allow(dead_code)]

use burn::tensor::{Device, Tensor, TensorData};
use srpnet::backend::{BackendKind, compiled_backends};

pub fn device() -> Device {
    Device::flex()
}

/// Seeds `device`'s random numbers and returns a guard to hold while the test draws them
/// (model initialisation, `Tensor::random`). Burn's flex keeps one RNG per process (`SEED` in
/// `burn-flex`), and the test harness runs a file's tests in parallel threads: two tests that
/// seed and draw at once interleave their draws, so a model would differ from run to run (the
/// backend parity test saw a stem gradient differ by 3e-3 instead of 1e-5 that way). The lock is
/// not reentrant: drop the guard before seeding again in the same test.
pub fn seed(device: &Device, seed: u64) -> std::sync::MutexGuard<'static, ()> {
    static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // A test that panicked while holding the guard leaves the lock poisoned, not the RNG.
    let guard = RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    device.seed(seed);
    guard
}

pub fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec()
        .expect("f32 data")
}

/// A deterministic pseudo-random sequence in [-1, 1) (SplitMix64), so tests need no RNG crate.
pub fn noise(seed: u64, n: usize) -> Vec<f32> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
        })
        .collect()
}

// ANCHOR: compare
/// The largest `|a_i - b_i|`, for comparisons against a tolerance.
///
/// NaN-aware: a NaN or infinite value anywhere, or slices of different lengths, fail the test
/// with the index and both values. (A fold with `f32::max` skips NaN: an all-NaN output would
/// report a difference of 0 and pass.)
#[track_caller]
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    worst_difference(a, b).1
}

/// Fails unless `actual` and `expected` agree within `tolerance` everywhere (and are finite);
/// the message names `what`, the worst index and its two values.
#[track_caller]
pub fn assert_close(actual: &[f32], expected: &[f32], tolerance: f32, what: &str) {
    let (i, diff) = worst_difference(actual, expected);
    assert!(
        diff <= tolerance,
        "{what}: differs by {diff:e} > {tolerance:e} at index {i} ({} vs expected {})",
        actual[i],
        expected[i]
    );
}

/// Fails, naming the index and value, if any value is NaN or infinite.
#[track_caller]
pub fn assert_finite(values: &[f32], what: &str) {
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        panic!("{what}: non-finite value {} at index {i}", values[i]);
    }
}

/// (index, value) of the largest `|a_i - b_i|`; panics on NaN/inf or a length mismatch.
#[track_caller]
fn worst_difference(a: &[f32], b: &[f32]) -> (usize, f32) {
    assert_eq!(
        a.len(),
        b.len(),
        "compared slices differ in length ({} vs {})",
        a.len(),
        b.len()
    );
    let mut worst = (0, 0.0f32);
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        assert!(
            x.is_finite() && y.is_finite(),
            "non-finite value at index {i}: {x} vs {y}"
        );
        let diff = (x - y).abs();
        if diff > worst.1 {
            worst = (i, diff);
        }
    }
    worst
}
// ANCHOR_END: compare

/// The config of every property test: `DEFAULT_PROPTEST_CASES` cases, unless `PROPTEST_CASES`
/// asks for another count (`ProptestConfig::with_cases` alone would ignore the variable), and a
/// fixed seed, unless `PROPTEST_RNG_SEED` gives another: the same cases on every run, so a test
/// never passes on one machine and fails on the next by the luck of the draw. Tolerances must
/// still hold at any seed: look for cases the fixed seed does not reach with
/// `PROPTEST_RNG_SEED=$RANDOM PROPTEST_CASES=30000 cargo test --test ...`.
pub fn proptest_config() -> proptest::test_runner::Config {
    use proptest::test_runner::{Config, RngSeed};
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_PROPTEST_CASES);
    // `Config::default()` reads PROPTEST_RNG_SEED; without it the seed would be random.
    let defaults = Config::default();
    let rng_seed = match defaults.rng_seed {
        RngSeed::Random => RngSeed::Fixed(FIXED_PROPTEST_SEED),
        given => given,
    };
    Config {
        cases,
        rng_seed,
        failure_persistence: None,
        // Cases a `prop_assume!` rejects (a few percent in some tests) count against a fixed 1,024
        // by default, which a run of 30,000 cases exceeds by chance.
        max_global_rejects: defaults.max_global_rejects.max(cases / 4),
        ..defaults
    }
}

/// Cases per property: every case is a handful of tiny tensors, so a test file's properties take
/// seconds even at this count.
pub const DEFAULT_PROPTEST_CASES: u32 = 10_000;

/// The seed of every property test unless `PROPTEST_RNG_SEED` is set.
pub const FIXED_PROPTEST_SEED: u64 = 0x5150_2024;

/// A note the test harness does not capture (unlike `println!`/`eprintln!`, whose output only
/// shows for failing tests): for skips that a reader of the test log must see.
pub fn note(message: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{message}");
}

/// Runs `check` on every compiled backend other than flex that opens a device (an autodiff
/// device when `autodiff`). Where flex is the only backend, says so on stderr and returns; where
/// others are compiled in but none opened a device, fails: a build made to be compared with
/// flex that compared nothing is not a pass.
pub fn on_every_second_backend(autodiff: bool, mut check: impl FnMut(BackendKind, Device)) {
    let others: Vec<BackendKind> = compiled_backends()
        .into_iter()
        .filter(|b| *b != BackendKind::Flex)
        .collect();
    if others.is_empty() {
        note("skipped: only flex is compiled in (build with --features wgpu, vulkan, tch or cuda)");
        return;
    }
    let mut compared = 0;
    let mut unavailable = vec![];
    for backend in others {
        match backend.device(autodiff) {
            Ok(device) => {
                check(backend, device);
                compared += 1;
            }
            Err(e) => {
                note(&format!("{}: no device: {e}", backend.name()));
                unavailable.push(format!("{}: {e}", backend.name()));
            }
        }
    }
    assert!(
        compared > 0,
        "no backend was compared with flex; compiled in but without a device: {}",
        unavailable.join("; ")
    );
}

/// The committed results files (`reproductions/results/*.csv` and `*.md`) as (file name, text),
/// read from git's HEAD where the tree is a git checkout: `reproduce table1` rewrites the files
/// in place, so a user's own regeneration (on another CPU, or a second run from the cache) must
/// not change what the tests of the committed results see. Outside git, the files on disk.
pub fn committed_results() -> Vec<(String, String)> {
    let top = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = "reproductions/results";
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(top)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8(o.stdout).expect("UTF-8 results"))
    };
    let wanted = |name: &str| name.ends_with(".csv") || name.ends_with(".md");
    let mut files: Vec<(String, String)> =
        match git(&["ls-tree", "--name-only", "HEAD", &format!("{dir}/")]) {
            Some(list) => list
                .lines()
                .filter(|p| wanted(p))
                .map(|p| {
                    let text = git(&["show", &format!("HEAD:{p}")])
                        .unwrap_or_else(|| panic!("git show HEAD:{p} failed"));
                    (p.rsplit('/').next().unwrap().to_string(), text)
                })
                .collect(),
            None => std::fs::read_dir(top.join(dir))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| wanted(&p.to_string_lossy()))
                .map(|p| {
                    let text = std::fs::read_to_string(&p).unwrap();
                    (p.file_name().unwrap().to_string_lossy().to_string(), text)
                })
                .collect(),
        };
    files.sort();
    files
}
