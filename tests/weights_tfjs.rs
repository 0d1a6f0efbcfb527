//! The TF.js layers reader on tiny models this test writes itself (manifest + shards): every
//! Keras tensor lands in the right module tensor, conv biases are folded into batch norm
//! exactly, and broken files give typed errors, never a panic.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::module::Param;
use burn::tensor::Tensor;
use common::{device, max_abs_diff, noise, tensor, values};
use srpnet::model::backbone::{BackboneConfig, StrideVariant};
use srpnet::weights::{WeightsError, tfjs};

const CLASSES: usize = 10;

fn tiny_config() -> BackboneConfig {
    BackboneConfig {
        blocks: [1, 1, 1, 1],
        base_width: 4,
        variant: StrideVariant::V1,
        output_stride: 32,
        batch_norm_epsilon: 1e-3,
        ..BackboneConfig::resnet50()
    }
}

/// A fresh empty folder under the system temp dir.
fn scratch(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "srpnet-weights-tfjs-{}-{name}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The Keras tensors of a ResNet with `blocks` = [1, 1, 1, 1], base width 4 and a
/// `CLASSES`-way head, named as keras.applications.ResNet50 names them; values are
/// deterministic noise (variances positive).
fn keras_tensors() -> Vec<(String, Vec<usize>, Vec<f32>)> {
    struct Out(Vec<(String, Vec<usize>, Vec<f32>)>);
    impl Out {
        fn add(&mut self, name: String, shape: Vec<usize>, positive: bool) {
            let n = shape.iter().product();
            let mut v = noise(self.0.len() as u64 + 1, n);
            if positive {
                v.iter_mut().for_each(|x| *x = x.abs() + 0.5);
            }
            self.0.push((name, shape, v));
        }
        fn conv_bn(&mut self, conv: &str, bn: &str, shape: [usize; 4]) {
            let o = shape[3];
            // As in the npm manifest, the batch norm's weights come first.
            self.add(format!("{bn}/gamma"), vec![o], false);
            self.add(format!("{bn}/beta"), vec![o], false);
            self.add(format!("{bn}/moving_mean"), vec![o], false);
            self.add(format!("{bn}/moving_variance"), vec![o], true);
            self.add(format!("{conv}/kernel"), shape.to_vec(), false);
            self.add(format!("{conv}/bias"), vec![o], false);
        }
    }
    let mut out = Out(Vec::new());
    out.conv_bn("conv1", "bn_conv1", [7, 7, 3, 4]);
    let mut in_ch = 4;
    for stage in 2..=5 {
        let w = 4 << (stage - 2);
        let b = format!("{stage}a");
        let names = |k: &str| (format!("res{b}_{k}"), format!("bn{b}_{k}"));
        for (k, shape) in [
            ("branch2a", [1, 1, in_ch, w]),
            ("branch2b", [3, 3, w, w]),
            ("branch2c", [1, 1, w, 4 * w]),
            ("branch1", [1, 1, in_ch, 4 * w]),
        ] {
            let (conv, bn) = names(k);
            out.conv_bn(&conv, &bn, shape);
        }
        if stage == 3 {
            // The head in the middle of the manifest: storage order must not matter.
            out.add("fc1000/kernel".into(), vec![128, CLASSES], false);
            out.add("fc1000/bias".into(), vec![CLASSES], false);
        }
        in_ch = 4 * w;
    }
    out.0
}

/// Writes a TF.js layers model: `model.json` and shards of `shard_bytes` bytes (cut across
/// tensor boundaries on purpose).
fn write_model(dir: &Path, tensors: &[(String, Vec<usize>, Vec<f32>)], shard_bytes: usize) {
    let bytes: Vec<u8> = tensors
        .iter()
        .flat_map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()))
        .collect();
    let chunks: Vec<&[u8]> = bytes.chunks(shard_bytes).collect();
    let mut paths = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let name = format!("group1-shard{}of{}.bin", i + 1, chunks.len());
        std::fs::write(dir.join(&name), chunk).unwrap();
        paths.push(name);
    }
    let weights: Vec<_> = tensors
        .iter()
        .map(|(name, shape, _)| serde_json::json!({"name": name, "shape": shape, "dtype": "float32"}))
        .collect();
    let manifest = serde_json::json!({
        "format": "layers-model",
        "generatedBy": "srpnet tests",
        "modelTopology": {},
        "weightsManifest": [{"paths": paths, "weights": weights}],
    });
    std::fs::write(dir.join("model.json"), manifest.to_string()).unwrap();
}

fn by_name(tensors: &[(String, Vec<usize>, Vec<f32>)]) -> BTreeMap<String, Vec<f32>> {
    tensors
        .iter()
        .map(|(n, _, v)| (n.clone(), v.clone()))
        .collect()
}

fn param<const D: usize>(p: &Param<Tensor<D>>) -> Vec<f32> {
    values(p.val())
}

/// HWIO -> OIHW, written independently of the loader.
fn oihw(hwio: &[f32], [h, w, i, o]: [usize; 4]) -> Vec<f32> {
    let mut out = Vec::with_capacity(hwio.len());
    for oo in 0..o {
        for ii in 0..i {
            for y in 0..h {
                for x in 0..w {
                    out.push(hwio[((y * w + x) * i + ii) * o + oo]);
                }
            }
        }
    }
    out
}

#[test]
fn tiny_model_round_trips_exactly() {
    let dir = scratch("roundtrip");
    let tensors = keras_tensors();
    write_model(&dir, &tensors, 4096);
    let k = by_name(&tensors);
    let (model, report) = tfjs::load_classifier(&dir, &tiny_config(), &device()).unwrap();

    // 17 convs, each with 4 batch-norm tensors, plus the head.
    assert_eq!(report.applied.len(), 17 * 5 + 2, "{report}");
    assert!(report.missing.is_empty(), "{report}");
    assert!(report.unused.is_empty(), "{report}");
    assert_eq!(report.folded_biases, 17);
    report.require_complete().unwrap();

    let stem = &model.backbone.stem;
    assert_eq!(
        param(&stem.conv.weight),
        oihw(&k["conv1/kernel"], [7, 7, 3, 4])
    );
    assert_eq!(param(&stem.bn.gamma), k["bn_conv1/gamma"]);
    assert_eq!(param(&stem.bn.beta), k["bn_conv1/beta"]);
    assert_eq!(
        values(stem.bn.running_var.value()),
        k["bn_conv1/moving_variance"]
    );
    let folded: Vec<f32> = k["bn_conv1/moving_mean"]
        .iter()
        .zip(&k["conv1/bias"])
        .map(|(m, b)| m - b)
        .collect();
    assert_eq!(values(stem.bn.running_mean.value()), folded);

    // layer3 = Keras stage 4: width 16, input 32 channels.
    let block = &model.backbone.layer3[0];
    assert_eq!(
        param(&block.conv2.weight),
        oihw(&k["res4a_branch2b/kernel"], [3, 3, 16, 16])
    );
    assert_eq!(
        param(&block.conv3.weight),
        oihw(&k["res4a_branch2c/kernel"], [1, 1, 16, 64])
    );
    assert_eq!(param(&block.bn1.gamma), k["bn4a_branch2a/gamma"]);
    let down = block.downsample.as_ref().expect("first block projects");
    assert_eq!(
        param(&down.conv.weight),
        oihw(&k["res4a_branch1/kernel"], [1, 1, 32, 64])
    );
    assert_eq!(param(&down.bn.beta), k["bn4a_branch1/beta"]);
    let folded: Vec<f32> = k["bn4a_branch1/moving_mean"]
        .iter()
        .zip(&k["res4a_branch1/bias"])
        .map(|(m, b)| m - b)
        .collect();
    assert_eq!(values(down.bn.running_mean.value()), folded);

    // The Keras Dense kernel [in, classes] is Burn's Linear layout as it is.
    assert_eq!(param(&model.fc.weight), k["fc1000/kernel"]);
    assert_eq!(param(model.fc.bias.as_ref().unwrap()), k["fc1000/bias"]);

    // And the whole network runs: probabilities over the head's classes.
    let images = tensor(noise(99, 3 * 32 * 32), [1, 3, 32, 32], &device());
    let p = values(model.probabilities(images));
    assert_eq!(p.len(), CLASSES);
    assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    let _ = std::fs::remove_dir_all(dir);
}

/// A direct convolution of one image `[C, H, W]` with a Keras HWIO kernel plus bias.
fn conv_hwio(
    x: &[f32],
    [c, h, w]: [usize; 3],
    kernel: &[f32],
    [kh, kw, _, o]: [usize; 4],
    bias: &[f32],
    pad: usize,
) -> Vec<f32> {
    let mut out = vec![0.0; o * h * w];
    for oo in 0..o {
        for y in 0..h {
            for xx in 0..w {
                let mut s = bias[oo];
                for ky in 0..kh {
                    for kx in 0..kw {
                        let (iy, ix) = (y + ky, xx + kx);
                        if iy < pad || ix < pad || iy - pad >= h || ix - pad >= w {
                            continue;
                        }
                        for ci in 0..c {
                            s += x[(ci * h + iy - pad) * w + ix - pad]
                                * kernel[((ky * kw + kx) * c + ci) * o + oo];
                        }
                    }
                }
                out[(oo * h + y) * w + xx] = s;
            }
        }
    }
    out
}

#[test]
fn folded_batch_norm_equals_conv_with_bias_then_batch_norm() {
    let dir = scratch("fold");
    let tensors = keras_tensors();
    write_model(&dir, &tensors, 1000);
    let k = by_name(&tensors);
    let (backbone, report) = tfjs::load_backbone(&dir, &tiny_config(), &device()).unwrap();
    // Without a head, the Dense weights are the only unused tensors.
    assert_eq!(report.unused, ["fc1000/bias", "fc1000/kernel"]);
    assert!(report.missing.is_empty());

    // layer1's 3x3 conv (Keras res2a_branch2b, 4 -> 4 channels, padding 1) on a 4x6x5 input,
    // computed by hand as Keras does it: conv + bias, then batch norm with epsilon 1e-3.
    let (c, h, w) = (4, 6, 5);
    let x = noise(7, c * h * w);
    let kernel = &k["res2a_branch2b/kernel"];
    let y = conv_hwio(
        &x,
        [c, h, w],
        kernel,
        [3, 3, 4, 4],
        &k["res2a_branch2b/bias"],
        1,
    );
    let bn = |name: &str| k[&format!("bn2a_branch2b/{name}")].clone();
    let (gamma, beta, mean, var) = (
        bn("gamma"),
        bn("beta"),
        bn("moving_mean"),
        bn("moving_variance"),
    );
    let expected: Vec<f32> = y
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let o = i / (h * w);
            gamma[o] * (v - mean[o]) / (var[o] + 1e-3).sqrt() + beta[o]
        })
        .collect();

    let block = &backbone.layer1[0];
    let input = tensor(x, [1, c, h, w], &device());
    let ours = values(block.bn2.forward(block.conv2.forward(input)));
    let diff = max_abs_diff(&ours, &expected);
    assert!(
        diff < 1e-4,
        "folded conv+BN differs from conv+bias+BN by {diff}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn freezing_settings_survive_loading() {
    let dir = scratch("freeze");
    write_model(&dir, &keras_tensors(), 4096);
    let frozen = BackboneConfig {
        frozen_stages: 2,
        ..tiny_config()
    };
    let device = device().autodiff();
    let (backbone, _) = tfjs::load_backbone(&dir, &frozen, &device).unwrap();
    assert!(!backbone.stem.conv.weight.val().is_require_grad());
    assert!(!backbone.layer1[0].conv1.weight.val().is_require_grad());
    assert!(backbone.layer2[0].conv1.weight.val().is_require_grad());
    let _ = std::fs::remove_dir_all(dir);
}

fn load_err(dir: &Path, config: &BackboneConfig) -> WeightsError {
    match tfjs::load_classifier(dir, config, &device()) {
        Ok(_) => panic!("loading {} should fail", dir.display()),
        Err(e) => e,
    }
}

#[test]
fn missing_manifest_is_a_clear_error() {
    let dir = scratch("empty");
    let e = load_err(&dir, &tiny_config());
    assert!(matches!(e, WeightsError::MissingManifest { .. }), "{e}");
    assert!(e.to_string().contains("fetch-weights.sh"), "{e}");
}

#[test]
fn truncated_shard_is_named() {
    let dir = scratch("truncated");
    write_model(&dir, &keras_tensors(), 4096);
    // Cut a shard in the middle: the error names that shard, not the last one.
    let victim = dir.join("group1-shard2of");
    let shard = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().starts_with(&*victim.to_string_lossy()))
        .unwrap();
    let bytes = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &bytes[..1000]).unwrap();
    let e = load_err(&dir, &tiny_config());
    match &e {
        WeightsError::Truncated { path, .. } => assert_eq!(path, &shard, "{e}"),
        other => panic!("expected Truncated, got {other}"),
    }

    // A missing shard is an I/O error naming it.
    std::fs::remove_file(&shard).unwrap();
    let e = load_err(&dir, &tiny_config());
    assert!(
        matches!(e, WeightsError::Io { ref path, .. } if path == &shard),
        "{e}"
    );
}

#[test]
fn extra_bytes_mean_a_foreign_model() {
    let dir = scratch("extra");
    write_model(&dir, &keras_tensors(), 1 << 20);
    let shard = dir.join("group1-shard1of1.bin");
    let mut bytes = std::fs::read(&shard).unwrap();
    bytes.extend_from_slice(&[0; 64]);
    std::fs::write(&shard, bytes).unwrap();
    let e = load_err(&dir, &tiny_config());
    assert!(matches!(e, WeightsError::Foreign { .. }), "{e}");
}

#[test]
fn wrong_shapes_name_the_tensor_and_its_file() {
    let dir = scratch("shape");
    let mut tensors = keras_tensors();
    // res3a_branch2b should be 3x3x8x8; write it 3x3x8x9.
    let t = tensors
        .iter_mut()
        .find(|t| t.0 == "res3a_branch2b/kernel")
        .unwrap();
    t.1 = vec![3, 3, 8, 9];
    t.2 = noise(5, 3 * 3 * 8 * 9);
    write_model(&dir, &tensors, 1 << 20);
    let e = load_err(&dir, &tiny_config());
    match &e {
        WeightsError::ShapeMismatch {
            tensor,
            file,
            expected,
            found,
        } => {
            assert_eq!(tensor, "res3a_branch2b/kernel");
            assert_eq!(file, &dir.join("group1-shard1of1.bin"));
            assert_eq!(expected, &[3, 3, 8, 8]);
            assert_eq!(found, &[3, 3, 8, 9]);
        }
        other => panic!("expected ShapeMismatch, got {other}"),
    }

    // A whole model of another width: the first tensor checked is named.
    let wide = BackboneConfig {
        base_width: 8,
        ..tiny_config()
    };
    write_model(&dir, &keras_tensors(), 1 << 20);
    let e = load_err(&dir, &wide);
    assert!(matches!(e, WeightsError::ShapeMismatch { .. }), "{e}");
}

#[test]
fn missing_and_unused_tensors_are_reported() {
    let dir = scratch("report");
    let mut tensors = keras_tensors();
    tensors.retain(|t| t.0 != "bn4a_branch2b/gamma");
    tensors.push(("extra_layer/kernel".into(), vec![3], vec![1.0, 2.0, 3.0]));
    write_model(&dir, &tensors, 4096);
    let (_, report) = tfjs::load_classifier(&dir, &tiny_config(), &device()).unwrap();
    assert_eq!(report.missing, ["backbone.layer3.0.bn2.gamma"]);
    assert_eq!(report.unused, ["extra_layer/kernel"]);
    let e = report.require_complete().unwrap_err();
    assert!(matches!(e, WeightsError::Missing { .. }), "{e}");
}

#[test]
fn foreign_and_unsupported_files_are_rejected() {
    let dir = scratch("foreign");
    std::fs::write(dir.join("model.json"), b"\x89PNG not json").unwrap();
    assert!(matches!(
        load_err(&dir, &tiny_config()),
        WeightsError::Foreign { .. }
    ));

    std::fs::write(
        dir.join("model.json"),
        br#"{"format": "graph-model", "weightsManifest": []}"#,
    )
    .unwrap();
    assert!(matches!(
        load_err(&dir, &tiny_config()),
        WeightsError::Foreign { .. }
    ));

    std::fs::write(
        dir.join("model.json"),
        br#"{"weightsManifest": [{"paths": [], "weights": [{"name": "conv1/kernel", "shape": [2], "dtype": "float16"}]}]}"#,
    )
    .unwrap();
    let e = load_err(&dir, &tiny_config());
    assert!(matches!(e, WeightsError::UnsupportedDtype { .. }), "{e}");
}

#[test]
fn configs_that_cannot_hold_keras_weights_are_refused() {
    let dir = scratch("config");
    write_model(&dir, &keras_tensors(), 1 << 20);
    for config in [
        BackboneConfig {
            variant: StrideVariant::V1_5,
            ..tiny_config()
        },
        BackboneConfig {
            batch_norm_epsilon: 1e-5,
            ..tiny_config()
        },
    ] {
        let e = load_err(&dir, &config);
        assert!(matches!(e, WeightsError::Incompatible { .. }), "{e}");
    }
}
