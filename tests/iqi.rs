//! Iterative query inference: T = 0 is plain inference; the combined prediction is a
//! probability distribution over {background, foreground} at every pixel.

mod common;

use burn::tensor::activation::softmax;
use common::{device, max_abs_diff, values};
use srpnet::bench::synthetic_episode;
use srpnet::model::iqi::{IqiConfig, IqiWeighting, iterative_query_inference};
use srpnet::model::prototype::masked_average_pool;
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
    d.seed(1);
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
    d.seed(2);
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
            let worst = (0..half)
                .map(|i| (p[i] + p[half + i] - 1.0).abs())
                .fold(0.0, f32::max);
            assert!(
                worst < 1e-5,
                "T = {iterations}: probabilities sum to 1 +- {worst}"
            );
            changed |= max_abs_diff(&p, &plain) > 1e-4;
        }
    }
    assert!(
        changed,
        "IQI never changed the prediction: the refined prototypes are not used"
    );
}
