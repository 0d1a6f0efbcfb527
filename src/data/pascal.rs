//! PASCAL-5i: VOC2012 `JPEGImages` + SBD-augmented `SegmentationClassAug` masks + list files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::episode::{ClassId, Episode, EpisodePlan, EpisodeSpec, Shot, Split};
use super::error::{DataError, SkipReport};
use super::folds::{FoldConvention, PASCAL_CLASSES, split_classes};
use super::images::{image_size, load_class_map, load_image};
use super::sampler::{
    Benchmark, ClassIndex, PlanSource, counts_of, episode_from_plan, plan_episode,
};

pub const PASCAL_NAME: &str = "pascal-5i";
pub const PASCAL_FOLDS: FoldConvention = FoldConvention::Consecutive;

/// The small-object filter of OSLSM (Shaban et al.), used by PFENet and BAM: a class counts for
/// an image only if it covers at least 2 x 32 x 32 pixels.
pub const OSLSM_MIN_PIXELS: usize = 2 * 32 * 32;

/// Files and list lengths of a complete VOC2012 + SegmentationClassAug tree.
pub const VOC_EXPECTED: [(&str, usize); 5] = [
    ("JPEGImages/*.jpg", 17_125),
    ("SegmentationClassAug/*.png", 12_031),
    ("ImageSets/Segmentation/trainaug.txt", 10_582),
    ("ImageSets/Segmentation/val.txt", 1_449),
    ("ImageSets/Segmentation/train.txt", 1_464),
];

/// Where to get what is missing (printed by `srpnet data check pascal`).
pub const VOC_HELP: &str = "VOC2012: http://host.robots.ox.ac.uk/pascal/VOC/voc2012/ (VOCtrainval_11-May-2012.tar); \
SegmentationClassAug and trainaug.txt: the SBD-augmented masks used by DeepLab, PANet, PFENet and HSNet \
(SegmentationClassAug.zip, 12,031 one-channel PNGs; list of 10,582 names); see the README's data section";

// ANCHOR: protocol
/// Which images PASCAL-5i episodes come from. Named in every output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PascalProtocol {
    /// PANet: train and test episodes both from the trainaug list (10,582 images); no size filter.
    Panet,
    /// OSLSM: test on VOC val (1,449 images), train on trainaug without val images; a class counts
    /// for an image only if it covers at least [`OSLSM_MIN_PIXELS`] pixels.
    Oslsm,
}
// ANCHOR_END: protocol

impl PascalProtocol {
    pub fn name(self) -> &'static str {
        match self {
            PascalProtocol::Panet => "panet",
            PascalProtocol::Oslsm => "oslsm",
        }
    }

    pub fn default_min_pixels(self) -> usize {
        match self {
            PascalProtocol::Panet => 1,
            PascalProtocol::Oslsm => OSLSM_MIN_PIXELS,
        }
    }
}

impl std::fmt::Display for PascalProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for PascalProtocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "panet" => Ok(PascalProtocol::Panet),
            "oslsm" => Ok(PascalProtocol::Oslsm),
            _ => Err(format!("unknown PASCAL protocol {s:?}: use panet or oslsm")),
        }
    }
}

/// Settings of the PASCAL-5i loader.
#[derive(Clone, Debug)]
pub struct PascalConfig {
    /// The data root, `VOCdevkit/VOC2012` inside it, or `VOC2012` itself.
    pub root: PathBuf,
    pub protocol: PascalProtocol,
    /// Override the protocol's small-object filter (pixels).
    pub min_object_pixels: Option<usize>,
}

/// One usable image: its name, files, size and pixel count per class.
#[derive(Clone, Debug)]
pub struct VocRecord {
    pub name: String,
    pub image: PathBuf,
    pub mask: PathBuf,
    pub size: (usize, usize),
    /// Pixels of class `c` at `class_pixels[c]` (0 = background).
    pub class_pixels: [u32; 21],
}

/// The PASCAL-5i benchmark, opened and indexed.
#[derive(Debug)]
pub struct Pascal5i {
    pub root: PathBuf,
    pub protocol: PascalProtocol,
    pub min_object_pixels: usize,
    pub records: Vec<VocRecord>,
    /// Per class, the records of the train list / test list that pass the filter.
    pub train_index: ClassIndex,
    pub test_index: ClassIndex,
    /// Entries of the lists (before checks): train, test.
    pub list_lengths: (usize, usize),
    pub skipped: SkipReport,
}

/// Finds the folder that holds `JPEGImages` under a data root.
pub fn resolve_voc_root(root: &Path) -> Result<PathBuf, DataError> {
    if !root.is_dir() {
        return Err(DataError::MissingRoot {
            path: root.to_path_buf(),
            fix: format!(
                "pass --data-root DIR (or set SRPNET_DATA) to the folder that holds VOCdevkit/VOC2012; {VOC_HELP}"
            ),
        });
    }
    for cand in [
        root.to_path_buf(),
        root.join("VOCdevkit/VOC2012"),
        root.join("VOC2012"),
    ] {
        if cand.join("JPEGImages").is_dir() {
            return Ok(cand);
        }
    }
    Err(DataError::MissingRoot {
        path: root.join("VOCdevkit/VOC2012/JPEGImages"),
        fix: format!("expected VOCdevkit/VOC2012/JPEGImages under the data root; {VOC_HELP}"),
    })
}

/// Reads a list file: one image per line, either a name (`2007_000032`) or DeepLab's
/// `/JPEGImages/2007_000032.jpg /SegmentationClassAug/2007_000032.png` pair.
pub fn read_list(path: &Path) -> Result<Vec<String>, DataError> {
    if !path.is_file() {
        return Err(DataError::MissingSplitFile {
            path: path.to_path_buf(),
            fix: format!("put the list there; {VOC_HELP}"),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|tok| {
            let file = tok.rsplit('/').next().unwrap_or(tok);
            file.rsplit_once('.')
                .map_or(file, |(stem, _)| stem)
                .to_string()
        })
        .filter(|s| !s.is_empty())
        .collect())
}

/// Finds a list file in `ImageSets/Segmentation` or `ImageSets/SegmentationAug`.
fn find_list(voc: &Path, file: &str) -> PathBuf {
    let primary = voc.join("ImageSets/Segmentation").join(file);
    if primary.is_file() {
        return primary;
    }
    let aug = voc.join("ImageSets/SegmentationAug").join(file);
    if aug.is_file() { aug } else { primary }
}

/// Checks one list entry: image and mask exist, decode, agree in size, hold valid class ids.
fn check_entry(voc: &Path, list: &Path, name: &str) -> Result<VocRecord, DataError> {
    let image = voc.join("JPEGImages").join(format!("{name}.jpg"));
    let aug = voc.join("SegmentationClassAug").join(format!("{name}.png"));
    let mask = if aug.is_file() {
        aug
    } else {
        voc.join("SegmentationClass").join(format!("{name}.png"))
    };
    for p in [&image, &mask] {
        if !p.is_file() {
            return Err(DataError::MissingEntryFile {
                path: p.clone(),
                list: list.to_path_buf(),
                fix: format!("restore the file or remove {name} from the list; {VOC_HELP}"),
            });
        }
    }
    let (size, pixels) = check_pair(&image, &mask, 20, PASCAL_NAME)?;
    let mut class_pixels = [0u32; 21];
    class_pixels.copy_from_slice(&pixels);
    Ok(VocRecord {
        name: name.to_string(),
        image,
        mask,
        size,
        class_pixels,
    })
}

/// Checks an image and its class-id mask: both decode, their sizes agree, the ids lie in
/// `0..=max_class` (or 255). Returns the image's `(height, width)` and the pixels of each class
/// id `0..=max_class`.
pub(crate) fn check_pair(
    image: &Path,
    mask: &Path,
    max_class: u8,
    benchmark: &str,
) -> Result<((usize, usize), Vec<u32>), DataError> {
    let size = image_size(image)?;
    let m = load_class_map(mask, max_class, benchmark)?;
    if m.size() != size {
        return Err(size_mismatch(image, mask, m.size(), size));
    }
    let mut class_pixels = vec![0u32; max_class as usize + 1];
    for &v in &m.data {
        if let Some(n) = class_pixels.get_mut(v as usize) {
            *n += 1;
        }
    }
    Ok((size, class_pixels))
}

fn size_mismatch(
    image: &Path,
    mask: &Path,
    (mask_h, mask_w): (usize, usize),
    (image_h, image_w): (usize, usize),
) -> DataError {
    DataError::SizeMismatch {
        mask: mask.to_path_buf(),
        image: image.to_path_buf(),
        mask_w,
        mask_h,
        image_w,
        image_h,
    }
}

/// Loads one support or query: the image, and its class-id mask as the binary mask of `class`.
pub(crate) fn load_shot(
    id: &str,
    image: &Path,
    mask: &Path,
    max_class: u8,
    benchmark: &str,
    class: ClassId,
) -> Result<Shot, DataError> {
    let img = load_image(image)?;
    let m = load_class_map(mask, max_class, benchmark)?;
    if m.size() != img.size() {
        return Err(size_mismatch(image, mask, m.size(), img.size()));
    }
    Ok(Shot {
        id: id.to_string(),
        original_size: img.size(),
        image: img,
        mask: m.binary_for(class),
    })
}

/// Runs `f` over `items` on all cores, keeping the order.
pub(crate) fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(16);
    if threads <= 1 || items.len() < 64 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|c| s.spawn(|| c.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

impl Pascal5i {
    /// Opens the tree, reads the protocol's lists and checks every listed image and mask.
    /// Entries that fail are skipped and counted in `skipped`; a missing root or list is an error.
    pub fn open(config: &PascalConfig) -> Result<Self, DataError> {
        let voc = resolve_voc_root(&config.root)?;
        let (train_list_path, test_list_path) = match config.protocol {
            PascalProtocol::Panet => (
                find_list(&voc, "trainaug.txt"),
                find_list(&voc, "trainaug.txt"),
            ),
            PascalProtocol::Oslsm => (find_list(&voc, "trainaug.txt"), find_list(&voc, "val.txt")),
        };
        let test_list = read_list(&test_list_path)?;
        let mut train_list = read_list(&train_list_path)?;
        if config.protocol == PascalProtocol::Oslsm {
            let val: BTreeSet<&String> = test_list.iter().collect();
            train_list.retain(|n| !val.contains(n));
        }
        let list_lengths = (train_list.len(), test_list.len());

        // Check each distinct name once; remember which list it came from for the messages.
        let mut names: Vec<(String, PathBuf)> = Vec::new();
        let mut seen = BTreeSet::new();
        for (list, path) in [
            (&train_list, &train_list_path),
            (&test_list, &test_list_path),
        ] {
            for n in list {
                if seen.insert(n.clone()) {
                    names.push((n.clone(), path.clone()));
                }
            }
        }
        let results = parallel_map(&names, |(n, list)| check_entry(&voc, list, n));
        let mut records = Vec::new();
        let mut by_name: BTreeMap<String, usize> = BTreeMap::new();
        let mut skipped = SkipReport::default();
        for r in results {
            match r {
                Ok(rec) => {
                    by_name.insert(rec.name.clone(), records.len());
                    records.push(rec);
                }
                Err(e) => skipped.push(&e),
            }
        }
        let min = config
            .min_object_pixels
            .unwrap_or(config.protocol.default_min_pixels())
            .max(1);
        let index = |list: &[String]| {
            let mut idx = ClassIndex::default();
            for n in list {
                if let Some(&k) = by_name.get(n) {
                    for c in 1..=20u8 {
                        if records[k].class_pixels[c as usize] as usize >= min {
                            idx.add(c, k);
                        }
                    }
                }
            }
            idx
        };
        let (train_index, test_index) = (index(&train_list), index(&test_list));
        Ok(Pascal5i {
            root: voc,
            protocol: config.protocol,
            min_object_pixels: min,
            records,
            train_index,
            test_index,
            list_lengths,
            skipped,
        })
    }

    fn index_for(&self, split: Split) -> &ClassIndex {
        match split {
            Split::Train => &self.train_index,
            Split::Test => &self.test_index,
        }
    }

    /// Images per class of `fold`'s `split` after filtering.
    pub fn class_counts(&self, fold: usize, split: Split) -> Vec<(ClassId, usize)> {
        counts_of(self.index_for(split), self.classes(fold, split))
    }
}

impl Benchmark for Pascal5i {
    fn name(&self) -> String {
        format!("{PASCAL_NAME}/{}", self.protocol)
    }

    fn num_classes(&self) -> usize {
        20
    }

    fn class_name(&self, class: ClassId) -> String {
        super::sampler::class_name_in(&PASCAL_CLASSES, class)
    }

    fn classes(&self, fold: usize, split: Split) -> Vec<ClassId> {
        split_classes(20, PASCAL_FOLDS, fold, split)
    }

    fn plan(&self, spec: &EpisodeSpec, index: u64) -> Result<EpisodePlan, DataError> {
        let name = self.name();
        let classes = self.classes(spec.fold, spec.split);
        let class_name = |c: ClassId| self.class_name(c);
        let id_of = |k: usize| self.records[k].name.clone();
        let fix = format!(
            "check the masks of that class, or lower the small-object filter ({} pixels, --min-object-pixels)",
            self.min_object_pixels
        );
        let src = PlanSource {
            benchmark: &name,
            classes: &classes,
            index: self.index_for(spec.split),
            class_name: &class_name,
            id_of: &id_of,
            fix: &fix,
        };
        plan_episode(&src, spec, index)
    }

    fn load(&self, plan: &EpisodePlan) -> Result<Episode, DataError> {
        let shot = |k: usize, _: &str| -> Result<Shot, DataError> {
            let rec = self
                .records
                .get(k)
                .ok_or_else(|| DataError::InvalidSpec(format!("no image with key {k}")))?;
            load_shot(
                &rec.name,
                &rec.image,
                &rec.mask,
                20,
                PASCAL_NAME,
                plan.class_id,
            )
        };
        episode_from_plan(self.name(), self.class_name(plan.class_id), plan, shot)
    }

    fn skipped(&self) -> SkipReport {
        self.skipped.clone()
    }
}
