//! Reader of torchvision-style ResNet-50 weights (a `resnet50().state_dict()` saved as
//! safetensors, or as a `.pth` checkpoint read through burn-store) into our ResNet **v1.5**.
//!
//! torchvision names map onto our module tree with three renames: `conv1`/`bn1` live in `stem`
//! (`stem.conv`, `stem.bn`), and the `downsample` Sequential's `0`/`1` are `conv`/`bn`. Batch
//! norm `weight`/`bias` are Burn's `gamma`/`beta`; the `fc` weight is stored `[out, in]` and
//! transposed to Burn's `[in, out]`. `num_batches_tracked` is ignored.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::store::{ModuleSnapshot, ModuleStore, PytorchStore, SafetensorsStore, burn_pack};
use burn::tensor::{DType, Device, TensorData};

use super::{
    LoadReport, Staged, WeightsError, WeightsFormat, apply, classifier::ImageNetClassifier,
    parameter_shapes,
};
use crate::model::backbone::{Backbone, BackboneConfig, StrideVariant};

/// The backbone config of torchvision's ResNet-50: v1.5 (stride on the 3x3 conv), BN epsilon
/// 1e-5, output stride 32.
pub fn backbone_config() -> BackboneConfig {
    BackboneConfig {
        variant: StrideVariant::V1_5,
        output_stride: 32,
        batch_norm_epsilon: 1e-5,
        ..BackboneConfig::resnet50()
    }
}

/// The format of `path`: by extension (`.safetensors`; `.pth`, `.pt`, `.bin`, `.ckpt`), else by
/// its first bytes.
pub fn detect_format(path: &Path) -> Result<WeightsFormat, WeightsError> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("safetensors") => return Ok(WeightsFormat::Safetensors),
        Some("pth" | "pt" | "bin" | "ckpt") => return Ok(WeightsFormat::Pytorch),
        _ => {}
    }
    let mut head = [0u8; 9];
    let mut file = std::fs::File::open(path).map_err(|e| WeightsError::io(path, e))?;
    let n = file
        .read(&mut head)
        .map_err(|e| WeightsError::io(path, e))?;
    if n == 9 && head[8] == b'{' {
        Ok(WeightsFormat::Safetensors)
    } else {
        Ok(WeightsFormat::Pytorch)
    }
}

/// Reads every tensor of the file, named as the file names them. Nothing is decoded yet.
fn read_tensors(
    path: &Path,
    format: WeightsFormat,
) -> Result<BTreeMap<String, burn_pack::Tensor>, WeightsError> {
    if !path.is_file() {
        return Err(WeightsError::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        ));
    }
    let foreign = |reason: String| WeightsError::Foreign {
        path: path.to_path_buf(),
        format,
        reason,
    };
    match format {
        WeightsFormat::Safetensors => SafetensorsStore::from_file(path)
            .map_indices_contiguous(false)
            .get_all_tensors()
            .cloned()
            .map_err(|e| foreign(e.to_string())),
        _ => PytorchStore::from_file(path)
            .map_indices_contiguous(false)
            .get_all_tensors()
            .cloned()
            .map_err(|e| foreign(e.to_string())),
    }
}

// ANCHOR: names
/// Our module path for a torchvision key (`prefix` is where the backbone sits in the target
/// module), or `None` for bookkeeping we ignore.
fn our_path(key: &str, prefix: &str) -> Option<String> {
    if key.ends_with("num_batches_tracked") {
        return None;
    }
    // DataParallel and training checkpoints prefix the keys.
    let key = ["module.", "state_dict.", "model."]
        .iter()
        .find_map(|p| key.strip_prefix(p))
        .unwrap_or(key);
    Some(if let Some(rest) = key.strip_prefix("conv1.") {
        format!("{prefix}stem.conv.{rest}")
    } else if let Some(rest) = key.strip_prefix("bn1.") {
        format!("{prefix}stem.bn.{rest}")
    } else if key.starts_with("layer") {
        let key = key
            .replace(".downsample.0.", ".downsample.conv.")
            .replace(".downsample.1.", ".downsample.bn.");
        format!("{prefix}{key}")
    } else {
        key.to_string()
    })
}
// ANCHOR_END: names

/// Decodes a tensor of the file to f32 (any float width is converted).
fn decode(
    tensor: &burn_pack::Tensor,
    key: &str,
    path: &Path,
    format: WeightsFormat,
) -> Result<Vec<f32>, WeightsError> {
    if !matches!(
        tensor.dtype,
        DType::F32 | DType::F64 | DType::F16 | DType::BF16
    ) {
        return Err(WeightsError::UnsupportedDtype {
            tensor: key.into(),
            file: path.to_path_buf(),
            dtype: format!("{:?}", tensor.dtype),
        });
    }
    let bytes = tensor.to_bytes().map_err(|e| WeightsError::Truncated {
        path: path.to_path_buf(),
        detail: format!("tensor `{key}` cannot be read ({e})"),
    })?;
    let expected = tensor.shape.num_elements() * tensor.dtype.size();
    if bytes.len() != expected {
        return Err(WeightsError::Truncated {
            path: path.to_path_buf(),
            detail: format!(
                "tensor `{key}` has {} bytes, its shape needs {expected}",
                bytes.len()
            ),
        });
    }
    TensorData::from_bytes_vec(bytes.to_vec(), tensor.shape.clone(), tensor.dtype)
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| WeightsError::Foreign {
            path: path.to_path_buf(),
            format,
            reason: format!("tensor `{key}`: {e:?}"),
        })
}

fn load_into<M: ModuleSnapshot>(
    module: &mut M,
    path: &Path,
    prefix: &str,
    started: Instant,
) -> Result<LoadReport, WeightsError> {
    let format = detect_format(path)?;
    let tensors = read_tensors(path, format)?;
    let shapes = parameter_shapes(module);
    let mut staged = Vec::new();
    let mut unused = Vec::new();
    let mut ignored = Vec::new();
    for (key, tensor) in &tensors {
        let Some(mut ours) = our_path(key, prefix) else {
            ignored.push(key.clone());
            continue;
        };
        // Batch norm: torchvision's weight/bias are Burn's gamma/beta.
        for (from, to) in [(".weight", ".gamma"), (".bias", ".beta")] {
            if let Some(base) = ours.strip_suffix(from)
                && !shapes.contains_key(&ours)
                && shapes.contains_key(&format!("{base}{to}"))
            {
                ours = format!("{base}{to}");
            }
        }
        let Some(expected) = shapes.get(&ours) else {
            unused.push(key.clone());
            continue;
        };
        // Linear weights: torch stores [out, in], Burn [in, out].
        let linear = ours.ends_with("fc.weight") && expected.len() == 2;
        let want = if linear {
            vec![expected[1], expected[0]]
        } else {
            expected.clone()
        };
        if tensor.shape.as_slice() != want.as_slice() {
            return Err(WeightsError::ShapeMismatch {
                tensor: key.clone(),
                file: path.to_path_buf(),
                expected: want,
                found: tensor.shape.to_vec(),
            });
        }
        let mut values = decode(tensor, key, path, format)?;
        if linear {
            let [o, i] = [want[0], want[1]];
            values = (0..i * o).map(|n| values[(n % o) * i + n / o]).collect();
        }
        staged.push(Staged {
            path: ours,
            shape: expected.clone(),
            values,
        });
    }
    let values = staged.iter().map(|s| s.values.len()).sum();
    let packed = staged.into_iter().map(Staged::into_pack).collect();
    let applied = apply(module, packed, None, path, format)?;
    Ok(LoadReport {
        file: path.to_path_buf(),
        format,
        applied: applied.applied,
        missing: applied.missing,
        unused,
        ignored,
        folded_biases: 0,
        values,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The number of classes of the file's `fc` head, if it has one.
fn head_classes(path: &Path) -> Result<Option<(usize, usize)>, WeightsError> {
    let format = detect_format(path)?;
    let tensors = read_tensors(path, format)?;
    Ok(tensors
        .iter()
        .find(|(k, _)| our_path(k, "").as_deref() == Some("fc.weight"))
        .and_then(|(_, t)| match t.shape[..] {
            [classes, features] => Some((classes, features)),
            _ => None,
        }))
}

// ANCHOR: load
/// Loads a torchvision ResNet state dict (`.safetensors` or `.pth`) into a new backbone built
/// from `config` (normally [`backbone_config`], v1.5); its freezing settings are kept. The
/// `fc` head is reported unused.
pub fn load_backbone(
    path: &Path,
    config: &BackboneConfig,
    device: &Device,
) -> Result<(Backbone, LoadReport), WeightsError> {
    let started = Instant::now();
    let mut backbone = config.init(device)?;
    let report = load_into(&mut backbone, path, "", started)?;
    Ok((backbone, report))
}

/// Loads a torchvision ResNet state dict with its `fc` head.
pub fn load_classifier(
    path: &Path,
    config: &BackboneConfig,
    device: &Device,
) -> Result<(ImageNetClassifier, LoadReport), WeightsError> {
    let started = Instant::now();
    let Some((classes, features)) = head_classes(path)? else {
        return Err(WeightsError::NoHead {
            file: path.to_path_buf(),
            head: "fc.weight",
        });
    };
    if features != config.level_channels(4) {
        return Err(WeightsError::ShapeMismatch {
            tensor: "fc.weight".into(),
            file: PathBuf::from(path),
            expected: vec![classes, config.level_channels(4)],
            found: vec![classes, features],
        });
    }
    let mut classifier = ImageNetClassifier::new(config, classes, device)?;
    let report = load_into(&mut classifier, path, "backbone.", started)?;
    Ok((classifier, report))
}
// ANCHOR_END: load
