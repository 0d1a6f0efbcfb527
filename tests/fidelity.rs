//! The paper's claims about fidelity: values in [0, 1] for vectors of any sign and scale,
//! symmetric, invariant to scaling, 1 for parallel and 0 for orthogonal vectors, never above
//! |cosine|, finite for zero vectors; the classical fidelity of two distributions; and logits
//! that are `scale x similarity` with the background in channel 0.
//!
//! Every property states the guard `EPS` of `src/model/fidelity.rs` where it matters: the model
//! computes `u / sqrt(|u|^2 + EPS)`, so for |u|^2 near EPS "scale invariance" and "1 for
//! parallel vectors" hold only up to `EPS / |u|^2`. Properties that ignored this failed in a few
//! percent of random runs.

mod common;

use common::{assert_close, device, tensor, values};
use proptest::prelude::*;
use srpnet::model::fidelity::{EPS, Metric, MetricConfig, similarity};
use srpnet::model::prototype::Prototypes;

/// Similarity of the pixel feature `u` to the prototype `v`, through the model's own code path.
fn sim(u: &[f32], v: &[f32], metric: Metric) -> f32 {
    let d = device();
    let c = u.len();
    let features = tensor(u.to_vec(), [1, c, 1, 1], &d);
    let mut rows = v.to_vec();
    rows.extend_from_slice(v);
    let prototypes = Prototypes(tensor(rows, [2, c], &d));
    values(similarity(features, &prototypes, metric))[1]
}

fn vector() -> impl Strategy<Value = Vec<f32>> {
    (1usize..48).prop_flat_map(|n| prop::collection::vec(-1.0f32..1.0, n))
}

fn pair() -> impl Strategy<Value = (Vec<f32>, Vec<f32>, f32, f32)> {
    (1usize..48).prop_flat_map(|n| {
        (
            prop::collection::vec(-1.0f32..1.0, n),
            prop::collection::vec(-1.0f32..1.0, n),
            -3.0f32..3.0,
            -3.0f32..3.0,
        )
    })
}

fn scaled(v: &[f32], log10: f32) -> Vec<f32> {
    let s = 10f32.powf(log10);
    v.iter().map(|x| x * s).collect()
}

fn relu(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.max(0.0)).collect()
}

fn norm2(v: &[f32]) -> f64 {
    v.iter().map(|&x| (x as f64).powi(2)).sum()
}

fn dot(u: &[f32], v: &[f32]) -> f64 {
    u.iter().zip(v).map(|(&a, &b)| a as f64 * b as f64).sum()
}

fn nonzero(v: &[f32]) -> bool {
    norm2(v) > 1e-4
}

/// The fidelity formula with the model's guard, in f64:
/// `(u.v)^2 / ((|u|^2 + EPS)(|v|^2 + EPS))`.
fn fidelity_reference(u: &[f32], v: &[f32]) -> f64 {
    dot(u, v).powi(2) / ((norm2(u) + EPS) * (norm2(v) + EPS))
}

/// The classical fidelity `(sum_i sqrt(p_i q_i))^2` of `p = relu(u) / sum relu(u)`, without
/// any guard (callers keep the sums away from 0).
fn classical_reference(u: &[f32], v: &[f32]) -> f64 {
    let distribution = |x: &[f32]| {
        let total: f64 = x.iter().map(|&a| a.max(0.0) as f64).sum();
        x.iter()
            .map(|&a| a.max(0.0) as f64 / total)
            .collect::<Vec<_>>()
    };
    let (p, q) = (distribution(u), distribution(v));
    p.iter()
        .zip(&q)
        .map(|(a, b)| (a * b).sqrt())
        .sum::<f64>()
        .powi(2)
}

proptest! {
    #![proptest_config(common::cases(200))]

    #[test]
    fn fidelity_is_the_squared_cosine_in_unit_interval((u, v, su, sv) in pair(), non_negative in any::<bool>()) {
        // Signed inputs (the pyramid without its final ReLU) and non-negative ones (with it).
        let (mut u, mut v) = (scaled(&u, su), scaled(&v, sv));
        if non_negative {
            u = relu(&u);
            v = relu(&v);
        }
        let f = sim(&u, &v, Metric::Fidelity);
        prop_assert!((0.0..=1.0).contains(&f), "fidelity {f} outside [0, 1]");
        let expect = fidelity_reference(&u, &v);
        prop_assert!((f as f64 - expect).abs() < 2e-5, "fidelity {f}, formula {expect}");
        if non_negative {
            let c = sim(&u, &v, Metric::Cosine);
            prop_assert!((0.0..=1.0).contains(&c), "cosine {c} of non-negative vectors");
        }
    }

    #[test]
    fn fidelity_is_symmetric((u, v, _, _) in pair()) {
        let a = sim(&u, &v, Metric::Fidelity);
        let b = sim(&v, &u, Metric::Fidelity);
        prop_assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }

    #[test]
    fn fidelity_ignores_positive_and_negative_scaling((u, v, s, _) in pair(), negative in any::<bool>()) {
        prop_assume!(nonzero(&u) && nonzero(&v));
        let mut su = scaled(&u, s);
        if negative {
            su.iter_mut().for_each(|x| *x = -*x);
        }
        let a = sim(&u, &v, Metric::Fidelity);
        let b = sim(&su, &v, Metric::Fidelity);
        // Exact without the guard; with it each side moves by at most EPS / |u|^2 (f <= 1).
        let guard = EPS / norm2(&u) + EPS / norm2(&su);
        prop_assert!(
            ((a - b).abs() as f64) < 2e-5 + guard,
            "{a} vs {b} after scaling by 1e{s} (negated: {negative}; EPS allows {guard:e})"
        );
    }

    #[test]
    fn fidelity_never_exceeds_absolute_cosine((u, v, su, sv) in pair()) {
        let u = scaled(&u, su);
        let v = scaled(&v, sv);
        let f = sim(&u, &v, Metric::Fidelity);
        let c = sim(&u, &v, Metric::Cosine);
        prop_assert!(f <= c.abs() + 1e-6, "fidelity {f} > |cosine| {}", c.abs());
        prop_assert!((f - c * c).abs() < 1e-5, "fidelity {f} is not cos^2 = {}", c * c);
    }

    #[test]
    fn fidelity_is_one_for_parallel_vectors(u in vector(), s in -3.0f32..3.0, negative in any::<bool>()) {
        prop_assume!(nonzero(&u));
        let mut v = scaled(&u, s);
        if negative {
            v.iter_mut().for_each(|x| *x = -*x);
        }
        let f = sim(&u, &v, Metric::Fidelity) as f64;
        // 1 up to the guard: |u|^2 |v|^2 / ((|u|^2 + EPS)(|v|^2 + EPS)).
        let (nu, nv) = (norm2(&u), norm2(&v));
        let expect = nu * nv / ((nu + EPS) * (nv + EPS));
        prop_assert!((f - expect).abs() < 1e-5, "parallel vectors gave {f}, expected {expect}");
        prop_assert!(f > 1.0 - 1e-5 - EPS / nu - EPS / nv, "parallel vectors gave {f}");
    }

    #[test]
    fn fidelity_is_zero_for_orthogonal_vectors((u, w, _, _) in pair()) {
        prop_assume!(u.len() >= 2 && nonzero(&u));
        // Gram-Schmidt: v = w - (w.u / u.u) u is orthogonal to u.
        let uu: f64 = u.iter().map(|&x| (x as f64).powi(2)).sum();
        let wu: f64 = u.iter().zip(&w).map(|(&a, &b)| a as f64 * b as f64).sum();
        let v: Vec<f32> = u.iter().zip(&w).map(|(&a, &b)| (b as f64 - wu / uu * a as f64) as f32).collect();
        prop_assume!(nonzero(&v));
        let f = sim(&u, &v, Metric::Fidelity);
        prop_assert!(f < 1e-5, "orthogonal vectors gave {f}");
    }

    #[test]
    fn classical_fidelity_lies_in_unit_interval_and_is_symmetric((u, v, su, sv) in pair()) {
        let u = scaled(&u, su);
        let v = scaled(&v, sv);
        let a = sim(&u, &v, Metric::ClassicalFidelity);
        let b = sim(&v, &u, Metric::ClassicalFidelity);
        prop_assert!(a.is_finite() && (0.0..=1.0).contains(&a), "classical fidelity {a}");
        prop_assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }

    #[test]
    fn classical_fidelity_is_the_squared_bhattacharyya_coefficient((u, v, s, _) in pair()) {
        // Signed inputs: the negative part is cut by the ReLU. The sums stay well above the
        // guard, where sqrt(p + EPS) - sqrt(EPS) differs from sqrt(p) by at most sqrt(EPS).
        let total = |x: &[f32]| x.iter().map(|&a| a.max(0.0) as f64).sum::<f64>();
        prop_assume!(total(&u) > 1e-2 && total(&v) > 1e-2);
        let f = sim(&scaled(&u, s), &v, Metric::ClassicalFidelity) as f64;
        let expect = classical_reference(&u, &v);
        prop_assert!((f - expect).abs() < 2e-4, "classical fidelity {f}, formula {expect}");
    }

    #[test]
    fn logits_are_scale_times_similarity_background_first(
        (u, bg, fg) in (1usize..16).prop_flat_map(|n| (
            prop::collection::vec(-1.0f32..1.0, 3 * n),
            prop::collection::vec(-1.0f32..1.0, n),
            prop::collection::vec(-1.0f32..1.0, n),
        )),
        scale in 0.1f64..50.0,
        metric in prop::sample::select(vec![Metric::Fidelity, Metric::Cosine, Metric::ClassicalFidelity]),
    ) {
        // Three pixels of n channels, laid out [1, n, 1, 3].
        let d = device();
        let n = bg.len();
        let mut rows = bg.clone();
        rows.extend_from_slice(&fg);
        let prototypes = Prototypes(tensor(rows, [2, n], &d));
        let features = tensor(u.clone(), [1, n, 1, 3], &d);
        let logits = values(MetricConfig { metric, scale }.logits(features, &prototypes));
        let mut expect = Vec::new();
        for prototype in [&bg, &fg] {
            for x in 0..3 {
                let pixel: Vec<f32> = (0..n).map(|ch| u[ch * 3 + x]).collect();
                expect.push(scale as f32 * sim(&pixel, prototype, metric));
            }
        }
        let tolerance = 1e-5 * scale as f32;
        assert_close(&logits, &expect, tolerance, &format!("{metric:?} x {scale}"));
    }
}

#[test]
fn zero_vectors_give_finite_zero_similarity() {
    let zero = vec![0.0; 8];
    let other: Vec<f32> = (0..8).map(|i| i as f32 - 3.5).collect();
    for metric in [Metric::Fidelity, Metric::Cosine, Metric::ClassicalFidelity] {
        for (u, v) in [(&zero, &other), (&other, &zero), (&zero, &zero)] {
            let s = sim(u, v, metric);
            assert!(s.is_finite(), "{metric:?} gave {s} for a zero vector");
            assert!(s.abs() < 1e-6, "{metric:?} gave {s} for a zero vector");
        }
    }
}

#[test]
fn fidelity_separates_directions_more_sharply_than_cosine() {
    // Same angle, two metrics: fidelity pushes a mediocre match further from a perfect one.
    let u = [1.0, 0.0];
    let v = [1.0, 1.0];
    let c = sim(&u, &v, Metric::Cosine);
    let f = sim(&u, &v, Metric::Fidelity);
    assert!((c - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
    assert!((f - 0.5).abs() < 1e-6, "cos^2(45 deg) = 0.5, got {f}");
}

#[test]
fn hand_computed_similarities() {
    // u = (1, 2, 2), w = (2, 0, 1): u.w = 4, |u|^2 = 9, |w|^2 = 5, so cos = 4 / sqrt(45)
    // and fidelity = 16 / 45.
    let u = [1.0, 2.0, 2.0];
    let w = [2.0, 0.0, 1.0];
    let cases = [
        (Metric::Cosine, 4.0 / 45f32.sqrt()),
        (Metric::Fidelity, 16.0 / 45.0),
    ];
    for (metric, expect) in cases {
        let got = sim(&u, &w, metric);
        assert!((got - expect).abs() < 1e-6, "{metric:?}: {got} vs {expect}");
    }
    // Cosine keeps the sign, fidelity squares it away.
    let minus_w = [-2.0, 0.0, -1.0];
    assert!((sim(&u, &minus_w, Metric::Cosine) + 4.0 / 45f32.sqrt()).abs() < 1e-6);
    assert!((sim(&u, &minus_w, Metric::Fidelity) - 16.0 / 45.0).abs() < 1e-6);

    // Classical fidelity: u = (1, 3, -5, 0) -> p = (1/4, 3/4, 0, 0) (the ReLU drops -5);
    // v = (1, 1, 1, 1) -> q = 1/4 each. sum sqrt(p q) = 1/4 + sqrt(3)/4, squared:
    // (1 + sqrt 3)^2 / 16 = 0.466506. (Without the square: 0.683; with p instead of sqrt p:
    // cos(p, q)^2 = 0.4.)
    let expect = (1.0 + 3f32.sqrt()).powi(2) / 16.0;
    let got = sim(&[1.0, 3.0, -5.0, 0.0], &[1.0; 4], Metric::ClassicalFidelity);
    assert!(
        (got - expect).abs() < 1e-5,
        "classical fidelity {got} vs {expect}"
    );
    // It depends on the distribution only, at any scale where the sum of the feature is far
    // above the guard (1e-9 x 4 = 4e-9 >> EPS): dividing by the sum is what makes the guarded
    // square roots scale-free.
    for scale in [1e-9f32, 1e3] {
        let u = [scale, 3.0 * scale, -5.0 * scale, 0.0];
        let got = sim(&u, &[1.0; 4], Metric::ClassicalFidelity);
        assert!((got - expect).abs() < 1e-5, "x {scale}: {got} vs {expect}");
    }
    // Disjoint supports: no overlap, fidelity 0; the same distribution at another scale: 1.
    let disjoint = sim(
        &[1.0, 0.0, 0.0],
        &[0.0, 2.0, 3.0],
        Metric::ClassicalFidelity,
    );
    assert!(disjoint.abs() < 1e-5, "{disjoint}");
}

#[test]
fn logits_put_the_background_prototype_in_channel_0() {
    // One pixel along e0; background prototype e0, foreground e1: channel 0 = scale, 1 = 0.
    let d = device();
    let prototypes = Prototypes(tensor(vec![1.0, 0.0, 0.0, 1.0], [2, 2], &d));
    let features = tensor(vec![3.0, 0.0], [1, 2, 1, 1], &d);
    for metric in [Metric::Fidelity, Metric::Cosine, Metric::ClassicalFidelity] {
        let config = MetricConfig { metric, scale: 7.0 };
        let logits = values(config.logits(features.clone(), &prototypes));
        assert_close(&logits, &[7.0, 0.0], 1e-4, &format!("{metric:?}"));
    }
}

#[test]
fn classical_fidelity_is_one_for_the_same_distribution() {
    let u: Vec<f32> = (0..16).map(|i| (i % 5) as f32).collect();
    let f = sim(&u, &scaled(&u, 1.7), Metric::ClassicalFidelity);
    assert!((f - 1.0).abs() < 1e-4, "{f}");
}
