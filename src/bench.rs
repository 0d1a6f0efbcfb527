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
use crate::model::{EpisodeTensors, ModelConfig, ModelError, Phase};

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
        breakdown = vec![
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
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident set size (VmHWM) in MiB, where the OS reports it.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
