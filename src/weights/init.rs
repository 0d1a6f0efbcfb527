//! Where a training run's backbone starts: the `[backbone]` section of a training config.
//!
//! `weights` names ImageNet weights (the Keras TF.js folder of `scripts/fetch-weights.sh`, or a
//! torchvision `.safetensors`/`.pth`), or `"fetched"` for the folder that script fills under
//! `$SRPNET_CACHE`. The file decides the backbone variant, its batch-norm epsilon and the input
//! normalisation ([`resolve`] writes them into the config), so that a mismatch cannot be
//! configured; its sha256 goes into the resolved config and every output's provenance.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{LoadReport, WeightsError, WeightsFormat, default_weights_dir, tfjs, torchvision};
use crate::data::Normalization;
use crate::model::SrpNet;
use crate::model::backbone::{BackboneConfig, StrideVariant};

/// The value of `backbone.weights` that means "the weights `scripts/fetch-weights.sh` fetched".
pub const FETCHED: &str = "fetched";
/// The value of `backbone.weights` (or `--weights`) that asks for random weights.
pub const RANDOM: &str = "random";

// ANCHOR: config
/// The `[backbone]` section of a training config: where the backbone's weights start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackboneInit {
    /// ImageNet weights: a TF.js `model.json` (or its folder), a torchvision `.safetensors` or
    /// `.pth`, or `"fetched"` (the Keras ResNet50 under `$SRPNET_CACHE`). None: random weights.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weights: Option<String>,
    /// The weights' sha256, written when the run is resolved; a resumed run must find the same.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}
// ANCHOR_END: config

impl BackboneInit {
    pub fn is_random(&self) -> bool {
        self.weights.is_none()
    }

    /// From a command line's `--weights`: a path, `fetched` or `random`.
    pub fn named(spec: &str) -> Self {
        Self {
            weights: (spec != RANDOM).then(|| spec.to_string()),
            sha256: None,
        }
    }

    /// The fetched Keras weights (the paper profile's default).
    pub fn fetched() -> Self {
        Self {
            weights: Some(FETCHED.into()),
            sha256: None,
        }
    }
}

/// Weights located, their format known and their bytes hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedWeights {
    /// The file the loader reads (`model.json` for TF.js).
    pub path: PathBuf,
    pub format: WeightsFormat,
    pub sha256: String,
}

impl std::fmt::Display for ResolvedWeights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (sha256 {})", self.path.display(), self.sha256)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(
        "the paper profile starts from ImageNet weights, and there are none at {}: run \
         `bash scripts/fetch-weights.sh` (it fetches them into $SRPNET_CACHE, default \
         ~/.cache/srpnet) or pass --weights FILE (a TF.js model.json folder or a torchvision \
         .safetensors/.pth)",
        dir.display()
    )]
    NotFetched { dir: PathBuf },
    #[error(
        "the weights in {} changed since the run started: its config records sha256 {recorded}, \
         the file now has {found}; resume with the weights it started from, or start a new run \
         folder",
        path.display()
    )]
    ChangedSha {
        path: PathBuf,
        recorded: String,
        found: String,
    },
    #[error(
        "{} holds {} tensor(s) the backbone did not take (first: {}): it is not a ResNet-50 of \
         the expected layout",
        file.display(), unused.len(), unused.first().map_or("", String::as_str)
    )]
    LeftOver { file: PathBuf, unused: Vec<String> },
    #[error(transparent)]
    Weights(#[from] WeightsError),
}

// ANCHOR: resolve
/// Finds the weights `init` names, detects their format and hashes them. `Ok(None)` for a
/// random start. A missing file or folder is an error before anything is written.
pub fn locate(init: &BackboneInit) -> Result<Option<ResolvedWeights>, InitError> {
    let Some(spec) = init.weights.as_deref().filter(|w| *w != RANDOM) else {
        return Ok(None);
    };
    let path = if spec == FETCHED {
        let dir = default_weights_dir();
        if !dir.join("model.json").is_file() {
            return Err(InitError::NotFetched { dir });
        }
        dir.join("model.json")
    } else {
        PathBuf::from(spec)
    };
    let tfjs_like = path.is_dir() || path.extension().is_some_and(|e| e == "json");
    let (path, format) = if tfjs_like {
        (tfjs::find_manifest(&path)?, WeightsFormat::TfjsLayers)
    } else {
        if !path.is_file() {
            return Err(WeightsError::io(
                &path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            )
            .into());
        }
        let format = torchvision::detect_format(&path)?;
        (path, format)
    };
    let sha256 = fingerprint(&path, format)?;
    if let Some(recorded) = &init.sha256
        && recorded != &sha256
    {
        return Err(InitError::ChangedSha {
            path,
            recorded: recorded.clone(),
            found: sha256,
        });
    }
    Ok(Some(ResolvedWeights {
        path,
        format,
        sha256,
    }))
}

/// Makes `backbone` and `normalization` what the weights' format implies: the Keras TF.js
/// ResNet50 is v1 with BN epsilon 1e-3 and Caffe BGR input; torchvision's is v1.5 with
/// epsilon 1e-5 and mean/std input. Depth, width, dilation and freezing stay as configured.
pub fn adopt_format(
    format: WeightsFormat,
    backbone: &mut BackboneConfig,
    normalization: &mut Normalization,
) {
    let (variant, epsilon, norm) = match format {
        WeightsFormat::TfjsLayers => (
            StrideVariant::V1,
            tfjs::KERAS_BN_EPSILON,
            Normalization::CaffeBgr,
        ),
        WeightsFormat::Safetensors | WeightsFormat::Pytorch => {
            (StrideVariant::V1_5, 1e-5, Normalization::Torchvision)
        }
    };
    backbone.variant = variant;
    backbone.batch_norm_epsilon = epsilon;
    *normalization = norm;
}
// ANCHOR_END: resolve

// ANCHOR: load
/// Puts the weights into `model`'s backbone (built from `model.config`, freezing kept) and
/// checks the load is complete: every backbone tensor set, and nothing in the file left over
/// but its 1000-class head.
pub fn load_backbone_into(
    model: SrpNet,
    weights: &ResolvedWeights,
    device: &Device,
) -> Result<(SrpNet, LoadReport), InitError> {
    let config = &model.config.backbone;
    let (backbone, report) = match weights.format {
        WeightsFormat::TfjsLayers => tfjs::load_backbone(&weights.path, config, device)?,
        _ => torchvision::load_backbone(&weights.path, config, device)?,
    };
    report.require_complete()?;
    let left_over: Vec<String> = report
        .unused
        .iter()
        .filter(|name| !is_head(name))
        .cloned()
        .collect();
    if !left_over.is_empty() {
        return Err(InitError::LeftOver {
            file: weights.path.clone(),
            unused: left_over,
        });
    }
    Ok((SrpNet { backbone, ..model }, report))
}
// ANCHOR_END: load

/// The ImageNet classifier's tensors, which a segmentation backbone does not use.
fn is_head(name: &str) -> bool {
    name.starts_with("fc1000/") || name.starts_with("fc.")
}

type FingerprintKey = (PathBuf, u64, Option<std::time::SystemTime>);

/// The sha256 of the weights: of the file, or for TF.js of `model.json` followed by its shards
/// in manifest order. Remembered per (path, size, mtime) within a process: a reproduction
/// resolves the same weights for every model it trains.
pub fn fingerprint(path: &Path, format: WeightsFormat) -> Result<String, WeightsError> {
    static CACHE: Mutex<Option<HashMap<FingerprintKey, String>>> = Mutex::new(None);
    let meta = std::fs::metadata(path).map_err(|e| WeightsError::io(path, e))?;
    let key = (path.to_path_buf(), meta.len(), meta.modified().ok());
    if let Some(hit) = CACHE
        .lock()
        .ok()
        .and_then(|c| c.as_ref().and_then(|m| m.get(&key).cloned()))
    {
        return Ok(hit);
    }
    let mut files = vec![path.to_path_buf()];
    if format == WeightsFormat::TfjsLayers {
        files.extend(tfjs::shard_files(path)?);
    }
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    for file in &files {
        let mut f = std::fs::File::open(file).map_err(|e| WeightsError::io(file, e))?;
        loop {
            let n = f.read(&mut buffer).map_err(|e| WeightsError::io(file, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
        }
    }
    let digest: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if let Ok(mut c) = CACHE.lock() {
        c.get_or_insert_with(HashMap::new)
            .insert(key, digest.clone());
    }
    Ok(digest)
}
