//! Experiment files: configs read from TOML or JSON, with errors that name the file.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::data::coco::Coco20i;
use crate::data::folder::FolderBenchmark;
use crate::data::folds::FoldConvention;
use crate::data::pascal::{Pascal5i, PascalConfig, PascalProtocol};
use crate::data::synthetic::Synthetic5i;
use crate::data::{Benchmark, DATA_ROOT_ENV, DataError, Split, data_root};

#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML for this config: {message}")]
    Toml { path: PathBuf, message: String },
    #[error("config file {path} is not valid JSON for this config: {message}")]
    Json { path: PathBuf, message: String },
    #[error("config file {path} must end in .toml or .json")]
    Extension { path: PathBuf },
}

/// Reads a config from a `.toml` or `.json` file. Fields left out take their defaults; unknown
/// fields are an error (a typo must not silently fall back to a default).
pub fn load_config<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => toml::from_str(&text).map_err(|e| ConfigFileError::Toml {
            path: path.to_path_buf(),
            message: e.to_string(),
        }),
        Some("json") => serde_json::from_str(&text).map_err(|e| ConfigFileError::Json {
            path: path.to_path_buf(),
            message: e.to_string(),
        }),
        _ => Err(ConfigFileError::Extension {
            path: path.to_path_buf(),
        }),
    }
}

// ANCHOR: data_config
/// Which benchmark a run uses. With no `root` (and no `SRPNET_DATA`), only synthetic-5i needs
/// no files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum BenchmarkName {
    #[serde(rename = "synthetic-5i")]
    #[value(name = "synthetic-5i")]
    Synthetic5i,
    #[serde(rename = "pascal-5i")]
    #[value(name = "pascal-5i")]
    Pascal5i,
    #[serde(rename = "coco-20i")]
    #[value(name = "coco-20i")]
    Coco20i,
    /// A user's own labelled folder (`crate::data::folder`).
    Folder,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    pub benchmark: BenchmarkName,
    /// Data root; `None` falls back to `$SRPNET_DATA`.
    pub root: Option<PathBuf>,
    pub pascal_protocol: PascalProtocol,
    pub coco_folds: FoldConvention,
}
// ANCHOR_END: data_config

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            benchmark: BenchmarkName::Synthetic5i,
            root: None,
            pascal_protocol: PascalProtocol::Panet,
            coco_folds: FoldConvention::Interleaved,
        }
    }
}

impl DataConfig {
    /// A cheap look at the data root (the folder layout only, no lists or annotations read):
    /// the user's own input is checked before anything expensive or downloadable is needed.
    pub fn check_root(&self) -> Result<(), DataError> {
        let Some(root) = data_root(self.root.as_deref()) else {
            return Ok(());
        };
        match self.benchmark {
            BenchmarkName::Synthetic5i => Ok(()),
            BenchmarkName::Pascal5i => crate::data::pascal::resolve_voc_root(&root).map(drop),
            BenchmarkName::Coco20i => crate::data::coco::resolve_coco_root(&root).map(drop),
            BenchmarkName::Folder => {
                crate::data::folder::read_classes(&root.join("classes.txt")).map(drop)
            }
        }
    }

    /// Opens the benchmark. `size` is the generated image size of synthetic-5i; `splits` the
    /// parts a COCO run needs (its train JSON alone is 450 MB).
    pub fn open(&self, size: usize, splits: &[Split]) -> Result<Box<dyn Benchmark>, DataError> {
        let root = || {
            data_root(self.root.as_deref()).ok_or_else(|| {
                DataError::InvalidSpec(format!(
                    "{} needs its data: pass --data-root DIR or set {DATA_ROOT_ENV} \
                     (the README shows the expected directory tree)",
                    self.label()
                ))
            })
        };
        Ok(match self.benchmark {
            BenchmarkName::Synthetic5i => Box::new(Synthetic5i::with_size(size)),
            BenchmarkName::Pascal5i => Box::new(Pascal5i::open(&PascalConfig {
                root: root()?,
                protocol: self.pascal_protocol,
                min_object_pixels: None,
            })?),
            BenchmarkName::Coco20i => Box::new(Coco20i::open(&root()?, self.coco_folds, splits)?),
            BenchmarkName::Folder => Box::new(FolderBenchmark::open(&root()?)?),
        })
    }

    /// The benchmark with its protocol or fold convention, as every output names it.
    pub fn label(&self) -> String {
        match self.benchmark {
            BenchmarkName::Synthetic5i => "synthetic-5i".into(),
            BenchmarkName::Pascal5i => format!("pascal-5i/{}", self.pascal_protocol.name()),
            BenchmarkName::Coco20i => format!("coco-20i/{}", self.coco_folds.name()),
            BenchmarkName::Folder => "folder".into(),
        }
    }
}

// ANCHOR: provenance
/// What produced a result file: written as `# key: value` lines at the top of every CSV and
/// Markdown output.
#[derive(Debug, Clone, Serialize)]
pub struct Provenance {
    pub fields: Vec<(String, String)>,
}

impl Provenance {
    /// Starts with what every output carries: crate version, git commit, backend, date.
    pub fn new(backend: &str) -> Self {
        let mut p = Self { fields: Vec::new() };
        p.push(
            "produced by",
            format!("srpnet {}", env!("CARGO_PKG_VERSION")),
        );
        p.push("git commit", git_commit());
        p.push("backend", backend);
        p.push("unix time", unix_time().to_string());
        p
    }

    pub fn push(&mut self, key: &str, value: impl ToString) -> &mut Self {
        self.fields.push((key.to_string(), value.to_string()));
        self
    }

    /// `# key: value` lines.
    pub fn header(&self) -> String {
        self.fields
            .iter()
            .map(|(k, v)| format!("# {k}: {v}\n"))
            .collect()
    }
}
// ANCHOR_END: provenance

/// The commit of the source tree this binary was built from (`-dirty` if it had uncommitted
/// changes), recorded by `build.rs`; "unknown" outside a git checkout.
pub fn git_commit() -> String {
    env!("SRPNET_GIT_COMMIT").to_string()
}

pub fn unix_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Writes `contents` to `path` through a temporary file and a rename, so that a reader (or a
/// crash) never sees half a file. The temporary name is unique to this process and call: two
/// processes writing the same file never write into each other's.
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path
        .file_name()
        .map_or("file".into(), |n| n.to_string_lossy());
    let tmp = path.with_file_name(format!(".{name}.{}-{call}.tmp", std::process::id()));
    let written = std::fs::write(&tmp, contents).and_then(|_| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}
