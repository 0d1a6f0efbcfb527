//! The paper's claims about fidelity: values in [0, 1] for vectors of any sign and scale,
//! symmetric, invariant to scaling, 1 for parallel and 0 for orthogonal vectors, never above
//! |cosine|, finite for zero vectors; the classical fidelity of two distributions; and logits
//! that are `scale x similarity` with the background in channel 0.
//!
//! Scales run over 60 orders of magnitude (1e-30 to 1e30) against an f64 reference, and the
//! contract for NaN, infinite and tied inputs is checked explicitly.
//!
//! Every property states the guard `EPS` of `src/model/fidelity.rs` where it matters: the model
//! computes `u / sqrt(|u|^2 + EPS)`, so for |u|^2 near EPS "scale invariance" and "1 for
//! parallel vectors" hold only up to `EPS / |u|^2`. Properties that ignored this failed in a few
//! percent of random runs.

mod common;

use common::{assert_close, device, tensor, values};
use proptest::prelude::*;
use srpnet::model::fidelity::{EPS, Metric, MetricConfig, normalize, similarity};
use srpnet::model::loss::predicted_labels;
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

/// Two vectors and a log10 scale for each, from 1e-30 to 1e30: far past where `|u|^2`
/// underflows (below ~1e-19) or overflows (above ~1.8e19) in f32.
fn wide_pair() -> impl Strategy<Value = (Vec<f32>, Vec<f32>, f32, f32)> {
    (1usize..48).prop_flat_map(|n| {
        (
            prop::collection::vec(-1.0f32..1.0, n),
            prop::collection::vec(-1.0f32..1.0, n),
            -30.0f32..30.0,
            -30.0f32..30.0,
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
    #![proptest_config(common::proptest_config())]

    #[test]
    fn fidelity_and_cosine_match_f64_at_every_scale((u, v, su, sv) in wide_pair(), non_negative in any::<bool>()) {
        let (mut u, mut v) = (scaled(&u, su), scaled(&v, sv));
        if non_negative {
            u = relu(&u);
            v = relu(&v);
        }
        let f = sim(&u, &v, Metric::Fidelity);
        prop_assert!((0.0..=1.0).contains(&f), "fidelity {f} outside [0, 1] at scales 1e{su}, 1e{sv}");
        let expect = fidelity_reference(&u, &v);
        prop_assert!((f as f64 - expect).abs() < 2e-5, "fidelity {f}, f64 formula {expect} at scales 1e{su}, 1e{sv}");
        let c = sim(&u, &v, Metric::Cosine) as f64;
        let expect = dot(&u, &v) / ((norm2(&u) + EPS) * (norm2(&v) + EPS)).sqrt();
        prop_assert!((c - expect).abs() < 2e-5, "cosine {c}, f64 formula {expect} at scales 1e{su}, 1e{sv}");
    }

    #[test]
    fn fidelity_is_one_for_parallel_vectors_at_every_scale(u in vector(), su in -5.0f32..30.0, sv in -5.0f32..30.0, negative in any::<bool>()) {
        prop_assume!(nonzero(&u));
        let (u, mut v) = (scaled(&u, su), scaled(&u, sv));
        if negative {
            v.iter_mut().for_each(|x| *x = -*x);
        }
        let f = sim(&u, &v, Metric::Fidelity);
        // 1 up to the guard, which costs at most EPS / |u|^2 + EPS / |v|^2.
        let guard = EPS / norm2(&u) + EPS / norm2(&v);
        prop_assert!(
            (f as f64) > 1.0 - 1e-5 - guard && f <= 1.0,
            "parallel vectors at scales 1e{su}, 1e{sv} gave {f} (EPS allows {guard:e})"
        );
    }

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
    fn fidelity_is_symmetric((u, v, su, sv) in wide_pair()) {
        let (u, v) = (scaled(&u, su), scaled(&v, sv));
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
    fn fidelity_never_exceeds_absolute_cosine((u, v, su, sv) in wide_pair()) {
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
    fn classical_fidelity_lies_in_unit_interval_and_is_symmetric((u, v, su, sv) in wide_pair()) {
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

proptest! {
    #![proptest_config(common::proptest_config())]

    /// Below the overflow the rescaled path changes nothing, bit for bit, in the values and in
    /// the gradient of `normalize` itself. (Inside a whole model its extra graph nodes still
    /// changed the training's rounding, so trained models did move: see the fidelity chapter.)
    #[test]
    fn normalize_is_bit_identical_to_the_plain_formula_below_the_overflow(
        (u, v) in pair().prop_map(|(u, v, _, _)| (u, v)),
        su in -30.0f32..18.0,
        sv in -30.0f32..18.0,
    ) {
        let d = device().autodiff();
        let c = u.len();
        let rows = [scaled(&u, su), scaled(&v, sv)].concat();
        let weights = common::noise(c as u64, 2 * c);
        let run = |plain: bool| {
            let x = tensor(rows.clone(), [2, c], &d).require_grad();
            let unit = if plain {
                x.clone() / x.clone().powi_scalar(2).sum_dim(1).add_scalar(EPS).sqrt()
            } else {
                normalize(x.clone(), 1)
            };
            let loss = (unit.clone() * tensor(weights.clone(), [2, c], &d)).sum();
            let grad = x.grad(&loss.backward()).expect("a gradient");
            (values(unit), values(grad))
        };
        let (new, old) = (run(false), run(true));
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        prop_assert_eq!(bits(&new.0), bits(&old.0), "values differ");
        // +0 and -0 are equal here: a zero gradient may change its sign, nothing else.
        prop_assert_eq!(new.1, old.1, "gradients differ");
    }
}

#[test]
fn huge_vectors_are_normalized_not_zeroed() {
    // |x|^2 overflows f32 from |x| ~ 1.8e19: the plain `x / sqrt(|x|^2 + EPS)` would give 0.
    // Two components tie for the largest magnitude (the rescaling divides by it).
    let d = device();
    for big in [2e19f32, 1e30, f32::MAX / 4.0] {
        let x = tensor(vec![big, -big, 0.0, big / 2.0], [1, 4], &d);
        let unit = values(normalize(x, 1));
        let expect = [1.0, -1.0, 0.0, 0.5].map(|v| v / 1.5); // |(1, -1, 0, 0.5)| = 1.5
        assert_close(&unit, &expect, 1e-6, &format!("normalize at {big:e}"));
        let u = [big, 0.5 * big, -big];
        let f = sim(&u, &[1.0, 0.5, -1.0], Metric::Fidelity);
        assert!(
            (f - 1.0).abs() < 1e-6,
            "parallel vectors at {big:e} gave {f}"
        );
        // The gradient of the first unit component, (e0 - x0 x / |x|^2) / |x|, in f64: of order
        // 1 / |x|, not NaN.
        let a = d.clone().autodiff();
        let x = tensor(vec![big, -big, 0.0, big / 2.0], [1, 4], &a).require_grad();
        let grads = normalize(x.clone(), 1).slice([0..1, 0..1]).sum().backward();
        let g = values(x.grad(&grads).expect("a gradient"));
        let n = 1.5 * big as f64;
        let expect = [1.0, -1.0, 0.0, 0.5].map(|v: f64| ((v == 1.0) as u8 as f64 - v / 2.25) / n);
        for (got, want) in g.iter().zip(expect) {
            assert!(
                (*got as f64 - want).abs() <= 1e-5 / n,
                "gradient at {big:e}: {g:?}, expected {expect:?}"
            );
        }
    }
}

#[test]
fn nan_and_infinite_components_give_nan_where_they_reach() {
    // The contract (book: fidelity.md): a NaN or infinite component of a pixel feature makes
    // that pixel's similarities NaN, and of a prototype every similarity to it; never a finite
    // value that looks valid. Other pixels keep their values. The one exception: the classical
    // fidelity's ReLU cuts -inf like any negative component (checked below).
    let d = device();
    let finite = [0.5f32, -1.0, 2.0];
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        for metric in [Metric::Fidelity, Metric::Cosine, Metric::ClassicalFidelity] {
            if metric == Metric::ClassicalFidelity && bad == f32::NEG_INFINITY {
                continue;
            }
            // Two pixels of three channels, [1, 3, 1, 2]: pixel 0 = (bad, 1, 1), pixel 1 = finite.
            let features = tensor(
                vec![bad, finite[0], 1.0, finite[1], 1.0, finite[2]],
                [1, 3, 1, 2],
                &d,
            );
            let prototypes = Prototypes(tensor(vec![1.0, 0.0, 1.0, 0.5, 2.0, 1.0], [2, 3], &d));
            let s = values(similarity(features, &prototypes, metric)); // [bg p0, bg p1, fg p0, fg p1]
            assert!(
                s[0].is_nan() && s[2].is_nan(),
                "{metric:?}, feature with {bad}: {s:?}"
            );
            for (i, prototype) in [[1.0, 0.0, 1.0], [0.5, 2.0, 1.0]].iter().enumerate() {
                let alone = sim(&finite, prototype, metric);
                assert!(
                    (s[1 + 2 * i] - alone).abs() < 1e-6,
                    "{metric:?}: the finite pixel moved to {} from {alone}",
                    s[1 + 2 * i]
                );
            }
            let prototypes = Prototypes(tensor(vec![1.0, 0.0, 1.0, 0.5, bad, 1.0], [2, 3], &d));
            let features = tensor(finite.to_vec(), [1, 3, 1, 1], &d);
            let s = values(similarity(features, &prototypes, metric));
            assert!(s[1].is_nan(), "{metric:?}, prototype with {bad}: {s:?}");
            assert!(
                s[0].is_finite(),
                "{metric:?}: the finite prototype gave {}",
                s[0]
            );
        }
    }
}

#[test]
fn classical_fidelity_cuts_negative_infinity_like_any_negative_component() {
    let with_inf = sim(
        &[f32::NEG_INFINITY, 1.0, 2.0],
        &[1.0, 1.0, 1.0],
        Metric::ClassicalFidelity,
    );
    let with_zero = sim(
        &[0.0, 1.0, 2.0],
        &[1.0, 1.0, 1.0],
        Metric::ClassicalFidelity,
    );
    assert!(
        with_inf.is_finite() && with_inf == with_zero,
        "{with_inf} vs {with_zero}"
    );
}

#[test]
fn ties_go_to_the_background() {
    // A pixel as similar to both prototypes (45 degrees from each; for fidelity also a prototype
    // and its negation) is labelled background: argmax keeps the first of equal logits.
    let d = device();
    let cases: [(&[f32], &[f32]); 2] = [
        (&[1.0, 1.0], &[1.0, 0.0, 0.0, 1.0]),
        (&[1.0, 2.0], &[1.0, 2.0, -1.0, -2.0]),
    ];
    for (pixel, rows) in cases {
        let features = tensor(pixel.to_vec(), [1, 2, 1, 1], &d);
        let prototypes = Prototypes(tensor(rows.to_vec(), [2, 2], &d));
        let logits = MetricConfig::default().logits(features, &prototypes);
        let l = values(logits.clone());
        assert_eq!(l[0], l[1], "a tie expected: {l:?}");
        let label = values(predicted_labels(logits).float());
        assert_eq!(label, vec![0.0], "a tie must go to the background");
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
