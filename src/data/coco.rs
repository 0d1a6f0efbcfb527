//! COCO-20i: COCO 2014 `instances_*.json` + images. Polygons and RLE (plain and compressed
//! counts) are rasterised to class-id masks by the small decoder below.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::episode::{ClassId, Episode, EpisodePlan, EpisodeSpec, Mask, Shot, Split};
use super::error::{DataError, SkipReport};
use super::folds::{COCO_CATEGORY_IDS, COCO_CLASSES, FoldConvention, split_classes};
use super::images::load_image;
use super::sampler::{Benchmark, ClassIndex, PlanSource, episode_from_plan, plan_episode};

pub const COCO_NAME: &str = "coco-20i";

/// Images listed in the COCO 2014 annotation files.
pub const COCO_EXPECTED: [(&str, usize); 2] = [("train2014", 82_783), ("val2014", 40_504)];

pub const COCO_HELP: &str = "COCO 2014: https://cocodataset.org/#download (train2014.zip, val2014.zip, \
annotations_trainval2014.zip with instances_train2014.json and instances_val2014.json); see the README's data section";

// ANCHOR: rle
/// Decodes COCO's compressed RLE string into run lengths (pycocotools' `rleFrString`): each
/// count is written in 5-bit groups, least significant first, as characters from '0' (48); bit
/// 0x20 says another group follows, bit 0x10 of the last group is the sign; from the third count
/// on, the value stored is the difference to the count two places before.
pub fn rle_counts_from_string(s: &str) -> Result<Vec<u32>, String> {
    let bytes = s.as_bytes();
    let mut counts: Vec<i64> = Vec::new();
    let mut p = 0;
    while p < bytes.len() {
        let (mut x, mut k, mut more) = (0i64, 0u32, true);
        while more {
            let ch = *bytes.get(p).ok_or("the string ends inside a count")?;
            if !(48..48 + 64).contains(&ch) {
                return Err(format!("character {:?} is not RLE", ch as char));
            }
            if k > 12 {
                return Err("a count is too long".into());
            }
            let c = (ch - 48) as i64;
            x |= (c & 0x1f) << (5 * k);
            more = c & 0x20 != 0;
            p += 1;
            k += 1;
            if !more && c & 0x10 != 0 {
                x |= -1i64 << (5 * k);
            }
        }
        if counts.len() > 2 {
            x += counts[counts.len() - 2];
        }
        if !(0..=u32::MAX as i64).contains(&x) {
            return Err(format!("count {} is negative or too large", x));
        }
        counts.push(x);
    }
    Ok(counts.into_iter().map(|c| c as u32).collect())
}

/// Encodes run lengths as COCO's compressed RLE string (pycocotools' `rleToString`).
pub fn rle_counts_to_string(counts: &[u32]) -> String {
    let mut out = String::new();
    for i in 0..counts.len() {
        let mut x = counts[i] as i64;
        if i > 2 {
            x -= counts[i - 2] as i64;
        }
        let mut more = true;
        while more {
            let mut c = x & 0x1f;
            x >>= 5;
            more = if c & 0x10 != 0 { x != -1 } else { x != 0 };
            if more {
                c |= 0x20;
            }
            out.push((c as u8 + 48) as char);
        }
    }
    out
}

/// Decodes run lengths (alternating 0s and 1s, starting with 0s, in column-major order) into a
/// row-major `[h, w]` 0 / 1 mask. The counts must add up to `h * w`.
pub fn rle_decode(counts: &[u32], h: usize, w: usize) -> Result<Vec<u8>, String> {
    let total: u64 = counts.iter().map(|&c| c as u64).sum();
    if total != (h * w) as u64 {
        return Err(format!(
            "the counts add up to {total} pixels, the mask has {h}x{w} = {}",
            h * w
        ));
    }
    let mut out = vec![0u8; h * w];
    let mut pos = 0usize; // column-major position
    for (i, &c) in counts.iter().enumerate() {
        let value = (i % 2) as u8;
        for p in pos..pos + c as usize {
            if value == 1 {
                let (x, y) = (p / h, p % h);
                out[y * w + x] = 1;
            }
        }
        pos += c as usize;
    }
    Ok(out)
}

/// Run lengths of a row-major 0 / non-0 mask, in COCO's column-major order.
pub fn rle_encode(mask: &[u8], h: usize, w: usize) -> Vec<u32> {
    let mut counts = Vec::new();
    let (mut current, mut run) = (0u8, 0u32);
    for x in 0..w {
        for y in 0..h {
            let v = u8::from(mask[y * w + x] != 0);
            if v != current {
                counts.push(run);
                run = 0;
                current = v;
            }
            run += 1;
        }
    }
    counts.push(run);
    counts
}
// ANCHOR_END: rle

// ANCHOR: polygon
/// Fills a polygon `[x0, y0, x1, y1, ...]` (pixel coordinates, as COCO stores them) into a
/// row-major `[h, w]` mask with `value`: a pixel is inside when its centre `(x + 0.5, y + 0.5)`
/// is, by the even-odd rule. pycocotools rasterises on a 5x finer grid: on 2,000 generated
/// polygons 0.1% of pixels differ, all with their centre within 0.16 px of the outline
/// (`tests/data_coco.rs`).
pub fn rasterize_polygon(poly: &[f64], h: usize, w: usize, out: &mut [u8], value: u8) {
    let n = poly.len() / 2;
    if n < 3 {
        return;
    }
    let mut xs: Vec<f64> = Vec::new();
    for y in 0..h {
        let yc = y as f64 + 0.5;
        xs.clear();
        for i in 0..n {
            let (x0, y0) = (poly[2 * i], poly[2 * i + 1]);
            let (x1, y1) = (poly[2 * ((i + 1) % n)], poly[2 * ((i + 1) % n) + 1]);
            if (y0 <= yc) != (y1 <= yc) {
                xs.push(x0 + (yc - y0) * (x1 - x0) / (y1 - y0));
            }
        }
        xs.sort_by(|a, b| a.total_cmp(b));
        for pair in xs.chunks_exact(2) {
            // Pixels whose centre x + 0.5 lies in [a, b).
            let start = (pair[0] - 0.5).ceil().max(0.0) as usize;
            let end = ((pair[1] - 0.5).ceil().max(0.0) as usize).min(w);
            for x in start..end {
                out[y * w + x] = value;
            }
        }
    }
}
// ANCHOR_END: polygon

#[derive(Deserialize)]
struct JsonFile {
    images: Vec<JsonImage>,
    annotations: Vec<JsonAnn>,
}

#[derive(Deserialize)]
struct JsonImage {
    id: u64,
    file_name: String,
    height: usize,
    width: usize,
}

#[derive(Deserialize)]
struct JsonAnn {
    id: u64,
    image_id: u64,
    category_id: u32,
    segmentation: JsonSeg,
    #[serde(default)]
    area: f64,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum JsonSeg {
    Polygons(Vec<Vec<f64>>),
    Rle {
        counts: JsonCounts,
        size: [usize; 2],
    },
    Other(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum JsonCounts {
    Plain(Vec<u32>),
    Compressed(String),
}

/// A checked segmentation.
#[derive(Clone, Debug)]
pub enum Segmentation {
    Polygons(Vec<Vec<f64>>),
    /// Run lengths (decoded from either form), for an `h x w` mask of the image's size.
    Rle(Vec<u32>),
}

#[derive(Clone, Debug)]
pub struct CocoAnn {
    pub id: u64,
    pub class: ClassId,
    pub area: f64,
    pub segmentation: Segmentation,
}

#[derive(Clone, Debug)]
pub struct CocoImage {
    pub id: u64,
    pub file: PathBuf,
    pub height: usize,
    pub width: usize,
    pub anns: Vec<CocoAnn>,
}

impl CocoImage {
    // ANCHOR: class_map
    /// The class-id mask of the image: annotations painted from the largest to the smallest, so
    /// small objects stay visible; crowd annotations are painted like the others. COCO has no
    /// ignore band.
    pub fn class_map(&self) -> Mask {
        let (h, w) = (self.height, self.width);
        let mut mask = Mask::filled(h, w, 0);
        let mut order: Vec<&CocoAnn> = self.anns.iter().collect();
        order.sort_by(|a, b| b.area.total_cmp(&a.area));
        for ann in order {
            match &ann.segmentation {
                Segmentation::Polygons(polys) => {
                    for p in polys {
                        rasterize_polygon(p, h, w, &mut mask.data, ann.class);
                    }
                }
                Segmentation::Rle(counts) => {
                    if let Ok(bits) = rle_decode(counts, h, w) {
                        for (m, b) in mask.data.iter_mut().zip(bits) {
                            if b == 1 {
                                *m = ann.class;
                            }
                        }
                    }
                }
            }
        }
        mask
    }
    // ANCHOR_END: class_map
}

/// One split of COCO (train2014 or val2014), read and checked.
#[derive(Clone, Debug)]
pub struct CocoSplit {
    pub json: PathBuf,
    pub image_dir: PathBuf,
    /// Images listed in the JSON.
    pub listed_images: usize,
    pub images: Vec<CocoImage>,
    pub index: ClassIndex,
}

/// The class id (1..=80) of a COCO category id.
pub fn class_of_category(category: u32) -> Option<ClassId> {
    COCO_CATEGORY_IDS
        .iter()
        .position(|&c| c == category)
        .map(|i| (i + 1) as ClassId)
}

/// Finds the folder holding `annotations/instances_*2014.json` under a data root.
pub fn resolve_coco_root(root: &Path) -> Result<PathBuf, DataError> {
    if !root.is_dir() {
        return Err(DataError::MissingRoot {
            path: root.to_path_buf(),
            fix: format!(
                "pass --data-root DIR (or set SRPNET_DATA) to the folder that holds coco/; {COCO_HELP}"
            ),
        });
    }
    for cand in [root.to_path_buf(), root.join("coco"), root.join("COCO")] {
        if cand.join("annotations").is_dir() {
            return Ok(cand);
        }
    }
    Err(DataError::MissingRoot {
        path: root.join("coco/annotations"),
        fix: format!(
            "expected coco/annotations/instances_train2014.json under the data root; {COCO_HELP}"
        ),
    })
}

/// Reads and checks one split: `annotations/instances_{year_split}.json` and its image folder.
/// Bad annotations and images without a file are skipped and counted in `skipped`.
pub fn read_split(
    coco: &Path,
    year_split: &str,
    skipped: &mut SkipReport,
) -> Result<CocoSplit, DataError> {
    let json = coco
        .join("annotations")
        .join(format!("instances_{year_split}.json"));
    if !json.is_file() {
        return Err(DataError::MissingSplitFile {
            path: json,
            fix: format!("put the annotation file there; {COCO_HELP}"),
        });
    }
    let image_dir = [coco.join(year_split), coco.join("images").join(year_split)]
        .into_iter()
        .find(|p| p.is_dir())
        .ok_or_else(|| DataError::MissingRoot {
            path: coco.join(year_split),
            fix: format!("unzip {year_split}.zip there; {COCO_HELP}"),
        })?;
    let file = std::fs::File::open(&json).map_err(|e| DataError::io(&json, e))?;
    let parsed: JsonFile =
        serde_json::from_reader(std::io::BufReader::new(file)).map_err(|e| DataError::BadJson {
            path: json.clone(),
            reason: e.to_string(),
        })?;

    let listed_images = parsed.images.len();
    let mut images: Vec<CocoImage> = Vec::with_capacity(parsed.images.len());
    let mut pos: BTreeMap<u64, usize> = BTreeMap::new();
    for im in parsed.images {
        pos.insert(im.id, images.len());
        images.push(CocoImage {
            id: im.id,
            file: image_dir.join(&im.file_name),
            height: im.height,
            width: im.width,
            anns: vec![],
        });
    }
    for ann in parsed.annotations {
        let bad = |reason: String| DataError::BadSegmentation {
            path: json.clone(),
            annotation: ann.id,
            reason,
        };
        let Some(&k) = pos.get(&ann.image_id) else {
            skipped.push(&bad(format!("image {} is not in the file", ann.image_id)));
            continue;
        };
        let Some(class) = class_of_category(ann.category_id) else {
            skipped.push(&bad(format!(
                "category {} is not one of the 80 COCO classes",
                ann.category_id
            )));
            continue;
        };
        let (h, w) = (images[k].height, images[k].width);
        let seg = match ann.segmentation {
            JsonSeg::Polygons(polys) => {
                if polys.is_empty()
                    || polys.iter().any(|p| {
                        p.len() < 6 || p.len() % 2 != 0 || p.iter().any(|v| !v.is_finite())
                    })
                {
                    skipped.push(&bad(
                        "a polygon has fewer than 3 points, an odd length or a non-number".into(),
                    ));
                    continue;
                }
                Segmentation::Polygons(polys)
            }
            JsonSeg::Rle { counts, size } => {
                if size != [h, w] {
                    skipped.push(&DataError::RleSize {
                        path: json.clone(),
                        annotation: ann.id,
                        image_id: ann.image_id,
                        rle_h: size[0],
                        rle_w: size[1],
                        image_h: h,
                        image_w: w,
                    });
                    continue;
                }
                let counts = match counts {
                    JsonCounts::Plain(c) => c,
                    JsonCounts::Compressed(s) => match rle_counts_from_string(&s) {
                        Ok(c) => c,
                        Err(e) => {
                            skipped.push(&bad(e));
                            continue;
                        }
                    },
                };
                let total: u64 = counts.iter().map(|&c| c as u64).sum();
                if total != (h * w) as u64 {
                    skipped.push(&bad(format!(
                        "the RLE counts add up to {total} pixels, the image has {}",
                        h * w
                    )));
                    continue;
                }
                Segmentation::Rle(counts)
            }
            JsonSeg::Other(_) => {
                skipped.push(&bad("segmentation is neither polygons nor RLE".into()));
                continue;
            }
        };
        images[k].anns.push(CocoAnn {
            id: ann.id,
            class,
            area: ann.area,
            segmentation: seg,
        });
    }
    // Images without a file are skipped (only those with annotations matter).
    let exists = super::pascal::parallel_map(&images, |im| im.anns.is_empty() || im.file.is_file());
    let mut kept = Vec::with_capacity(images.len());
    for (im, ok) in images.into_iter().zip(exists) {
        if ok {
            kept.push(im);
        } else {
            skipped.push(&DataError::MissingEntryFile {
                path: im.file.clone(),
                list: json.clone(),
                fix: format!("restore the image or use the annotation file that matches your images; {COCO_HELP}"),
            });
        }
    }
    let mut index = ClassIndex::default();
    for (k, im) in kept.iter().enumerate() {
        let mut classes: Vec<ClassId> = im.anns.iter().map(|a| a.class).collect();
        classes.sort_unstable();
        classes.dedup();
        for c in classes {
            index.add(c, k);
        }
    }
    Ok(CocoSplit {
        json,
        image_dir,
        listed_images,
        images: kept,
        index,
    })
}

/// The COCO-20i benchmark: train episodes from train2014, test episodes from val2014.
#[derive(Debug)]
pub struct Coco20i {
    pub root: PathBuf,
    pub convention: FoldConvention,
    pub train: Option<CocoSplit>,
    pub test: Option<CocoSplit>,
    pub skipped: SkipReport,
}

impl Coco20i {
    /// Opens the splits asked for (the train JSON is large: open only what you need).
    pub fn open(
        root: &Path,
        convention: FoldConvention,
        splits: &[Split],
    ) -> Result<Self, DataError> {
        let coco = resolve_coco_root(root)?;
        let mut skipped = SkipReport::default();
        let train = if splits.contains(&Split::Train) {
            Some(read_split(&coco, "train2014", &mut skipped)?)
        } else {
            None
        };
        let test = if splits.contains(&Split::Test) {
            Some(read_split(&coco, "val2014", &mut skipped)?)
        } else {
            None
        };
        Ok(Coco20i {
            root: coco,
            convention,
            train,
            test,
            skipped,
        })
    }

    pub fn split(&self, split: Split) -> Result<&CocoSplit, DataError> {
        match split {
            Split::Train => self.train.as_ref(),
            Split::Test => self.test.as_ref(),
        }
        .ok_or_else(|| {
            DataError::InvalidSpec(format!("COCO-20i was opened without its {split} split"))
        })
    }

    /// Images per class of `fold`'s `split`.
    pub fn class_counts(&self, fold: usize, split: Split) -> Vec<(ClassId, usize)> {
        let idx = self.split(split).ok().map(|s| &s.index);
        self.classes(fold, split)
            .into_iter()
            .map(|c| (c, idx.map_or(0, |i| i.count(c))))
            .collect()
    }
}

impl Benchmark for Coco20i {
    fn name(&self) -> String {
        format!("{COCO_NAME}/{}", self.convention)
    }

    fn num_classes(&self) -> usize {
        80
    }

    fn class_name(&self, class: ClassId) -> String {
        super::sampler::class_name_in(&COCO_CLASSES, class)
    }

    fn classes(&self, fold: usize, split: Split) -> Vec<ClassId> {
        split_classes(80, self.convention, fold, split)
    }

    fn plan(&self, spec: &EpisodeSpec, index: u64) -> Result<EpisodePlan, DataError> {
        let data = self.split(spec.split)?;
        let name = self.name();
        let classes = self.classes(spec.fold, spec.split);
        let class_name = |c: ClassId| self.class_name(c);
        let id_of = |k: usize| {
            data.images[k].file.file_name().map_or_else(
                || data.images[k].id.to_string(),
                |f| f.to_string_lossy().into_owned(),
            )
        };
        let src = PlanSource {
            benchmark: &name,
            classes: &classes,
            index: &data.index,
            class_name: &class_name,
            id_of: &id_of,
            fix: "check that the annotation file is complete (COCO 2014 instances)",
        };
        plan_episode(&src, spec, index)
    }

    fn load(&self, plan: &EpisodePlan) -> Result<Episode, DataError> {
        let data = self.split(plan.spec.split)?;
        let shot = |k: usize, id: &str| -> Result<Shot, DataError> {
            let rec = data
                .images
                .get(k)
                .ok_or_else(|| DataError::InvalidSpec(format!("no image with key {k}")))?;
            let image = load_image(&rec.file)?;
            if image.size() != (rec.height, rec.width) {
                return Err(DataError::SizeMismatch {
                    mask: data.json.clone(),
                    image: rec.file.clone(),
                    mask_w: rec.width,
                    mask_h: rec.height,
                    image_w: image.width,
                    image_h: image.height,
                });
            }
            let mask = rec.class_map().binary_for(plan.class_id);
            Ok(Shot {
                id: id.to_string(),
                original_size: image.size(),
                image,
                mask,
            })
        };
        episode_from_plan(self.name(), self.class_name(plan.class_id), plan, shot)
    }

    fn skipped(&self) -> SkipReport {
        self.skipped.clone()
    }
}
