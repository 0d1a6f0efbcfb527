//! The statistics of the tables: mean, sample standard deviation, Student's t quantile, the
//! paired t-interval over training seeds that every table's differences use, and the prediction
//! interval of `--verify`. A trained model is the experimental unit: intervals are computed over
//! training seeds, never by resampling a handful of them.

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
/// Published values for 1..=30; above, the Cornish-Fisher expansion about the normal quantile
/// (three terms: within 2e-6 of the exact value from 31 on).
pub fn t975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::NAN,
        1..=30 => TABLE[df - 1],
        _ => {
            let (z, n) = (1.959_963_984_540_054_f64, df as f64);
            z + (z.powi(3) + z) / (4.0 * n)
                + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * n * n)
                + (3.0 * z.powi(7) + 19.0 * z.powi(5) + 17.0 * z.powi(3) - 15.0 * z)
                    / (384.0 * n.powi(3))
        }
    }
}

/// P(T <= t) for Student's t with `df` >= 1 degrees of freedom: the exact finite series for an
/// integer `df` (Abramowitz and Stegun 26.7.3 and 26.7.4). NaN for `df` = 0 or a NaN `t`.
pub fn t_cdf(t: f64, df: usize) -> f64 {
    if df == 0 || t.is_nan() {
        return f64::NAN;
    }
    let theta = (t.abs() / (df as f64).sqrt()).atan();
    let (sin, cos) = theta.sin_cos();
    let c2 = cos * cos;
    // A(t | df) = P(|T| <= |t|).
    let a = if df % 2 == 1 {
        let (mut term, mut sum) = (cos, 0.0);
        for j in 1..=(df - 1) / 2 {
            sum += term;
            term *= (2 * j) as f64 / (2 * j + 1) as f64 * c2;
        }
        2.0 / std::f64::consts::PI * (theta + sin * sum)
    } else {
        let (mut term, mut sum) = (1.0, 0.0);
        for j in 1..=df / 2 {
            sum += term;
            term *= (2 * j - 1) as f64 / (2 * j) as f64 * c2;
        }
        sin * sum
    };
    0.5 + 0.5 * a.copysign(t)
}

/// The `p` quantile of Student's t with `df` degrees of freedom, for `p` in (0.5, 1): the root
/// of [`t_cdf`] by bisection. NaN outside that range or for `df` = 0.
pub fn t_quantile(p: f64, df: usize) -> f64 {
    if !(p > 0.5 && p < 1.0) || df == 0 {
        return f64::NAN;
    }
    let (mut low, mut high) = (0.0_f64, 1.0_f64);
    while t_cdf(high, df) < p {
        high *= 2.0;
        if high > 1e12 {
            return f64::NAN;
        }
    }
    for _ in 0..200 {
        let mid = 0.5 * (low + high);
        if t_cdf(mid, df) < p {
            low = mid
        } else {
            high = mid
        }
    }
    0.5 * (low + high)
}

// ANCHOR: prediction_family
/// The prediction interval for the mean of `rerun` fresh training seeds from the `n` committed
/// values of a cell, one of `cells` cells tested together at a family-wise 95% (Bonferroni: each
/// cell at `1 - 0.05 / cells`): `mean +- t(1 - 0.025 / cells, n - 1) * s * sqrt(1/n + 1/rerun)`.
/// `None` with fewer than two committed values or no rerun value (no spread, no interval).
pub fn prediction_interval_family(
    values: &[f64],
    rerun: usize,
    cells: usize,
) -> Option<(f64, f64)> {
    let n = values.len();
    if n < 2 || rerun == 0 || cells == 0 {
        return None;
    }
    let t = t_quantile(1.0 - 0.025 / cells as f64, n - 1);
    let half = t * sample_std(values) * (1.0 / n as f64 + 1.0 / rerun as f64).sqrt();
    let m = mean(values);
    (half.is_finite() && m.is_finite()).then_some((m - half, m + half))
}
// ANCHOR_END: prediction_family

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

// ANCHOR: paired_t
/// The paired t-interval of a mean difference over training seeds: `differences[i]` is seed
/// i's number of one row minus the other's (both rows evaluated on identical test episodes),
/// each seed's number the mean over folds, episodes and evaluation seeds, exactly as the table
/// cell. The interval is `mean +- t(0.975, n - 1) * s / sqrt(n)`, `s` the sample standard
/// deviation of the n differences: the training seed is the unit, so the interval covers what
/// a new set of n seeds would vary by. Episode sampling variance enters through each seed's
/// number. NaN bounds for fewer than two seeds or a NaN difference (never a verdict).
pub fn paired_t_interval(differences: &[f64]) -> Interval {
    let n = differences.len();
    let estimate = mean(differences);
    let half = t975(n.saturating_sub(1)) * sample_std(differences) / (n as f64).sqrt();
    Interval {
        estimate,
        low: estimate - half,
        high: estimate + half,
    }
}
// ANCHOR_END: paired_t
