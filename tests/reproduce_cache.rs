//! The run cache reuses a trained model only when nothing that made it has changed (issue 22):
//! the training sources hashed by `build.rs` include the weight loaders, the stored key of a
//! finished run is compared on reuse, and `--verify` demands exact equality for the same
//! computation and a corrected interval otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;

use srpnet::reproduce::{TRAINING_SOURCES, first_difference, same_computation, training_code_hash};
use srpnet::stats::{prediction_interval_family, t_cdf, t_quantile, t975};

fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap().flatten() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        }
    } else if from.is_file() {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap();
    }
}

#[test]
fn a_loader_change_changes_the_code_hash_and_an_evaluation_change_does_not() {
    let top = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The function is the one the build used: same tree, same hash as the binary's.
    assert_eq!(
        format!("{:016x}", training_code_hash(top)),
        env!("SRPNET_CODE_HASH")
    );
    let copy = std::env::temp_dir().join(format!("srpnet-code-hash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&copy);
    for source in TRAINING_SOURCES {
        copy_tree(&top.join(source), &copy.join(source));
    }
    let before = training_code_hash(&copy);
    assert_eq!(
        before,
        training_code_hash(top),
        "the copy hashes like the tree"
    );
    // Evaluation and tables need no retraining: not hashed.
    std::fs::create_dir_all(copy.join("src/reproduce")).unwrap();
    std::fs::write(copy.join("src/eval.rs"), "// changed\n").unwrap();
    std::fs::write(copy.join("src/reproduce/tables.rs"), "// changed\n").unwrap();
    assert_eq!(training_code_hash(&copy), before);
    // Every weight loader decides starting weights: a one-byte change to any of them retrains.
    let loaders: Vec<PathBuf> = std::fs::read_dir(top.join("src/weights"))
        .unwrap()
        .flatten()
        .map(|e| copy.join("src/weights").join(e.file_name()))
        .collect();
    assert!(loaders.len() >= 3, "{loaders:?}");
    for loader in &loaders {
        // (Made if the copy lacks it: then the hash must still change.)
        let original = std::fs::read(loader).unwrap_or_default();
        std::fs::create_dir_all(loader.parent().unwrap()).unwrap();
        std::fs::write(loader, [&original[..], b" "].concat()).unwrap();
        assert_ne!(training_code_hash(&copy), before, "{}", loader.display());
        std::fs::write(loader, original).unwrap();
    }
    assert_eq!(training_code_hash(&copy), before);
    let _ = std::fs::remove_dir_all(&copy);
}

#[test]
fn a_stored_key_that_differs_retrains_and_says_why() {
    let out = std::env::temp_dir().join(format!("srpnet-stale-key-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_reproduce"))
            .args([
                "smoke",
                "--quiet",
                "--jobs",
                "1",
                "--steps",
                "3",
                "--episodes",
                "2",
            ])
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap()
    };
    let first = run();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let csv = out.join("smoke.synthetic-5i.csv");
    let rows = |p: &Path| -> Vec<String> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_string)
            .collect()
    };
    let before = rows(&csv);
    // Unchanged: reused, silently.
    let again = run();
    assert!(again.status.success());
    assert!(!String::from_utf8_lossy(&again.stderr).contains("retraining"));
    // A key written by another build (here: another rustc) must not be reused.
    let mut edited = 0;
    for e in std::fs::read_dir(out.join("runs")).unwrap().flatten() {
        let key = e.path().join("cache-key.json");
        if let Ok(text) = std::fs::read_to_string(&key) {
            let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
            v["rustc"] = "rustc 0.0.0 (an older compiler)".into();
            std::fs::write(&key, v.to_string()).unwrap();
            edited += 1;
        }
    }
    assert_eq!(edited, 2, "two models in the smoke reproduction");
    let third = run();
    let stderr = String::from_utf8_lossy(&third.stderr);
    assert!(third.status.success(), "{stderr}");
    assert_eq!(stderr.matches("retraining").count(), 2, "{stderr}");
    assert!(
        stderr.contains("`rustc`"),
        "the reason names the field: {stderr}"
    );
    // Retrained from scratch, the same numbers, and the header says so; the key is this
    // build's again.
    assert_eq!(rows(&csv), before);
    let header = std::fs::read_to_string(&csv).unwrap();
    assert!(
        header.contains("# models: all 2 trained by this run"),
        "{header}"
    );
    let fourth = run();
    assert!(!String::from_utf8_lossy(&fourth.stderr).contains("retraining"));
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn t_quantiles_match_the_table_and_closed_forms() {
    for df in 1..=30 {
        let q = t_quantile(0.975, df);
        assert!(
            (q - t975(df)).abs() < 1.5e-3,
            "df {df}: {q} vs {}",
            t975(df)
        );
        assert!((t_cdf(q, df) - 0.975).abs() < 1e-12);
        assert!((t_cdf(-q, df) - 0.025).abs() < 1e-12, "symmetry at df {df}");
    }
    for p in [0.6, 0.9, 0.99, 0.999, 0.99999] {
        // df 1 (Cauchy): tan(pi (p - 1/2)); df 2: (2p - 1) / sqrt(2 p (1 - p)).
        let cauchy = (std::f64::consts::PI * (p - 0.5)).tan();
        assert!(
            (t_quantile(p, 1) / cauchy - 1.0).abs() < 1e-9,
            "df 1, p {p}"
        );
        let two = (2.0 * p - 1.0) / (2.0 * p * (1.0 - p)).sqrt();
        assert!((t_quantile(p, 2) / two - 1.0).abs() < 1e-9, "df 2, p {p}");
    }
    // Wider with more cells tested at once, narrower with more degrees of freedom.
    assert!(t_quantile(1.0 - 0.025 / 8.0, 7) > t_quantile(0.975, 7));
    assert!(t_quantile(0.99, 20) < t_quantile(0.99, 5));
    assert!(
        t_quantile(1.0, 3).is_nan() && t_quantile(0.4, 3).is_nan() && t_quantile(0.9, 0).is_nan()
    );
    assert!(t_cdf(f64::NAN, 3).is_nan());
}

#[test]
fn the_verify_interval_is_corrected_and_fits_the_seed_counts() {
    // Committed 0.30, 0.32, 0.34 (n = 3, s = 0.02), one cell, a rerun of 3 seeds:
    // 0.32 +- 4.303 * 0.02 * sqrt(1/3 + 1/3) = 0.32 +- 0.07027 (the 95% interval).
    let (lo, hi) = prediction_interval_family(&[0.30, 0.32, 0.34], 3, 1).unwrap();
    assert!((lo - (0.32 - 0.07027)).abs() < 1e-4 && (hi - (0.32 + 0.07027)).abs() < 1e-4);
    // A rerun of 1 seed: sqrt(1/3 + 1) instead; 4 cells at once: t(1 - 0.025/4, 2) = 8.860.
    let (lo, _) = prediction_interval_family(&[0.30, 0.32, 0.34], 1, 1).unwrap();
    assert!((0.32 - lo - 4.303 * 0.02 * (4.0f64 / 3.0).sqrt()).abs() < 1e-4);
    let (lo, _) = prediction_interval_family(&[0.30, 0.32, 0.34], 3, 4).unwrap();
    assert!(
        (0.32 - lo - 8.860 * 0.02 * (2.0f64 / 3.0).sqrt()).abs() < 1e-3,
        "{lo}"
    );
    // One committed seed, or none rerun: no interval (not NaN bounds).
    assert!(prediction_interval_family(&[0.3], 3, 1).is_none());
    assert!(prediction_interval_family(&[0.3, 0.4], 0, 1).is_none());
    assert!(prediction_interval_family(&[0.3, f64::NAN], 2, 1).is_none());
}

#[test]
fn the_same_computation_must_match_exactly() {
    let header = "# code hash: abc\n# build: rustc 1.95.0, features []\n# backend: flex\n\
                  # dataset: synthetic-5i\n# profile: embedded\n# image size: 97 px\n\
                  # training: 3 steps\n# schedule: SGD\n# training seeds: [1]\n\
                  # evaluation: 2 episodes\n# iqi: off\n";
    let body = "method,fold,shots,train_seed,eval_seed,miou,fb_iou,support_miou,episodes\n\
                PANet,0,1,1,7,0.224802,0.432255,0.388915,2\n\
                SRPNet,0,1,1,7,0.268859,0.509869,0.300859,2\n";
    let committed = format!("{header}# date: yesterday\n{body}");
    let same = format!("{header}# date: today\n{body}");
    assert_eq!(same_computation(&committed, &same), Ok(()));
    assert_eq!(first_difference(&committed, &same), None);
    // One digit in the last place of one cell: named.
    let moved = same.replace("0.509869", "0.509870");
    let d = first_difference(&committed, &moved).unwrap();
    assert!(
        d.contains("row 2") && d.contains("fb_iou") && d.contains("0.509870"),
        "{d}"
    );
    let d = first_difference(
        &committed,
        &same.replace("SRPNet,0,1,1,7,0.268859,0.509869,0.300859,2\n", ""),
    )
    .unwrap();
    assert!(d.contains("rows"), "{d}");
    // Another compiler, backend or seed list is not the same computation, and says which.
    for (from, to, key) in [
        ("rustc 1.95.0", "rustc 1.96.0", "build"),
        ("backend: flex", "backend: tch", "backend"),
        (
            "training seeds: [1]",
            "training seeds: [1, 2]",
            "training seeds",
        ),
    ] {
        let why = same_computation(&committed, &same.replace(from, to)).unwrap_err();
        assert!(why.contains(&format!("`{key}`")), "{why}");
    }
    // A committed CSV from before the `build` line cannot claim the same computation.
    let old = committed.replace("# build: rustc 1.95.0, features []\n", "");
    assert!(
        same_computation(&old, &same)
            .unwrap_err()
            .contains("missing")
    );
}
