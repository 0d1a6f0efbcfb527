//! Cross-entropy with an ignore label, and the foreground IoU of a prediction.
//!
//! Burn's `CrossEntropyLoss` has no ignore index (and gathers at the target before masking, so a
//! target of 255 would index out of range): we mask ignore pixels ourselves.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

use crate::model::prototype::{FOREGROUND_LABEL, IGNORE_LABEL};
use crate::model::{ModelError, host_values};

// ANCHOR: cross_entropy
/// Mean cross-entropy over the non-ignored pixels.
/// `logits`: [N, 2, H, W] (background, foreground); `labels`: [N, H, W] with 0, 1 or 255.
/// An episode whose every pixel is ignored contributes 0, not NaN.
pub fn segmentation_cross_entropy(logits: Tensor<4>, labels: Tensor<3>) -> Tensor<1> {
    let valid = labels.clone().not_equal_elem(IGNORE_LABEL).float(); // [N, H, W]
    let target = labels
        .equal_elem(FOREGROUND_LABEL)
        .int()
        .unsqueeze_dim::<4>(1); // [N, 1, H, W], ignore -> 0
    let picked: Tensor<4> = log_softmax(logits, 1).gather(1, target);
    let count = valid.clone().sum().clamp_min(1.0);
    -(picked.squeeze_dim::<3>(1) * valid).sum() / count
}
// ANCHOR_END: cross_entropy

/// Predicted labels from [N, 2, H, W] scores: 1 where the foreground wins.
pub fn predicted_labels(scores: Tensor<4>) -> Tensor<3, Int> {
    scores.argmax(1).squeeze_dim(1)
}

/// The predicted labels (0/1) of [N, 2, H, W] scores, on the host, flattened N-H-W.
pub fn predicted_mask(scores: Tensor<4>) -> Result<Vec<u8>, ModelError> {
    Ok(host_values(predicted_labels(scores).float())?
        .into_iter()
        .map(|v| v as u8)
        .collect())
}

// ANCHOR: iou
/// Foreground IoU of `scores` ([N, 2, H, W]) against `labels` ([N, H, W]; 255 ignored), summed
/// over the N images (intersections and unions accumulated, as the benchmark metrics do).
/// Returns 1 when both prediction and ground truth are empty.
pub fn foreground_iou(scores: Tensor<4>, labels: Tensor<3>) -> Result<f32, ModelError> {
    let valid = labels.clone().not_equal_elem(IGNORE_LABEL);
    let truth = labels.equal_elem(FOREGROUND_LABEL);
    let predicted = predicted_labels(scores).equal_elem(1).bool_and(valid);
    let intersection = predicted.clone().bool_and(truth.clone()).int().sum();
    let union = predicted.bool_or(truth).int().sum();
    let both = host_values(Tensor::cat(vec![intersection, union], 0).float())?;
    Ok(if both[1] == 0.0 {
        1.0
    } else {
        both[0] as f32 / both[1] as f32
    })
}
// ANCHOR_END: iou
