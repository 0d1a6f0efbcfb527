//! The `folder` benchmark: a user's own labelled images, used by `train`, `eval` and `reproduce`
//! exactly like PASCAL-5i (same sampler, same four folds).
//!
//! ```text
//! DATA/classes.txt    one class name per line: line n is class id n (0 is background)
//! DATA/folds.txt      optional: four lines, the classes (ids or names) each fold holds out
//! DATA/test.txt       optional: image names for test episodes (training uses the others)
//! DATA/images/*.jpg   (or .jpeg, .png)
//! DATA/masks/*.png    one per image, same name: class ids, 255 = ignore, the image's size
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::episode::{ClassId, Episode, EpisodePlan, EpisodeSpec, Split};
use super::error::{DataError, SkipReport};
use super::folds::NUM_FOLDS;
use super::pascal::{check_pair, load_shot, parallel_map, read_list};
use super::sampler::{
    Benchmark, ClassIndex, PlanSource, counts_of, episode_from_plan, plan_episode,
};

pub const FOLDER_NAME: &str = "folder";
pub const FOLDER_HELP: &str = "a folder benchmark holds classes.txt (one class name per line), \
images/NAME.jpg and masks/NAME.png (class ids, 255 = ignore), optionally folds.txt (four lines of \
held-out classes) and test.txt; see the book's Data chapter";

/// One usable image of the folder.
#[derive(Clone, Debug)]
pub struct FolderRecord {
    pub name: String,
    pub image: PathBuf,
    pub mask: PathBuf,
    /// Pixels of class `c` at `class_pixels[c]` (0 = background).
    pub class_pixels: Vec<u32>,
}

/// A user's folder, opened and indexed.
#[derive(Debug)]
pub struct FolderBenchmark {
    pub root: PathBuf,
    /// Class names; class id `c` is `classes[c - 1]`.
    pub classes: Vec<String>,
    /// The test classes of each fold.
    pub folds: Vec<Vec<ClassId>>,
    /// Where the folds came from: `folds.txt` or the rule.
    pub folds_from: String,
    pub records: Vec<FolderRecord>,
    pub train_index: ClassIndex,
    pub test_index: ClassIndex,
    /// Whether `test.txt` split the images (else both splits use every image, as PANet does).
    pub test_list: bool,
    pub skipped: SkipReport,
}

fn bad_line(path: &Path, line: usize, reason: String) -> DataError {
    DataError::BadTextFile {
        path: path.to_path_buf(),
        line,
        reason,
        fix: FOLDER_HELP.into(),
    }
}

/// Reads `classes.txt`: one name per non-empty line (`#` starts a comment), at least one per fold.
pub fn read_classes(path: &Path) -> Result<Vec<String>, DataError> {
    if !path.is_file() {
        return Err(DataError::MissingFile {
            path: path.to_path_buf(),
            fix: format!(
                "pass --data-root DIR for the folder that holds classes.txt; {FOLDER_HELP}"
            ),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    let names: Vec<String> = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    if names.len() < NUM_FOLDS || names.len() > 254 {
        return Err(bad_line(
            path,
            names.len(),
            format!(
                "{} classes named; {NUM_FOLDS} folds need at least {NUM_FOLDS} (and class ids stop at 254)",
                names.len()
            ),
        ));
    }
    Ok(names)
}

// ANCHOR: folds
/// The test classes of each fold: from `folds.txt` (four lines of class ids or names) if it
/// exists, else the rule: class `c` of `n` is held out by fold `(c - 1) * 4 / n`, consecutive
/// blocks as in PASCAL-5i (fold i = classes 5i+1..5i+5 when n = 20).
pub fn read_folds(
    path: &Path,
    classes: &[String],
) -> Result<(Vec<Vec<ClassId>>, String), DataError> {
    let n = classes.len();
    if !path.is_file() {
        let mut folds = vec![Vec::new(); NUM_FOLDS];
        for c in 1..=n {
            folds[(c - 1) * NUM_FOLDS / n].push(c as ClassId);
        }
        return Ok((
            folds,
            format!("the rule: {NUM_FOLDS} consecutive blocks of classes.txt"),
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    let mut folds = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut fold = Vec::new();
        for tok in line
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|t| !t.is_empty())
        {
            let id = match tok.parse::<usize>() {
                Ok(id) if (1..=n).contains(&id) => id,
                _ => match classes.iter().position(|c| c == tok) {
                    Some(k) => k + 1,
                    None => {
                        return Err(bad_line(
                            path,
                            i + 1,
                            format!(
                                "{tok:?} is neither a class id 1..={n} nor a name in classes.txt"
                            ),
                        ));
                    }
                },
            };
            if !seen.insert(id) {
                return Err(bad_line(
                    path,
                    i + 1,
                    format!("class {tok} is held out by two folds"),
                ));
            }
            fold.push(id as ClassId);
        }
        folds.push(fold);
    }
    if folds.len() != NUM_FOLDS {
        return Err(bad_line(
            path,
            text.lines().count(),
            format!(
                "{} folds listed; give exactly {NUM_FOLDS} lines",
                folds.len()
            ),
        ));
    }
    Ok((folds, path.display().to_string()))
}
// ANCHOR_END: folds

impl FolderBenchmark {
    /// Reads classes and folds, pairs every image with its mask and checks both. An image
    /// without a usable mask is skipped and counted in `skipped`.
    pub fn open(root: &Path) -> Result<Self, DataError> {
        let classes = read_classes(&root.join("classes.txt"))?;
        let (folds, folds_from) = read_folds(&root.join("folds.txt"), &classes)?;
        let images_dir = root.join("images");
        let entries = std::fs::read_dir(&images_dir).map_err(|e| DataError::MissingRoot {
            path: images_dir.clone(),
            fix: format!("({e}) put the images in images/; {FOLDER_HELP}"),
        })?;
        let mut images: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.extension().and_then(|x| x.to_str()).is_some_and(|x| {
                    ["jpg", "jpeg", "png"].contains(&x.to_ascii_lowercase().as_str())
                })
            })
            .collect();
        images.sort();
        let max = classes.len() as ClassId;
        let results = parallel_map(&images, |image| -> Result<FolderRecord, DataError> {
            let name = image
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("")
                .to_string();
            let mask = root.join("masks").join(format!("{name}.png"));
            if !mask.is_file() {
                return Err(DataError::MissingEntryFile {
                    path: mask,
                    list: images_dir.clone(),
                    fix: "add its class-id mask (same name, .png, the image's size) or move the image out".into(),
                });
            }
            let (_, class_pixels) = check_pair(image, &mask, max, FOLDER_NAME)?;
            Ok(FolderRecord {
                name,
                image: image.clone(),
                mask,
                class_pixels,
            })
        });
        let mut records = Vec::new();
        let mut skipped = SkipReport::default();
        for r in results {
            match r {
                Ok(rec) => records.push(rec),
                Err(e) => skipped.push(&e),
            }
        }
        let test_path = root.join("test.txt");
        let test_names: Option<BTreeSet<String>> = if test_path.is_file() {
            Some(read_list(&test_path)?.into_iter().collect())
        } else {
            None
        };
        let (mut train_index, mut test_index) = (ClassIndex::default(), ClassIndex::default());
        for (k, rec) in records.iter().enumerate() {
            let in_test = test_names.as_ref().is_none_or(|t| t.contains(&rec.name));
            let in_train = test_names.as_ref().is_none_or(|t| !t.contains(&rec.name));
            for c in 1..=max {
                if rec.class_pixels[c as usize] > 0 {
                    if in_train {
                        train_index.add(c, k);
                    }
                    if in_test {
                        test_index.add(c, k);
                    }
                }
            }
        }
        Ok(FolderBenchmark {
            root: root.to_path_buf(),
            classes,
            folds,
            folds_from,
            records,
            train_index,
            test_index,
            test_list: test_names.is_some(),
            skipped,
        })
    }

    fn index_for(&self, split: Split) -> &ClassIndex {
        match split {
            Split::Train => &self.train_index,
            Split::Test => &self.test_index,
        }
    }

    /// Images per class of `fold`'s `split`.
    pub fn class_counts(&self, fold: usize, split: Split) -> Vec<(ClassId, usize)> {
        counts_of(self.index_for(split), self.classes(fold, split))
    }
}

impl Benchmark for FolderBenchmark {
    fn name(&self) -> String {
        FOLDER_NAME.into()
    }

    fn num_classes(&self) -> usize {
        self.classes.len()
    }

    fn class_name(&self, class: ClassId) -> String {
        self.classes
            .get((class as usize).wrapping_sub(1))
            .cloned()
            .unwrap_or_else(|| format!("class {class}"))
    }

    fn classes(&self, fold: usize, split: Split) -> Vec<ClassId> {
        let test = self.folds.get(fold).cloned().unwrap_or_default();
        match split {
            Split::Test => test,
            Split::Train => (1..=self.classes.len() as ClassId)
                .filter(|c| !test.contains(c))
                .collect(),
        }
    }

    fn plan(&self, spec: &EpisodeSpec, index: u64) -> Result<EpisodePlan, DataError> {
        let classes = self.classes(spec.fold, spec.split);
        let class_name = |c: ClassId| self.class_name(c);
        let id_of = |k: usize| self.records[k].name.clone();
        let src = PlanSource {
            benchmark: FOLDER_NAME,
            classes: &classes,
            index: self.index_for(spec.split),
            class_name: &class_name,
            id_of: &id_of,
            fix: "label that class in more images, or hold it out by another fold (folds.txt)",
        };
        plan_episode(&src, spec, index)
    }

    fn load(&self, plan: &EpisodePlan) -> Result<Episode, DataError> {
        let max = self.classes.len() as ClassId;
        let shot = |k: usize, _: &str| {
            let rec = self
                .records
                .get(k)
                .ok_or_else(|| DataError::InvalidSpec(format!("no image with key {k}")))?;
            load_shot(
                &rec.name,
                &rec.image,
                &rec.mask,
                max,
                FOLDER_NAME,
                plan.class_id,
            )
        };
        episode_from_plan(self.name(), self.class_name(plan.class_id), plan, shot)
    }

    fn skipped(&self) -> SkipReport {
        self.skipped.clone()
    }
}
