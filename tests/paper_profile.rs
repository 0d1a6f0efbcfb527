//! The paper profile's configuration: a fair PANet baseline (signed features, PAR as PANet
//! skips it), ImageNet weights required and checked, and bad input stopped before anything is
//! written. None of these tests needs the fetched weights.

mod common;

use std::path::Path;
use std::process::Command;

use burn::tensor::{Device, Tensor, TensorData};
use srpnet::model::fidelity::{Metric, MetricConfig};
use srpnet::model::panet::prototype_alignment_loss;
use srpnet::model::{ModelConfig, Profile};
use srpnet::train::TrainConfig;

fn device() -> Device {
    srpnet::backend::BackendKind::Flex.device(false).unwrap()
}

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("srpnet-paper-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_baseline_is_signed_and_srpnet_is_not() {
    for profile in [Profile::Paper, Profile::Embedded] {
        let panet = ModelConfig::panet(profile);
        let srpnet = ModelConfig::srpnet(profile);
        assert!(
            !panet.pyramid.final_relu,
            "PANet builds with lastRelu=False"
        );
        assert!(
            srpnet.pyramid.final_relu,
            "fidelity needs non-negative features"
        );
        panet.validate().unwrap();
        srpnet.validate().unwrap();
    }
    // The features themselves: the baseline's take both signs, SRPNet's none below zero.
    let device = device();
    let _rng = common::seed(&device, 7);
    let image = Tensor::<4>::random(
        [1, 3, 65, 65],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let signed = ModelConfig::panet(Profile::Embedded)
        .init(&device)
        .unwrap()
        .features(image.clone());
    let relu = ModelConfig::srpnet(Profile::Embedded)
        .init(&device)
        .unwrap()
        .features(image);
    let min = |t: Tensor<4>| t.min().into_scalar::<f32>();
    assert!(min(signed) < 0.0, "the baseline's features must be signed");
    assert!(min(relu) >= 0.0);
}

#[test]
fn fidelity_on_signed_features_is_an_error_that_says_why() {
    for metric in [Metric::Fidelity, Metric::ClassicalFidelity] {
        let mut config = ModelConfig::srpnet(Profile::Paper);
        config.pyramid.final_relu = false;
        config.metric = MetricConfig {
            metric,
            scale: 20.0,
        };
        let message = config.validate().unwrap_err().to_string();
        assert!(message.contains("pyramid.final_relu"), "{message}");
        assert!(message.contains("non-negative"), "{message}");
    }
}

#[test]
fn the_paper_preset_freezes_batch_norm_and_starts_from_the_fetched_weights() {
    let config = TrainConfig::preset(ModelConfig::srpnet(Profile::Paper), Profile::Paper);
    assert!(config.model.backbone.frozen_batch_norm);
    assert_eq!(config.backbone.weights.as_deref(), Some("fetched"));
    // The embedded profile keeps its small network trained from scratch, batch norm training.
    let embedded = TrainConfig::preset(ModelConfig::srpnet(Profile::Embedded), Profile::Embedded);
    assert!(!embedded.model.backbone.frozen_batch_norm);
    assert!(embedded.backbone.weights.is_none());
}

/// [1, 2, 3, 3] logits whose argmax is foreground at `fg` pixels.
fn logits(fg: &[bool], device: &Device) -> Tensor<4> {
    let mut v = Vec::new();
    v.extend(fg.iter().map(|&f| if f { 0.0 } else { 5.0 }));
    v.extend(fg.iter().map(|&f| if f { 5.0 } else { 0.0 }));
    Tensor::from_data(TensorData::new(v, [1, 2, 3, 3]), device)
}

#[test]
fn par_skips_only_an_empty_predicted_foreground_as_panet_does() {
    let device = device();
    let _rng = common::seed(&device, 3);
    let features = |n| {
        Tensor::<4>::random(
            [n, 4, 3, 3],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        )
    };
    let mask: Vec<f32> = (0..9).map(|i| if i < 4 { 1.0 } else { 0.0 }).collect();
    let support_mask = Tensor::<3>::from_data(TensorData::new(mask, [1, 3, 3]), &device);
    let metric = MetricConfig {
        metric: Metric::Cosine,
        scale: 20.0,
    };
    let run = |fg: &[bool]| {
        prototype_alignment_loss(
            &metric,
            features(1),
            logits(fg, &device),
            features(1),
            support_mask.clone(),
        )
        .unwrap()
    };
    // No predicted foreground: skipped.
    assert!(run(&[false; 9]).is_none());
    // No predicted background: PANet still computes the loss (its background prototype is 0).
    let all_fg = run(&[true; 9]).expect("an empty background is not skipped");
    let value = all_fg.into_scalar::<f32>();
    assert!(value.is_finite() && value > 0.0, "{value}");
    // Both regions: a loss.
    let mixed = [true, true, false, false, true, false, false, false, false];
    assert!(run(&mixed).is_some());
}

fn srpnet_cli() -> Command {
    Command::new(env!("CARGO_BIN_EXE_srpnet"))
}

fn run(mut cmd: Command) -> (bool, String) {
    let out = cmd.output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn the_paper_profile_without_weights_stops_at_once_and_says_how_to_fetch_them() {
    let dir = temp("noweights");
    let cache = dir.join("empty-cache");
    std::fs::create_dir_all(&cache).unwrap();
    let out = dir.join("run");
    let mut cmd = srpnet_cli();
    cmd.args(["train", "--profile", "paper", "--quiet", "--out"])
        .arg(&out)
        .env("SRPNET_CACHE", &cache);
    let (ok, text) = run(cmd);
    assert!(!ok, "{text}");
    assert!(text.contains("scripts/fetch-weights.sh"), "{text}");
    assert!(text.contains("SRPNET_CACHE"), "{text}");
    assert!(!out.exists(), "nothing may be written: {}", out.display());
}

/// A safetensors file with the given f32 tensors (name, shape).
fn write_safetensors(path: &Path, tensors: &[(&str, Vec<usize>)]) {
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, shape) in tensors {
        let bytes = 4 * shape.iter().product::<usize>();
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + bytes]}),
        );
        offset += bytes;
    }
    let mut json = serde_json::to_vec(&serde_json::Value::Object(header)).unwrap();
    while !json.len().is_multiple_of(8) {
        json.push(b' ');
    }
    let mut file = (json.len() as u64).to_le_bytes().to_vec();
    file.extend(json);
    file.extend(vec![0u8; offset]);
    std::fs::write(path, file).unwrap();
}

/// `srpnet train --profile paper --weights W`: must fail naming `names`, with no run folder.
fn refuses(tag: &str, weights: &Path, names: &str, also: &str) {
    let out = weights.parent().unwrap().join(format!("run-{tag}"));
    let mut cmd = srpnet_cli();
    cmd.args([
        "train",
        "--profile",
        "paper",
        "--steps",
        "1",
        "--quiet",
        "--out",
    ])
    .arg(&out)
    .arg("--weights")
    .arg(weights);
    let (ok, text) = run(cmd);
    assert!(!ok, "{tag}: {text}");
    assert!(
        text.contains(names),
        "{tag}: the error must name {names}: {text}"
    );
    assert!(text.contains(also), "{tag}: expected `{also}` in: {text}");
    assert!(!out.exists(), "{tag}: nothing may be written");
}

#[test]
fn bad_weights_are_refused_naming_the_file_before_anything_is_written() {
    let dir = temp("badweights");
    // Another architecture: a ResNet whose first convolution is 3x3.
    let wrong = dir.join("resnet-3x3-stem.safetensors");
    write_safetensors(&wrong, &[("conv1.weight", vec![64, 3, 3, 3])]);
    refuses(
        "architecture",
        &wrong,
        "resnet-3x3-stem.safetensors",
        "conv1",
    );
    // Not weights at all.
    let text = dir.join("notes.pth");
    std::fs::write(&text, "these are not weights").unwrap();
    refuses("foreign", &text, "notes.pth", "not a valid");
    // A torchvision file given as a TF.js model: model.json that is a safetensors file.
    let tv = dir.join("tv");
    std::fs::create_dir_all(&tv).unwrap();
    write_safetensors(
        &tv.join("model.json"),
        &[("conv1.weight", vec![64, 3, 7, 7])],
    );
    refuses("torchvision-as-tfjs", &tv, "model.json", "TF.js");
    // A TF.js model with a truncated shard.
    let tfjs = dir.join("tfjs");
    std::fs::create_dir_all(&tfjs).unwrap();
    std::fs::write(
        tfjs.join("model.json"),
        r#"{"format": "layers-model", "weightsManifest": [{"paths": ["group1-shard1of1.bin"],
            "weights": [{"name": "conv1/kernel", "shape": [7, 7, 3, 64], "dtype": "float32"}]}]}"#,
    )
    .unwrap();
    std::fs::write(tfjs.join("group1-shard1of1.bin"), vec![0u8; 100]).unwrap();
    refuses("truncated", &tfjs, "group1-shard1of1.bin", "truncated");
    // A file that is not there.
    refuses(
        "missing",
        &dir.join("nowhere.safetensors"),
        "nowhere.safetensors",
        "cannot read",
    );
}

#[test]
fn resume_cannot_be_given_weights() {
    let dir = temp("resumeweights");
    let mut cmd = srpnet_cli();
    cmd.args(["train", "--resume", "--weights", "fetched", "--out"])
        .arg(dir.join("run"));
    let (ok, text) = run(cmd);
    assert!(!ok);
    assert!(
        text.contains("--resume") && text.contains("--weights"),
        "{text}"
    );
}

#[test]
fn plan_on_a_root_without_the_benchmark_is_a_clear_error() {
    let dir = temp("planroot");
    let out = dir.join("out");
    let out_text = Command::new(env!("CARGO_BIN_EXE_reproduce"))
        .args(["table1", "--profile", "embedded", "--plan", "--data-root"])
        .arg(&dir)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out_text.stderr).to_string();
    assert!(!out_text.status.success(), "{text}");
    assert!(
        text.contains("JPEGImages"),
        "the error must say what is missing: {text}"
    );
    assert!(text.contains(&dir.display().to_string()), "{text}");
}
