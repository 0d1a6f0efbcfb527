//! Gradients by central finite differences: the autodiff gradients of L_sup and of the query
//! loss, with respect to the prototypes and to the features, against `(L(x + h) - L(x - h)) / 2h`
//! of the same forward code on tiny tensors, for every metric. The feature gradients go through
//! the transposed pooling of `masked_average_pool` and the real head of the model
//! (`SrpNet::head`): the masks are 7 x 9 over 3 x 4 features (ratios 7/3 and 9/4), with ignore
//! pixels.
//!
//! The forward passes run in f32 (the model's only float type); the differences are taken and
//! compared in f64. With h = 1e-2 the truncation error (h^2 times the third derivative, large
//! because the logits are 20 x similarity) and the rounding error (f32 eps x L / h) stay below
//! the tolerance, 1% of the largest gradient; a detached or halved term is far above it.

mod common;

use burn::tensor::Tensor;
use common::{device, noise, tensor, values};
use srpnet::model::fidelity::{Metric, MetricConfig};
use srpnet::model::loss::segmentation_cross_entropy;
use srpnet::model::prototype::Prototypes;
use srpnet::model::srp::{support_loss, support_recovery};
use srpnet::model::{EpisodeTensors, ModelConfig, Phase, Profile, SrpNet};

const METRICS: [Metric; 3] = [Metric::Fidelity, Metric::Cosine, Metric::ClassicalFidelity];
const STEP: f32 = 1e-2;
/// K, C, h, w of the support features; H, W of the masks.
const K: usize = 2;
const C: usize = 3;
const FEATURE: [usize; 2] = [3, 4];
const IMAGE: [usize; 2] = [7, 9];

/// Noise in [-1, 1) kept at least 0.1 away from 0: the classical fidelity's ReLU has a corner
/// there (and sqrt(p) behind it a slope of 1 / (2 sqrt(EPS))), which a difference quotient that
/// straddles it cannot see.
fn values_off_zero(seed: u64, n: usize) -> Vec<f32> {
    noise(seed, n)
        .into_iter()
        .map(|v| v + 0.1 * v.signum())
        .collect()
}

/// Labels 0, 1 and 255 from a noise sequence, with both classes present in shot 0.
fn mask(seed: u64, n: usize) -> Vec<f32> {
    let mut m: Vec<f32> = noise(seed, n)
        .into_iter()
        .map(|v| match v {
            v if v > 0.1 => 1.0,
            v if v > -0.1 => 255.0,
            _ => 0.0,
        })
        .collect();
    (m[0], m[1]) = (1.0, 0.0);
    m
}

/// Fails unless the autodiff gradient of `loss` at every input equals its central difference.
/// `inputs` are (values, shape) of rank-4 tensors; `loss` builds the loss from them.
fn check(what: &str, inputs: &[(Vec<f32>, [usize; 4])], loss: impl Fn(&[Tensor<4>]) -> Tensor<1>) {
    let d = device().autodiff();
    let leaves: Vec<Tensor<4>> = inputs
        .iter()
        .map(|(v, shape)| tensor(v.clone(), *shape, &d).require_grad())
        .collect();
    let grads = loss(&leaves).backward();
    let plain = device();
    let at = |values: &[Vec<f32>]| -> f64 {
        let tensors: Vec<Tensor<4>> = values
            .iter()
            .zip(inputs)
            .map(|(v, (_, shape))| tensor(v.clone(), *shape, &plain))
            .collect();
        common::values(loss(&tensors))[0] as f64
    };
    let base: Vec<Vec<f32>> = inputs.iter().map(|(v, _)| v.clone()).collect();
    for (i, leaf) in leaves.iter().enumerate() {
        let autodiff: Vec<f64> = leaf
            .grad(&grads)
            .map(values)
            .unwrap_or_else(|| vec![0.0; base[i].len()])
            .into_iter()
            .map(f64::from)
            .collect();
        let mut numeric = Vec::with_capacity(autodiff.len());
        for j in 0..base[i].len() {
            let mut plus = base.clone();
            plus[i][j] += STEP;
            let mut minus = base.clone();
            minus[i][j] -= STEP;
            numeric.push((at(&plus) - at(&minus)) / (2.0 * STEP as f64));
        }
        let largest = numeric.iter().fold(0f64, |m, g| m.max(g.abs()));
        assert!(
            largest > 1e-3,
            "{what}, input {i}: the loss does not depend on it"
        );
        for (j, (a, n)) in autodiff.iter().zip(&numeric).enumerate() {
            // `!(x <= tol)` fails on NaN as well.
            assert!(
                (a - n).abs() <= 1e-2 * largest,
                "{what}, input {i}, element {j}: autodiff {a:e}, finite difference {n:e} \
                 (largest {largest:e})"
            );
        }
    }
}

#[test]
fn l_sup_and_query_loss_gradients_with_respect_to_the_prototypes_and_features() {
    let [h, w] = FEATURE;
    let support = values_off_zero(1, K * C * h * w);
    let query = values_off_zero(2, C * h * w);
    let prototypes = values_off_zero(3, 2 * C);
    let masks = tensor(
        mask(4, K * IMAGE[0] * IMAGE[1]),
        [K, IMAGE[0], IMAGE[1]],
        &device(),
    );
    let query_mask = tensor(
        mask(5, IMAGE[0] * IMAGE[1]),
        [1, IMAGE[0], IMAGE[1]],
        &device(),
    );
    for metric in METRICS {
        let config = MetricConfig {
            metric,
            scale: 20.0,
        };
        let inputs = [
            (prototypes.clone(), [1, 1, 2, C]),
            (support.clone(), [K, C, h, w]),
        ];
        check(&format!("L_sup, {metric:?}"), &inputs, |x| {
            let p = Prototypes(x[0].clone().reshape([2, C]));
            let masks = masks.clone().to_device(&x[1].device());
            support_loss(support_recovery(x[1].clone(), &p, &config, IMAGE), masks)
        });
        let inputs = [
            (prototypes.clone(), [1, 1, 2, C]),
            (query.clone(), [1, C, h, w]),
        ];
        check(&format!("L_que, {metric:?}"), &inputs, |x| {
            let p = Prototypes(x[0].clone().reshape([2, C]));
            let mask = query_mask.clone().to_device(&x[1].device());
            // The query logits are upsampled the same way as the recovered support's.
            segmentation_cross_entropy(support_recovery(x[1].clone(), &p, &config, IMAGE), mask)
        });
    }
}

#[test]
fn loss_gradients_through_transposed_pooling_in_the_model_head() {
    // The features of K support shots and the query, [K + 1, C, h, w], through `SrpNet::head`:
    // masked average pooling (transposed), similarity, upsampling and both losses.
    let d = device();
    let _rng = common::seed(&d, 1);
    let mut config = ModelConfig::srpnet(Profile::Embedded);
    config.backbone.base_width = 8;
    config.pyramid.channels = C;
    config.iqi.iterations = 0;
    let base = config.init(&d).unwrap();
    let [h, w] = FEATURE;
    let features = values_off_zero(6, (K + 1) * C * h * w);
    let support_masks = mask(7, K * IMAGE[0] * IMAGE[1]);
    let query_mask = mask(8, IMAGE[0] * IMAGE[1]);
    for metric in METRICS {
        let mut config = base.config.clone();
        config.metric.metric = metric;
        let model = SrpNet {
            config,
            ..base.clone()
        };
        let losses = |x: &[Tensor<4>]| {
            let d = x[0].device();
            let episode = EpisodeTensors::new(
                Tensor::zeros([K, 3, IMAGE[0], IMAGE[1]], &d),
                tensor(support_masks.clone(), [K, IMAGE[0], IMAGE[1]], &d),
                Tensor::zeros([1, 3, IMAGE[0], IMAGE[1]], &d),
                Some(tensor(query_mask.clone(), [1, IMAGE[0], IMAGE[1]], &d)),
            )
            .unwrap();
            model
                .head(x[0].clone(), &episode, Phase::Train)
                .unwrap()
                .losses
                .unwrap()
        };
        let inputs = [(features.clone(), [K + 1, C, h, w])];
        check(&format!("head L_sup, {metric:?}"), &inputs, |x| {
            losses(x).support.expect("lambda > 0")
        });
        check(&format!("head L_que, {metric:?}"), &inputs, |x| {
            losses(x).query
        });
    }
}
