//! The feature pyramid (SRPNet Fig. 2): features of several backbone levels are brought to one
//! resolution, concatenated, and reduced to a common channel count.

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::Device;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use serde::{Deserialize, Serialize};

use crate::model::ModelError;
use crate::model::backbone::BackboneConfig;

// ANCHOR: config
/// Which backbone levels are fused and how wide the fused feature is. [ours]: the paper says only
/// that several levels are upsampled, concatenated and reduced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PyramidConfig {
    /// Backbone layers to fuse, from 1 (layer1) to 4 (layer4).
    pub levels: Vec<usize>,
    /// Channels after the 1x1 reduction.
    pub channels: usize,
    /// End in a ReLU, so that features are non-negative. The fidelity metrics need it (a squared
    /// cosine cannot tell u from -u); PANet's cosine does without (`lastRelu=False` in PANet's
    /// encoder), so the baseline's features are signed.
    pub final_relu: bool,
}
// ANCHOR_END: config

impl Default for PyramidConfig {
    fn default() -> Self {
        Self {
            levels: vec![2, 3, 4],
            channels: 512,
            final_relu: true,
        }
    }
}

impl PyramidConfig {
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.levels.is_empty() {
            return Err(ModelError::config(
                "pyramid.levels",
                "[]",
                "name at least one backbone level, e.g. [2, 3, 4]",
            ));
        }
        if let Some(bad) = self.levels.iter().find(|l| !(1..=4).contains(*l)) {
            return Err(ModelError::config(
                "pyramid.levels",
                bad.to_string(),
                "levels are backbone layers 1, 2, 3 or 4",
            ));
        }
        let mut sorted = self.levels.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted != self.levels {
            return Err(ModelError::config(
                "pyramid.levels",
                format!("{:?}", self.levels),
                "list each level once, in ascending order",
            ));
        }
        if self.channels == 0 {
            return Err(ModelError::config(
                "pyramid.channels",
                "0",
                "the fused feature needs at least one channel (the paper profile uses 512)",
            ));
        }
        Ok(())
    }

    pub fn init(&self, backbone: &BackboneConfig, device: &Device) -> Result<Pyramid, ModelError> {
        self.validate()?;
        let in_channels: usize = self
            .levels
            .iter()
            .map(|&l| backbone.level_channels(l))
            .sum();
        Ok(Pyramid {
            reduce: Conv2dConfig::new([in_channels, self.channels], [1, 1])
                .with_padding(PaddingConfig2d::Valid)
                .init(device),
            final_relu: self.final_relu,
        })
    }
}

#[derive(Module, Debug)]
pub struct Pyramid {
    pub reduce: Conv2d,
    #[module(skip)]
    pub final_relu: bool,
}

impl Pyramid {
    // ANCHOR: forward
    /// `levels`: backbone outputs, finest first, each [N, C_l, h_l, w_l].
    /// Returns [N, channels, h, w] at the finest level's resolution; non-negative when
    /// `final_relu` is set, which the fidelity metrics rely on, signed otherwise (PANet).
    pub fn forward(&self, levels: Vec<Tensor<4>>) -> Tensor<4> {
        let [_, _, h, w] = levels[0].dims();
        let resized: Vec<Tensor<4>> = levels
            .into_iter()
            .map(|f| {
                let [_, _, fh, fw] = f.dims();
                if [fh, fw] == [h, w] {
                    f
                } else {
                    interpolate(f, bilinear_to([h, w]))
                }
            })
            .collect();
        let fused = self.reduce.forward(Tensor::cat(resized, 1));
        if self.final_relu { relu(fused) } else { fused }
    }
    // ANCHOR_END: forward
}

/// Bilinear resize with half-pixel centres (PyTorch's `align_corners=False`, as PANet uses).
pub fn bilinear_to(size: [usize; 2]) -> InterpolateOptions {
    InterpolateOptions::new(InterpolateMode::Bilinear)
        .with_align_corners(false)
        .with_output_size(size)
}
