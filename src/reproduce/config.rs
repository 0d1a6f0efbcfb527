//! The reproduction configs: `reproductions/<id>.toml`, read and checked, and the merge of a
//! row's overrides into its preset's model config.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail, ensure};
use serde::{Deserialize, Serialize};

use crate::experiment::{BenchmarkName, load_config};
use crate::model::ModelConfig;

// ANCHOR: config
/// One reproduction, as written in `reproductions/<id>.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reproduction {
    pub id: String,
    pub title: String,
    pub kind: Kind,
    /// The benchmark the paper used; synthetic-5i stands in when no data root is given.
    pub benchmark: BenchmarkName,
    pub folds: Vec<usize>,
    /// K of the evaluation episodes (every model is trained 1-shot, see `train_shots`).
    pub shots: Vec<usize>,
    pub methods: Vec<MethodSpec>,
    pub embedded: Budget,
    pub paper: Budget,
    /// fig1: how many episodes (rows) to draw.
    #[serde(default = "default_rows")]
    pub rows: usize,
    /// fig-bound: the matched models whose score margins are drawn (rows of `table3` that
    /// differ only in the metric, so the runs come from the same cache).
    #[serde(default)]
    pub score_methods: Vec<MethodSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Table,
    Fig1,
    FigBound,
}

/// A row of a table: a preset plus overrides of its model config. `train` overrides change
/// what is trained; `eval` overrides only how the trained model is run (IQI lives there).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodSpec {
    pub name: String,
    pub preset: MethodPreset,
    #[serde(default)]
    pub train: toml::Table,
    #[serde(default)]
    pub eval: toml::Table,
    /// Rows this row is compared with: each difference gets a paired t-interval over training
    /// seeds.
    #[serde(default)]
    pub compare_to: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MethodPreset {
    Srpnet,
    Panet,
}

/// What a profile spends: training steps, shots of the training episodes, the training seeds
/// (one model per method, fold and seed: its initialisation and training episode stream),
/// evaluation episodes per evaluation seed, and those seeds.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    pub train_steps: u64,
    pub train_shots: usize,
    pub train_seeds: Vec<u64>,
    pub eval_episodes: u64,
    pub eval_seeds: Vec<u64>,
    /// Square input size instead of the profile's (417 px paper, 97 px embedded).
    #[serde(default)]
    pub image_size: Option<usize>,
    /// A smoke run: its outputs say so, and its numbers mean nothing.
    #[serde(default)]
    pub smoke: bool,
}
// ANCHOR_END: config

fn default_rows() -> usize {
    4
}

/// The repository folder that holds the reproduction configs.
pub fn configs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("reproductions")
}

pub const ORDER: [&str; 6] = ["table1", "table2", "table3", "table4", "fig1", "fig-bound"];

/// Every reproduction id with its title, in the order `all` runs them.
pub fn list() -> Result<Vec<(String, String)>> {
    ORDER
        .iter()
        .map(|id| Ok((id.to_string(), read(id)?.title)))
        .collect()
}

pub fn read(id: &str) -> Result<Reproduction> {
    let path = configs_dir().join(format!("{id}.toml"));
    if !path.is_file() {
        bail!(
            "unknown reproduction id `{id}`: no {} (`reproduce --list` shows the ids)",
            path.display()
        );
    }
    let r: Reproduction = load_config(&path)?;
    ensure!(
        r.id == id,
        "{} says id = {:?}; it must say {id:?}",
        path.display(),
        r.id
    );
    ensure!(
        !r.methods.is_empty() && !r.folds.is_empty() && !r.shots.is_empty(),
        "{}: a reproduction needs at least one method, fold and K (`methods`, `folds`, `shots`)",
        path.display()
    );
    for (i, m) in r.methods.iter().enumerate() {
        ensure!(
            !r.methods[..i].iter().any(|x| x.name == m.name),
            "{}: two methods are named {:?}; rows are compared by name, so names must differ",
            path.display(),
            m.name
        );
    }
    for budget in [&r.embedded, &r.paper] {
        ensure!(
            !budget.train_seeds.is_empty() && !budget.eval_seeds.is_empty(),
            "{}: every budget needs at least one training seed and one evaluation seed \
             (train_seeds = [1, 2, 3], eval_seeds = [1234, 1235])",
            path.display()
        );
    }
    for m in &r.methods {
        for reference in &m.compare_to {
            ensure!(
                reference != &m.name && r.methods.iter().any(|x| &x.name == reference),
                "{}: method {:?} is compared to {reference:?}, which is not another method of \
                 this file",
                path.display(),
                m.name
            );
        }
        ensure!(
            !m.train.contains_key("iqi"),
            "{}: method {:?} sets iqi under `train`; IQI runs only at inference: put it under `eval`",
            path.display(),
            m.name
        );
    }
    Ok(r)
}

/// `base` with `overrides` merged in, field by field (nested tables merge, values replace).
pub fn merge(base: &ModelConfig, overrides: &toml::Table) -> Result<ModelConfig> {
    fn deep(into: &mut serde_json::Value, from: serde_json::Value) {
        match (into, from) {
            (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
                for (k, v) in b {
                    deep(a.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
            (slot, v) => *slot = v,
        }
    }
    let mut value = serde_json::to_value(base)?;
    deep(&mut value, serde_json::to_value(overrides)?);
    let merged: ModelConfig = serde_json::from_value(value)?;
    merged.validate()?;
    Ok(merged)
}

/// The benchmark `r` runs on under a data root: a user's folder (a `classes.txt` at the root)
/// stands in for the paper's benchmark, with the same folds and budgets; else `r`'s own.
pub fn benchmark_under(r: &Reproduction, root: &Path) -> BenchmarkName {
    if root.join("classes.txt").is_file() {
        BenchmarkName::Folder
    } else {
        r.benchmark
    }
}

/// Whether `r` can run without data: synthetic-5i has PASCAL-5i's shape (20 classes, 4 folds of
/// 5) and stands in for it; nothing embedded has COCO-20i's (80 classes, 4 folds of 20).
pub fn has_embedded_stand_in(r: &Reproduction) -> bool {
    r.benchmark != BenchmarkName::Coco20i
}
