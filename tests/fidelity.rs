//! The paper's claims about fidelity: values in [0, 1] for vectors of any sign and scale,
//! symmetric, invariant to scaling, 1 for parallel and 0 for orthogonal vectors, never above
//! |cosine|, finite for zero vectors.

mod common;

use common::{device, tensor, values};
use proptest::prelude::*;
use srpnet::model::fidelity::{Metric, similarity};
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

fn nonzero(v: &[f32]) -> bool {
    v.iter().map(|x| x * x).sum::<f32>() > 1e-4
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn fidelity_lies_in_unit_interval((u, v, su, sv) in pair()) {
        let f = sim(&scaled(&u, su), &scaled(&v, sv), Metric::Fidelity);
        prop_assert!(f.is_finite());
        prop_assert!((0.0..=1.0).contains(&f), "fidelity {f}");
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
        prop_assert!((a - b).abs() < 1e-4, "{a} vs {b} after scaling by 1e{s} (negated: {negative})");
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
        let f = sim(&u, &v, Metric::Fidelity);
        prop_assert!((f - 1.0).abs() < 1e-5, "parallel vectors gave {f}");
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
fn classical_fidelity_is_one_for_the_same_distribution() {
    let u: Vec<f32> = (0..16).map(|i| (i % 5) as f32).collect();
    let f = sim(&u, &scaled(&u, 1.7), Metric::ClassicalFidelity);
    assert!((f - 1.0).abs() < 1e-4, "{f}");
}
