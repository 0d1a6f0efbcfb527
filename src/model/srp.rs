//! Self-regularized prototypes (SRP): the prototypes are applied back to the support features that
//! produced them, and must recover the support mask. The support loss `L_sup` regularises
//! prototype generation; the recovery IoU is the upper bound the paper argues for.

use burn::tensor::Tensor;
use burn::tensor::module::interpolate;
use serde::{Deserialize, Serialize};

use crate::model::ModelError;
use crate::model::fidelity::MetricConfig;
use crate::model::loss::segmentation_cross_entropy;
use crate::model::prototype::Prototypes;
use crate::model::pyramid::bilinear_to;

// ANCHOR: config
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SrpConfig {
    /// Weight of the support loss: `L = L_que + lambda * L_sup` ([ours]: 1). 0 turns SRP off.
    pub lambda: f64,
}
// ANCHOR_END: config

impl Default for SrpConfig {
    fn default() -> Self {
        Self { lambda: 1.0 }
    }
}

impl SrpConfig {
    pub fn validate(&self) -> Result<(), ModelError> {
        if !(self.lambda.is_finite() && self.lambda >= 0.0) {
            return Err(ModelError::config(
                "srp.lambda",
                self.lambda.to_string(),
                "the support-loss weight must be 0 (off) or positive",
            ));
        }
        Ok(())
    }
}

// ANCHOR: support_recovery
/// Segments the support images with their own prototypes.
/// `support_features`: [K, C, h, w]; returns logits [K, 2, H, W] at the image size `size`.
/// In K-shot every shot is segmented by the shared (averaged) prototypes [ours].
pub fn support_recovery(
    support_features: Tensor<4>,
    prototypes: &Prototypes,
    metric: &MetricConfig,
    size: [usize; 2],
) -> Tensor<4> {
    interpolate(
        metric.logits(support_features, prototypes),
        bilinear_to(size),
    )
}

/// `L_sup`: cross-entropy of the recovered support masks against the given ones (255 ignored).
/// `support_logits`: [K, 2, H, W]; `support_masks`: [K, H, W].
pub fn support_loss(support_logits: Tensor<4>, support_masks: Tensor<3>) -> Tensor<1> {
    segmentation_cross_entropy(support_logits, support_masks)
}
// ANCHOR_END: support_recovery
