//! Prototype regularisation (SRP): separable features recover the support mask exactly (any K,
//! ignore pixels, unequal areas); L_sup has a gradient with respect to the prototypes; the total
//! loss's gradient is the query gradient plus lambda times the support gradient; the query never
//! influences the prototypes; a few optimiser steps on one episode lower L_sup and raise the
//! support-recovery IoU; L_sup's gradient reaches the pyramid and the backbone; SRP adds no
//! parameters; inference does not depend on lambda.
//!
//! SRP as a loss: on separable supports L_sup lies between `log(1 + exp(-s m_max))` and
//! `log(1 + exp(-s m_min))` (s the logit scale, m the per-pixel margin of the right prototype's
//! similarity over the wrong one's, computed in f64); permuting the mask against the features
//! raises it; prototypes and L_sup do not depend on the order of the shots; and SGD on L_sup
//! lowers it for every one of several model seeds and episodes.

mod common;

use burn::module::Module;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::Tensor;
use common::{assert_close, assert_finite, device, max_abs_diff, noise, tensor, values};
use proptest::prelude::*;
use srpnet::bench::synthetic_episode;
use srpnet::model::fidelity::{Metric, MetricConfig};
use srpnet::model::loss::{foreground_iou, predicted_labels};
use srpnet::model::prototype::{MaskPooling, Prototypes, masked_average_pool};
use srpnet::model::srp::{support_loss, support_recovery};
use srpnet::model::{EpisodeTensors, Losses, ModelConfig, Phase, Profile, SrpNet};

const METRICS: [Metric; 3] = [Metric::Fidelity, Metric::Cosine, Metric::ClassicalFidelity];

/// A small embedded-style model for fast tests.
fn tiny_config() -> ModelConfig {
    let mut c = ModelConfig::srpnet(Profile::Embedded);
    c.backbone.base_width = 8;
    c.pyramid.channels = 32;
    c
}

#[test]
fn separable_features_recover_the_support_mask_exactly() {
    let d = device();
    let (c, h, w) = (8, 12, 12);
    // Foreground pixels point along e0 (with positive noise), background along e1: the classes
    // separate, and the prototypes must give the support mask back with IoU 1.
    let mask: Vec<f32> = (0..h * w)
        .map(|i| {
            if (3..9).contains(&(i / w)) && (2..7).contains(&(i % w)) {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    let jitter = noise(11, c * h * w);
    let mut f = vec![0.0; c * h * w];
    for p in 0..h * w {
        let axis = if mask[p] == 1.0 { 0 } else { 1 };
        f[axis * h * w + p] = 2.0 + jitter[p].abs();
        f[(2 + p % 6) * h * w + p] = 0.1 * jitter[c * h * w / 2 + p].abs();
    }
    let features = tensor(f, [1, c, h, w], &d);
    let masks = tensor(mask, [1, h, w], &d);
    for metric in [Metric::Fidelity, Metric::Cosine, Metric::ClassicalFidelity] {
        let metric = MetricConfig {
            metric,
            scale: 20.0,
        };
        let prototypes =
            masked_average_pool(features.clone(), masks.clone(), MaskPooling::Transposed).unwrap();
        let logits = support_recovery(features.clone(), &prototypes, &metric, [h, w]);
        let iou = foreground_iou(logits, masks.clone()).unwrap();
        assert_eq!(
            iou, 1.0,
            "{:?} recovered the support with IoU {iou}",
            metric.metric
        );
    }
}

/// L_sup and the support-recovery IoU of `model` on `episode`.
fn support_state(model: &SrpNet, episode: &srpnet::model::EpisodeTensors) -> (f32, f32) {
    let out = model.forward(episode, Phase::Train).unwrap();
    let loss = out.losses.unwrap().support.unwrap().into_scalar::<f32>();
    let iou = foreground_iou(out.support_logits, episode.support_masks.clone()).unwrap();
    (loss, iou)
}

#[test]
fn optimiser_steps_on_l_sup_lower_it_and_raise_support_recovery() {
    let d = device().autodiff();
    let _rng = common::seed(&d, 7);
    let mut model = tiny_config().init(&d).unwrap();
    let episode = synthetic_episode(1, 33, &d).unwrap();
    let (loss_before, iou_before) = support_state(&model, &episode);
    let mut optimizer = SgdConfig::new().init();
    for _ in 0..15 {
        let out = model.forward(&episode, Phase::Train).unwrap();
        let l_sup = out.losses.unwrap().support.unwrap();
        let grads = GradientsParams::from_grads(l_sup.backward(), &model);
        model = optimizer.step(0.05, model, grads);
    }
    let (loss_after, iou_after) = support_state(&model, &episode);
    println!("L_sup {loss_before} -> {loss_after}; support IoU {iou_before} -> {iou_after}");
    assert!(loss_after.is_finite());
    assert!(
        loss_after < 0.8 * loss_before,
        "L_sup went from {loss_before} to {loss_after}"
    );
    assert!(
        iou_after > iou_before,
        "support-recovery IoU went from {iou_before} to {iou_after}"
    );
}

#[test]
fn l_sup_gradient_reaches_pyramid_and_backbone() {
    let d = device().autodiff();
    let _rng = common::seed(&d, 3);
    let model = tiny_config().init(&d).unwrap();
    let episode = synthetic_episode(1, 33, &d).unwrap();
    let out = model.forward(&episode, Phase::Train).unwrap();
    let grads = out.losses.unwrap().support.unwrap().backward();
    let norm = |t: Option<burn::tensor::Tensor<4>>| {
        values(t.expect("a gradient").powi_scalar(2).sum())[0].sqrt()
    };
    let pyramid = norm(model.pyramid.reduce.weight.val().grad(&grads));
    let stem = norm(model.backbone.stem.conv.weight.val().grad(&grads));
    let layer4 = norm(model.backbone.layer4[0].conv3.weight.val().grad(&grads));
    for (name, g) in [("pyramid", pyramid), ("stem", stem), ("layer4", layer4)] {
        assert!(g.is_finite() && g > 0.0, "L_sup gradient at {name}: {g}");
    }
}

#[test]
fn srp_adds_no_parameters() {
    let d = device();
    // Initialisation draws from flex's one RNG: hold the lock the seeded tests hold.
    let _rng = common::seed(&d, 0);
    let with_srp = tiny_config();
    let mut without = with_srp.clone();
    without.srp.lambda = 0.0;
    without.iqi.iterations = 0;
    let a = with_srp.init(&d).unwrap();
    let b = without.init(&d).unwrap();
    assert_eq!(a.num_params(), b.num_params());
    assert_eq!(
        a.num_params(),
        a.backbone.num_params() + a.pyramid.num_params()
    );
}

#[test]
fn inference_output_does_not_depend_on_lambda() {
    let d = device();
    let _rng = common::seed(&d, 5);
    let model = tiny_config().init(&d).unwrap();
    let episode = synthetic_episode(2, 33, &d).unwrap();
    let reference = values(
        model
            .forward(&episode, Phase::Infer)
            .unwrap()
            .query_probabilities,
    );
    for lambda in [0.0, 0.5, 10.0] {
        let mut config = model.config.clone();
        config.srp.lambda = lambda;
        let other = SrpNet {
            config,
            ..model.clone()
        };
        let probs = values(
            other
                .forward(&episode, Phase::Infer)
                .unwrap()
                .query_probabilities,
        );
        assert_eq!(
            max_abs_diff(&reference, &probs),
            0.0,
            "lambda {lambda} changed inference"
        );
    }
}

#[test]
fn support_loss_is_the_mean_cross_entropy_over_non_ignored_pixels() {
    let d = device();
    let raw = noise(12, 2 * 16);
    let logits = tensor(raw.clone(), [1, 2, 4, 4], &d);
    let mut mask = vec![0.0f32; 16];
    mask[5] = 1.0;
    mask[6] = 1.0;
    mask[0] = 255.0;
    mask[15] = 255.0;
    // By hand: -log softmax at the labelled class, averaged over the 14 labelled pixels.
    let mut total = 0.0f64;
    for p in 0..16 {
        if mask[p] == 255.0 {
            continue;
        }
        let (bg, fg) = (raw[p] as f64, raw[16 + p] as f64);
        let pick = if mask[p] == 1.0 { fg } else { bg };
        total += (bg.exp() + fg.exp()).ln() - pick;
    }
    let expect = (total / 14.0) as f32;
    let got = values(support_loss(logits.clone(), tensor(mask, [1, 4, 4], &d)))[0];
    assert!((got - expect).abs() < 1e-5, "{got} vs {expect}");
    // Every pixel ignored: 0, not NaN.
    let none = values(support_loss(logits, tensor(vec![255.0; 16], [1, 4, 4], &d)))[0];
    assert_eq!(none, 0.0);
}

/// K shots of separable features [K, C, h, w] and their masks [K, h, w] (0, 1, 255): foreground
/// pixels lie along e0 and background pixels along e1, each with its own length (so the regions
/// have unequal areas and unequal norms), plus non-negative noise below 0.1 on channels 2..C.
/// Ignore pixels lie along e0 + e1, ambiguous on purpose: they must count for nothing.
fn separable() -> impl Strategy<Value = ([usize; 4], Vec<f32>, Vec<f32>)> {
    separable_with(vec![0.0f32, 1.0, 255.0])
}

/// `separable()` with the labels drawn from `labels`.
fn separable_with(labels: Vec<f32>) -> impl Strategy<Value = ([usize; 4], Vec<f32>, Vec<f32>)> {
    (1usize..=5, 2usize..6, 2usize..7, 2usize..7)
        .prop_flat_map(move |(k, c, h, w)| {
            let labels = prop::sample::select(labels.clone());
            (
                Just([k, c, h, w]),
                prop::collection::vec(labels, k * h * w).prop_map(|mut m| {
                    m[0] = 1.0;
                    m[1] = 0.0;
                    m
                }),
                prop::collection::vec(0.5f32..3.0, k * h * w),
                prop::collection::vec(0.0f32..0.1, k * c * h * w),
            )
        })
        .prop_map(|([k, c, h, w], m, length, jitter)| {
            let mut f = vec![0.0; k * c * h * w];
            for s in 0..k {
                for p in 0..h * w {
                    let at = |ch: usize| (s * c + ch) * h * w + p;
                    match m[s * h * w + p] {
                        1.0 => f[at(0)] = length[s * h * w + p],
                        0.0 => f[at(1)] = length[s * h * w + p],
                        _ => (f[at(0)], f[at(1)]) = (1.0, 1.0),
                    }
                    for ch in 2..c {
                        f[at(ch)] = jitter[at(ch)];
                    }
                }
            }
            ([k, c, h, w], f, m)
        })
}

proptest! {
    #![proptest_config(common::proptest_config())]

    #[test]
    fn separable_supports_are_recovered_exactly((dims, f, m) in separable()) {
        let d = device();
        let [k, c, h, w] = dims;
        let features = tensor(f, [k, c, h, w], &d);
        let masks = tensor(m.clone(), [k, h, w], &d);
        let prototypes = masked_average_pool(features.clone(), masks.clone(), MaskPooling::Transposed).unwrap();
        for metric in METRICS {
            let metric = MetricConfig { metric, scale: 20.0 };
            let logits = support_recovery(features.clone(), &prototypes, &metric, [h, w]);
            let labels = values(predicted_labels(logits.clone()).float());
            for (i, (&got, &want)) in labels.iter().zip(&m).enumerate() {
                prop_assert!(want == 255.0 || got == want, "{:?}, K = {k}: pixel {i} recovered as {got}, labelled {want}", metric.metric);
            }
            prop_assert_eq!(foreground_iou(logits, masks.clone()).unwrap(), 1.0);
        }
    }
}

#[test]
fn l_sup_has_a_gradient_with_respect_to_the_prototypes() {
    // The support-recovery path must not detach the prototypes: L_sup regularises how they are
    // made. Masks at twice the feature resolution, with ignore pixels.
    let d = device().autodiff();
    let (k, c, h, w) = (2, 4, 5, 5);
    let features = tensor(noise(21, k * c * h * w), [k, c, h, w], &d);
    let m: Vec<f32> = noise(22, k * 100)
        .into_iter()
        .map(|v| match v {
            v if v > 0.2 => 1.0,
            v if v > 0.1 => 255.0,
            _ => 0.0,
        })
        .collect();
    let masks = tensor(m, [k, 10, 10], &d);
    let p = tensor(noise(23, 2 * c), [2, c], &d).require_grad();
    for metric in METRICS {
        let metric = MetricConfig {
            metric,
            scale: 20.0,
        };
        let logits = support_recovery(features.clone(), &Prototypes(p.clone()), &metric, [10, 10]);
        let grads = support_loss(logits, masks.clone()).backward();
        let g = values(p.grad(&grads).expect("L_sup reaches the prototypes"));
        assert_finite(&g, "gradient of L_sup");
        for (row, name) in [(0, "background"), (1, "foreground")] {
            let norm: f32 = g[row * c..(row + 1) * c].iter().map(|x| x * x).sum();
            assert!(
                norm > 1e-8,
                "{:?}: no gradient at the {name} prototype",
                metric.metric
            );
        }
    }
}

#[test]
fn total_gradient_is_query_plus_lambda_times_support_gradient() {
    let d = device().autodiff();
    let _rng = common::seed(&d, 8);
    let base = tiny_config().init(&d).unwrap();
    let episode = synthetic_episode(2, 33, &d).unwrap();
    // The gradient of one loss term at the pyramid's 1x1 conv and at the backbone's stem.
    let gradient = |model: &SrpNet, pick: fn(Losses) -> Tensor<1>| -> Vec<f32> {
        let losses = model
            .forward(&episode, Phase::Train)
            .unwrap()
            .losses
            .unwrap();
        let grads = pick(losses).backward();
        let mut g = values(model.pyramid.reduce.weight.val().grad(&grads).unwrap());
        g.extend(values(
            model.backbone.stem.conv.weight.val().grad(&grads).unwrap(),
        ));
        g
    };
    for lambda in [0.25, 1.0, 3.0] {
        let mut config = base.config.clone();
        config.srp.lambda = lambda;
        let model = SrpNet {
            config,
            ..base.clone()
        };
        let total = gradient(&model, |l| l.total);
        let query = gradient(&model, |l| l.query);
        let support = gradient(&model, |l| l.support.expect("lambda > 0 gives L_sup"));
        assert!(max_abs_diff(&support, &vec![0.0; support.len()]) > 0.0);
        let expect: Vec<f32> = query
            .iter()
            .zip(&support)
            .map(|(q, s)| q + lambda as f32 * s)
            .collect();
        let scale = max_abs_diff(&expect, &vec![0.0; expect.len()]);
        assert_close(&total, &expect, 1e-4 * scale, &format!("lambda {lambda}"));
    }
}

#[test]
fn the_query_never_influences_the_prototypes() {
    // Inference (batch norm on running statistics): another query image leaves the recovered
    // support bit for bit unchanged.
    let d = device();
    let rng = common::seed(&d, 6);
    let model = tiny_config().init(&d).unwrap();
    let a = synthetic_episode(1, 33, &d).unwrap();
    let mut b = a.clone();
    b.query_image = a.query_image.clone().mul_scalar(-0.5).add_scalar(3.0);
    let recovered = |e: &EpisodeTensors| {
        let out = model.forward(e, Phase::Infer).unwrap();
        (values(out.support_logits), values(out.query_logits))
    };
    let ((support_a, query_a), (support_b, query_b)) = (recovered(&a), recovered(&b));
    assert_eq!(max_abs_diff(&support_a, &support_b), 0.0);
    assert!(
        max_abs_diff(&query_a, &query_b) > 1e-3,
        "the query changed nothing at all"
    );

    // Training with frozen batch norm (with batch statistics the query image shares the
    // normalisation of the support batch): L_sup has no gradient at the query image, L_que has.
    let d = device().autodiff();
    drop(rng); // the lock is not reentrant
    let _rng = common::seed(&d, 6);
    let mut config = tiny_config();
    config.backbone.frozen_batch_norm = true;
    let model = config.init(&d).unwrap();
    let e = synthetic_episode(1, 33, &d).unwrap();
    let query = e.query_image.clone().require_grad();
    let e = EpisodeTensors::new(
        e.support_images.clone(),
        e.support_masks.clone(),
        query.clone(),
        e.query_mask.clone(),
    )
    .unwrap();
    let losses = model.forward(&e, Phase::Train).unwrap().losses.unwrap();
    let grads = losses.support.unwrap().backward();
    if let Some(g) = query.grad(&grads) {
        let g = values(g);
        assert_eq!(
            max_abs_diff(&g, &vec![0.0; g.len()]),
            0.0,
            "L_sup depends on the query"
        );
    }
    let losses = model.forward(&e, Phase::Train).unwrap().losses.unwrap();
    let g = values(
        query
            .grad(&losses.query.backward())
            .expect("L_que reaches the query"),
    );
    assert!(max_abs_diff(&g, &vec![0.0; g.len()]) > 0.0);
}

/// Per-pixel margins `sim(f, p_label) - sim(f, p_other)` in f64 over the labelled pixels of
/// `[K, C, h, w]` features, with MAP prototypes at feature resolution (each shot's region mean,
/// averaged over the shots where the region is not empty), for fidelity or cosine.
fn margins_f64(dims: [usize; 4], f: &[f32], m: &[f32], metric: Metric) -> Vec<f64> {
    let [k, c, h, w] = dims;
    let pixel = |s: usize, p: usize| -> Vec<f64> {
        (0..c)
            .map(|ch| f[(s * c + ch) * h * w + p] as f64)
            .collect()
    };
    let mut prototypes = [vec![0f64; c], vec![0f64; c]];
    for (region, prototype) in prototypes.iter_mut().enumerate() {
        let mut shots = 0.0;
        for s in 0..k {
            let members: Vec<usize> = (0..h * w)
                .filter(|&p| m[s * h * w + p] == region as f32)
                .collect();
            if members.is_empty() {
                continue;
            }
            shots += 1.0;
            for &p in &members {
                for (acc, x) in prototype.iter_mut().zip(pixel(s, p)) {
                    *acc += x / members.len() as f64;
                }
            }
        }
        prototype.iter_mut().for_each(|x| *x /= shots);
    }
    let similarity = |u: &[f64], v: &[f64]| {
        let dot: f64 = u.iter().zip(v).map(|(a, b)| a * b).sum();
        let norm = |x: &[f64]| x.iter().map(|a| a * a).sum::<f64>().sqrt();
        let cos = dot / (norm(u) * norm(v));
        if metric == Metric::Fidelity {
            cos * cos
        } else {
            cos
        }
    };
    let mut margins = Vec::new();
    for s in 0..k {
        for p in 0..h * w {
            let label = m[s * h * w + p];
            if label == 255.0 {
                continue;
            }
            let u = pixel(s, p);
            let (right, wrong) = (label as usize, 1 - label as usize);
            margins.push(similarity(&u, &prototypes[right]) - similarity(&u, &prototypes[wrong]));
        }
    }
    margins
}

/// L_sup of features and masks at feature resolution, with their own MAP prototypes.
fn l_sup(dims: [usize; 4], f: &[f32], m: &[f32], metric: MetricConfig) -> f32 {
    let d = device();
    let [k, c, h, w] = dims;
    let features = tensor(f.to_vec(), [k, c, h, w], &d);
    let masks = tensor(m.to_vec(), [k, h, w], &d);
    let prototypes =
        masked_average_pool(features.clone(), masks.clone(), MaskPooling::Transposed).unwrap();
    values(support_loss(
        support_recovery(features, &prototypes, &metric, [h, w]),
        masks,
    ))[0]
}

/// A permutation of 0..n from a seed (Fisher-Yates on SplitMix64 noise).
fn permutation(seed: u64, n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let draws = noise(seed, n);
    for i in (1..n).rev() {
        let j = (((draws[i] + 1.0) / 2.0 * (i + 1) as f32) as usize).min(i);
        order.swap(i, j);
    }
    order
}

proptest! {
    #![proptest_config(common::proptest_config())]

    #[test]
    fn l_sup_on_separable_supports_is_bounded_by_scale_and_margin(
        (dims, f, m) in separable(),
        scale in 1.0f64..50.0,
        metric in prop::sample::select(vec![Metric::Fidelity, Metric::Cosine]),
    ) {
        // L_sup is the mean of log(1 + exp(-s m_p)) over the labelled pixels, decreasing in
        // the margin m_p: so it lies between the values at the largest and smallest margin.
        // Separable supports have every margin positive, so L_sup < log 2 at any scale.
        let margins = margins_f64(dims, &f, &m, metric);
        let (low, high) = margins.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        prop_assert!(low > 0.0, "a separable support has a pixel with margin {low}");
        let ce = |margin: f64| (1.0 + (-scale * margin).exp()).ln();
        // The f32 similarities differ from the f64 ones by ~1e-6.
        let (upper, lower) = (ce(low - 1e-5), ce(high + 1e-5));
        let loss = l_sup(dims, &f, &m, MetricConfig { metric, scale }) as f64;
        prop_assert!(
            loss <= upper * (1.0 + 1e-4) + 1e-7 && loss >= lower * (1.0 - 1e-4) - 1e-7,
            "{metric:?} x {scale}: L_sup {loss} outside [{lower}, {upper}] (margins {low}..{high})"
        );
        prop_assert!(loss < std::f64::consts::LN_2, "L_sup {loss} not below log 2");
    }

    #[test]
    fn l_sup_grows_when_the_mask_is_permuted_against_the_features(
        (dims, f, m) in separable_with(vec![0.0, 1.0]),
        seed in any::<u64>(),
        metric in prop::sample::select(METRICS.to_vec()),
    ) {
        // Any relabelling with the same counts, other than the identity and the swap of the two
        // classes (after which each region is again one direction), puts a pixel of one
        // direction with the prototype of the other: its margin is <= 0 up to the noise.
        let shuffled: Vec<f32> = permutation(seed, m.len()).into_iter().map(|i| m[i]).collect();
        let swapped: Vec<f32> = m.iter().map(|x| 1.0 - x).collect();
        prop_assume!(shuffled != m && shuffled != swapped);
        let metric = MetricConfig { metric, scale: 20.0 };
        let truth = l_sup(dims, &f, &m, metric.clone());
        let permuted = l_sup(dims, &f, &shuffled, metric.clone());
        prop_assert!(
            permuted > truth && permuted > 1e-4,
            "{:?}: L_sup {permuted} with the permuted mask, {truth} with the true one", metric.metric
        );
    }

    #[test]
    fn prototypes_and_l_sup_ignore_the_order_of_the_shots(
        (k, c, h, w, seed) in (2usize..=5, 1usize..6, 2usize..6, 2usize..6, any::<u64>()),
        [big_h, big_w] in [5usize..17, 5usize..17],
        metric in prop::sample::select(METRICS.to_vec()),
    ) {
        let d = device();
        let f = noise(seed, k * c * h * w);
        let mut m = mask_labels(seed ^ 1, k * big_h * big_w);
        (m[0], m[1]) = (1.0, 0.0);
        let order = permutation(seed ^ 2, k);
        let reorder = |x: &[f32], per_shot: usize| -> Vec<f32> {
            order.iter().flat_map(|&s| x[s * per_shot..(s + 1) * per_shot].to_vec()).collect()
        };
        let metric = MetricConfig { metric, scale: 20.0 };
        let tensors = |f: Vec<f32>, m: Vec<f32>| (tensor(f, [k, c, h, w], &d), tensor(m, [k, big_h, big_w], &d));
        let pool = |(features, masks): &(Tensor<4>, Tensor<3>)| {
            masked_average_pool(features.clone(), masks.clone(), MaskPooling::Transposed).unwrap()
        };
        let l_sup = |(features, masks): &(Tensor<4>, Tensor<3>), p: &Prototypes| {
            values(support_loss(support_recovery(features.clone(), p, &metric, [big_h, big_w]), masks.clone()))[0]
        };
        let in_order = tensors(f.clone(), m.clone());
        let reordered = tensors(reorder(&f, c * h * w), reorder(&m, big_h * big_w));
        let (p, q) = (pool(&in_order), pool(&reordered));
        // The K per-shot means (each in [-1, 1], like the noise) are identical; only the order of
        // their mean's sum changes: K - 1 roundings of the sum and one of the division, at most
        // K eps/2 off either way.
        let tolerance = k as f32 * f32::EPSILON;
        assert_close(&values(q.0.clone()), &values(p.0), tolerance, &format!("prototypes, shots in order {order:?}"));
        // L_sup from the same prototypes: the reordering then changes only the order of the mean's
        // f32 sum of n non-negative terms, whose relative error is at most (n - 1) eps/2 either
        // way (Higham, recursive summation), so at most n eps relative apart. (With p instead of
        // q on one side, their rounding difference would count too, and it is not bounded: near a
        // prototype of norm ~0 the normalisation amplifies it; CI once drew such a case.) A shot
        // paired with the wrong mask moves L_sup by far more (the permuted-mask property above).
        let (expected, got) = (l_sup(&in_order, &q), l_sup(&reordered, &q));
        let n = (k * big_h * big_w) as f32;
        prop_assert!(
            (got - expected).abs() <= n * f32::EPSILON * expected,
            "L_sup {expected} became {got} with shots in order {order:?}"
        );
    }
}

/// Labels 0, 1 and 255 from a noise sequence.
fn mask_labels(seed: u64, n: usize) -> Vec<f32> {
    noise(seed, n)
        .into_iter()
        .map(|v| match v {
            v if v > 0.2 => 1.0,
            v if v > 0.0 => 255.0,
            _ => 0.0,
        })
        .collect()
}

#[test]
fn sgd_on_l_sup_lowers_it_for_every_seed_and_episode() {
    // Eight model seeds, each on its own episode (random images, a foreground rectangle whose
    // place and size come from the seed, K = 1 or 2): ten SGD steps on L_sup alone lower it
    // every time, not on average.
    let d = device().autodiff();
    let size = 33;
    for seed in 0..8u64 {
        let shots = 1 + (seed % 2) as usize;
        let n = shots + 1;
        let image: Vec<f32> = noise(100 + seed, n * 3 * size * size)
            .into_iter()
            .map(|v| 40.0 * v)
            .collect();
        let corner = noise(200 + seed, 4)
            .into_iter()
            .map(|v| ((v + 1.0) * 6.0) as usize)
            .collect::<Vec<_>>();
        let mask: Vec<u8> = (0..n * size * size)
            .map(|i| {
                let (y, x) = ((i / size) % size, i % size);
                let (y0, x0) = (corner[0], corner[1]);
                (y >= y0 && y < y0 + 8 + corner[2] && x >= x0 && x < x0 + 8 + corner[3]) as u8
            })
            .collect();
        let (plane, area) = (3 * size * size, size * size);
        let episode = EpisodeTensors::from_host(
            shots,
            [size, size],
            &image[..shots * plane],
            &mask[..shots * area],
            &image[shots * plane..],
            Some(&mask[shots * area..]),
            &d,
        )
        .unwrap();
        let rng = common::seed(&d, seed);
        let mut model = tiny_config().init(&d).unwrap();
        drop(rng);
        let (before, _) = support_state(&model, &episode);
        let mut optimizer = SgdConfig::new().init();
        for _ in 0..10 {
            let out = model.forward(&episode, Phase::Train).unwrap();
            let l_sup = out.losses.unwrap().support.unwrap();
            let grads = GradientsParams::from_grads(l_sup.backward(), &model);
            model = optimizer.step(0.05, model, grads);
        }
        let (after, _) = support_state(&model, &episode);
        assert!(
            after < 0.9 * before,
            "seed {seed}, K = {shots}: L_sup went from {before} to {after}"
        );
    }
}
