//! The seeded episode sampler shared by every benchmark, and the [`Benchmark`] trait that train
//! and eval code iterate.

use std::collections::BTreeMap;

use super::episode::{ClassId, Episode, EpisodePlan, EpisodeSpec, ImageRef, Shot, Split};
use super::error::{DataError, SkipReport};
use super::folds::NUM_FOLDS;
use super::rng::Rng;
use super::transforms::Transform;

/// A few-shot benchmark: classes cut into folds, and episodes drawn for `(fold, split, shots,
/// seed)` by index. Implemented by synthetic-5i, PASCAL-5i, COCO-20i.
pub trait Benchmark {
    /// The benchmark and its protocol or fold convention, e.g. `pascal-5i/panet`.
    fn name(&self) -> String;
    /// N: class ids run from 1 to N.
    fn num_classes(&self) -> usize;
    fn class_name(&self, class: ClassId) -> String;
    /// The classes episodes of `split` use in `fold`.
    fn classes(&self, fold: usize, split: Split) -> Vec<ClassId>;
    /// Which class and which images episode `index` of `spec` uses; reads no pixels.
    fn plan(&self, spec: &EpisodeSpec, index: u64) -> Result<EpisodePlan, DataError>;
    /// Reads (or generates) the images and masks of a plan, at their original size.
    fn load(&self, plan: &EpisodePlan) -> Result<Episode, DataError>;
    /// Files and annotations skipped while the benchmark was opened.
    fn skipped(&self) -> SkipReport {
        SkipReport::default()
    }

    /// Episode `index` of `spec`, untransformed.
    fn episode(&self, spec: &EpisodeSpec, index: u64) -> Result<Episode, DataError> {
        let plan = self.plan(spec, index)?;
        self.load(&plan)
    }
}

/// The name of class `class` (1-based) in a benchmark's table, or "class N" outside it.
pub fn class_name_in(names: &[&str], class: ClassId) -> String {
    names
        .get((class as usize).wrapping_sub(1))
        .map_or_else(|| format!("class {class}"), |s| s.to_string())
}

/// Checks the parts of a spec that do not depend on the benchmark.
pub fn validate_spec(spec: &EpisodeSpec) -> Result<(), DataError> {
    if spec.fold >= NUM_FOLDS {
        return Err(DataError::InvalidSpec(format!(
            "fold {} does not exist: use 0..{}",
            spec.fold,
            NUM_FOLDS - 1
        )));
    }
    if spec.shots == 0 {
        return Err(DataError::InvalidSpec("shots must be at least 1".into()));
    }
    Ok(())
}

/// For each class, the keys of the images that contain it (after filtering).
#[derive(Clone, Debug, Default)]
pub struct ClassIndex {
    pub per_class: BTreeMap<ClassId, Vec<usize>>,
}

impl ClassIndex {
    pub fn add(&mut self, class: ClassId, key: usize) {
        self.per_class.entry(class).or_default().push(key);
    }

    pub fn count(&self, class: ClassId) -> usize {
        self.per_class.get(&class).map_or(0, Vec::len)
    }

    pub fn images(&self, class: ClassId) -> &[usize] {
        self.per_class.get(&class).map_or(&[], Vec::as_slice)
    }
}

/// `(class, images)` for each of `classes`, counted in `index`: what `data check` prints.
pub fn counts_of(index: &ClassIndex, classes: Vec<ClassId>) -> Vec<(ClassId, usize)> {
    classes.into_iter().map(|c| (c, index.count(c))).collect()
}

/// The random stream of episode `index` of `spec`.
pub fn episode_rng(spec: &EpisodeSpec, index: u64) -> Rng {
    Rng::derive(
        spec.seed,
        &[spec.fold as u64, spec.split.key(), spec.shots as u64, index],
    )
}

/// How the plan of one episode is drawn, from per-class lists of image keys.
pub struct PlanSource<'a> {
    pub benchmark: &'a str,
    pub classes: &'a [ClassId],
    pub index: &'a ClassIndex,
    pub class_name: &'a dyn Fn(ClassId) -> String,
    pub id_of: &'a dyn Fn(usize) -> String,
    pub fix: &'a str,
}

// ANCHOR: plan
/// Draws episode `index`: a class uniformly among the split's classes, then K + 1 distinct images
/// of that class; the first is the query, the others the supports. Every episode has its own
/// random stream, so the result depends only on `(seed, fold, split, shots, index)`.
pub fn plan_episode(
    src: &PlanSource<'_>,
    spec: &EpisodeSpec,
    index: u64,
) -> Result<EpisodePlan, DataError> {
    validate_spec(spec)?;
    let needed = spec.shots + 1;
    for &c in src.classes {
        let found = src.index.count(c);
        if found < needed {
            return Err(DataError::EmptyClass {
                benchmark: src.benchmark.to_string(),
                class: c,
                name: (src.class_name)(c),
                fold: spec.fold,
                split: spec.split,
                needed,
                found,
                fix: src.fix.to_string(),
            });
        }
    }
    if src.classes.is_empty() {
        return Err(DataError::InvalidSpec(format!(
            "{}: no classes in fold {} {}",
            src.benchmark, spec.fold, spec.split
        )));
    }
    let mut rng = episode_rng(spec, index);
    let class_id = src.classes[rng.below(src.classes.len())];
    let images = src.index.images(class_id);
    let picks = rng.distinct(images.len(), needed);
    let to_ref = |i: usize| ImageRef {
        id: (src.id_of)(images[i]),
        key: images[i],
    };
    Ok(EpisodePlan {
        spec: *spec,
        index,
        class_id,
        query: to_ref(picks[0]),
        supports: picks[1..].iter().map(|&i| to_ref(i)).collect(),
    })
}
// ANCHOR_END: plan

/// The episode of `plan`, untransformed, with each image read by `shot(key, id)`: what every
/// file-backed benchmark's `load` does.
pub fn episode_from_plan(
    benchmark: String,
    class_name: String,
    plan: &EpisodePlan,
    shot: impl Fn(usize, &str) -> Result<Shot, DataError>,
) -> Result<Episode, DataError> {
    Ok(Episode {
        benchmark,
        fold: plan.spec.fold,
        split: plan.spec.split,
        index: plan.index,
        class_id: plan.class_id,
        class_name,
        supports: plan
            .supports
            .iter()
            .map(|r| shot(r.key, &r.id))
            .collect::<Result<_, _>>()?,
        query: shot(plan.query.key, &plan.query.id)?,
        query_original_mask: None,
    })
}

/// Key of the random stream of the transform (flips) of an episode.
const TRANSFORM_STREAM: u64 = 0x7472_616E_7366_6F72;

/// An endless stream of transformed episodes `0, 1, 2, ...` of one spec; take as many as needed.
///
/// With `skip_bad_files`, an episode whose files cannot be read is skipped (counted in
/// `skipped`) and the stream goes on with the next index; errors that are not about one file
/// (an empty class, a bad spec) always end the stream.
pub struct Episodes<'a, B: Benchmark + ?Sized> {
    bench: &'a B,
    spec: EpisodeSpec,
    transform: Transform,
    next: u64,
    skip_bad_files: bool,
    failed: bool,
    pub skipped: SkipReport,
}

impl<'a, B: Benchmark + ?Sized> Episodes<'a, B> {
    pub fn new(bench: &'a B, spec: EpisodeSpec, transform: Transform) -> Self {
        Episodes {
            bench,
            spec,
            transform,
            next: 0,
            skip_bad_files: true,
            failed: false,
            skipped: SkipReport::default(),
        }
    }

    /// Start at episode `index` instead of 0 (to resume).
    pub fn starting_at(mut self, index: u64) -> Self {
        self.next = index;
        self
    }

    pub fn skip_bad_files(mut self, skip: bool) -> Self {
        self.skip_bad_files = skip;
        self
    }
}

impl<B: Benchmark + ?Sized> Iterator for Episodes<'_, B> {
    type Item = Result<Episode, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let mut consecutive = 0;
        loop {
            let index = self.next;
            self.next += 1;
            let plan = match self.bench.plan(&self.spec, index) {
                Ok(p) => p,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            };
            match self.bench.load(&plan) {
                Ok(ep) => {
                    let mut rng = Rng::derive(
                        self.spec.seed,
                        &[
                            self.spec.fold as u64,
                            self.spec.split.key(),
                            self.spec.shots as u64,
                            index,
                            TRANSFORM_STREAM,
                        ],
                    );
                    return Some(Ok(self.transform.apply(ep, &mut rng)));
                }
                Err(e) if self.skip_bad_files && e.path().is_some() && consecutive < 100 => {
                    consecutive += 1;
                    self.skipped.push(&e);
                }
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}
