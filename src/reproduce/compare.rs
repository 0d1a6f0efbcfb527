//! Paired comparisons: every difference a table's config asks for (`compare_to`), per training
//! seed, with the paired t-interval over the seeds.

use anyhow::{Result, bail};

use super::Evaluation;
use super::config::Reproduction;
use crate::metrics::Counts;
use crate::stats::{Interval, paired_t_interval};

/// One difference: `method - reference` on `metric`, mean over folds, with its interval.
#[derive(Debug, Clone)]
pub struct Difference {
    pub method: String,
    pub reference: String,
    pub shots: usize,
    pub metric: &'static str,
    /// Per training seed (in the order of the table's seeds): the seed's mean over folds of
    /// `method` minus that of `reference`.
    pub per_seed: Vec<f64>,
    pub interval: Interval,
}

impl Difference {
    pub fn verdict(&self) -> &'static str {
        if self.interval.is_gain() {
            "gain"
        } else if self.interval.is_loss() {
            "loss"
        } else {
            "not resolved"
        }
    }
}

/// One test episode of one model: its class and its query's foreground and background counts.
type Episode = (u8, Counts, Counts);

/// [seed][group][episode] of one method; a group is one (fold, evaluation seed).
type Grid = Vec<Vec<Vec<Episode>>>;

/// [group][episode]: the (evaluation seed, index) of each episode, to check the pairing.
type Keys = Vec<Vec<(u64, u64)>>;

// ANCHOR: statistic
/// One training seed's table number: the mean over folds of the mean over evaluation seeds of
/// the class-accumulated mIoU (or FB-IoU) of its episodes. The mean over seeds of these is
/// exactly the table's mean column.
fn seed_number(grid: &Grid, folds: usize, fb_iou: bool, seed: usize) -> f64 {
    let per_group = grid[seed].len() / folds;
    let mut over_folds = 0.0;
    for f in 0..folds {
        let mut over_eval_seeds = 0.0;
        for episodes in &grid[seed][f * per_group..(f + 1) * per_group] {
            over_eval_seeds += if fb_iou {
                fb_iou_of(episodes.iter())
            } else {
                miou_of(episodes.iter())
            };
        }
        over_folds += over_eval_seeds / per_group as f64;
    }
    over_folds / folds as f64
}
// ANCHOR_END: statistic

fn add(into: &mut Counts, c: &Counts) {
    into.tp += c.tp;
    into.fp += c.fp;
    into.fn_ += c.fn_;
}

/// mIoU as the evaluator computes it: counts accumulated per class, then the mean class IoU.
fn miou_of<'a>(episodes: impl Iterator<Item = &'a Episode>) -> f64 {
    let mut classes: Vec<(u8, Counts)> = Vec::new();
    for (class, fg, _) in episodes {
        match classes.iter_mut().find(|(c, _)| c == class) {
            Some((_, counts)) => add(counts, fg),
            None => classes.push((*class, *fg)),
        }
    }
    let ious: Vec<f64> = classes.iter().filter_map(|(_, c)| c.iou()).collect();
    crate::stats::mean(&ious)
}

fn fb_iou_of<'a>(episodes: impl Iterator<Item = &'a Episode>) -> f64 {
    let (mut fg, mut bg) = (Counts::default(), Counts::default());
    for (_, f, b) in episodes {
        add(&mut fg, f);
        add(&mut bg, b);
    }
    match (fg.iou(), bg.iou()) {
        (Some(f), Some(b)) => (f + b) / 2.0,
        _ => f64::NAN,
    }
}

/// The episodes of `method` at `shots`: [seed][group][episode], groups ordered by fold, then
/// evaluation seed; also the (evaluation seed, index) keys of each group, to check the pairing.
fn grid(
    r: &Reproduction,
    evals: &[Evaluation],
    method: &str,
    shots: usize,
    train_seeds: &[u64],
    eval_seeds: &[u64],
) -> Result<(Grid, Keys)> {
    let mut grid = Vec::new();
    let mut all_keys: Option<Keys> = None;
    for &seed in train_seeds {
        let mut groups = Vec::new();
        let mut keys = Keys::new();
        for &fold in &r.folds {
            let Some(e) = evals.iter().find(|e| {
                e.method == method && e.fold == fold && e.shots == shots && e.train_seed == seed
            }) else {
                bail!(
                    "{}: no evaluation of {method:?} fold {fold} {shots}-shot",
                    r.id
                );
            };
            for &eval_seed in eval_seeds {
                let records: Vec<_> = e
                    .report
                    .episodes
                    .iter()
                    .filter(|x| x.seed == eval_seed)
                    .collect();
                keys.push(records.iter().map(|x| (x.seed, x.index)).collect());
                groups.push(
                    records
                        .iter()
                        .map(|x| (x.class_id, x.foreground, x.background))
                        .collect(),
                );
            }
        }
        grid.push(groups);
        match &all_keys {
            Some(first) if first != &keys => bail!(
                "{}: the models of {method:?} were not all evaluated on the same episodes",
                r.id
            ),
            Some(_) => {}
            None => all_keys = Some(keys),
        }
    }
    Ok((grid, all_keys.unwrap_or_default()))
}

// ANCHOR: compare
/// Every `compare_to` difference of `r`, at every K, on mIoU and FB-IoU.
pub fn differences(
    r: &Reproduction,
    evals: &[Evaluation],
    train_seeds: &[u64],
    eval_seeds: &[u64],
) -> Result<Vec<Difference>> {
    let mut out = Vec::new();
    for &shots in &r.shots {
        for m in &r.methods {
            for reference in &m.compare_to {
                let (a, keys_a) = grid(r, evals, &m.name, shots, train_seeds, eval_seeds)?;
                let (b, keys_b) = grid(r, evals, reference, shots, train_seeds, eval_seeds)?;
                if keys_a != keys_b {
                    bail!(
                        "{}: {:?} and {reference:?} were not evaluated on the same episodes",
                        r.id,
                        m.name
                    );
                }
                let folds = r.folds.len();
                for (metric, fb) in [("mIoU", false), ("FB-IoU", true)] {
                    let per_seed: Vec<f64> = (0..train_seeds.len())
                        .map(|s| seed_number(&a, folds, fb, s) - seed_number(&b, folds, fb, s))
                        .collect();
                    let interval = paired_t_interval(&per_seed);
                    out.push(Difference {
                        method: m.name.clone(),
                        reference: reference.clone(),
                        shots,
                        metric,
                        per_seed,
                        interval,
                    });
                }
            }
        }
    }
    Ok(out)
}
// ANCHOR_END: compare

/// How the intervals are made, for the sentence under every table.
pub fn method_sentence(seeds: usize) -> String {
    format!(
        "Each difference is a row's mean over folds minus its reference row's, in points. It is \
         computed per training seed (both rows' models of a seed are evaluated on identical test \
         episodes; each seed's number is its mean over folds and evaluation seeds of the \
         class-accumulated metric, exactly as the table cell), and the 95% interval is the \
         paired t-interval over the {seeds} training seeds: mean ± t(0.975, {df}) · s / √{seeds}, \
         s the sample standard deviation of the per-seed differences, which are listed beside \
         it. The training seed is the experimental unit: the interval says how much the \
         difference would move with another set of {seeds} trained models. A difference is a \
         gain only when its whole interval lies above 0 (a loss: below 0); otherwise it is not \
         resolved.",
        df = seeds.saturating_sub(1)
    )
}
