//! The metrics against plain recomputations on random predictions: ignore pixels (255) count
//! for nothing, neither in the model's `foreground_iou` nor in the benchmark's `Evaluator`
//! (mIoU accumulated per class, episode-wise mIoU, FB-IoU).

mod common;

use std::collections::BTreeMap;

use common::{device, tensor};
use proptest::prelude::*;
use srpnet::metrics::{Evaluator, binary_counts, mean_std};
use srpnet::model::loss::{foreground_iou, predicted_mask};

/// Predicted labels (0/1) and ground truth (0, 1, 255) of `n` images of `pixels` pixels.
fn predictions() -> impl Strategy<Value = (usize, Vec<u8>, Vec<u8>)> {
    (1usize..4, 1usize..30).prop_flat_map(|(n, pixels)| {
        (
            Just(n),
            prop::collection::vec(0u8..2, n * pixels),
            prop::collection::vec(prop::sample::select(vec![0u8, 1, 255]), n * pixels),
        )
    })
}

/// (intersection, union) of the foreground over the labelled pixels.
fn by_hand(predicted: &[u8], truth: &[u8]) -> (u64, u64) {
    let mut counts = (0, 0);
    for (&p, &t) in predicted.iter().zip(truth) {
        if t == 255 {
            continue;
        }
        counts.0 += (p == 1 && t == 1) as u64;
        counts.1 += (p == 1 || t == 1) as u64;
    }
    counts
}

fn iou(counts: (u64, u64)) -> Option<f64> {
    (counts.1 > 0).then(|| counts.0 as f64 / counts.1 as f64)
}

fn mean(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let v: Vec<f64> = values.into_iter().collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

proptest! {
    #![proptest_config(common::proptest_config())]

    #[test]
    fn foreground_iou_ignores_255((n, predicted, truth) in predictions()) {
        // Scores that make `predicted` the argmax: background 0.5, foreground 0 or 1.
        let d = device();
        let pixels = predicted.len() / n;
        let mut scores = vec![];
        for image in 0..n {
            scores.extend(std::iter::repeat_n(0.5, pixels));
            scores.extend(predicted[image * pixels..(image + 1) * pixels].iter().map(|&p| p as f32));
        }
        let scores = tensor(scores, [n, 2, 1, pixels], &d);
        prop_assert_eq!(&predicted_mask(scores.clone()).unwrap(), &predicted);
        let got = foreground_iou(
            scores,
            tensor(truth.iter().map(|&t| t as f32).collect(), [n, 1, pixels], &d),
        )
        .unwrap();
        let expect = iou(by_hand(&predicted, &truth)).unwrap_or(1.0) as f32;
        prop_assert!((got - expect).abs() < 1e-6, "foreground IoU {got}, by hand {expect}");
    }

    #[test]
    fn binary_counts_ignore_255((_, predicted, truth) in predictions()) {
        let (fg, bg) = binary_counts(&predicted, &truth);
        let (intersection, union) = by_hand(&predicted, &truth);
        prop_assert_eq!((fg.tp, fg.tp + fg.fp + fg.fn_), (intersection, union));
        // The background is the same question with the labels flipped.
        let flip = |v: &[u8]| v.iter().map(|&x| if x == 255 { 255 } else { 1 - x }).collect::<Vec<u8>>();
        let (i_bg, u_bg) = by_hand(&flip(&predicted), &flip(&truth));
        prop_assert_eq!((bg.tp, bg.tp + bg.fp + bg.fn_), (i_bg, u_bg));
        let labelled = truth.iter().filter(|&&t| t != 255).count() as u64;
        prop_assert_eq!(fg.tp + fg.fp + fg.fn_ + bg.tp, labelled);
    }

    #[test]
    fn evaluator_matches_a_recomputation(
        episodes in prop::collection::vec((1u8..4, predictions()), 1..8),
    ) {
        let mut e = Evaluator::default();
        let mut per_class: BTreeMap<u8, (u64, u64)> = BTreeMap::new();
        let mut episode_ious: BTreeMap<u8, Vec<f64>> = BTreeMap::new();
        let (mut fg, mut bg) = ((0, 0), (0, 0));
        let flip = |v: &[u8]| v.iter().map(|&x| if x == 255 { 255 } else { 1 - x }).collect::<Vec<u8>>();
        for (class, (_, predicted, truth)) in &episodes {
            let counts = by_hand(predicted, truth);
            prop_assert_eq!(e.add(*class, predicted, truth), iou(counts));
            let entry = per_class.entry(*class).or_default();
            entry.0 += counts.0;
            entry.1 += counts.1;
            if let Some(v) = iou(counts) {
                episode_ious.entry(*class).or_default().push(v);
            }
            fg.0 += counts.0;
            fg.1 += counts.1;
            let b = by_hand(&flip(predicted), &flip(truth));
            bg.0 += b.0;
            bg.1 += b.1;
        }
        let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => (a - b).abs() < 1e-12,
            (a, b) => a == b,
        };
        let classes: Vec<f64> = per_class.values().filter_map(|&c| iou(c)).collect();
        prop_assert!(close(e.miou(), mean(classes)), "mIoU {:?}", e.miou());
        let episode_wise = mean(episode_ious.values().filter_map(|v| mean(v.iter().copied())));
        prop_assert!(close(e.miou_episode_wise(), episode_wise));
        let fb = match (iou(fg), iou(bg)) {
            (Some(f), Some(b)) => Some((f + b) / 2.0),
            _ => None,
        };
        prop_assert!(close(e.fb_iou(), fb), "FB-IoU {:?} vs {:?}", e.fb_iou(), fb);
        prop_assert_eq!(e.episodes(), episode_ious.values().map(Vec::len).sum::<usize>());
        for (class, value) in e.class_iou() {
            prop_assert!(close(Some(value), iou(per_class[&class])));
        }
    }

    #[test]
    fn mean_std_is_the_population_formula(values in prop::collection::vec(-1e3f64..1e3, 1..20)) {
        let n = values.len() as f64;
        let m = values.iter().sum::<f64>() / n;
        let s = (values.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n).sqrt();
        let (got_m, got_s) = mean_std(&values);
        prop_assert!((got_m - m).abs() < 1e-9 && (got_s - s).abs() < 1e-9, "{got_m} {got_s} vs {m} {s}");
    }
}
