//! Typed errors of the data module. Every message names the file (or the setting) and the fix.

use std::fmt;
use std::path::{Path, PathBuf};

/// What can go wrong while reading or sampling a benchmark.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("data root {path} does not exist or is not a folder; {fix}")]
    MissingRoot { path: PathBuf, fix: String },

    #[error("{path} does not exist or is not a file; {fix}")]
    MissingFile { path: PathBuf, fix: String },

    #[error("split list {path} is missing; {fix}")]
    MissingSplitFile { path: PathBuf, fix: String },

    #[error("{path}: listed in {list} but the file is missing; {fix}")]
    MissingEntryFile {
        path: PathBuf,
        list: PathBuf,
        fix: String,
    },

    #[error(
        "{path}: cannot decode the image ({reason}); the file is truncated or not an image: \
         download it again or remove it from the list"
    )]
    BadImage { path: PathBuf, reason: String },

    #[error(
        "{mask}: mask is {mask_w}x{mask_h} but its image {image} is {image_w}x{image_h}; \
         the mask belongs to another image or was resized: regenerate it at the image's size"
    )]
    SizeMismatch {
        mask: PathBuf,
        image: PathBuf,
        mask_w: usize,
        mask_h: usize,
        image_w: usize,
        image_h: usize,
    },

    #[error(
        "{path}: class id {id} is outside the benchmark (0..={max}, 255 = ignore); \
         the mask is not a {benchmark} class-id mask: use SegmentationClassAug masks or fix the file"
    )]
    ClassOutOfRange {
        path: PathBuf,
        id: u32,
        max: u32,
        benchmark: String,
    },

    #[error(
        "{benchmark}: class {class} ({name}) has fewer than {needed} usable images ({found}) for \
         fold {fold} {split} after filtering; {fix}"
    )]
    EmptyClass {
        benchmark: String,
        class: u8,
        name: String,
        fold: usize,
        split: crate::data::Split,
        needed: usize,
        found: usize,
        fix: String,
    },

    #[error(
        "{path}: malformed COCO annotation file ({reason}); download instances_*.json of COCO 2014 again"
    )]
    BadJson { path: PathBuf, reason: String },

    #[error(
        "{path}: annotation {annotation} of image {image_id} has an RLE of size {rle_h}x{rle_w} but the \
         image is {image_h}x{image_w}; the annotation file does not belong to these images"
    )]
    RleSize {
        path: PathBuf,
        annotation: u64,
        image_id: u64,
        rle_h: usize,
        rle_w: usize,
        image_h: usize,
        image_w: usize,
    },

    #[error(
        "{path}: annotation {annotation}: bad segmentation ({reason}); the annotation file is corrupt"
    )]
    BadSegmentation {
        path: PathBuf,
        annotation: u64,
        reason: String,
    },

    #[error("{path}: {reason}; {fix}")]
    AmbiguousMask {
        path: PathBuf,
        reason: String,
        fix: String,
    },

    #[error("{archive}, member {member}: {reason}; {fix}")]
    BadArchive {
        archive: PathBuf,
        member: String,
        reason: String,
        fix: String,
    },

    #[error("{path}, line {line}: {reason}; {fix}")]
    BadTextFile {
        path: PathBuf,
        line: usize,
        reason: String,
        fix: String,
    },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("invalid episode request: {0}")]
    InvalidSpec(String),
}

impl DataError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// The file this error is about, if there is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            DataError::MissingRoot { path, .. }
            | DataError::MissingFile { path, .. }
            | DataError::MissingSplitFile { path, .. }
            | DataError::MissingEntryFile { path, .. }
            | DataError::BadImage { path, .. }
            | DataError::ClassOutOfRange { path, .. }
            | DataError::BadJson { path, .. }
            | DataError::RleSize { path, .. }
            | DataError::BadSegmentation { path, .. }
            | DataError::AmbiguousMask { path, .. }
            | DataError::BadTextFile { path, .. }
            | DataError::BadArchive { archive: path, .. }
            | DataError::Io { path, .. } => Some(path),
            DataError::SizeMismatch { mask, .. } => Some(mask),
            DataError::EmptyClass { .. } | DataError::InvalidSpec(_) => None,
        }
    }
}

/// Files (or annotations) that were skipped because they were unsafe to use, with the reason.
/// Loaders keep going past them and the caller prints [`SkipReport`] at the end.
#[derive(Debug, Default, Clone)]
pub struct SkipReport {
    pub skipped: Vec<String>,
}

impl SkipReport {
    pub fn push(&mut self, err: &DataError) {
        self.skipped.push(err.to_string());
    }

    pub fn len(&self) -> usize {
        self.skipped.len()
    }

    pub fn is_empty(&self) -> bool {
        self.skipped.is_empty()
    }

    pub fn extend(&mut self, other: &SkipReport) {
        self.skipped.extend(other.skipped.iter().cloned());
    }
}

impl fmt::Display for SkipReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.skipped.is_empty() {
            return write!(f, "skipped: none");
        }
        writeln!(f, "skipped {} item(s):", self.skipped.len())?;
        for (i, s) in self.skipped.iter().enumerate() {
            if i == 20 {
                writeln!(f, "  ... and {} more", self.skipped.len() - 20)?;
                break;
            }
            writeln!(f, "  - {s}")?;
        }
        Ok(())
    }
}
