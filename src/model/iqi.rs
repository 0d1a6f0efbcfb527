//! Iterative query inference (IQI): the query is segmented with a collection of prototypes, each
//! derived from the initial SRP prototypes, and their predictions are combined.
//! [ours]: the paper's abstract gives only that much; the algorithm below is our reading.

use burn::tensor::Tensor;
use burn::tensor::activation::softmax;
use burn::tensor::module::interpolate;
use serde::{Deserialize, Serialize};

use crate::model::ModelError;
use crate::model::fidelity::{MetricConfig, normalize};
use crate::model::loss::foreground_iou;
use crate::model::prototype::{Prototypes, weighted_sums};
use crate::model::pyramid::bilinear_to;
use crate::model::srp::support_recovery;

// ANCHOR: config
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IqiWeighting {
    /// Every prototype's prediction counts the same.
    Uniform,
    /// Each prediction is weighted by how well its prototypes recover the support mask (IoU):
    /// the paper's self-regularisation idea applied at inference.
    SupportScore,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IqiConfig {
    /// T: refined prototypes after the initial one. 0 is plain inference.
    pub iterations: usize,
    /// Share of the initial support prototype in every refined one.
    pub alpha: f64,
    pub weighting: IqiWeighting,
}
// ANCHOR_END: config

impl Default for IqiConfig {
    fn default() -> Self {
        Self {
            iterations: 3,
            alpha: 0.5,
            weighting: IqiWeighting::SupportScore,
        }
    }
}

impl IqiConfig {
    pub fn validate(&self) -> Result<(), ModelError> {
        if !(0.0..=1.0).contains(&self.alpha) {
            return Err(ModelError::config(
                "iqi.alpha",
                self.alpha.to_string(),
                "the share of the initial prototype must lie in [0, 1]",
            ));
        }
        if self.iterations > 100 {
            return Err(ModelError::config(
                "iqi.iterations",
                self.iterations.to_string(),
                "use 0 (off) to a handful; the paper's ablation goes to 5",
            ));
        }
        Ok(())
    }
}

/// The combined query prediction and the support score of each prototype P_0..P_T.
#[derive(Debug, Clone)]
pub struct IqiOutput {
    /// [1, 2, H, W] probabilities (background, foreground), summing to 1 over the two classes.
    pub probabilities: Tensor<4>,
    pub support_scores: Vec<f32>,
}

// ANCHOR: iterative_query_inference
/// `query_features`: [1, C, h, w]; `support_features`: [K, C, h, w]; `support_masks`: [K, H, W].
///
/// P_0 = the SRP prototypes. For t = 1..T: pool the query features under the soft prediction of
/// P_{t-1} into Q_t, and set P_t = normalize(alpha * P_0 + (1 - alpha) * Q_t) (both unit-norm
/// first, so neither dominates by its length). The result is the weighted mean of the
/// probabilities that P_0..P_T give the query, each computed exactly as plain inference does.
pub fn iterative_query_inference(
    config: &IqiConfig,
    metric: &MetricConfig,
    query_features: Tensor<4>,
    support_features: Tensor<4>,
    support_masks: Tensor<3>,
    initial: &Prototypes,
) -> Result<IqiOutput, ModelError> {
    let [_, _, big_h, big_w] = {
        let [k, h, w] = support_masks.dims();
        [k, 0, h, w]
    };
    let size = [big_h, big_w];
    let unit_initial = normalize(initial.0.clone(), 1);
    let mut prototypes = initial.clone();
    let mut predictions = Vec::with_capacity(config.iterations + 1);
    let mut scores = Vec::with_capacity(config.iterations + 1);
    for t in 0..=config.iterations {
        let low_res = metric.logits(query_features.clone(), &prototypes);
        predictions.push(softmax(interpolate(low_res.clone(), bilinear_to(size)), 1));
        scores.push(match config.weighting {
            IqiWeighting::Uniform => 1.0,
            IqiWeighting::SupportScore => {
                let recovered =
                    support_recovery(support_features.clone(), &prototypes, metric, size);
                foreground_iou(recovered, support_masks.clone())?
            }
        });
        if t == config.iterations {
            break;
        }
        // Q_t: query prototypes under the soft prediction, at feature resolution.
        let weights = softmax(low_res, 1); // [1, 2, h, w]
        let area = weights
            .clone()
            .sum_dims_squeeze::<2, _>(&[2, 3])
            .add_scalar(1e-5); // [1, 2]
        let query_prototypes = weighted_sums(query_features.clone(), weights).squeeze_dim::<2>(0)
            / area.reshape([2, 1]);
        let blend = unit_initial.clone().mul_scalar(config.alpha)
            + normalize(query_prototypes, 1).mul_scalar(1.0 - config.alpha);
        prototypes = Prototypes(normalize(blend, 1));
    }
    let total: f32 = scores.iter().sum();
    let weights: Vec<f32> = if total > 0.0 {
        scores.iter().map(|s| s / total).collect()
    } else {
        vec![1.0 / scores.len() as f32; scores.len()]
    };
    let probabilities = predictions
        .into_iter()
        .zip(&weights)
        .map(|(p, &w)| p.mul_scalar(w))
        .reduce(|a, b| a + b)
        .expect("at least P_0 is always evaluated");
    Ok(IqiOutput {
        probabilities,
        support_scores: scores,
    })
}
// ANCHOR_END: iterative_query_inference
