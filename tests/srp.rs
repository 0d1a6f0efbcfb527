//! Prototype regularisation (SRP): separable features recover the support mask exactly; a few
//! optimiser steps on one episode lower L_sup and raise the support-recovery IoU; L_sup's
//! gradient reaches the pyramid and the backbone; SRP adds no parameters; inference does not
//! depend on lambda.

mod common;

use burn::module::Module;
use burn::optim::{GradientsParams, SgdConfig};
use common::{device, max_abs_diff, noise, tensor, values};
use srpnet::bench::synthetic_episode;
use srpnet::model::fidelity::{Metric, MetricConfig};
use srpnet::model::loss::foreground_iou;
use srpnet::model::prototype::{MaskPooling, masked_average_pool};
use srpnet::model::srp::{support_loss, support_recovery};
use srpnet::model::{ModelConfig, Phase, Profile, SrpNet};

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
    d.seed(7);
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
    d.seed(3);
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
    d.seed(5);
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
