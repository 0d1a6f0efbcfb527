//! The PANet baseline's prototype alignment regularisation (PAR): prototypes pooled from the
//! *query* under its predicted mask must segment the support. PANet itself is `ModelConfig::panet`
//! (cosine x 20, no SRP, no IQI, PAR on) on the same backbone and pyramid as SRPNet.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::model::fidelity::MetricConfig;
use crate::model::loss::{predicted_labels, segmentation_cross_entropy};
use crate::model::prototype::{Prototypes, weighted_sums};
use crate::model::srp::support_recovery;
use crate::model::{ModelError, host_values};

// ANCHOR: config
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ParConfig {
    /// Weight of the alignment loss (PANet: 1). 0 turns PAR off.
    pub lambda: f64,
}
// ANCHOR_END: config

impl Default for ParConfig {
    fn default() -> Self {
        Self { lambda: 0.0 }
    }
}

impl ParConfig {
    pub fn validate(&self) -> Result<(), ModelError> {
        if !(self.lambda.is_finite() && self.lambda >= 0.0) {
            return Err(ModelError::config(
                "par.lambda",
                self.lambda.to_string(),
                "the alignment-loss weight must be 0 (off) or positive",
            ));
        }
        Ok(())
    }
}

/// PANet's guard in masked average pooling: `sum(f * m) / (sum(m) + 1e-5)`.
const PANET_POOL_EPS: f64 = 1e-5;

// ANCHOR: alignment_loss
/// PANet's `alignLoss`. `query_low_res`: [1, 2, h, w] query logits at feature resolution.
/// Returns `None` when the query prediction has no foreground (PANet skips the way). An empty
/// predicted background is pooled as PANet pools it, `sum / (area + 1e-5)`: a zero prototype,
/// whose similarity to every pixel is 0. Unlike PANet, the support's 255 border pixels stay
/// ignored instead of counting as background (book: panet.md lists every difference).
pub fn prototype_alignment_loss(
    metric: &MetricConfig,
    query_features: Tensor<4>,
    query_low_res: Tensor<4>,
    support_features: Tensor<4>,
    support_masks: Tensor<3>,
) -> Result<Option<Tensor<1>>, ModelError> {
    let predicted = predicted_labels(query_low_res).unsqueeze_dim::<4>(1); // [1, 1, h, w]
    let weights = Tensor::cat(
        vec![
            predicted.clone().equal_elem(0).float(),
            predicted.equal_elem(1).float(),
        ],
        1,
    ); // [1, 2, h, w]
    let areas = weights.clone().sum_dims_squeeze::<2, _>(&[2, 3]); // [1, 2]
    if host_values(areas.clone())?[1] == 0.0 {
        return Ok(None);
    }
    let query_prototypes = Prototypes(
        weighted_sums(query_features, weights).squeeze_dim::<2>(0)
            / areas.reshape([2, 1]).add_scalar(PANET_POOL_EPS),
    );
    let [_, h, w] = support_masks.dims();
    let logits = support_recovery(support_features, &query_prototypes, metric, [h, w]);
    Ok(Some(segmentation_cross_entropy(logits, support_masks)))
}
// ANCHOR_END: alignment_loss
