//! The statistics behind every `±` and every interval of the tables, against cases whose answer
//! is known: textbook t quantiles, intervals by hand, degenerate cases, and a simulation of
//! tables with no true difference (the interval's coverage).

use srpnet::data::rng::Rng;
use srpnet::stats::{Interval, mean, paired_t_interval, prediction_interval, sample_std, t975};

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

/// A standard normal draw (Box-Muller) from the crate's deterministic RNG.
fn normal(rng: &mut Rng) -> f64 {
    let (u1, u2) = (rng.unit().max(1e-7) as f64, rng.unit() as f64);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[test]
fn t_quantiles_are_the_textbook_values() {
    // Student's t, 97.5% (two-sided 95%), to the printed digits of a standard table.
    for (df, t) in [(7, 2.365), (9, 2.262), (19, 2.093)] {
        assert_eq!(t975(df), t, "df {df}");
    }
    // Beyond the table, the expansion against exact values (to 6 digits).
    for (df, t) in [
        (31, 2.039513),
        (40, 2.021075),
        (60, 2.000298),
        (120, 1.979930),
        (1000, 1.962339),
    ] {
        assert!(close(t975(df), t, 2e-6), "df {df}: {} vs {t}", t975(df));
    }
    // Decreasing in df, above the normal quantile.
    for df in 1..200 {
        assert!(
            t975(df) > t975(df + 1) && t975(df + 1) > 1.959964,
            "df {df}"
        );
    }
}

#[test]
fn the_paired_t_interval_by_hand() {
    // Table 1's old 1-shot mIoU differences per seed (points): 1.3, 3.5, 3.7. Mean 2.8333;
    // deviations -1.5333, 0.6667, 0.8667: squares 2.3511 + 0.4444 + 0.7511 = 3.5467, over 2:
    // 1.7733, s = 1.3317; half-width 4.303 * 1.3317 / sqrt(3) = 3.3083: [-0.47, +6.14], the
    // interval the evidence issue computed by hand. Not resolved.
    let i = paired_t_interval(&[1.3, 3.5, 3.7]);
    assert!(close(i.estimate, 2.833333, 1e-6));
    assert!(
        close(i.low, -0.475, 1e-3) && close(i.high, 6.142, 1e-3),
        "{i:?}"
    );
    assert!(!i.is_gain() && !i.is_loss());
    // Eight seeds, mean 1, deviations +-sqrt(7/8): squares add to 7, over n - 1 = 7: s = 1.
    // The half-width is t(0.975, 7) / sqrt(8) = 2.365 / 2.8284 = 0.8362: a gain.
    let s = (7.0f64 / 8.0).sqrt();
    let d: Vec<f64> = (0..8)
        .map(|k| if k % 2 == 0 { 1.0 + s } else { 1.0 - s })
        .collect();
    assert!(close(sample_std(&d), 1.0, 1e-12));
    let i = paired_t_interval(&d);
    let half = 2.365 / 8f64.sqrt();
    assert!(
        close(i.low, 1.0 - half, 1e-9) && close(i.high, 1.0 + half, 1e-9),
        "{i:?}"
    );
    assert!(i.is_gain());
    // The same differences with the sign flipped: a loss, mirrored.
    let flipped: Vec<f64> = d.iter().map(|v| -v).collect();
    let j = paired_t_interval(&flipped);
    assert!(j.is_loss() && close(j.low, -i.high, 1e-12) && close(j.high, -i.low, 1e-12));
}

#[test]
fn a_constant_difference_gives_a_degenerate_interval_at_that_value() {
    let i = paired_t_interval(&[0.25; 8]);
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
fn fewer_than_two_seeds_or_a_nan_is_no_verdict() {
    for d in [vec![], vec![0.4], vec![0.1, f64::NAN, 0.2]] {
        let i = paired_t_interval(&d);
        assert!(i.low.is_nan() && i.high.is_nan(), "{d:?}: {i:?}");
        assert!(!i.is_gain() && !i.is_loss());
    }
}

/// With no true difference, a nominal 95% interval must exclude 0 in about 5% of tables. 20,000
/// simulated tables of 8 seeds each (per-seed differences ~ N(0, sigma)): the rate's standard
/// error is 0.15%, so [4%, 6%] is a 6-sigma band. The percentile bootstrap over 3 seeds that
/// the tables used before excludes 0 far more often (checked below: about a third), which is
/// why a seed-level t-interval replaced it.
#[test]
fn a_nominal_95_percent_interval_excludes_zero_in_5_percent_of_null_tables() {
    let mut rng = Rng::new(2026);
    let tables = 20_000;
    for (seeds, sigma) in [(8, 0.02), (3, 1.0), (12, 5.0)] {
        let mut excluded = 0;
        for _ in 0..tables {
            let d: Vec<f64> = (0..seeds).map(|_| sigma * normal(&mut rng)).collect();
            let i = paired_t_interval(&d);
            assert!(!i.low.is_nan());
            if i.is_gain() || i.is_loss() {
                excluded += 1;
            }
        }
        let rate = excluded as f64 / tables as f64;
        assert!((0.04..=0.06).contains(&rate), "{seeds} seeds: rate {rate}");
    }
    // The old way: a percentile bootstrap of the mean of 3 seeds' differences.
    let mut excluded = 0;
    let null_tables = 2_000;
    for _ in 0..null_tables {
        let d: Vec<f64> = (0..3).map(|_| normal(&mut rng)).collect();
        let mut means: Vec<f64> = (0..400)
            .map(|_| (0..3).map(|_| d[rng.below(3)]).sum::<f64>() / 3.0)
            .collect();
        means.sort_by(f64::total_cmp);
        let (low, high) = (means[10], means[389]);
        if low > 0.0 || high < 0.0 {
            excluded += 1;
        }
    }
    let rate = excluded as f64 / null_tables as f64;
    assert!(rate > 0.2, "the 3-seed bootstrap excluded 0 in only {rate}");
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
