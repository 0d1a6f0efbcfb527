//! Iterative query inference: T = 0 and alpha = 1 are plain inference; the combined
//! prediction, recomputed by hand from its parts (soft query pooling, blend with alpha, weighted
//! mean), matches; it is a probability distribution over {background, foreground} at every
//! pixel.

mod common;

use burn::tensor::Tensor;
use burn::tensor::activation::softmax;
use burn::tensor::module::interpolate;
use common::{assert_close, device, max_abs_diff, tensor, values};
use proptest::prelude::*;
use srpnet::bench::synthetic_episode;
use srpnet::model::fidelity::{EPS, Metric, MetricConfig};
use srpnet::model::iqi::{IqiConfig, IqiWeighting, iterative_query_inference};
use srpnet::model::loss::foreground_iou;
use srpnet::model::prototype::{MaskPooling, Prototypes, masked_average_pool};
use srpnet::model::pyramid::bilinear_to;
use srpnet::model::srp::support_recovery;
use srpnet::model::{ModelConfig, Phase, Profile, SrpNet};

fn tiny(iterations: usize, weighting: IqiWeighting) -> ModelConfig {
    let mut c = ModelConfig::srpnet(Profile::Embedded);
    c.backbone.base_width = 8;
    c.pyramid.channels = 32;
    c.iqi = IqiConfig {
        iterations,
        alpha: 0.5,
        weighting,
    };
    c
}

#[test]
fn zero_iterations_equal_plain_inference() {
    let d = device();
    let _rng = common::seed(&d, 1);
    let model = tiny(0, IqiWeighting::SupportScore).init(&d).unwrap();
    let episode = synthetic_episode(1, 33, &d).unwrap();
    let out = model.forward(&episode, Phase::Infer).unwrap();
    let plain = values(softmax(out.query_logits.clone(), 1));

    // Call IQI itself with T = 0 on the same features and prototypes.
    let k = episode.shots();
    let features = model.features(burn::tensor::Tensor::cat(
        vec![episode.support_images.clone(), episode.query_image.clone()],
        0,
    ));
    let [_, c, h, w] = features.dims();
    let support = features.clone().slice([0..k, 0..c, 0..h, 0..w]);
    let query = features.slice([k..k + 1, 0..c, 0..h, 0..w]);
    let prototypes = masked_average_pool(
        support.clone(),
        episode.support_masks.clone(),
        model.config.pooling,
    )
    .unwrap();
    for weighting in [IqiWeighting::Uniform, IqiWeighting::SupportScore] {
        let config = IqiConfig {
            iterations: 0,
            alpha: 0.5,
            weighting,
        };
        let iqi = iterative_query_inference(
            &config,
            &model.config.metric,
            query.clone(),
            support.clone(),
            episode.support_masks.clone(),
            &prototypes,
        )
        .unwrap();
        assert_eq!(iqi.support_scores.len(), 1);
        let diff = max_abs_diff(&plain, &values(iqi.probabilities));
        assert!(diff < 1e-6, "T = 0 differs from plain inference by {diff}");
    }
}

#[test]
fn iqi_probabilities_stay_in_unit_interval_and_sum_to_one() {
    let d = device();
    let _rng = common::seed(&d, 2);
    let base = tiny(0, IqiWeighting::Uniform).init(&d).unwrap();
    let episode = synthetic_episode(2, 33, &d).unwrap();
    let plain = values(
        base.forward(&episode, Phase::Infer)
            .unwrap()
            .query_probabilities,
    );
    let mut changed = false;
    for iterations in 1..=5 {
        for weighting in [IqiWeighting::Uniform, IqiWeighting::SupportScore] {
            let model = SrpNet {
                config: tiny(iterations, weighting),
                ..base.clone()
            };
            let out = model.forward(&episode, Phase::Infer).unwrap();
            assert_eq!(out.iqi_scores.len(), iterations + 1);
            assert!(out.iqi_scores.iter().all(|s| (0.0..=1.0).contains(s)));
            let p = values(out.query_probabilities);
            assert!(p.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)));
            let half = p.len() / 2;
            let sums: Vec<f32> = (0..half).map(|i| p[i] + p[half + i]).collect();
            assert_close(
                &sums,
                &vec![1.0; half],
                1e-5,
                &format!("T = {iterations}: background + foreground probability"),
            );
            changed |= max_abs_diff(&p, &plain) > 1e-4;
        }
    }
    assert!(
        changed,
        "IQI never changed the prediction: the refined prototypes are not used"
    );
}

/// Random IQI inputs: query features [1, C, h, w], K support shots [K, C, h, w] and masks at
/// twice the feature resolution [K, 2h, 2w] (0, 1, 255; both regions present in shot 0).
#[derive(Debug, Clone)]
struct Case {
    dims: [usize; 4],
    query: Vec<f32>,
    support: Vec<f32>,
    masks: Vec<f32>,
    metric: Metric,
}

fn case() -> impl Strategy<Value = Case> {
    (1usize..=3, 2usize..6, 2usize..5, 2usize..5).prop_flat_map(|(k, c, h, w)| {
        let labels = prop::sample::select(vec![0.0f32, 1.0, 255.0]);
        let metrics = prop::sample::select(vec![
            Metric::Fidelity,
            Metric::Cosine,
            Metric::ClassicalFidelity,
        ]);
        (
            // Positive query features (a pyramid with its final ReLU, kept off 0): a pooled
            // query prototype near the zero vector would have a direction set by rounding.
            prop::collection::vec(0.05f32..1.0, c * h * w),
            prop::collection::vec(-1.0f32..1.0, k * c * h * w),
            prop::collection::vec(labels, k * 4 * h * w),
            metrics,
        )
            .prop_map(move |(query, support, mut masks, metric)| {
                masks[0] = 1.0;
                masks[1] = 0.0;
                Case {
                    dims: [k, c, h, w],
                    query,
                    support,
                    masks,
                    metric,
                }
            })
    })
}

struct Inputs {
    query: Tensor<4>,
    support: Tensor<4>,
    masks: Tensor<3>,
    initial: Prototypes,
    metric: MetricConfig,
    size: [usize; 2],
}

fn inputs(case: &Case) -> Inputs {
    let d = device();
    let [k, c, h, w] = case.dims;
    let support = tensor(case.support.clone(), [k, c, h, w], &d);
    let masks = tensor(case.masks.clone(), [k, 2 * h, 2 * w], &d);
    let initial =
        masked_average_pool(support.clone(), masks.clone(), MaskPooling::Transposed).unwrap();
    Inputs {
        query: tensor(case.query.clone(), [1, c, h, w], &d),
        support,
        masks,
        initial,
        metric: MetricConfig {
            metric: case.metric,
            scale: 20.0,
        },
        size: [2 * h, 2 * w],
    }
}

fn run(x: &Inputs, iterations: usize, alpha: f64, weighting: IqiWeighting) -> (Vec<f32>, Vec<f32>) {
    let config = IqiConfig {
        iterations,
        alpha,
        weighting,
    };
    let out = iterative_query_inference(
        &config,
        &x.metric,
        x.query.clone(),
        x.support.clone(),
        x.masks.clone(),
        &x.initial,
    )
    .unwrap();
    (values(out.probabilities), out.support_scores)
}

/// Plain inference with prototypes `p`: softmax of the logits resized to the image.
fn plain(x: &Inputs, p: &Prototypes) -> Vec<f32> {
    let logits = interpolate(x.metric.logits(x.query.clone(), p), bilinear_to(x.size));
    values(softmax(logits, 1))
}

/// `v / sqrt(|v|^2 + EPS)`, the model's guarded normalisation: a region the prediction leaves
/// (nearly) empty pools a query prototype near 0, which stays near 0 instead of becoming a unit
/// vector of arbitrary direction.
fn unit(v: &[f64]) -> Vec<f64> {
    let n = (v.iter().map(|a| a * a).sum::<f64>() + EPS).sqrt();
    v.iter().map(|a| a / n).collect()
}

/// The support score of prototypes `p` recomputed on the host: the foreground IoU of the
/// recovered support (argmax of the logits, ignore pixels left out; 1 when both are empty), and
/// whether some labelled pixel lies within 1e-4 of a tie (where f32 rounding of a prototype
/// computed another way may flip it).
fn score_by_hand(x: &Inputs, p: &Prototypes) -> (f32, bool) {
    let logits = values(support_recovery(x.support.clone(), p, &x.metric, x.size));
    let labels = values(x.masks.clone());
    let area = x.size[0] * x.size[1];
    let (mut intersection, mut union, mut near_tie) = (0, 0, false);
    for (i, &label) in labels.iter().enumerate() {
        if label == 255.0 {
            continue;
        }
        let (shot, pixel) = (i / area, i % area);
        let (bg, fg) = (
            logits[2 * shot * area + pixel],
            logits[(2 * shot + 1) * area + pixel],
        );
        near_tie |= (fg - bg).abs() < 1e-4;
        let (predicted, truth) = (fg > bg, label == 1.0);
        intersection += (predicted && truth) as usize;
        union += (predicted || truth) as usize;
    }
    let iou = if union == 0 {
        1.0
    } else {
        intersection as f32 / union as f32
    };
    (iou, near_tie)
}

/// IQI by hand: P_t = unit(alpha unit(P_0) + (1 - alpha) unit(Q_t)) (`unit` with the guard), where Q_t pools the query
/// features (f64, on the host) under the softmax of P_{t-1}'s low-resolution logits, row 0 the
/// background. Returns the predictions of P_0..P_T, their scores (1 for `Uniform`) and whether
/// any score was near a tie (`score_by_hand`).
fn by_hand(
    x: &Inputs,
    case: &Case,
    alpha: f64,
    iterations: usize,
    weighting: IqiWeighting,
) -> (Vec<Vec<f32>>, Vec<f32>, bool) {
    let [_, c, h, w] = case.dims;
    let p0: Vec<f64> = values(x.initial.0.clone())
        .iter()
        .map(|&v| v as f64)
        .collect();
    let unit_p0: Vec<f64> = [unit(&p0[..c]), unit(&p0[c..])].concat();
    let mut p = x.initial.clone();
    let (mut predictions, mut scores, mut near_tie) = (vec![], vec![], false);
    for t in 0..=iterations {
        predictions.push(plain(x, &p));
        scores.push(match weighting {
            IqiWeighting::Uniform => 1.0,
            IqiWeighting::SupportScore => {
                let (score, tie) = score_by_hand(x, &p);
                near_tie |= tie;
                score
            }
        });
        if t == iterations {
            break;
        }
        let logits = values(x.metric.logits(x.query.clone(), &p));
        let mut rows = vec![];
        for region in 0..2 {
            let soft: Vec<f64> = (0..h * w)
                .map(|q| {
                    let (bg, fg) = (logits[q] as f64, logits[h * w + q] as f64);
                    let mine = if region == 0 { bg } else { fg };
                    1.0 / (1.0 + (bg + fg - 2.0 * mine).exp())
                })
                .collect();
            let area = soft.iter().sum::<f64>() + 1e-5;
            let q: Vec<f64> = (0..c)
                .map(|ch| {
                    (0..h * w)
                        .map(|i| soft[i] * case.query[ch * h * w + i] as f64)
                        .sum::<f64>()
                        / area
                })
                .collect();
            let blend: Vec<f64> = unit_p0[region * c..(region + 1) * c]
                .iter()
                .zip(unit(&q))
                .map(|(a, b)| alpha * a + (1.0 - alpha) * b)
                .collect();
            rows.extend(unit(&blend).into_iter().map(|v| v as f32));
        }
        p = Prototypes(tensor(rows, [2, c], &device()));
    }
    (predictions, scores, near_tie)
}

/// The mean of `predictions` weighted by `scores`, uniform where every score is 0.
fn weighted_mean(predictions: &[Vec<f32>], scores: &[f32]) -> Vec<f32> {
    let total: f32 = scores.iter().sum();
    let weights: Vec<f32> = if total > 0.0 {
        scores.iter().map(|s| s / total).collect()
    } else {
        vec![1.0 / scores.len() as f32; scores.len()]
    };
    let mut combined = vec![0.0f32; predictions[0].len()];
    for (prediction, weight) in predictions.iter().zip(&weights) {
        for (out, prob) in combined.iter_mut().zip(prediction) {
            *out += weight * prob;
        }
    }
    combined
}

proptest! {
    #![proptest_config(common::proptest_config())]

    #[test]
    fn alpha_one_is_plain_inference(case in case(), iterations in 1usize..4, uniform in any::<bool>()) {
        // P_t = unit(P_0) for every t: the refinement keeps nothing of the query.
        let x = inputs(&case);
        let weighting = if uniform { IqiWeighting::Uniform } else { IqiWeighting::SupportScore };
        let (p, scores) = run(&x, iterations, 1.0, weighting);
        prop_assert_eq!(scores.len(), iterations + 1);
        assert_close(&p, &plain(&x, &x.initial), 1e-5, "alpha = 1");
    }

    #[test]
    fn iqi_matches_its_recomputation_by_hand(
        case in case(),
        iterations in 1usize..4,
        alpha in 0.0f64..0.95,
        uniform in any::<bool>(),
    ) {
        let x = inputs(&case);
        let weighting = if uniform { IqiWeighting::Uniform } else { IqiWeighting::SupportScore };
        let (p, scores) = run(&x, iterations, alpha, weighting);
        prop_assert_eq!(scores.len(), iterations + 1);
        prop_assert!(scores.iter().all(|s| (0.0..=1.0).contains(s)), "{:?}", scores);
        // Every score recomputed from the prototypes made by hand. Where a labelled support
        // pixel of some P_t lies within 1e-4 of a tie, the two roundings may label it apart:
        // then P_0's score must still match and the mean is weighted as reported.
        let (predictions, by_hand_scores, near_tie) = by_hand(&x, &case, alpha, iterations, weighting);
        let expect = weighted_mean(&predictions, if near_tie { &scores } else { &by_hand_scores });
        if near_tie {
            let recovered = support_recovery(x.support.clone(), &x.initial, &x.metric, x.size);
            prop_assert_eq!(scores[0], foreground_iou(recovered, x.masks.clone()).unwrap());
        } else {
            for (t, (got, want)) in scores.iter().zip(&by_hand_scores).enumerate() {
                prop_assert!((got - want).abs() < 1e-6, "score of P_{t}: {got}, by hand {want} ({scores:?} vs {by_hand_scores:?})");
            }
        }
        assert_close(&p, &expect, 1e-4, &format!("T = {iterations}, alpha = {alpha}, {weighting:?}, scores {scores:?}, by hand {by_hand_scores:?}"));
    }
}

#[test]
fn support_scores_all_zero_fall_back_to_uniform_weights() {
    // Fidelity ignores the sign: the two shots' foreground pixels (1, 0) and (-1, 0) average to a
    // zero foreground prototype, so the support recovery finds no foreground (IoU 0). The
    // prediction must then weigh P_0.. uniformly, not divide by a zero sum (NaN).
    let d = device();
    let bg = [1.0, 0.2];
    let pixels = |fg: [f32; 2]| {
        let px = [fg, bg, bg, bg];
        (0..2)
            .flat_map(|ch| px.map(|p| p[ch]))
            .collect::<Vec<f32>>()
    };
    let support = tensor(
        [pixels([1.0, 0.0]), pixels([-1.0, 0.0])].concat(),
        [2, 2, 2, 2],
        &d,
    );
    let masks = tensor(
        vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 255.0],
        [2, 2, 2],
        &d,
    );
    let initial =
        masked_average_pool(support.clone(), masks.clone(), MaskPooling::Transposed).unwrap();
    let x = Inputs {
        query: tensor(
            vec![0.3, 0.9, 0.5, 0.1, 0.2, 0.4, 0.8, 0.6],
            [1, 2, 2, 2],
            &d,
        ),
        support,
        masks,
        initial,
        metric: MetricConfig::default(),
        size: [2, 2],
    };
    let (p, scores) = run(&x, 0, 0.5, IqiWeighting::SupportScore);
    assert_eq!(scores, vec![0.0]);
    assert_close(&p, &plain(&x, &x.initial), 1e-6, "all-zero support scores");
}

#[test]
fn all_zero_support_scores_at_t_2_weigh_every_prediction_alike() {
    // The support of `support_scores_all_zero_fall_back_to_uniform_weights`: foreground pixels
    // (1, 0) and (-1, 0) pool to a zero foreground prototype. The query lies near e1, so each
    // refined foreground prototype points near e1 too, and the support's foreground (along e0)
    // is never recovered: all three scores are 0, recomputed by hand. The prediction must be the
    // plain mean of the three (different) predictions, not NaN and not P_0's alone.
    let d = device();
    let bg = [1.0, 0.2];
    let pixels = |fg: [f32; 2]| {
        let px = [fg, bg, bg, bg];
        (0..2)
            .flat_map(|ch| px.map(|p| p[ch]))
            .collect::<Vec<f32>>()
    };
    let case = Case {
        dims: [2, 2, 2, 2],
        query: vec![0.1, 0.05, 0.2, 0.15, 0.9, 1.0, 0.8, 1.1],
        support: [pixels([1.0, 0.0]), pixels([-1.0, 0.0])].concat(),
        masks: vec![],
        metric: Metric::Fidelity,
    };
    let support = tensor(case.support.clone(), [2, 2, 2, 2], &d);
    let masks = tensor(
        vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 255.0],
        [2, 2, 2],
        &d,
    );
    let initial =
        masked_average_pool(support.clone(), masks.clone(), MaskPooling::Transposed).unwrap();
    let x = Inputs {
        query: tensor(case.query.clone(), [1, 2, 2, 2], &d),
        support,
        masks,
        initial,
        metric: MetricConfig::default(),
        size: [2, 2],
    };
    let (p, scores) = run(&x, 2, 0.5, IqiWeighting::SupportScore);
    let (predictions, by_hand_scores, near_tie) =
        by_hand(&x, &case, 0.5, 2, IqiWeighting::SupportScore);
    assert!(!near_tie, "the case must not rest on a tie");
    assert_eq!(
        by_hand_scores,
        vec![0.0; 3],
        "the case must have every score 0"
    );
    assert_eq!(scores, by_hand_scores);
    assert!(
        max_abs_diff(&predictions[0], &predictions[2]) > 1e-3,
        "the refined prototypes must predict otherwise than P_0"
    );
    let uniform = weighted_mean(&predictions, &[1.0; 3]);
    assert_close(&p, &uniform, 1e-5, "all-zero support scores at T = 2");
}
