//! A fixed-feature baseline and a throughput probe, to measure how hard a benchmark is and how
//! cheap its episodes are, with no network at all.

use std::time::Instant;

use super::episode::{EpisodeSpec, Image, Mask, Split};
use super::error::DataError;
use super::folds::NUM_FOLDS;
use super::sampler::{Benchmark, Episodes};
use super::transforms::Transform;
use crate::metrics::Evaluator;

const DIM: usize = 8;

// ANCHOR: baseline_features
/// Hand-made per-pixel features: centred colour (3), local 5x5 standard deviation of each colour
/// channel (3) and the luminance gradient's absolute x and y parts (2). No learning at all.
pub fn pixel_features(image: &Image) -> Vec<[f32; DIM]> {
    let (h, w) = image.size();
    let plane = h * w;
    let ch = |c: usize, y: usize, x: usize| image.data[c * plane + y * w + x] / 255.0;
    let mut out = vec![[0.0f32; DIM]; plane];
    for y in 0..h {
        for x in 0..w {
            let f = &mut out[y * w + x];
            for c in 0..3 {
                f[c] = ch(c, y, x) - 0.5;
                let (mut s, mut s2, mut n) = (0.0, 0.0, 0.0);
                for yy in y.saturating_sub(2)..(y + 3).min(h) {
                    for xx in x.saturating_sub(2)..(x + 3).min(w) {
                        let v = ch(c, yy, xx);
                        s += v;
                        s2 += v * v;
                        n += 1.0;
                    }
                }
                f[3 + c] = ((s2 / n - (s / n) * (s / n)).max(0.0)).sqrt() * 2.0;
            }
            let lum = |y: usize, x: usize| (ch(0, y, x) + ch(1, y, x) + ch(2, y, x)) / 3.0;
            f[6] = (lum(y, (x + 1).min(w - 1)) - lum(y, x.saturating_sub(1))).abs() * 2.0;
            f[7] = (lum((y + 1).min(h - 1), x) - lum(y.saturating_sub(1), x)).abs() * 2.0;
        }
    }
    out
}
// ANCHOR_END: baseline_features

fn cosine(a: &[f32; DIM], b: &[f32; DIM]) -> f32 {
    let (mut d, mut na, mut nb) = (0.0, 0.0, 0.0);
    for i in 0..DIM {
        d += a[i] * b[i];
        na += a[i] * a[i];
        nb += b[i] * b[i];
    }
    d / (na.sqrt() * nb.sqrt() + 1e-8)
}

/// Masked average pooling of features under `mask == value` (ignore pixels excluded).
fn masked_average(feats: &[[f32; DIM]], masks: &[&Mask], value: u8) -> [f32; DIM] {
    let mut p = [0.0f32; DIM];
    let mut n = 0.0f32;
    for (f, m) in feats.chunks(masks[0].data.len()).zip(masks) {
        for (fi, &mi) in f.iter().zip(&m.data) {
            if mi == value {
                for i in 0..DIM {
                    p[i] += fi[i];
                }
                n += 1.0;
            }
        }
    }
    p.map(|v| v / n.max(1.0))
}

/// mIoU per fold (and their mean) of the fixed-feature baseline and of predicting everything as
/// foreground.
#[derive(Clone, Debug)]
pub struct BaselineReport {
    pub benchmark: String,
    pub shots: usize,
    pub episodes_per_fold: usize,
    pub seed: u64,
    pub fixed_feature_miou: Vec<f64>,
    pub all_foreground_miou: Vec<f64>,
    /// FB-IoU of predicting background everywhere: the floor under every FB-IoU of the tables.
    pub all_background_fb_iou: Vec<f64>,
}

impl BaselineReport {
    pub fn mean(v: &[f64]) -> f64 {
        v.iter().sum::<f64>() / v.len().max(1) as f64
    }
}

// ANCHOR: baseline
/// The fixed-feature baseline: MAP prototypes of [`pixel_features`] under the support masks
/// (foreground and background), then every query pixel goes to the prototype with the larger
/// cosine. Test episodes of every fold, class-wise mIoU.
pub fn fixed_feature_baseline<B: Benchmark + ?Sized>(
    bench: &B,
    shots: usize,
    episodes_per_fold: usize,
    seed: u64,
    transform: &Transform,
) -> Result<BaselineReport, DataError> {
    let (mut fixed, mut all_fg, mut all_bg) = (Vec::new(), Vec::new(), Vec::new());
    for fold in 0..NUM_FOLDS {
        let spec = EpisodeSpec {
            fold,
            split: Split::Test,
            shots,
            seed,
        };
        let (mut acc, mut acc_fg, mut acc_bg) = (
            Evaluator::default(),
            Evaluator::default(),
            Evaluator::default(),
        );
        for ep in Episodes::new(bench, spec, transform.clone()).take(episodes_per_fold) {
            let ep = ep?;
            let feats: Vec<[f32; DIM]> = ep
                .supports
                .iter()
                .flat_map(|s| pixel_features(&s.image))
                .collect();
            let masks: Vec<&Mask> = ep.supports.iter().map(|s| &s.mask).collect();
            let (fg, bg) = (
                masked_average(&feats, &masks, 1),
                masked_average(&feats, &masks, 0),
            );
            let q = pixel_features(&ep.query.image);
            let pred: Vec<u8> = q
                .iter()
                .map(|f| u8::from(cosine(f, &fg) > cosine(f, &bg)))
                .collect();
            let _ = acc.add(ep.class_id, &pred, &ep.query.mask.data);
            let _ = acc_fg.add(ep.class_id, &vec![1; pred.len()], &ep.query.mask.data);
            let _ = acc_bg.add(ep.class_id, &vec![0; pred.len()], &ep.query.mask.data);
        }
        fixed.push(100.0 * acc.miou().unwrap_or(0.0));
        all_fg.push(100.0 * acc_fg.miou().unwrap_or(0.0));
        all_bg.push(100.0 * acc_bg.fb_iou().unwrap_or(0.0));
    }
    Ok(BaselineReport {
        benchmark: bench.name(),
        shots,
        episodes_per_fold,
        seed,
        fixed_feature_miou: fixed,
        all_foreground_miou: all_fg,
        all_background_fb_iou: all_bg,
    })
}
// ANCHOR_END: baseline

/// Episodes per second of `bench` (planning, loading or generating, and transforming), over
/// `count` episodes of `spec`.
pub fn episodes_per_second<B: Benchmark + ?Sized>(
    bench: &B,
    spec: EpisodeSpec,
    transform: &Transform,
    count: usize,
) -> Result<f64, DataError> {
    let start = Instant::now();
    for ep in Episodes::new(bench, spec, transform.clone()).take(count) {
        ep?;
    }
    Ok(count as f64 / start.elapsed().as_secs_f64().max(1e-9))
}
