//! `reproduce <id> --verify`: train every model afresh, evaluate, and compare each cell with the
//! committed CSV.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::stats::{mean, prediction_interval_family};

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
/// prediction interval for the mean of the rerun's training seeds, at a family-wise 95% over the
/// gated cells (the means over folds; Bonferroni, [`crate::stats::prediction_interval_family`]);
/// the new value is the rerun's mean over its seeds. A cell without an interval (one committed
/// seed) has NaN bounds and never passes.
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
    // The gated cells tested together: a mean over folds per (method, K) and metric.
    let family = 2 * groups.len();
    let mut checks = Vec::new();
    for ((method, shots), folds) in groups {
        for (m, metric) in ["mIoU", "FB-IoU"].into_iter().enumerate() {
            let mut check = |fold, committed: Vec<f64>, rerun: Vec<f64>| {
                let (low, high) = prediction_interval_family(&committed, rerun.len(), family)
                    .unwrap_or((f64::NAN, f64::NAN));
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
    let family = checks.iter().filter(|c| c.fold.is_none()).count();
    let mut text = format!(
        "verify {id} against {}\n\
         interval: the prediction interval for the rerun's mean over its m training seeds, \
         family-wise 95% over the {family} gated cells (Bonferroni: each at {:.4}), \
         mean +- t(1 - 0.025/{family}, n-1) * s * sqrt(1/n + 1/m) (s: sample std over the n \
         committed training seeds; no interval with one). Gated: the mean over folds; single \
         folds are shown for information.\n\n\
         {:<34} {:>5} {:<7} {:<6} {:>9} {:>19} {:>9}  inside\n",
        committed.display(),
        1.0 - 0.05 / family.max(1) as f64,
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
            if c.low.is_nan() || c.high.is_nan() {
                "none (1 seed)".to_string()
            } else {
                format!("[{:.2}, {:.2}]", 100.0 * c.low, 100.0 * c.high)
            },
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

// ANCHOR: exact
/// The provenance lines that make a rerun the same computation: with all of them equal, a
/// correct rerun reproduces every number bit for bit.
const SAME_COMPUTATION: [&str; 11] = [
    "code hash",
    "build",
    "backend",
    "dataset",
    "profile",
    "image size",
    "training",
    "schedule",
    "training seeds",
    "evaluation",
    "iqi",
];

/// The value of provenance line `key` (`# key: value`).
fn provenance<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# ")?.split_once(": "))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// `Ok` when the two CSVs come from the same computation; else the first line that differs.
pub fn same_computation(committed: &str, new: &str) -> std::result::Result<(), String> {
    for key in SAME_COMPUTATION {
        let (old, now) = (provenance(committed, key), provenance(new, key));
        if old.is_none() || old != now {
            return Err(format!(
                "`{key}` is {} in the committed CSV and {} in this run",
                old.map_or("missing".into(), |v| format!("{v:?}")),
                now.map_or("missing".into(), |v| format!("{v:?}"))
            ));
        }
    }
    Ok(())
}

/// The first cell where the data rows of two CSVs differ, if any: exact comparison of the text
/// (the CSV writes every number the same way).
pub fn first_difference(committed: &str, new: &str) -> Option<String> {
    let rows = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_string)
            .collect()
    };
    let (old, now) = (rows(committed), rows(new));
    let columns: Vec<&str> = old.first().map_or(vec![], |h| h.split(',').collect());
    for (i, (a, b)) in old.iter().zip(&now).enumerate() {
        if a != b {
            let (ca, cb): (Vec<&str>, Vec<&str>) = (a.split(',').collect(), b.split(',').collect());
            let c = (0..ca.len().max(cb.len()))
                .find(|&c| ca.get(c) != cb.get(c))
                .unwrap_or(0);
            return Some(format!(
                "row {i} ({}): `{}` is {} committed, {} now",
                ca.iter().take(5).copied().collect::<Vec<_>>().join(","),
                columns.get(c).unwrap_or(&"?"),
                ca.get(c).unwrap_or(&"missing"),
                cb.get(c).unwrap_or(&"missing")
            ));
        }
    }
    (old.len() != now.len()).then(|| {
        format!(
            "the committed CSV has {} rows, the new one {}",
            old.len(),
            now.len()
        )
    })
}
// ANCHOR_END: exact
