//! The assembled model: ResNet-50's exact size, stride placement (v1 / v1.5), output strides,
//! episode forward shapes and losses, `forward()` recomputed from its parts (values and
//! gradients), and the freezing levers.

mod common;

use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::activation::softmax;
use burn::tensor::module::interpolate;
use common::{assert_close, device, values};
use srpnet::bench::synthetic_episode;
use srpnet::model::backbone::{BackboneConfig, StrideVariant};
use srpnet::model::iqi::iterative_query_inference;
use srpnet::model::loss::segmentation_cross_entropy;
use srpnet::model::panet::prototype_alignment_loss;
use srpnet::model::prototype::{Prototypes, masked_average_pool};
use srpnet::model::pyramid::bilinear_to;
use srpnet::model::srp::{support_loss, support_recovery};
use srpnet::model::{EpisodeTensors, ModelConfig, Phase, Profile, SrpNet};

#[test]
fn resnet50_has_the_torchvision_parameter_count() {
    // torchvision's resnet50 has 25,557,032 parameters, of which the fc head is 2,049,000.
    // Burn's `num_params` also counts each batch norm's running mean and variance: ResNet-50 has
    // 26,560 batch-norm channels (stem 64, layer1..4: 1,408 + 3,584 + 10,240 + 11,264).
    let running_statistics = 2 * 26_560;
    let d = device();
    // Initialisation draws from flex's one RNG: hold the lock the seeded tests hold.
    let _rng = common::seed(&d, 0);
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

/// The embedded profile's backbone: one bottleneck per stage at width 16, so its stages output
/// 64, 128, 256 and 512 channels (what the model chapter and every embedded result describe).
#[test]
fn the_small_backbone_has_one_narrow_block_per_stage() {
    let d = device();
    let _rng = common::seed(&d, 0);
    let b = BackboneConfig::small().init(&d).unwrap();
    let blocks = [
        b.layer1.len(),
        b.layer2.len(),
        b.layer3.len(),
        b.layer4.len(),
    ];
    assert_eq!(blocks, [1, 1, 1, 1]);
    let x = burn::tensor::Tensor::<4>::zeros([1, 3, 33, 33], &d);
    let channels: Vec<usize> = b
        .forward(x, &[1, 2, 3, 4])
        .iter()
        .map(|o| o.dims()[1])
        .collect();
    assert_eq!(channels, [64, 128, 256, 512]);
}

/// Output stride 8 as torchvision's `replace_stride_with_dilation`: layer3 and layer4 keep
/// stride 1 and dilate their 3x3s instead; the first block of a stage keeps the previous
/// dilation, the others take the stage's (2 in layer3, 4 in layer4), padding = dilation.
#[test]
fn output_stride_8_dilates_layer3_by_2_and_layer4_by_4() {
    let d = device();
    let _rng = common::seed(&d, 0);
    let b = BackboneConfig {
        blocks: [1, 1, 2, 2],
        output_stride: 8,
        ..BackboneConfig::small()
    }
    .init(&d)
    .unwrap();
    let dilations =
        |layer: &[srpnet::model::backbone::Bottleneck]| -> Vec<([usize; 2], [usize; 2])> {
            layer
                .iter()
                .map(|block| (block.conv2.dilation, block.conv2.stride))
                .collect()
        };
    assert_eq!(dilations(&b.layer3), [([1, 1], [1, 1]), ([2, 2], [1, 1])]);
    assert_eq!(dilations(&b.layer4), [([2, 2], [1, 1]), ([4, 4], [1, 1])]);
}

/// A bottleneck recomputed from its parts: relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) +
/// shortcut(x)), the shortcut a projection (conv + bn) where the shape changes, else x itself.
#[test]
fn a_bottleneck_adds_its_shortcut_before_the_last_relu() {
    use burn::tensor::activation::relu;
    let d = device();
    let _rng = common::seed(&d, 0);
    let b = BackboneConfig {
        blocks: [2, 1, 1, 1],
        ..BackboneConfig::small()
    }
    .init(&d)
    .unwrap();
    // layer1[0]: 16 -> 64 channels, a projection; layer1[1]: 64 -> 64, the identity.
    for (block, c_in, projected) in [(&b.layer1[0], 16, true), (&b.layer1[1], 64, false)] {
        assert_eq!(block.downsample.is_some(), projected);
        let x = common::tensor(common::noise(c_in as u64, c_in * 81), [1, c_in, 9, 9], &d);
        let shortcut = match &block.downsample {
            Some(p) => p.bn.forward(p.conv.forward(x.clone())),
            None => x.clone(),
        };
        let out = relu(block.bn1.forward(block.conv1.forward(x.clone())));
        let out = relu(block.bn2.forward(block.conv2.forward(out)));
        let out = block.bn3.forward(block.conv3.forward(out));
        let expected = values(relu(out + shortcut));
        let got = values(block.forward(x));
        assert_close(&got, &expected, 1e-6, "bottleneck forward");
    }
}

#[test]
fn stride_sits_on_the_1x1_in_v1_and_on_the_3x3_in_v1_5() {
    let d = device();
    // Initialisation draws from flex's one RNG: hold the lock the seeded tests hold.
    let _rng = common::seed(&d, 0);
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
    // Initialisation draws from flex's one RNG: hold the lock the seeded tests hold.
    let _rng = common::seed(&d, 0);
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
    let _rng = common::seed(&d, 4);
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
    // Initialisation draws from flex's one RNG: hold the lock the seeded tests hold.
    let _rng = common::seed(&d, 0);
    let model = ModelConfig::srpnet(Profile::Embedded).init(&d).unwrap();
    let episode = synthetic_episode(1, 41, &d).unwrap();
    let out = model.forward(&episode, Phase::Infer).unwrap();
    assert!(out.losses.is_none());
    assert_eq!(out.iqi_scores.len(), model.config.iqi.iterations + 1);
}

#[test]
fn frozen_batch_norm_keeps_running_statistics_and_gets_no_gradient() {
    let d = device().autodiff();
    // Initialisation draws from flex's one RNG: hold the lock the seeded tests hold.
    let _rng = common::seed(&d, 0);
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
    // Initialisation draws from flex's one RNG: hold the lock the seeded tests hold.
    let _rng = common::seed(&d, 0);
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

/// `forward()`'s pipeline, rebuilt from the public components.
struct Parts {
    query_features: Tensor<4>,
    support_features: Tensor<4>,
    prototypes: Prototypes,
    query_low_res: Tensor<4>,
    query_logits: Tensor<4>,
    support_logits: Tensor<4>,
}

fn parts(model: &SrpNet, episode: &EpisodeTensors) -> Parts {
    let config = &model.config;
    let k = episode.shots();
    let size = episode.image_size();
    let support_features = model.features(episode.support_images.clone());
    let query_features = model.features(episode.query_image.clone());
    let prototypes = masked_average_pool(
        support_features.clone(),
        episode.support_masks.clone(),
        config.pooling,
    )
    .unwrap();
    assert_eq!(support_features.dims()[0], k);
    let query_low_res = config.metric.logits(query_features.clone(), &prototypes);
    Parts {
        query_logits: interpolate(query_low_res.clone(), bilinear_to(size)),
        support_logits: support_recovery(
            support_features.clone(),
            &prototypes,
            &config.metric,
            size,
        ),
        query_features,
        support_features,
        prototypes,
        query_low_res,
    }
}

fn tiny_model(device: &burn::tensor::Device, srp: f64, par: f64) -> SrpNet {
    let mut config = ModelConfig::srpnet(Profile::Embedded);
    config.backbone.base_width = 8;
    config.pyramid.channels = 32;
    // Running statistics: support and query features do not depend on their batch, so the parts
    // can be computed image by image.
    config.backbone.frozen_batch_norm = true;
    config.srp.lambda = srp;
    config.par.lambda = par;
    config.init(device).unwrap()
}

#[test]
fn training_forward_is_wired_from_its_parts() {
    let d = device().autodiff();
    let _rng = common::seed(&d, 10);
    let (srp, par) = (0.7, 0.4);
    let model = tiny_model(&d, srp, par);
    let episode = synthetic_episode(2, 33, &d).unwrap();
    let out = model.forward(&episode, Phase::Train).unwrap();
    let p = parts(&model, &episode);
    let query_mask = episode.query_mask.clone().unwrap();
    let tol = 1e-5;
    assert_close(
        &values(out.query_logits.clone()),
        &values(p.query_logits.clone()),
        tol,
        "query logits",
    );
    assert_close(
        &values(out.support_logits.clone()),
        &values(p.support_logits.clone()),
        tol,
        "support logits",
    );
    assert_close(
        &values(out.query_probabilities),
        &values(softmax(p.query_logits.clone(), 1)),
        tol,
        "training probabilities",
    );
    let l_que = segmentation_cross_entropy(p.query_logits, query_mask);
    let l_sup = support_loss(p.support_logits, episode.support_masks.clone());
    let l_par = prototype_alignment_loss(
        &model.config.metric,
        p.query_features,
        p.query_low_res,
        p.support_features,
        episode.support_masks.clone(),
    )
    .unwrap()
    .expect("this episode predicts some foreground: PAR is computed");
    let losses = out.losses.unwrap();
    let scalar = |t: &Tensor<1>| values(t.clone());
    assert_close(&scalar(&losses.query), &scalar(&l_que), tol, "L_que");
    assert_close(
        &scalar(&losses.support.clone().unwrap()),
        &scalar(&l_sup),
        tol,
        "L_sup",
    );
    assert_close(
        &scalar(&losses.alignment.unwrap()),
        &scalar(&l_par),
        tol,
        "L_par",
    );
    let total = l_que + l_sup.clone().mul_scalar(srp) + l_par.mul_scalar(par);
    assert_close(&scalar(&losses.total), &scalar(&total), tol, "total loss");

    // Gradients: nothing in forward() is detached that the parts keep (the prototypes, the
    // support features of the recovery path).
    let gradient = |loss: Tensor<1>| {
        let grads = loss.backward();
        let mut g = values(model.pyramid.reduce.weight.val().grad(&grads).unwrap());
        g.extend(values(
            model.backbone.stem.conv.weight.val().grad(&grads).unwrap(),
        ));
        g
    };
    let ours = gradient(losses.support.unwrap());
    let theirs = gradient(l_sup);
    let scale = common::max_abs_diff(&theirs, &vec![0.0; theirs.len()]);
    assert!(scale > 0.0);
    assert_close(&ours, &theirs, 1e-4 * scale, "gradient of L_sup");
}

#[test]
fn inference_forward_is_wired_from_its_parts() {
    let d = device();
    let _rng = common::seed(&d, 11);
    let model = tiny_model(&d, 1.0, 0.0);
    assert!(model.config.iqi.iterations > 0);
    let episode = synthetic_episode(2, 33, &d).unwrap();
    let out = model.forward(&episode, Phase::Infer).unwrap();
    let p = parts(&model, &episode);
    let iqi = iterative_query_inference(
        &model.config.iqi,
        &model.config.metric,
        p.query_features,
        p.support_features,
        episode.support_masks.clone(),
        &p.prototypes,
    )
    .unwrap();
    assert!(out.losses.is_none());
    assert_close(
        &values(out.query_logits),
        &values(p.query_logits),
        1e-5,
        "query logits",
    );
    assert_close(
        &values(out.support_logits),
        &values(p.support_logits),
        1e-5,
        "support logits",
    );
    assert_close(
        &values(out.query_probabilities),
        &values(iqi.probabilities),
        1e-5,
        "IQI probabilities",
    );
    assert_eq!(out.iqi_scores, iqi.support_scores);
}

#[test]
fn total_loss_weighs_each_term_by_its_lambda() {
    let d = device().autodiff();
    let _rng = common::seed(&d, 12);
    for (srp, par) in [(0.0, 1.0), (0.3, 0.0), (2.5, 0.6)] {
        let model = tiny_model(&d, srp, par);
        let episode = synthetic_episode(1, 33, &d).unwrap();
        let losses = model
            .forward(&episode, Phase::Train)
            .unwrap()
            .losses
            .unwrap();
        assert_eq!(losses.support.is_some(), srp > 0.0);
        assert_eq!(
            losses.alignment.is_some(),
            par > 0.0,
            "PAR computed iff its lambda > 0"
        );
        let term =
            |t: Option<Tensor<1>>, lambda: f64| t.map_or(0.0, |t| values(t)[0] * lambda as f32);
        let expect =
            values(losses.query)[0] + term(losses.support, srp) + term(losses.alignment, par);
        assert_close(
            &values(losses.total),
            &[expect],
            1e-5,
            &format!("lambda_sup {srp}, lambda_par {par}"),
        );
    }
}

#[test]
fn the_presets_are_the_papers_choices_and_panet_differs_only_where_panet_does() {
    use srpnet::model::fidelity::{Metric, MetricConfig};
    use srpnet::model::iqi::IqiConfig;
    use srpnet::model::prototype::MaskPooling;
    use srpnet::model::pyramid::PyramidConfig;
    assert_eq!(Profile::Paper.image_size(), 417);
    assert_eq!(Profile::Embedded.image_size(), 97);
    let paper = ModelConfig::srpnet(Profile::Paper);
    assert_eq!(
        paper.backbone,
        BackboneConfig {
            frozen_batch_norm: true,
            batch_norm_epsilon: 1e-3,
            ..BackboneConfig::resnet50()
        },
        "the paper profile: ResNet-50, frozen batch norm, Keras' epsilon"
    );
    assert_eq!(paper.pyramid.channels, 512);
    let embedded = ModelConfig::srpnet(Profile::Embedded);
    assert_eq!(embedded.backbone, BackboneConfig::small());
    assert_eq!(embedded.pyramid.channels, 128);
    for profile in [Profile::Paper, Profile::Embedded] {
        let srpnet = ModelConfig::srpnet(profile);
        assert_eq!(
            srpnet.pyramid,
            PyramidConfig {
                channels: srpnet.pyramid.channels,
                ..PyramidConfig::default()
            }
        );
        assert!(srpnet.pyramid.final_relu);
        assert_eq!(srpnet.pooling, MaskPooling::Transposed);
        assert_eq!(
            srpnet.metric,
            MetricConfig {
                metric: Metric::Fidelity,
                scale: 20.0
            }
        );
        assert_eq!((srpnet.srp.lambda, srpnet.par.lambda), (1.0, 0.0));
        assert_eq!(srpnet.iqi, IqiConfig::default());
        assert_eq!(srpnet.iqi.iterations, 3);
        let panet = ModelConfig::panet(profile);
        assert_eq!(panet.backbone, srpnet.backbone);
        assert_eq!(
            panet.pyramid,
            PyramidConfig {
                final_relu: false,
                ..srpnet.pyramid.clone()
            }
        );
        assert_eq!(panet.pooling, srpnet.pooling);
        assert_eq!(
            panet.metric,
            MetricConfig {
                metric: Metric::Cosine,
                scale: 20.0
            }
        );
        assert_eq!((panet.srp.lambda, panet.par.lambda), (0.0, 1.0));
        assert_eq!(
            panet.iqi,
            IqiConfig {
                iterations: 0,
                ..srpnet.iqi.clone()
            }
        );
    }
}

#[test]
fn the_pyramid_resizes_coarser_levels_to_the_finest_before_fusing() {
    use srpnet::model::pyramid::PyramidConfig;
    let d = device();
    let _rng = common::seed(&d, 11);
    let backbone = BackboneConfig::small();
    let pyramid = PyramidConfig {
        levels: vec![2, 3],
        channels: 4,
        final_relu: false,
    }
    .init(&backbone, &d)
    .unwrap();
    let fine = Tensor::<4>::random(
        [1, 128, 8, 8],
        burn::tensor::Distribution::Uniform(-1.0, 1.0),
        &d,
    );
    let coarse = Tensor::<4>::random(
        [1, 256, 4, 4],
        burn::tensor::Distribution::Uniform(-1.0, 1.0),
        &d,
    );
    let by_hand = pyramid.reduce.forward(Tensor::cat(
        vec![
            fine.clone(),
            interpolate(coarse.clone(), bilinear_to([8, 8])),
        ],
        1,
    ));
    let fused = pyramid.forward(vec![fine, coarse]);
    assert_eq!(fused.dims(), [1, 4, 8, 8]);
    assert_close(&values(fused), &values(by_hand), 1e-6, "fused pyramid");
}

#[test]
fn an_episode_of_mixed_sizes_is_refused_naming_the_image() {
    use srpnet::data::Split;
    use srpnet::data::episode::{Episode, Image, Mask, Shot};
    let shot = |id: &str, (h, w): (usize, usize), (mh, mw): (usize, usize)| Shot {
        id: id.into(),
        image: Image::zeros(h, w),
        mask: Mask {
            height: mh,
            width: mw,
            data: vec![0; mh * mw],
        },
        original_size: (h, w),
    };
    let episode = |supports: Vec<Shot>, query: Shot| Episode {
        benchmark: "test".into(),
        fold: 0,
        split: Split::Test,
        index: 0,
        class_id: 1,
        class_name: "x".into(),
        supports,
        query,
        query_original_mask: None,
    };
    let d = device();
    let same = (8, 8);
    let ok = EpisodeTensors::from_episode(
        &episode(
            vec![shot("s0", same, same), shot("s1", same, same)],
            shot("q", same, same),
        ),
        &d,
    )
    .unwrap();
    assert_eq!((ok.shots(), ok.image_size()), (2, [8, 8]));
    for (supports, query, says) in [
        (
            vec![shot("s0", same, same), shot("s1", (8, 6), same)],
            shot("q", same, same),
            "support 1 (s1)",
        ),
        (
            vec![shot("s0", same, (6, 8))],
            shot("q", same, same),
            "support 0 (s0)",
        ),
        (
            vec![shot("s0", same, same)],
            shot("q", same, (8, 6)),
            "the query mask of q",
        ),
    ] {
        let err = EpisodeTensors::from_episode(&episode(supports, query), &d)
            .err()
            .unwrap_or_else(|| panic!("an episode with a mismatch ({says}) was accepted"));
        assert!(err.to_string().contains(says), "{err}");
    }
}

#[test]
fn without_iqi_inference_is_the_plain_softmax_and_reports_no_iqi_scores() {
    let d = device();
    let _rng = common::seed(&d, 5);
    let mut config = ModelConfig::srpnet(Profile::Embedded);
    config.iqi.iterations = 0;
    let model = config.init(&d).unwrap();
    let episode = synthetic_episode(1, 41, &d).unwrap();
    let out = model.forward(&episode, Phase::Infer).unwrap();
    assert!(out.iqi_scores.is_empty(), "{:?}", out.iqi_scores);
    let plain = values(softmax(out.query_logits, 1));
    assert_close(
        &values(out.query_probabilities),
        &plain,
        0.0,
        "T = 0: softmax of the P_0 logits",
    );
}

/// `conv_forward` computes every backbone convolution its own way on flex (1x1 stride-s convs on
/// the subsampled input, the RGB stem as im2col + matmul): the output and the weight gradient
/// must equal Burn's `Conv2d::forward` to float rounding, for the shapes the backbone uses and
/// odd ones (non-square input, a size that does not divide by the stride).
#[test]
fn conv_forward_equals_the_plain_convolution_in_value_and_weight_gradient() {
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::Conv2dConfig;
    use srpnet::model::backbone::conv_forward;
    let d = device().autodiff();
    let _rng = common::seed(&d, 11);
    // (in, out, kernel, stride, padding, input height, width)
    let cases = [
        (3, 16, 7, 2, 3, 97, 97),
        (3, 64, 7, 2, 3, 41, 33),
        (1, 4, 3, 1, 1, 9, 12),
        (4, 8, 5, 3, 2, 17, 14),
        (16, 32, 1, 2, 0, 25, 25),
        (24, 8, 1, 2, 0, 12, 15),
        (8, 8, 1, 3, 0, 10, 7),
        (16, 16, 3, 1, 1, 13, 13),
    ];
    for (cin, cout, k, s, p, h, w) in cases {
        let conv = Conv2dConfig::new([cin, cout], [k, k])
            .with_stride([s, s])
            .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
            .with_bias(false)
            .init(&d);
        let x = common::tensor(
            common::noise(cin as u64, 2 * cin * h * w),
            [2, cin, h, w],
            &d,
        );
        let what = format!("{cin}->{cout} {k}x{k}/{s} pad {p} on {h}x{w}");
        let ours = conv_forward(&conv, x.clone());
        let plain = conv.forward(x);
        assert_eq!(ours.dims(), plain.dims(), "{what}");
        let ours_values = values(ours.clone());
        let scale = ours_values.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        assert_close(&ours_values, &values(plain.clone()), 1e-5 * scale, &what);
        // Weight gradients of a loss that weighs every output differently.
        let dims = plain.dims();
        let n: usize = dims.iter().product();
        let weights = common::tensor(common::noise(99, n), dims, &d);
        let grad_of = |out: Tensor<4>| {
            let grads = (out * weights.clone()).sum().backward();
            values(
                conv.weight
                    .grad(&grads)
                    .expect("the weight gets a gradient"),
            )
        };
        let (g_ours, g_plain) = (grad_of(ours), grad_of(plain));
        let scale = g_plain.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        assert_close(
            &g_ours,
            &g_plain,
            1e-5 * scale,
            &format!("{what}: weight gradient"),
        );
    }
}

/// Batch norm in training mode (batch statistics), which the embedded profile trains with and
/// whose reductions `vendor/burn-backend` reorders: output and input gradient against the
/// definition in f64, y = gamma (x - mean) / sqrt(var + eps) + beta with the biased variance over
/// N, H, W, and dL/dx for L = sum(y * w) by its closed form.
#[test]
fn batch_norm_in_training_mode_matches_its_definition_in_value_and_gradient() {
    use burn::nn::BatchNormConfig;
    let d = device().autodiff();
    let (n, c, h, w) = (2, 3, 5, 4);
    let eps = 1e-5;
    let bn = BatchNormConfig::new(c).with_epsilon(eps).init(&d);
    let xs: Vec<f32> = common::noise(5, n * c * h * w)
        .iter()
        .map(|v| 3.0 * v + 0.5)
        .collect();
    let ws = common::noise(6, n * c * h * w);
    let x = common::tensor(xs.clone(), [n, c, h, w], &d).require_grad();
    let y = bn.forward(x.clone());
    let grads = (y.clone() * common::tensor(ws.clone(), [n, c, h, w], &d))
        .sum()
        .backward();
    let (y, gx) = (values(y), values(x.grad(&grads).unwrap()));
    let at = |b: usize, ch: usize, i: usize| (b * c + ch) * h * w + i;
    let m = (n * h * w) as f64;
    for ch in 0..c {
        let idx: Vec<usize> = (0..n)
            .flat_map(|b| (0..h * w).map(move |i| at(b, ch, i)))
            .collect();
        let mean = idx.iter().map(|&k| xs[k] as f64).sum::<f64>() / m;
        let var = idx
            .iter()
            .map(|&k| (xs[k] as f64 - mean).powi(2))
            .sum::<f64>()
            / m;
        let inv = 1.0 / (var + eps).sqrt();
        let xhat: Vec<f64> = idx.iter().map(|&k| (xs[k] as f64 - mean) * inv).collect();
        // gamma = 1, beta = 0 at initialisation.
        let mean_w = idx.iter().map(|&k| ws[k] as f64).sum::<f64>() / m;
        let mean_wx = idx
            .iter()
            .zip(&xhat)
            .map(|(&k, xh)| ws[k] as f64 * xh)
            .sum::<f64>()
            / m;
        for (j, &k) in idx.iter().enumerate() {
            assert!(
                (y[k] as f64 - xhat[j]).abs() < 1e-4,
                "y[{k}] = {} vs {}",
                y[k],
                xhat[j]
            );
            let g = inv * (ws[k] as f64 - mean_w - xhat[j] * mean_wx);
            assert!(
                (gx[k] as f64 - g).abs() < 1e-4,
                "dx[{k}] = {} vs {g}",
                gx[k]
            );
        }
    }
}

/// `conv_forward`'s fast paths take only what they can compute: a convolution with a bias,
/// groups, dilation, padding that differs between sides or axes, or unequal strides must take
/// Burn's own path (or give its numbers). Each case sits just outside one condition of the
/// routing; a condition loosened by one operator sends it down a path that ignores what makes it
/// special (mutation testing found the conditions unguarded: book, testing.md).
#[test]
fn conv_forward_routes_what_its_fast_paths_cannot_do_to_the_plain_convolution() {
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::Conv2dConfig;
    use srpnet::model::backbone::conv_forward;
    let d = device();
    let _rng = common::seed(&d, 12);
    // (what, in, out, kernel, [stride h, w], padding (top, left, bottom, right), dilation,
    // groups, bias)
    let cases = [
        (
            "bias, RGB-sized input",
            3,
            8,
            3,
            [2, 2],
            (1, 1, 1, 1),
            1,
            1,
            true,
        ),
        (
            "bias, 1x1 stride 2",
            16,
            8,
            1,
            [2, 2],
            (0, 0, 0, 0),
            1,
            1,
            true,
        ),
        (
            "groups, 1x1 stride 2",
            4,
            4,
            1,
            [2, 2],
            (0, 0, 0, 0),
            1,
            2,
            false,
        ),
        (
            "dilation, RGB-sized input",
            3,
            8,
            3,
            [1, 1],
            (2, 2, 2, 2),
            2,
            1,
            false,
        ),
        (
            "padding wider than tall",
            3,
            8,
            3,
            [1, 1],
            (1, 2, 1, 2),
            1,
            1,
            false,
        ),
        (
            "padding deeper at the bottom",
            3,
            8,
            3,
            [1, 1],
            (1, 1, 2, 1),
            1,
            1,
            false,
        ),
        (
            "padding deeper on the right",
            3,
            8,
            3,
            [1, 1],
            (1, 1, 1, 2),
            1,
            1,
            false,
        ),
        (
            "unequal strides",
            3,
            8,
            3,
            [2, 1],
            (1, 1, 1, 1),
            1,
            1,
            false,
        ),
    ];
    let (h, w) = (11, 9);
    for (what, cin, cout, k, stride, (t, l, b, r), dilation, groups, bias) in cases {
        let conv = Conv2dConfig::new([cin, cout], [k, k])
            .with_stride(stride)
            .with_padding(PaddingConfig2d::Explicit(t, l, b, r))
            .with_dilation([dilation, dilation])
            .with_groups(groups)
            .with_bias(bias)
            .init(&d);
        let x = common::tensor(
            common::noise(cin as u64, 2 * cin * h * w),
            [2, cin, h, w],
            &d,
        );
        let ours = conv_forward(&conv, x.clone());
        let plain = conv.forward(x);
        assert_eq!(ours.dims(), plain.dims(), "{what}");
        let plain_values = values(plain);
        let scale = plain_values.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        assert_close(&values(ours), &plain_values, 1e-5 * scale, what);
    }
}
