//! Backend parity: where a second backend is compiled in, the same forward, and the same training
//! loss's gradients (every convolution's weight gradient goes through our patch of Burn's
//! `conv2d_weight_backward`, `vendor/burn-backend`), agree with the CPU backend (flex) within a
//! stated tolerance. Skipped, with a message on stderr, where none is. A build with a second
//! backend that compares nothing (no device could be opened) fails.

mod common;

use burn::module::Module;
use burn::tensor::Tensor;
use common::{assert_finite, max_abs_diff, values};
use srpnet::backend::BackendKind;
use srpnet::bench::synthetic_episode;
use srpnet::model::{EpisodeTensors, ModelConfig, Phase, Profile, SrpNet};

/// f32 kernels differ in summation order between backends; this bounds the drift of a
/// small ResNet's probabilities.
const TOLERANCE: f32 = 1e-3;

#[test]
fn forward_agrees_with_flex_on_every_compiled_backend() {
    let flex = BackendKind::Flex.device(false).unwrap();
    let _rng = common::seed(&flex, 9);
    let model = ModelConfig::srpnet(Profile::Embedded).init(&flex).unwrap();
    let episode = synthetic_episode(1, 65, &flex).unwrap();
    let reference = values(
        model
            .forward(&episode, Phase::Infer)
            .unwrap()
            .query_probabilities,
    );
    common::on_every_second_backend(false, |backend, device| {
        let moved = model.clone().to_device(&device);
        let episode = synthetic_episode(1, 65, &device).unwrap();
        let probs = values(
            moved
                .forward(&episode, Phase::Infer)
                .unwrap()
                .query_probabilities,
        );
        let diff = max_abs_diff(&reference, &probs);
        common::note(&format!(
            "{}: max |p - p_flex| = {diff:.2e}",
            backend.name()
        ));
        assert!(
            diff < TOLERANCE,
            "{} differs from flex by {diff}",
            backend.name()
        );
    });
}

/// Relative to the largest gradient entry: summation order differs between backends, and a
/// backward pass through a ResNet accumulates more of it than a forward.
const GRADIENT_TOLERANCE: f32 = 1e-3;

/// The weights whose gradients are compared: the stem (7x7, stride 2, 3 input channels), a 1x1
/// and a strided 3x3 of layer2, the last 1x1 of the backbone, and the pyramid's 1x1 reduction.
fn weight_gradients(model: &SrpNet, loss: Tensor<1>) -> Vec<(&'static str, Vec<f32>)> {
    let grads = loss.backward();
    let grad = |name: &'static str, w: Tensor<4>| {
        let g = values(
            w.grad(&grads)
                .expect("every compared weight has a gradient"),
        );
        assert_finite(&g, name);
        (name, g)
    };
    let b = &model.backbone;
    let last = b.layer4.last().expect("layer4 has blocks");
    vec![
        grad("stem 7x7/2", b.stem.conv.weight.val()),
        grad("layer2[0] 1x1", b.layer2[0].conv1.weight.val()),
        grad("layer2[0] 3x3/2", b.layer2[0].conv2.weight.val()),
        grad("layer4 last 1x1", last.conv3.weight.val()),
        grad("pyramid 1x1", model.pyramid.reduce.weight.val()),
    ]
}

/// The training loss (L_que + lambda L_sup) of one episode.
fn total(model: &SrpNet, episode: &EpisodeTensors) -> Tensor<1> {
    model
        .forward(episode, Phase::Train)
        .unwrap()
        .losses
        .expect("a training forward has losses")
        .total
}

#[test]
fn training_gradients_agree_with_flex_on_every_compiled_backend() {
    let flex = BackendKind::Flex.device(true).unwrap();
    let _rng = common::seed(&flex, 11);
    let model = ModelConfig::srpnet(Profile::Embedded).init(&flex).unwrap();
    let episode = synthetic_episode(1, 65, &flex).unwrap();
    let reference = weight_gradients(&model, total(&model, &episode));
    common::on_every_second_backend(true, |backend, device| {
        // `fork`, not `to_device`: the moved weights are leaves of the new graph.
        let moved = model.clone().fork(&device);
        let episode = synthetic_episode(1, 65, &device).unwrap();
        let gradients = weight_gradients(&moved, total(&moved, &episode));
        let mut worst = (0.0f32, "");
        for ((name, g_flex), (_, g)) in reference.iter().zip(&gradients) {
            let scale = g_flex.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            assert!(scale > 0.0, "{name}: flex's gradient is zero");
            let relative = max_abs_diff(g_flex, g) / scale;
            common::note(&format!(
                "{} {name}: max |g - g_flex| / max |g_flex| = {relative:.2e}",
                backend.name()
            ));
            if relative >= worst.0 {
                worst = (relative, name);
            }
        }
        assert!(
            worst.0 < GRADIENT_TOLERANCE,
            "{} {}: weight gradient differs from flex's by {:e} (relative)",
            backend.name(),
            worst.1,
            worst.0
        );
    });
}
