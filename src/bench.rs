//! `srpnet bench`: wall time of one training step (forward + backward of a K-shot episode) and
//! one inference episode, after warm-up, as a median over runs, with the process's peak RSS.
//! A benchmark, not a test: timings on a shared machine swing, so compare only numbers taken
//! side by side in one run.

use std::time::Instant;

use burn::module::Module;
use burn::tensor::Device;
use burn::tensor::module::interpolate;
use serde::Serialize;

use crate::backend::{BackendError, BackendKind};
use crate::model::loss::segmentation_cross_entropy;
use crate::model::pyramid::bilinear_to;
use crate::model::{EpisodeTensors, ModelConfig, ModelError, Phase, Profile};

/// One benchmark case: a model config at one image size.
#[derive(Debug, Clone)]
pub struct BenchCase {
    pub name: String,
    pub model: ModelConfig,
    pub image_size: usize,
    pub shots: usize,
}

#[derive(Debug, Clone, Copy)]
pub struct BenchSettings {
    pub backend: BackendKind,
    pub warmup: usize,
    pub runs: usize,
    /// Also time the parts of the step (backbone, pyramid, head) to see where the time goes.
    pub breakdown: bool,
}

/// Median seconds of each measured part.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    pub name: String,
    pub backend: &'static str,
    pub image_size: usize,
    pub shots: usize,
    pub parameters: usize,
    pub train_step_s: f64,
    pub inference_s: f64,
    /// Peak resident memory of the process during this case's timed step and inference (MiB;
    /// host memory, not GPU memory). The allocator may keep memory an earlier case freed, which
    /// would inflate a later, smaller case: the CLI runs cases from small to large.
    pub peak_rss_mib: Option<f64>,
    /// (part, median seconds) when a breakdown was asked for.
    pub breakdown: Vec<(String, f64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("the benchmark step produced no loss; the training phase needs a query mask")]
    NoLoss,
    #[error("the loss became {0}: the benchmark inputs or the model diverged")]
    NonFinite(f32),
}

/// A deterministic synthetic episode: smooth images and a centred square foreground.
pub fn synthetic_episode(
    shots: usize,
    size: usize,
    device: &Device,
) -> Result<EpisodeTensors, ModelError> {
    let n = shots + 1;
    let image: Vec<f32> = (0..n * 3 * size * size)
        .map(|i| (i as f32 * 0.013).sin() * 50.0)
        .collect();
    let mask: Vec<u8> = (0..n * size * size)
        .map(|i| {
            let (y, x) = ((i / size) % size, i % size);
            let inside =
                (size / 4..3 * size / 4).contains(&y) && (size / 4..3 * size / 4).contains(&x);
            inside as u8
        })
        .collect();
    let plane = 3 * size * size;
    let area = size * size;
    EpisodeTensors::from_host(
        shots,
        [size, size],
        &image[..shots * plane],
        &mask[..shots * area],
        &image[shots * plane..],
        Some(&mask[shots * area..]),
        device,
    )
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

/// Runs `f` `warmup + runs` times and returns the median of the timed runs.
fn time<F: FnMut() -> Result<(), BenchError>>(
    settings: &BenchSettings,
    device: &Device,
    mut f: F,
) -> Result<f64, BenchError> {
    let mut times = Vec::with_capacity(settings.runs);
    for i in 0..settings.warmup + settings.runs {
        let start = Instant::now();
        f()?;
        let _ = device.sync();
        if i >= settings.warmup {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    Ok(median(times))
}

// ANCHOR: run_case
pub fn run_case(case: &BenchCase, settings: &BenchSettings) -> Result<BenchResult, BenchError> {
    let device = settings.backend.device(true)?;
    device.seed(0);
    let model = case.model.init(&device)?;
    let episode = synthetic_episode(case.shots, case.image_size, &device)?;
    reset_peak_rss();

    let train_step_s = time(settings, &device, || {
        let out = model.forward(&episode, Phase::Train)?;
        let loss = out.losses.ok_or(BenchError::NoLoss)?.total;
        let _gradients = loss.clone().backward();
        let value = loss.into_scalar::<f32>();
        if value.is_finite() {
            Ok(())
        } else {
            Err(BenchError::NonFinite(value))
        }
    })?;

    let inference_model = model.valid();
    let plain = settings.backend.device(false)?;
    let plain_episode = synthetic_episode(case.shots, case.image_size, &plain)?;
    let inference_s = time(settings, &plain, || {
        let out = inference_model.forward(&plain_episode, Phase::Infer)?;
        let _ = out.query_probabilities.into_data();
        Ok(())
    })?;

    // Read before the breakdown, whose extra passes would add their own peaks.
    let peak_rss_mib = peak_rss_mib();
    let mut breakdown = Vec::new();
    if settings.breakdown {
        let images = burn::tensor::Tensor::cat(
            vec![episode.support_images.clone(), episode.query_image.clone()],
            0,
        );
        let levels = case.model.pyramid.levels.clone();
        let backbone_forward = time(settings, &device, || {
            let _ = model.backbone.forward(images.clone(), &levels);
            Ok(())
        })?;
        let backbone_step = time(settings, &device, || {
            let outs = model.backbone.forward(images.clone(), &levels);
            let total = outs.into_iter().map(|o| o.mean()).reduce(|a, b| a + b);
            if let Some(t) = total {
                let _ = t.backward();
            }
            Ok(())
        })?;
        let features = model.features(images.clone()).detach().require_grad();
        let [_, _, h, w] = features.dims();
        let upsample_step = time(settings, &device, || {
            let up = interpolate(
                features.clone().slice([0..1, 0..2, 0..h, 0..w]),
                bilinear_to([case.image_size; 2]),
            );
            let labels = episode.support_masks.clone().slice_dim(0, 0..1);
            let _ = segmentation_cross_entropy(up, labels).backward();
            Ok(())
        })?;
        // Inference split where evaluation can share work: the episode's features (backbone +
        // pyramid, shared by every IQI setting of a model) and the head (prototypes, similarity,
        // support recovery, IQI, the probabilities read back).
        let inference_features = time(settings, &plain, || {
            let _ = inference_model.episode_features(&plain_episode).into_data();
            Ok(())
        })?;
        let features = inference_model.episode_features(&plain_episode);
        let inference_head = time(settings, &plain, || {
            let out = inference_model.head(features.clone(), &plain_episode, Phase::Infer)?;
            let _ = out.query_probabilities.into_data();
            Ok(())
        })?;
        // The optimizer: SGD with momentum and weight decay over every parameter, once per step
        // (lr 0: the model stays the same, the work does not).
        let optimizer_step = {
            use burn::optim::GradientsParams;
            let mut optimizer =
                crate::train::TrainConfig::preset(case.model.clone(), Profile::Embedded)
                    .optimizer()
                    .init();
            let mut current = model.clone();
            let mut times = Vec::with_capacity(settings.runs);
            for i in 0..settings.warmup + settings.runs {
                let out = current.forward(&episode, Phase::Train)?;
                let loss = out.losses.ok_or(BenchError::NoLoss)?.total;
                let grads = GradientsParams::from_grads(loss.backward(), &current);
                let started = Instant::now();
                current = optimizer.step(0.0, current, grads);
                let _ = device.sync();
                if i >= settings.warmup {
                    times.push(started.elapsed().as_secs_f64());
                }
            }
            median(times)
        };
        breakdown = vec![
            (
                "inference: episode features (backbone + pyramid)".to_string(),
                inference_features,
            ),
            (
                "inference: head (prototypes, similarity, IQI)".to_string(),
                inference_head,
            ),
            (
                "optimizer step (SGD, momentum, weight decay)".to_string(),
                optimizer_step,
            ),
            ("backbone forward".to_string(), backbone_forward),
            ("backbone forward+backward".to_string(), backbone_step),
            (
                "logit upsampling + CE forward+backward (one map)".to_string(),
                upsample_step,
            ),
            (
                "rest of step (pyramid, prototypes, similarity, losses)".to_string(),
                (train_step_s - backbone_step).max(0.0),
            ),
        ];
    }

    Ok(BenchResult {
        name: case.name.clone(),
        backend: settings.backend.name(),
        image_size: case.image_size,
        shots: case.shots,
        parameters: model.num_params(),
        train_step_s,
        inference_s,
        peak_rss_mib,
        breakdown,
    })
}
// ANCHOR_END: run_case

/// Resets the kernel's peak-RSS counter (Linux: writing 5 to clear_refs); a no-op elsewhere.
pub(crate) fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident set size (VmHWM) in MiB, where the OS reports it.
pub(crate) fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

// ANCHOR: conv_shapes
/// One convolution of the paper's ResNet-50 (v1, output stride 8) at 417 px on a 1-shot
/// episode, so batch 2 (support and query).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ConvShape {
    pub name: &'static str,
    /// [batch, channels in, height, width]
    pub input: [usize; 4],
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub dilation: usize,
}

impl ConvShape {
    fn padding(&self) -> usize {
        self.dilation * (self.kernel - 1) / 2
    }

    fn output_size(&self) -> usize {
        let [_, _, h, _] = self.input;
        (h + 2 * self.padding() - self.dilation * (self.kernel - 1) - 1) / self.stride + 1
    }

    /// Multiply-adds of the forward pass, times two. Each of the two gradients costs the same.
    pub fn gflop(&self) -> f64 {
        let [n, c, _, _] = self.input;
        let o = self.output_size();
        2.0 * (n * c * self.out_channels * self.kernel * self.kernel * o * o) as f64 / 1e9
    }
}

/// The convolution shapes of ResNet-50 at 417 px that `bench --breakdown` times one by one.
pub fn resnet50_conv_shapes() -> Vec<ConvShape> {
    let shape = |name, input, out_channels, kernel, stride, dilation| ConvShape {
        name,
        input,
        out_channels,
        kernel,
        stride,
        dilation,
    };
    vec![
        shape("stem 7x7/2, 3->64", [2, 3, 417, 417], 64, 7, 2, 1),
        shape("layer1 1x1, 64->256", [2, 64, 105, 105], 256, 1, 1, 1),
        shape("layer1 3x3, 64->64", [2, 64, 105, 105], 64, 3, 1, 1),
        shape("layer2 1x1/2, 256->128", [2, 256, 105, 105], 128, 1, 2, 1),
        shape("layer3 1x1, 1024->256", [2, 1024, 53, 53], 256, 1, 1, 1),
        shape("layer3 3x3 dil 2, 256->256", [2, 256, 53, 53], 256, 3, 1, 2),
        shape("layer4 3x3 dil 4, 512->512", [2, 512, 53, 53], 512, 3, 1, 4),
    ]
}

/// Median seconds of one convolution's forward pass and of each of its two gradients, computed
/// by the backend's own ops (the ones autodiff calls), without the autodiff bookkeeping.
#[derive(Debug, Clone, Serialize)]
pub struct ConvTiming {
    pub shape: ConvShape,
    pub forward_s: f64,
    pub input_grad_s: f64,
    pub weight_grad_s: f64,
}

pub fn time_conv_shape(
    shape: &ConvShape,
    settings: &BenchSettings,
) -> Result<ConvTiming, BenchError> {
    use burn::tensor::Tensor;
    use burn::tensor::module::{conv_transpose2d, conv2d, conv2d_weight_backward};
    use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};

    let device = settings.backend.device(false)?;
    let [n, c, h, _] = shape.input;
    let (k, s, d, p) = (shape.kernel, shape.stride, shape.dilation, shape.padding());
    let o = shape.output_size();
    let smooth = |len: usize, phase: f32| -> Vec<f32> {
        (0..len).map(|i| (i as f32 * 0.013 + phase).sin()).collect()
    };
    let x = Tensor::<4>::from_data(
        burn::tensor::TensorData::new(smooth(n * c * h * h, 0.0), shape.input),
        &device,
    );
    let weight_dims = [shape.out_channels, c, k, k];
    let weight = Tensor::<4>::from_data(
        burn::tensor::TensorData::new(smooth(weight_dims.iter().product(), 1.0), weight_dims),
        &device,
    );
    let out_dims = [n, shape.out_channels, o, o];
    let grad = Tensor::<4>::from_data(
        burn::tensor::TensorData::new(smooth(out_dims.iter().product(), 2.0), out_dims),
        &device,
    );
    let options = ConvOptions::new([s, s], [p, p], [d, d], 1);
    // The input gradient is the transposed convolution Burn's default backward runs.
    let padding_out = h + 2 * p - ((o - 1) * s + d * (k - 1) + 1);
    let transposed = ConvTransposeOptions::new([s, s], [p, p], [padding_out; 2], [d, d], 1);
    let sync = |t: Tensor<4>| {
        let _ = t.into_data();
        Ok(())
    };
    let forward_s = time(settings, &device, || {
        sync(conv2d(x.clone(), weight.clone(), None, options.clone()))
    })?;
    let input_grad_s = time(settings, &device, || {
        sync(conv_transpose2d(
            grad.clone(),
            weight.clone(),
            None,
            transposed.clone(),
        ))
    })?;
    let weight_grad_s = time(settings, &device, || {
        sync(conv2d_weight_backward(
            x.clone(),
            weight.clone(),
            grad.clone(),
            options.clone(),
        ))
    })?;
    Ok(ConvTiming {
        shape: *shape,
        forward_s,
        input_grad_s,
        weight_grad_s,
    })
}
// ANCHOR_END: conv_shapes
