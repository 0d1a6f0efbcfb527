//! Experiment files: configs read from TOML or JSON, with errors that name the file.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

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
