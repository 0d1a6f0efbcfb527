//! Masked average pooling (MAP): one foreground and one background prototype from the support
//! features and masks (SRPNet Fig. 2, "prototype generation"; PANet's `getFeatures`).

use burn::tensor::module::interpolate;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::model::pyramid::bilinear_to;
use crate::model::{ModelError, host_values};

/// Foreground/background prototypes, [2, C]: row 0 is the background, row 1 the foreground.
#[derive(Debug, Clone)]
pub struct Prototypes(pub Tensor<2>);

impl Prototypes {
    pub const BACKGROUND: usize = 0;
    pub const FOREGROUND: usize = 1;
}

// ANCHOR: pooling
/// How the image-size mask meets the feature-size features. [ours]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MaskPooling {
    /// Pool the features at their own resolution under `U^T m`, where `U` is the bilinear
    /// upsampling from feature to image size and `m` the mask. Exactly equal to `Upsampled`,
    /// because pooling is linear: `sum_p (U f)_p m_p = sum_q f_q (U^T m)_q`, and far cheaper.
    Transposed,
    /// PANet's literal recipe: upsample the features to the mask size, then pool there.
    Upsampled,
}
// ANCHOR_END: pooling

/// The label values of a support or query mask (after the episode is built).
pub const BACKGROUND_LABEL: f32 = 0.0;
pub const FOREGROUND_LABEL: f32 = 1.0;
pub const IGNORE_LABEL: f32 = 255.0;

// ANCHOR: masked_average_pool
/// MAP prototypes from K support shots.
///
/// `features`: [K, C, h, w]; `masks`: [K, H, W] with 0 = background, 1 = foreground,
/// 255 = ignore (counts for neither region). Each shot gives its own prototypes; the K-shot
/// prototype is their mean over the shots in which the region is not empty. A region empty in
/// every shot is an error, never a division by zero.
pub fn masked_average_pool(
    features: Tensor<4>,
    masks: Tensor<3>,
    pooling: MaskPooling,
) -> Result<Prototypes, ModelError> {
    let [k, _, h, w] = features.dims();
    let [_, mh, mw] = masks.dims();
    // [K, 2, H, W]: the background and foreground indicator of every shot.
    let regions = Tensor::cat(
        vec![
            masks
                .clone()
                .equal_elem(BACKGROUND_LABEL)
                .float()
                .unsqueeze_dim(1),
            masks.equal_elem(FOREGROUND_LABEL).float().unsqueeze_dim(1),
        ],
        1,
    );
    let areas = host_values(regions.clone().sum_dims_squeeze::<2, _>(&[2, 3]))?;
    let sums = match pooling {
        MaskPooling::Transposed => weighted_sums(features, transposed_bilinear(regions, [h, w])),
        MaskPooling::Upsampled => {
            weighted_sums(interpolate(features, bilinear_to([mh, mw])), regions)
        }
    }; // [K, 2, C]
    // coefficient[k, r] = 1 / (area * shots with a non-empty region r), 0 where empty.
    let mut coefficients = vec![0f32; k * 2];
    for region in 0..2 {
        let shots = (0..k).filter(|&s| areas[s * 2 + region] > 0.0).count();
        if shots == 0 {
            return Err(ModelError::EmptyMask {
                region: if region == 1 {
                    "foreground"
                } else {
                    "background"
                },
                shots: k,
            });
        }
        for s in 0..k {
            let area = areas[s * 2 + region];
            if area > 0.0 {
                coefficients[s * 2 + region] = 1.0 / (area * shots as f32);
            }
        }
    }
    let device = sums.device();
    let coefficients = Tensor::<3>::from_data(TensorData::new(coefficients, [k, 2, 1]), &device);
    Ok(Prototypes((sums * coefficients).sum_dim(0).squeeze_dim(0)))
}
// ANCHOR_END: masked_average_pool

/// `sum_q features[n, :, q] * weights[n, r, q]`: [N, C, h, w] x [N, R, h, w] -> [N, R, C].
pub fn weighted_sums(features: Tensor<4>, weights: Tensor<4>) -> Tensor<3> {
    let [n, c, h, w] = features.dims();
    let [_, r, _, _] = weights.dims();
    weights
        .reshape([n, r, h * w])
        .matmul(features.reshape([n, c, h * w]).swap_dims(1, 2))
}

// ANCHOR: transposed
/// `U^T m` for every map in `maps` ([N, R, H, W] -> [N, R, h, w]), where `U` is the bilinear
/// upsampling [h, w] -> [H, W] with half-pixel centres. `U = A_h (.) A_w^T` is separable, so
/// `U^T m = A_h^T m A_w`: two small matrix products instead of a 3,584-channel upsampling.
pub fn transposed_bilinear(maps: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
    let [n, r, big_h, big_w] = maps.dims();
    let device = maps.device();
    let a_h_t = interpolation_matrix(size[0], big_h, &device)
        .transpose()
        .unsqueeze::<4>()
        .expand([n, r, size[0], big_h]);
    let a_w = interpolation_matrix(size[1], big_w, &device)
        .unsqueeze::<4>()
        .expand([n, r, big_w, size[1]]);
    a_h_t.matmul(maps).matmul(a_w)
}
// ANCHOR_END: transposed

/// The [out, in] matrix of 1-D bilinear resizing with half-pixel centres (PyTorch's
/// `align_corners=False`): `out[o] = sum_i A[o, i] * in[i]`.
pub fn interpolation_matrix(input: usize, output: usize, device: &Device) -> Tensor<2> {
    let mut a = vec![0f32; output * input];
    let scale = input as f64 / output as f64;
    for o in 0..output {
        let src = ((o as f64 + 0.5) * scale - 0.5).max(0.0);
        let i0 = (src.floor() as usize).min(input - 1);
        let i1 = (i0 + 1).min(input - 1);
        let frac = (src - i0 as f64) as f32;
        a[o * input + i0] += 1.0 - frac;
        a[o * input + i1] += frac;
    }
    Tensor::from_data(TensorData::new(a, [output, input]), device)
}
