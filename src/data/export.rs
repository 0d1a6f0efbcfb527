//! `srpnet data export synthetic-5i`: synthetic-5i written to disk in the VOC layout, so it can
//! feed the PASCAL loader (and serve as its test fixture).

use std::path::{Path, PathBuf};

use super::episode::{ClassId, Split};
use super::error::DataError;
use super::images::{save_mask, save_rgb};
use super::pascal::parallel_map;
use super::synthetic::{GENERATOR_VERSION, SYNTHETIC_CLASSES, SYNTHETIC_NAME, render_scene};

/// Name of the manifest an export writes next to `JPEGImages`.
pub const EXPORT_MANIFEST: &str = "srpnet-export.json";

/// What to export.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    pub out: PathBuf,
    pub size: usize,
    /// Images per class from the train pool (listed in `train.txt` and `trainaug.txt`).
    pub train_per_class: usize,
    /// Images per class from the test pool (listed in `val.txt`).
    pub val_per_class: usize,
    pub layout: ExportLayout,
}

/// Where an export puts its files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportLayout {
    /// `VOCdevkit/VOC2012/{JPEGImages, SegmentationClassAug, ImageSets/Segmentation}`: read by
    /// the PASCAL-5i loader.
    #[default]
    Voc,
    /// `images/`, `masks/`, `classes.txt`, `test.txt` (the val pool): a `folder` benchmark.
    Folder,
}

/// What an export wrote; `srpnet data check pascal` compares a tree against it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExportManifest {
    pub benchmark: String,
    pub generator_version: u64,
    pub size: usize,
    pub train_per_class: usize,
    pub val_per_class: usize,
    /// `(path, count)` in the form of `pascal::VOC_EXPECTED`.
    pub expected: Vec<(String, usize)>,
}

/// The VOC name of a synthetic image, e.g. `s5i_val_c03_00042`.
pub fn export_name(class: ClassId, split: Split, index: usize) -> String {
    let s = match split {
        Split::Train => "train",
        Split::Test => "val",
    };
    format!("s5i_{s}_c{class:02}_{index:05}")
}

// ANCHOR: export
/// Writes `out/VOCdevkit/VOC2012/{JPEGImages, SegmentationClassAug, ImageSets/Segmentation}` and
/// the manifest. Masks hold the class ids of every object in the scene (main object and
/// distractors) and 255 on the ignore band, as SegmentationClassAug does.
pub fn export_synthetic(opts: &ExportOptions) -> Result<ExportManifest, DataError> {
    let voc = match opts.layout {
        ExportLayout::Voc => opts.out.join("VOCdevkit/VOC2012"),
        ExportLayout::Folder => opts.out.clone(),
    };
    let (jpeg, masks, sets) = match opts.layout {
        ExportLayout::Voc => (
            voc.join("JPEGImages"),
            voc.join("SegmentationClassAug"),
            voc.join("ImageSets/Segmentation"),
        ),
        ExportLayout::Folder => (voc.join("images"), voc.join("masks"), voc.clone()),
    };
    for d in [&jpeg, &masks, &sets] {
        std::fs::create_dir_all(d).map_err(|e| DataError::io(d, e))?;
    }
    let mut items: Vec<(ClassId, Split, usize)> = Vec::new();
    for class in 1..=20u8 {
        items.extend((0..opts.train_per_class).map(|i| (class, Split::Train, i)));
        items.extend((0..opts.val_per_class).map(|i| (class, Split::Test, i)));
    }
    let results = parallel_map(
        &items,
        |&(class, split, index)| -> Result<String, DataError> {
            let scene = render_scene(class, split, index as u64, opts.size);
            let name = export_name(class, split, index);
            save_rgb(&jpeg.join(format!("{name}.jpg")), &scene.image)?;
            save_mask(&masks.join(format!("{name}.png")), &scene.labels)?;
            Ok(name)
        },
    );
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for (r, &(_, split, _)) in results.into_iter().zip(&items) {
        match split {
            Split::Train => train.push(r?),
            Split::Test => val.push(r?),
        }
    }
    let write_list = |file: &str, names: &[String]| -> Result<(), DataError> {
        let p = sets.join(file);
        let mut text = names.join("\n");
        text.push('\n');
        std::fs::write(&p, text).map_err(|e| DataError::io(&p, e))
    };
    if opts.layout == ExportLayout::Folder {
        let names: Vec<String> = SYNTHETIC_CLASSES.iter().map(|c| c.to_string()).collect();
        write_list("classes.txt", &names)?;
        write_list("test.txt", &val)?;
        return Ok(ExportManifest {
            benchmark: SYNTHETIC_NAME.to_string(),
            generator_version: GENERATOR_VERSION,
            size: opts.size,
            train_per_class: opts.train_per_class,
            val_per_class: opts.val_per_class,
            expected: Vec::new(),
        });
    }
    write_list("train.txt", &train)?;
    write_list("trainaug.txt", &train)?;
    write_list("val.txt", &val)?;
    let n = train.len() + val.len();
    let manifest = ExportManifest {
        benchmark: SYNTHETIC_NAME.to_string(),
        generator_version: GENERATOR_VERSION,
        size: opts.size,
        train_per_class: opts.train_per_class,
        val_per_class: opts.val_per_class,
        expected: vec![
            ("JPEGImages/*.jpg".into(), n),
            ("SegmentationClassAug/*.png".into(), n),
            ("ImageSets/Segmentation/trainaug.txt".into(), train.len()),
            ("ImageSets/Segmentation/val.txt".into(), val.len()),
            ("ImageSets/Segmentation/train.txt".into(), train.len()),
        ],
    };
    let p = voc.join(EXPORT_MANIFEST);
    let json = serde_json::to_string_pretty(&manifest)
        .map_err(|e| DataError::InvalidSpec(e.to_string()))?;
    std::fs::write(&p, json).map_err(|e| DataError::io(&p, e))?;
    Ok(manifest)
}
// ANCHOR_END: export

/// Reads the manifest of an exported tree, if there is one.
pub fn read_manifest(voc: &Path) -> Option<ExportManifest> {
    let text = std::fs::read_to_string(voc.join(EXPORT_MANIFEST)).ok()?;
    serde_json::from_str(&text).ok()
}
