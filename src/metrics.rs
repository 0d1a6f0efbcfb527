//! Segmentation metrics of the few-shot field: mIoU accumulated per class, FB-IoU, and the
//! episode-wise variant, all with ignore pixels excluded.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The label of "not labelled" pixels in a ground-truth mask.
pub const IGNORE: u8 = 255;

/// True positives, false positives and false negatives of one region.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub tp: u64,
    pub fp: u64,
    pub fn_: u64,
}

impl Counts {
    /// Intersection over union; `None` when the union is empty (nothing to measure).
    pub fn iou(&self) -> Option<f64> {
        let union = self.tp + self.fp + self.fn_;
        (union > 0).then(|| self.tp as f64 / union as f64)
    }

    fn add(&mut self, other: Counts) {
        self.tp += other.tp;
        self.fp += other.fp;
        self.fn_ += other.fn_;
    }
}

// ANCHOR: counts
/// Foreground and background counts of one binary prediction (`0`/`1`) against its ground
/// truth (`0`, `1`, [`IGNORE`]); ignored pixels count for nothing.
pub fn binary_counts(predicted: &[u8], truth: &[u8]) -> (Counts, Counts) {
    let (mut fg, mut bg) = (Counts::default(), Counts::default());
    for (&p, &t) in predicted.iter().zip(truth) {
        match (p == 1, t) {
            (_, IGNORE) => {}
            (true, 1) => fg.tp += 1,
            (true, _) => {
                fg.fp += 1;
                bg.fn_ += 1;
            }
            (false, 1) => {
                fg.fn_ += 1;
                bg.fp += 1;
            }
            (false, _) => bg.tp += 1,
        }
    }
    (fg, bg)
}
// ANCHOR_END: counts

/// Accumulates the episodes of one evaluation run (one fold, one seed).
#[derive(Debug, Clone, Default)]
pub struct Evaluator {
    per_class: BTreeMap<u8, Counts>,
    foreground: Counts,
    background: Counts,
    /// (class, foreground IoU) of every episode whose IoU is defined.
    episodes: Vec<(u8, f64)>,
}

// ANCHOR: evaluator
impl Evaluator {
    /// Adds one episode of `class`: intersections and unions go into the class's running sums
    /// (PANet and HSNet accumulate over all episodes of a class before dividing), into the
    /// foreground and background sums of FB-IoU, and the episode's own IoU into the episode-wise
    /// list. Returns the episode's foreground IoU (`None` if neither truth nor prediction has
    /// any foreground pixel).
    pub fn add(&mut self, class: u8, predicted: &[u8], truth: &[u8]) -> Option<f64> {
        let (fg, bg) = binary_counts(predicted, truth);
        self.per_class.entry(class).or_default().add(fg);
        self.foreground.add(fg);
        self.background.add(bg);
        let iou = fg.iou();
        if let Some(iou) = iou {
            self.episodes.push((class, iou));
        }
        iou
    }

    /// IoU of every class that appeared, from its accumulated counts.
    pub fn class_iou(&self) -> BTreeMap<u8, f64> {
        self.per_class
            .iter()
            .filter_map(|(&c, counts)| counts.iou().map(|iou| (c, iou)))
            .collect()
    }

    /// Mean of the per-class IoUs (background excluded) over the classes that appeared.
    pub fn miou(&self) -> Option<f64> {
        mean(self.class_iou().values().copied())
    }

    /// Episode-wise mIoU: each class's mean episode IoU, then the mean over classes.
    pub fn miou_episode_wise(&self) -> Option<f64> {
        let mut by_class: BTreeMap<u8, Vec<f64>> = BTreeMap::new();
        for &(c, iou) in &self.episodes {
            by_class.entry(c).or_default().push(iou);
        }
        mean(by_class.values().filter_map(|v| mean(v.iter().copied())))
    }

    /// FB-IoU: the mean of the foreground IoU (all classes' counts summed) and the background
    /// IoU, both accumulated over all episodes.
    pub fn fb_iou(&self) -> Option<f64> {
        Some((self.foreground.iou()? + self.background.iou()?) / 2.0)
    }

    pub fn episodes(&self) -> usize {
        self.episodes.len()
    }
}
// ANCHOR_END: evaluator

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// Mean and (population) standard deviation, as PANet reports over its 5 seeds.
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let m = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n;
    (m, var.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_hand_with_ignore_pixels() {
        // pred:  1 1 0 0 1 0
        // truth: 1 0 1 0 255 255
        let (fg, bg) = binary_counts(&[1, 1, 0, 0, 1, 0], &[1, 0, 1, 0, 255, 255]);
        assert_eq!(
            fg,
            Counts {
                tp: 1,
                fp: 1,
                fn_: 1
            }
        );
        assert_eq!(
            bg,
            Counts {
                tp: 1,
                fp: 1,
                fn_: 1
            }
        );
        assert_eq!(fg.iou(), Some(1.0 / 3.0));
    }

    #[test]
    fn miou_accumulates_per_class_before_dividing() {
        let mut e = Evaluator::default();
        // Class 1, episode A: 1 of 2 foreground pixels found: IoU 1/2.
        e.add(1, &[1, 0, 0, 0], &[1, 1, 0, 0]);
        // Class 1, episode B: a large object, all found: 4 / 4.
        e.add(1, &[1, 1, 1, 1], &[1, 1, 1, 1]);
        // Class 2: prediction 2 pixels, truth 1 of them: 1 / 2.
        e.add(2, &[1, 1, 0, 0], &[1, 0, 0, 255]);
        let classes = e.class_iou();
        assert_eq!(classes[&1], 5.0 / 6.0); // (1 + 4) / (2 + 4)
        assert_eq!(classes[&2], 0.5);
        assert_eq!(e.miou(), Some((5.0 / 6.0 + 0.5) / 2.0));
        // Episode-wise: class 1 = mean(1/2, 1) = 3/4; class 2 = 1/2.
        assert_eq!(e.miou_episode_wise(), Some((0.75 + 0.5) / 2.0));
    }

    #[test]
    fn fb_iou_by_hand() {
        let mut e = Evaluator::default();
        e.add(1, &[1, 0, 0, 0], &[1, 1, 0, 0]); // fg 1/2; bg tp 2, fp 1 -> 2/3
        e.add(3, &[0, 0, 1, 1], &[0, 0, 1, 255]); // fg tp 1, fp 0 -> adds; bg tp 2
        // fg: tp 2, fp 0, fn 1 -> 2/3 ; bg: tp 4, fp 1, fn 0 -> 4/5
        assert_eq!(e.fb_iou(), Some((2.0 / 3.0 + 4.0 / 5.0) / 2.0));
    }

    #[test]
    fn absent_classes_are_not_averaged_in() {
        let mut e = Evaluator::default();
        e.add(4, &[1, 0], &[1, 0]);
        // Class 5: no foreground in truth or prediction: its IoU is undefined, not 0 or 1.
        assert_eq!(e.add(5, &[0, 0], &[0, 0]), None);
        assert_eq!(e.class_iou().len(), 1);
        assert_eq!(e.miou(), Some(1.0));
        // A false positive on an episode without the class does count against it.
        e.add(5, &[1, 0], &[0, 0]);
        assert_eq!(e.class_iou()[&5], 0.0);
        assert_eq!(e.miou(), Some(0.5));
    }

    #[test]
    fn an_empty_evaluator_has_no_numbers() {
        let e = Evaluator::default();
        assert_eq!(
            (e.miou(), e.fb_iou(), e.miou_episode_wise()),
            (None, None, None)
        );
    }

    #[test]
    fn mean_and_std_of_seeds() {
        let (m, s) = mean_std(&[0.4, 0.6]);
        assert!((m - 0.5).abs() < 1e-12 && (s - 0.1).abs() < 1e-12);
    }
}
