//! The assembled model: ResNet-50's exact size, stride placement (v1 / v1.5), output strides,
//! episode forward shapes and losses, and the freezing levers.

mod common;

use burn::module::Module;
use common::{device, values};
use srpnet::bench::synthetic_episode;
use srpnet::model::backbone::{BackboneConfig, StrideVariant};
use srpnet::model::{ModelConfig, Phase, Profile};

#[test]
fn resnet50_has_the_torchvision_parameter_count() {
    // torchvision's resnet50 has 25,557,032 parameters, of which the fc head is 2,049,000.
    // Burn's `num_params` also counts each batch norm's running mean and variance: ResNet-50 has
    // 26,560 batch-norm channels (stem 64, layer1..4: 1,408 + 3,584 + 10,240 + 11,264).
    let running_statistics = 2 * 26_560;
    let d = device();
    for variant in [StrideVariant::V1, StrideVariant::V1_5] {
        let config = BackboneConfig {
            variant,
            ..BackboneConfig::resnet50()
        };
        assert_eq!(
            config.init(&d).unwrap().num_params(),
            25_557_032 - 2_049_000 + running_statistics
        );
    }
}

#[test]
fn stride_sits_on_the_1x1_in_v1_and_on_the_3x3_in_v1_5() {
    let d = device();
    let small = |variant| {
        BackboneConfig {
            variant,
            output_stride: 32,
            ..BackboneConfig::small()
        }
        .init(&d)
        .unwrap()
    };
    let v1 = small(StrideVariant::V1);
    let v15 = small(StrideVariant::V1_5);
    assert_eq!(
        (v1.layer2[0].conv1.stride, v1.layer2[0].conv2.stride),
        ([2, 2], [1, 1])
    );
    assert_eq!(
        (v15.layer2[0].conv1.stride, v15.layer2[0].conv2.stride),
        ([1, 1], [2, 2])
    );
}

#[test]
fn output_stride_sets_the_feature_resolution() {
    let d = device();
    // 97 px: stem 49, max-pool 25, then layer2..4 at 13, 7, 4 without dilation.
    for (stride, sizes) in [(8, [13, 13, 13]), (16, [13, 7, 7]), (32, [13, 7, 4])] {
        let config = BackboneConfig {
            output_stride: stride,
            ..BackboneConfig::small()
        };
        let backbone = config.init(&d).unwrap();
        let x = burn::tensor::Tensor::<4>::zeros([1, 3, 97, 97], &d);
        let outs = backbone.forward(x, &[2, 3, 4]);
        let got: Vec<usize> = outs.iter().map(|o| o.dims()[2]).collect();
        assert_eq!(got, sizes, "output stride {stride}");
        let channels: Vec<usize> = outs.iter().map(|o| o.dims()[1]).collect();
        assert_eq!(channels, vec![128, 256, 512]);
    }
}

#[test]
fn episode_forward_returns_logits_and_the_configured_losses() {
    let d = device().autodiff();
    d.seed(4);
    for shots in [1, 5] {
        for (name, config) in [
            ("srpnet", ModelConfig::srpnet(Profile::Embedded)),
            ("panet", ModelConfig::panet(Profile::Embedded)),
        ] {
            let model = config.init(&d).unwrap();
            let episode = synthetic_episode(shots, 41, &d).unwrap();
            let out = model.forward(&episode, Phase::Train).unwrap();
            assert_eq!(out.query_logits.dims(), [1, 2, 41, 41]);
            assert_eq!(out.query_probabilities.dims(), [1, 2, 41, 41]);
            assert_eq!(out.support_logits.dims(), [shots, 2, 41, 41]);
            let losses = out.losses.expect("training with a query mask gives losses");
            assert_eq!(losses.support.is_some(), name == "srpnet", "{name}");
            if name == "srpnet" {
                assert!(losses.alignment.is_none());
            }
            let total = values(losses.total.clone())[0];
            let mut expect = values(losses.query)[0];
            if let Some(s) = losses.support {
                expect += values(s)[0];
            }
            if let Some(a) = losses.alignment {
                expect += values(a)[0];
            }
            assert!(
                total.is_finite() && (total - expect).abs() < 1e-5,
                "{name}: {total} vs {expect}"
            );
            let _ = losses.total.backward();
        }
    }
}

#[test]
fn inference_gives_no_losses_and_iqi_scores() {
    let d = device();
    let model = ModelConfig::srpnet(Profile::Embedded).init(&d).unwrap();
    let episode = synthetic_episode(1, 41, &d).unwrap();
    let out = model.forward(&episode, Phase::Infer).unwrap();
    assert!(out.losses.is_none());
    assert_eq!(out.iqi_scores.len(), model.config.iqi.iterations + 1);
}

#[test]
fn frozen_batch_norm_keeps_running_statistics_and_gets_no_gradient() {
    let d = device().autodiff();
    let mut config = ModelConfig::srpnet(Profile::Embedded);
    config.backbone.frozen_batch_norm = true;
    let model = config.init(&d).unwrap();
    let before = values(model.backbone.layer1[0].bn1.running_mean.value());
    let episode = synthetic_episode(1, 41, &d).unwrap();
    let grads = model
        .forward(&episode, Phase::Train)
        .unwrap()
        .losses
        .unwrap()
        .total
        .backward();
    let after = values(model.backbone.layer1[0].bn1.running_mean.value());
    assert_eq!(
        before, after,
        "a frozen batch norm updated its running mean"
    );
    assert!(
        model.backbone.layer1[0]
            .bn1
            .gamma
            .val()
            .grad(&grads)
            .is_none()
    );
    assert!(
        model.backbone.layer1[0]
            .conv1
            .weight
            .val()
            .grad(&grads)
            .is_some()
    );
}

#[test]
fn frozen_stages_get_no_gradient() {
    let d = device().autodiff();
    let mut config = ModelConfig::srpnet(Profile::Embedded);
    config.backbone.frozen_stages = 2; // stem and layer1
    let model = config.init(&d).unwrap();
    let episode = synthetic_episode(1, 41, &d).unwrap();
    let grads = model
        .forward(&episode, Phase::Train)
        .unwrap()
        .losses
        .unwrap()
        .total
        .backward();
    assert!(model.backbone.stem.conv.weight.val().grad(&grads).is_none());
    assert!(
        model.backbone.layer1[0]
            .conv2
            .weight
            .val()
            .grad(&grads)
            .is_none()
    );
    assert!(
        model.backbone.layer2[0]
            .conv2
            .weight
            .val()
            .grad(&grads)
            .is_some()
    );
    assert!(model.pyramid.reduce.weight.val().grad(&grads).is_some());
}
