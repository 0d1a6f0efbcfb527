//! The statistics of the tables: mean, sample standard deviation, the t quantile of a
//! prediction interval, and a paired bootstrap interval over training seeds and test episodes.

use crate::data::rng::Rng;

/// The mean; NaN for no values (a missing number must never pass a comparison).
pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.iter().sum::<f64>() / values.len() as f64
}

/// The sample standard deviation (divisor n - 1); NaN for fewer than two values.
pub fn sample_std(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return f64::NAN;
    }
    let m = mean(values);
    let var = values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (values.len() - 1) as f64;
    var.sqrt()
}

/// The 97.5% quantile of Student's t with `df` degrees of freedom (two-sided 95%); NaN for 0.
pub fn t975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::NAN,
        1..=30 => TABLE[df - 1],
        _ => 1.96 + 2.4 / df as f64,
    }
}

// ANCHOR: prediction
/// The 95% prediction interval for the mean of `n` fresh training seeds, from the `n` values
/// of a committed cell: `mean +- t(0.975, n - 1) * s * sqrt(2 / n)`, `s` the sample standard
/// deviation. If a rerun elsewhere behaves like training with new seeds, its mean lands inside
/// with probability 0.95. NaN bounds for fewer than two values.
pub fn prediction_interval(values: &[f64]) -> (f64, f64) {
    let n = values.len();
    let half = t975(n.saturating_sub(1)) * sample_std(values) * (2.0 / n as f64).sqrt();
    let m = mean(values);
    (m - half, m + half)
}
// ANCHOR_END: prediction

/// A difference with its 95% interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
}

impl Interval {
    /// A gain: the whole interval above 0 (false for NaN).
    pub fn is_gain(&self) -> bool {
        self.low > 0.0
    }

    /// A loss: the whole interval below 0 (false for NaN).
    pub fn is_loss(&self) -> bool {
        self.high < 0.0
    }
}

// ANCHOR: bootstrap
/// The paired percentile bootstrap of a difference between two methods evaluated on identical
/// test episodes by models of the same training seeds.
///
/// `seeds` training seeds; `groups[g]` test episodes in group g (a fold and evaluation seed).
/// Each of `replicates` resamples draws `seeds` training seeds with replacement and,
/// independently, for every group as many episodes as it has, with replacement. The same episode
/// draw serves every drawn seed and both methods (the test episodes are shared, so the pairing is
/// kept). `statistic(seed_picks, episode_picks)` computes the difference on a resample; on the
/// identity picks it gives the estimate. The interval is the 2.5% and 97.5% percentiles of the
/// replicates (linear interpolation). The RNG is seeded with `rng_seed`: the same data give the
/// same interval on every machine. A NaN in any replicate makes the whole interval NaN.
pub fn paired_bootstrap(
    seeds: usize,
    groups: &[usize],
    replicates: usize,
    rng_seed: u64,
    statistic: impl Fn(&[usize], &[Vec<usize>]) -> f64,
) -> Interval {
    let identity_seeds: Vec<usize> = (0..seeds).collect();
    let identity_episodes: Vec<Vec<usize>> = groups.iter().map(|&n| (0..n).collect()).collect();
    let estimate = statistic(&identity_seeds, &identity_episodes);
    let nan = Interval {
        estimate,
        low: f64::NAN,
        high: f64::NAN,
    };
    if seeds == 0 || replicates == 0 || groups.contains(&0) {
        return nan;
    }
    let mut rng = Rng::new(rng_seed);
    let mut values = Vec::with_capacity(replicates);
    for _ in 0..replicates {
        let seed_picks: Vec<usize> = (0..seeds).map(|_| rng.below(seeds)).collect();
        let episode_picks: Vec<Vec<usize>> = groups
            .iter()
            .map(|&n| (0..n).map(|_| rng.below(n)).collect())
            .collect();
        let v = statistic(&seed_picks, &episode_picks);
        if v.is_nan() {
            return nan;
        }
        values.push(v);
    }
    values.sort_by(f64::total_cmp);
    Interval {
        estimate,
        low: quantile(&values, 0.025),
        high: quantile(&values, 0.975),
    }
}
// ANCHOR_END: bootstrap

/// The `q` quantile of sorted values, linearly interpolated between order statistics.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos.fract());
    match sorted.get(i + 1) {
        Some(next) => sorted[i] + frac * (next - sorted[i]),
        None => sorted[i],
    }
}

/// The common case: per training seed, one difference per test episode of a single group; the
/// statistic is the mean over the drawn seeds of the mean over the drawn episodes.
pub fn paired_mean_difference(
    differences: &[Vec<f64>],
    replicates: usize,
    rng_seed: u64,
) -> Interval {
    let episodes = differences.first().map_or(0, Vec::len);
    if differences.iter().any(|d| d.len() != episodes) {
        return Interval {
            estimate: f64::NAN,
            low: f64::NAN,
            high: f64::NAN,
        };
    }
    paired_bootstrap(
        differences.len(),
        &[episodes],
        replicates,
        rng_seed,
        |seeds, picks| {
            let per_seed: Vec<f64> = seeds
                .iter()
                .map(|&s| {
                    mean(
                        &picks[0]
                            .iter()
                            .map(|&e| differences[s][e])
                            .collect::<Vec<_>>(),
                    )
                })
                .collect();
            mean(&per_seed)
        },
    )
}
