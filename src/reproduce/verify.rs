//! `reproduce <id> --verify`: train every model afresh, evaluate, and compare each cell with the
//! committed CSV.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::stats::{mean, prediction_interval};

/// One compared cell: a method's number at one K and metric, on one fold or the mean over folds.
#[derive(Debug, Clone)]
pub struct Check {
    pub method: String,
    pub shots: usize,
    pub metric: &'static str,
    /// `None`: the mean over folds (the gated cell).
    pub fold: Option<usize>,
    pub committed: f64,
    pub low: f64,
    pub high: f64,
    pub new: f64,
}

impl Check {
    /// Inside the committed interval (false for NaN), with slack for the CSV's 6 decimals.
    pub fn inside(&self) -> bool {
        self.new >= self.low - 1e-6 && self.new <= self.high + 1e-6
    }
}

/// Per (method, shots, fold, train seed): the values (mIoU, FB-IoU) of each evaluation seed.
type Cells = BTreeMap<(String, usize, usize), BTreeMap<u64, Vec<[f64; 2]>>>;

/// Reads a results CSV (provenance lines start with `#`).
fn read_cells(text: &str, what: &str) -> Result<Cells> {
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let headers = reader
        .headers()
        .with_context(|| format!("{what}: no header row"))?
        .clone();
    let col = |name: &str| {
        headers.iter().position(|h| h == name).with_context(|| {
            format!(
                "{what} has no `{name}` column: it predates training seeds; regenerate it with \
                 `reproduce <id> --fresh`"
            )
        })
    };
    let [method, fold, shots, train_seed, miou, fb_iou] = [
        col("method")?,
        col("fold")?,
        col("shots")?,
        col("train_seed")?,
        col("miou")?,
        col("fb_iou")?,
    ];
    let mut cells = Cells::new();
    for (i, row) in reader.records().enumerate() {
        let row = row.with_context(|| format!("{what}: a malformed row"))?;
        let num = |c: usize| -> Result<f64> {
            row.get(c)
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("{what}: row {} has no number in column {c}", i + 1))
        };
        let key = (
            row[method].to_string(),
            num(shots)? as usize,
            num(fold)? as usize,
        );
        cells
            .entry(key)
            .or_default()
            .entry(num(train_seed)? as u64)
            .or_default()
            .push([num(miou)?, num(fb_iou)?]);
    }
    Ok(cells)
}

/// The value of each training seed: the mean over its evaluation seeds.
fn per_seed(seeds: &BTreeMap<u64, Vec<[f64; 2]>>, metric: usize) -> Vec<f64> {
    seeds
        .values()
        .map(|v| mean(&v.iter().map(|x| x[metric]).collect::<Vec<_>>()))
        .collect()
}

// ANCHOR: compare
/// Compares a new results CSV with the committed one, cell by cell: per method, K and metric
/// (mIoU, FB-IoU), each fold and the mean over folds. The committed interval of a cell is the
/// 95% prediction interval for the mean of a rerun with as many fresh training seeds
/// ([`crate::stats::prediction_interval`]); the new value is the rerun's mean over its seeds.
pub fn compare(committed: &str, new: &str) -> Result<Vec<Check>> {
    let old = read_cells(committed, "the committed CSV")?;
    let new = read_cells(new, "the new CSV")?;
    if old.keys().collect::<Vec<_>>() != new.keys().collect::<Vec<_>>() {
        bail!("the new CSV covers other (method, shots, fold) than the committed one");
    }
    let mut groups: BTreeMap<(String, usize), Vec<usize>> = BTreeMap::new();
    for (method, shots, fold) in old.keys() {
        groups
            .entry((method.clone(), *shots))
            .or_default()
            .push(*fold);
    }
    let mut checks = Vec::new();
    for ((method, shots), folds) in groups {
        for (m, metric) in ["mIoU", "FB-IoU"].into_iter().enumerate() {
            let mut check = |fold, committed: Vec<f64>, rerun: Vec<f64>| {
                let (low, high) = prediction_interval(&committed);
                checks.push(Check {
                    method: method.clone(),
                    shots,
                    metric,
                    fold,
                    committed: mean(&committed),
                    low,
                    high,
                    new: mean(&rerun),
                });
            };
            // The mean over folds, per training seed (seeds must match across folds).
            let over_folds = |cells: &Cells| -> Vec<f64> {
                let per_fold: Vec<Vec<f64>> = folds
                    .iter()
                    .map(|f| per_seed(&cells[&(method.clone(), shots, *f)], m))
                    .collect();
                let seeds = per_fold.iter().map(Vec::len).min().unwrap_or(0);
                (0..seeds)
                    .map(|s| mean(&per_fold.iter().map(|v| v[s]).collect::<Vec<_>>()))
                    .collect()
            };
            check(None, over_folds(&old), over_folds(&new));
            for &f in &folds {
                let key = (method.clone(), shots, f);
                check(Some(f), per_seed(&old[&key], m), per_seed(&new[&key], m));
            }
        }
    }
    Ok(checks)
}
// ANCHOR_END: compare

/// The report printed by `--verify`; returns it and whether every gated cell (the means over
/// folds) lies inside its interval.
pub fn report(id: &str, committed: &Path, checks: &[Check]) -> (String, bool) {
    let mut text = format!(
        "verify {id} against {}\n\
         interval: the committed 95% prediction interval for a rerun's mean over training seeds, \
         mean +- t(0.975, n-1) * s * sqrt(2/n) (s: sample std over the n committed training \
         seeds). Gated: the mean over folds; single folds are shown for information.\n\n\
         {:<34} {:>5} {:<7} {:<6} {:>9} {:>19} {:>9}  inside\n",
        committed.display(),
        "method",
        "shots",
        "metric",
        "fold",
        "committed",
        "interval",
        "new"
    );
    let mut ok = true;
    for c in checks {
        let inside = c.inside();
        if c.fold.is_none() {
            ok &= inside;
        }
        text += &format!(
            "{:<34} {:>5} {:<7} {:<6} {:>9.2} {:>19} {:>9.2}  {}\n",
            c.method,
            c.shots,
            c.metric,
            c.fold.map_or("mean".to_string(), |f| f.to_string()),
            100.0 * c.committed,
            format!("[{:.2}, {:.2}]", 100.0 * c.low, 100.0 * c.high),
            100.0 * c.new,
            match (inside, c.fold.is_none()) {
                (true, _) => "yes",
                (false, true) => "NO",
                (false, false) => "no (fold, not gated)",
            }
        );
    }
    text += if ok {
        "every mean over folds lies inside its committed interval\n"
    } else {
        "some mean over folds lies OUTSIDE its committed interval\n"
    };
    (text, ok)
}
