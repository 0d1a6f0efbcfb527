//! Episodes and benchmarks: everything between files on disk (or a procedural generator) and the
//! `Episode` the model reads.
//!
//! Data flows one way: a [`Benchmark`] plans an episode from `(fold, split, shots, seed, index)`
//! with the portable [`rng::Rng`], loads the images and masks, and a [`Transform`] resizes, flips
//! and normalises them. Nothing here depends on Burn: images are `Vec<f32>` in CHW order and masks
//! are `Vec<u8>` (class ids, or 0 / 1 with [`IGNORE`] = 255).

pub mod baseline;
pub mod cli;
pub mod coco;
pub mod episode;
pub mod error;
pub mod export;
pub mod figure;
pub mod folder;
pub mod folds;
pub mod images;
pub mod mat;
pub mod pascal;
pub mod prepare;
pub mod rng;
pub mod sampler;
pub mod synthetic;
pub mod transforms;

pub use episode::{
    ClassId, Episode, EpisodePlan, EpisodeSpec, IGNORE, Image, ImageRef, Mask, Shot, Split,
};
pub use error::{DataError, SkipReport};
pub use sampler::{Benchmark, Episodes};
pub use transforms::{Normalization, Transform};

/// The environment variable that names the data root when `--data-root` is not given.
pub const DATA_ROOT_ENV: &str = "SRPNET_DATA";

/// The data root: the explicit path if given, else `$SRPNET_DATA`, else `None` (the caller then
/// falls back to synthetic-5i).
pub fn data_root(explicit: Option<&std::path::Path>) -> Option<std::path::PathBuf> {
    match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => std::env::var_os(DATA_ROOT_ENV)
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from),
    }
}
