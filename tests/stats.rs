//! The statistics behind every `±` and every interval of the tables, against cases whose answer
//! is known: by hand, degenerate, and a large normal sample with its analytic interval.

use srpnet::data::rng::Rng;
use srpnet::stats::{
    Interval, mean, paired_bootstrap, paired_mean_difference, prediction_interval, quantile,
    sample_std, t975,
};

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn mean_and_sample_std_by_hand() {
    assert_eq!(mean(&[1.0, 2.0, 6.0]), 3.0);
    // Deviations -2, -1, 3: squares 4 + 1 + 9 = 14, over n - 1 = 2: 7.
    assert!(close(sample_std(&[1.0, 2.0, 6.0]), 7f64.sqrt(), 1e-12));
    // Nothing to average, or one value: no spread; NaN, so that no comparison passes.
    assert!(mean(&[]).is_nan());
    assert!(sample_std(&[]).is_nan());
    assert!(sample_std(&[0.5]).is_nan());
    // Two values, the smallest sample with a spread: deviations -1, 1, over n - 1 = 1: 2.
    assert!(close(sample_std(&[1.0, 3.0]), 2f64.sqrt(), 1e-12));
}

#[test]
fn prediction_interval_by_hand() {
    // mean 2, s = 1, t(0.975, 2) = 4.303, sqrt(2 / 3): half-width 3.5134.
    let (lo, hi) = prediction_interval(&[1.0, 2.0, 3.0]);
    let half = 4.303 * (2.0f64 / 3.0).sqrt();
    assert!(close(lo, 2.0 - half, 1e-9) && close(hi, 2.0 + half, 1e-9));
    // s = 2 this time (s = 1 above could not tell s from 1 / s).
    let (lo, hi) = prediction_interval(&[1.0, 3.0, 5.0]);
    let half = 4.303 * 2.0 * (2.0f64 / 3.0).sqrt();
    assert!(close(lo, 3.0 - half, 1e-9) && close(hi, 3.0 + half, 1e-9));
    let (lo, hi) = prediction_interval(&[0.3]);
    assert!(lo.is_nan() && hi.is_nan());
    // Published quantiles of Student's t.
    assert_eq!(t975(1), 12.706);
    assert_eq!(t975(4), 2.776);
    assert!(close(t975(1000), 1.962, 0.001));
    assert_eq!(t975(30), 2.042);
    // No degrees of freedom: no quantile (NaN, never infinity).
    assert!(t975(0).is_nan());
}

#[test]
fn quantile_interpolates_between_order_statistics() {
    let v = [0.0, 10.0, 20.0, 30.0, 40.0];
    assert_eq!(quantile(&v, 0.0), 0.0);
    assert_eq!(quantile(&v, 0.5), 20.0);
    assert_eq!(quantile(&v, 0.125), 5.0);
    assert_eq!(quantile(&v, 1.0), 40.0);
}

#[test]
fn a_constant_difference_gives_a_degenerate_interval_at_that_value() {
    let d = vec![vec![0.25; 40]; 3];
    let i = paired_mean_difference(&d, 500, 7);
    assert_eq!(
        i,
        Interval {
            estimate: 0.25,
            low: 0.25,
            high: 0.25
        }
    );
    assert!(i.is_gain() && !i.is_loss());
}

#[test]
fn two_seeds_by_hand() {
    // Seed 0 gains nothing on every episode, seed 1 gains 1 everywhere. Resampling two seeds
    // gives 0 (1/4), 0.5 (1/2) or 1 (1/4): the 2.5% and 97.5% percentiles are 0 and 1, so the
    // interval is [0, 1] and the gain is not resolved, though the estimate is 0.5.
    let d = vec![vec![0.0; 10], vec![1.0; 10]];
    let i = paired_mean_difference(&d, 4000, 11);
    assert_eq!((i.estimate, i.low, i.high), (0.5, 0.0, 1.0));
    assert!(!i.is_gain() && !i.is_loss());
}

#[test]
fn a_large_normal_sample_matches_the_analytic_interval() {
    // One seed, 2,000 episode differences ~ N(0.3, 1): the bootstrap interval of the mean must
    // match mean +- 1.96 s / sqrt(n) to within a tenth of its half-width.
    let mut rng = Rng::new(42);
    let n = 2000;
    let d: Vec<f64> = (0..n)
        .map(|_| {
            let (u1, u2) = (rng.unit().max(1e-7) as f64, rng.unit() as f64);
            0.3 + (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        })
        .collect();
    let m = mean(&d);
    let half = 1.96 * sample_std(&d) / (n as f64).sqrt();
    let i = paired_mean_difference(&[d], 4000, 3);
    assert!(close(i.estimate, m, 1e-12));
    assert!(
        close(i.low, m - half, 0.1 * half) && close(i.high, m + half, 0.1 * half),
        "{i:?} against [{}, {}]",
        m - half,
        m + half
    );
    assert!(i.is_gain());
}

#[test]
fn the_same_data_and_rng_seed_give_the_same_interval() {
    let d = vec![
        vec![0.1, -0.2, 0.4, 0.0, 0.3],
        vec![0.2, 0.1, -0.1, 0.5, 0.0],
    ];
    assert_eq!(
        paired_mean_difference(&d, 1000, 5),
        paired_mean_difference(&d, 1000, 5)
    );
}

#[test]
fn a_nan_anywhere_makes_the_interval_nan() {
    let d = vec![vec![0.1, f64::NAN, 0.2]];
    let i = paired_mean_difference(&d, 200, 1);
    assert!(i.low.is_nan() && i.high.is_nan());
    assert!(!i.is_gain() && !i.is_loss());
    // Unequal episode counts cannot be paired.
    let i = paired_mean_difference(&[vec![0.1, 0.2], vec![0.3]], 200, 1);
    assert!(i.estimate.is_nan());
}

#[test]
fn episodes_are_drawn_once_per_group_and_shared_by_all_seeds() {
    // The statistic sees the seed draw and one episode draw per group; every index is in range
    // and each draw has the group's size.
    let groups = [3, 5];
    paired_bootstrap(4, &groups, 50, 9, |seeds, picks| {
        assert_eq!(seeds.len(), 4);
        assert!(seeds.iter().all(|&s| s < 4));
        assert_eq!(picks.len(), 2);
        for (p, &n) in picks.iter().zip(&groups) {
            assert_eq!(p.len(), n);
            assert!(p.iter().all(|&e| e < n));
        }
        0.0
    });
}

#[test]
fn a_loss_is_an_interval_wholly_below_zero_and_a_gain_wholly_above() {
    let interval = |low, high| Interval {
        estimate: (low + high) / 2.0,
        low,
        high,
    };
    assert!(interval(-2.0, -0.5).is_loss() && !interval(-2.0, -0.5).is_gain());
    assert!(interval(0.5, 2.0).is_gain() && !interval(0.5, 2.0).is_loss());
    // Touching zero is not resolved, and NaN is never a verdict.
    for i in [
        interval(-2.0, 0.0),
        interval(0.0, 2.0),
        interval(-1.0, 1.0),
        interval(f64::NAN, f64::NAN),
    ] {
        assert!(!i.is_gain() && !i.is_loss(), "{i:?}");
    }
}

#[test]
fn a_bootstrap_with_nothing_to_resample_is_nan_not_a_verdict() {
    // A statistic that is never NaN: only the guard can make the interval NaN.
    let constant = |_: &[usize], _: &[Vec<usize>]| 1.0;
    for (seeds, groups, replicates) in [(0, vec![3], 50), (3, vec![3], 0), (3, vec![3, 0], 50)] {
        let i = paired_bootstrap(seeds, &groups, replicates, 9, constant);
        assert_eq!(i.estimate, 1.0);
        assert!(
            i.low.is_nan() && i.high.is_nan(),
            "seeds {seeds}, groups {groups:?}, replicates {replicates}: {i:?}"
        );
    }
}
