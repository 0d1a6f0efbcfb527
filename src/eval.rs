//! Evaluation: 1-way K-shot episodes of a fold's test classes, over several seeds; mIoU (per
//! class, accumulated), FB-IoU, and the support-recovery IoU of every episode beside its query
//! IoU.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use burn::module::Module;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::data::images::{overlay, save_rgb, side_by_side};
use crate::data::transforms::resize_plane;
use crate::data::{
    Benchmark, DataError, Episode, EpisodeSpec, Episodes, Image, Mask, Normalization, Split,
    Transform,
};
use crate::experiment::{Provenance, write_atomic};
use crate::metrics::{Counts, Evaluator, binary_counts, mean_std};
use crate::model::loss::predicted_mask;
use crate::model::{EpisodeTensors, ModelConfig, ModelError, Phase, SrpNet, host_values};

// ANCHOR: protocol
/// How many episodes and seeds an evaluation uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum EvalProtocol {
    /// PANet's: 1,000 episodes for each of 5 seeds (1234 + run).
    Panet,
    /// A quick look: 100 episodes for each of 2 seeds.
    Quick,
}

impl EvalProtocol {
    pub fn episodes(self) -> u64 {
        match self {
            EvalProtocol::Panet => 1_000,
            EvalProtocol::Quick => 100,
        }
    }

    pub fn seeds(self) -> Vec<u64> {
        let runs = match self {
            EvalProtocol::Panet => 5,
            EvalProtocol::Quick => 2,
        };
        (0..runs).map(|r| 1234 + r).collect()
    }
}
// ANCHOR_END: protocol

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalSettings {
    pub fold: usize,
    pub shots: usize,
    pub episodes: u64,
    pub seeds: Vec<u64>,
    pub image_size: usize,
    pub normalization: Normalization,
    /// Score each query at its original label size (PFENet's `ori_resize`, HSNet's
    /// `--use_original_imgsize`) instead of the network size. Off by default; left out of the
    /// serialised settings when off, so existing cache keys stay as they were.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub original_size: bool,
}

/// One episode's record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpisodeRecord {
    pub seed: u64,
    pub index: u64,
    pub class_id: u8,
    pub query_iou: Option<f64>,
    pub support_iou: Option<f64>,
    /// The query's foreground and background counts: enough to
    /// recompute the class-accumulated mIoU and FB-IoU of any subset of episodes.
    pub foreground: Counts,
    pub background: Counts,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedResult {
    pub seed: u64,
    pub miou: f64,
    pub miou_episode_wise: f64,
    pub fb_iou: f64,
    /// The support-recovery mIoU: the same metric, computed on the supports recovered by the
    /// prototypes (the upper bound SRP argues for).
    pub support_miou: f64,
    pub class_iou: BTreeMap<u8, f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalReport {
    pub benchmark: String,
    pub fold: usize,
    pub shots: usize,
    pub classes: Vec<(u8, String)>,
    pub seeds: Vec<SeedResult>,
    pub episodes: Vec<EpisodeRecord>,
    /// Episodes left out because a support region was empty at the network size.
    pub skipped_empty_support: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("seed {seed}: no episode gave a defined IoU; the benchmark's test classes are empty")]
    NoEpisodes { seed: u64 },
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

impl EvalSettings {
    /// Where the queries are scored, as the CSV header states it.
    pub fn scored_at(&self) -> String {
        if self.original_size {
            "original label size (predictions upsampled bilinearly)".into()
        } else {
            format!("network size ({0} x {0})", self.image_size)
        }
    }
}

// ANCHOR: evaluate
/// Evaluates `model` (in inference mode, on a device without autodiff) on the test classes of
/// `settings.fold`. `progress` is called after every episode with (done, total).
pub fn evaluate(
    model: &SrpNet,
    benchmark: &dyn Benchmark,
    settings: &EvalSettings,
    progress: impl FnMut(u64, u64),
) -> Result<EvalReport, EvalError> {
    let mut reports = evaluate_many(
        model,
        std::slice::from_ref(&model.config),
        benchmark,
        settings,
        progress,
    )?;
    Ok(reports.remove(0))
}

/// Evaluates one trained model under several inference configs (a table's IQI rows) on the same
/// episodes: each episode's backbone and pyramid features are computed once and every config's
/// head runs on them, so T = 0..5 cost one backbone pass, not six. The configs must share the
/// model's backbone and pyramid (they are the features). One report per config, in order;
/// `progress` is called once per config and episode.
pub fn evaluate_many(
    model: &SrpNet,
    configs: &[ModelConfig],
    benchmark: &dyn Benchmark,
    settings: &EvalSettings,
    mut progress: impl FnMut(u64, u64),
) -> Result<Vec<EvalReport>, EvalError> {
    if let Some(other) = configs
        .iter()
        .find(|c| c.backbone != model.config.backbone || c.pyramid != model.config.pyramid)
    {
        return Err(EvalError::Model(ModelError::config(
            "backbone/pyramid",
            format!("{:?} / {:?}", other.backbone, other.pyramid),
            "an evaluation config may change the head only (IQI, metric, pooling): the \
             backbone and pyramid are the trained model's",
        )));
    }
    let heads: Vec<SrpNet> = configs
        .iter()
        .map(|c| SrpNet {
            config: c.clone(),
            ..model.clone()
        })
        .collect();
    let device = model
        .devices()
        .into_iter()
        .next()
        .unwrap_or_else(burn::tensor::Device::flex);
    let transform = if settings.original_size {
        Transform::eval_original_size(settings.image_size, settings.normalization)
    } else {
        Transform::eval(settings.image_size, settings.normalization)
    };
    let total = settings.episodes * settings.seeds.len() as u64 * heads.len() as u64;
    let mut done = 0;
    let mut records = vec![Vec::new(); heads.len()];
    let mut seeds = vec![Vec::new(); heads.len()];
    let mut skipped = vec![0; heads.len()];
    for &seed in &settings.seeds {
        let spec = EpisodeSpec {
            fold: settings.fold,
            split: Split::Test,
            shots: settings.shots,
            seed,
        };
        let mut query = vec![Evaluator::default(); heads.len()];
        let mut support = vec![Evaluator::default(); heads.len()];
        let stream = Episodes::new(benchmark, spec, transform.clone());
        for episode in stream.take(settings.episodes as usize) {
            let episode = episode?;
            let tensors = EpisodeTensors::from_episode(&episode, &device)?;
            let features = model.episode_features(&tensors);
            for (h, head) in heads.iter().enumerate() {
                done += 1;
                let out = match head.head(features.clone(), &tensors, Phase::Infer) {
                    Ok(out) => out,
                    Err(ModelError::EmptyMask { .. }) => {
                        skipped[h] += 1;
                        progress(done, total);
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                let (predicted, truth) = scored_query(out.query_probabilities, &episode)?;
                let query_iou = query[h].add(episode.class_id, &predicted, truth);
                let (foreground, background) = binary_counts(&predicted, truth);
                let recovered = predicted_mask(out.support_logits)?;
                let truth: Vec<u8> = episode
                    .supports
                    .iter()
                    .flat_map(|s| s.mask.data.iter().copied())
                    .collect();
                let support_iou = support[h].add(episode.class_id, &recovered, &truth);
                records[h].push(EpisodeRecord {
                    seed,
                    index: episode.index,
                    class_id: episode.class_id,
                    query_iou,
                    support_iou,
                    foreground,
                    background,
                });
                progress(done, total);
            }
        }
        for (h, (query, support)) in query.iter().zip(&support).enumerate() {
            let (Some(miou), Some(fb_iou)) = (query.miou(), query.fb_iou()) else {
                return Err(EvalError::NoEpisodes { seed });
            };
            seeds[h].push(SeedResult {
                seed,
                miou,
                miou_episode_wise: query.miou_episode_wise().unwrap_or(f64::NAN),
                fb_iou,
                support_miou: support.miou().unwrap_or(f64::NAN),
                class_iou: query.class_iou(),
            });
        }
    }
    let classes: Vec<(u8, String)> = benchmark
        .classes(settings.fold, Split::Test)
        .into_iter()
        .map(|c| (c, benchmark.class_name(c)))
        .collect();
    Ok(records
        .into_iter()
        .zip(seeds)
        .zip(skipped)
        .map(|((episodes, seeds), skipped)| EvalReport {
            benchmark: benchmark.name(),
            fold: settings.fold,
            shots: settings.shots,
            classes: classes.clone(),
            seeds,
            episodes,
            skipped_empty_support: skipped,
        })
        .collect())
}
// ANCHOR_END: evaluate

// ANCHOR: original_size
/// The query's predicted labels and the labels they are scored against: at the network size,
/// or at the original label size when the transform kept it (`Episode::query_original_mask`).
/// `probabilities` is [1, 2, H, W].
pub fn scored_query(
    probabilities: Tensor<4>,
    episode: &Episode,
) -> Result<(Vec<u8>, &[u8]), ModelError> {
    let Some(original) = &episode.query_original_mask else {
        return Ok((predicted_mask(probabilities)?, &episode.query.mask.data));
    };
    let network = episode.query.mask.size();
    let planes = host_values(probabilities)?;
    let (background, foreground) = planes.split_at(planes.len() / 2);
    let predicted = upsampled_labels(background, foreground, network, original.size());
    Ok((predicted, &original.data))
}

/// Labels at size `to` from the two class probability planes at size `from`: each plane is
/// upsampled bilinearly (as PFENet and HSNet upsample their logits) and the argmax taken
/// (a tie goes to background, as argmax takes the first).
pub fn upsampled_labels(
    background: &[f32],
    foreground: &[f32],
    from: (usize, usize),
    to: (usize, usize),
) -> Vec<u8> {
    let bg = resize_plane(background, from, to);
    let fg = resize_plane(foreground, from, to);
    bg.iter().zip(&fg).map(|(b, f)| u8::from(f > b)).collect()
}
// ANCHOR_END: original_size

// ANCHOR: visualize
/// Writes one picture for each of the first `count` episodes of the first seed, as HSNet's
/// `--visualize`: each support with its mask, then the query with the prediction and the query
/// with its ground truth, all at the original image size. Returns the files written.
pub fn visualize(
    model: &SrpNet,
    benchmark: &dyn Benchmark,
    settings: &EvalSettings,
    count: usize,
    dir: &Path,
) -> Result<Vec<std::path::PathBuf>, EvalError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| EvalError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let device = model
        .devices()
        .into_iter()
        .next()
        .unwrap_or_else(burn::tensor::Device::flex);
    let seed = settings.seeds.first().copied().unwrap_or(0);
    let spec = EpisodeSpec {
        fold: settings.fold,
        split: Split::Test,
        shots: settings.shots,
        seed,
    };
    let transform = Transform::eval(settings.image_size, settings.normalization);
    let mut written = Vec::new();
    for episode in Episodes::new(benchmark, spec, transform).take(count) {
        let episode = episode?;
        let raw = benchmark.episode(&spec, episode.index)?;
        let tensors = EpisodeTensors::from_episode(&episode, &device)?;
        let out = match model.forward(&tensors, Phase::Infer) {
            Ok(out) => out,
            Err(ModelError::EmptyMask { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        let planes = host_values(out.query_probabilities)?;
        let (background, foreground) = planes.split_at(planes.len() / 2);
        let predicted = Mask {
            height: raw.query.mask.height,
            width: raw.query.mask.width,
            data: upsampled_labels(
                background,
                foreground,
                episode.query.mask.size(),
                raw.query.mask.size(),
            ),
        };
        let mut panels: Vec<Image> = raw
            .supports
            .iter()
            .map(|s| overlay(&s.image, &s.mask))
            .collect();
        panels.push(overlay(&raw.query.image, &predicted));
        panels.push(overlay(&raw.query.image, &raw.query.mask));
        let path = dir.join(format!(
            "seed{seed}-episode{:04}-{}.png",
            episode.index,
            episode
                .class_name
                .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        ));
        save_rgb(&path, &side_by_side(&panels))?;
        written.push(path);
    }
    Ok(written)
}
// ANCHOR_END: visualize

impl EvalReport {
    /// (mean, std) over seeds of mIoU, FB-IoU and support-recovery mIoU.
    pub fn summary(&self) -> [(f64, f64); 3] {
        let pick =
            |f: fn(&SeedResult) -> f64| mean_std(&self.seeds.iter().map(f).collect::<Vec<_>>());
        [
            pick(|s| s.miou),
            pick(|s| s.fb_iou),
            pick(|s| s.support_miou),
        ]
    }

    /// A terminal table: per class, per seed, and the mean +- std.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let names: BTreeMap<u8, &str> =
            self.classes.iter().map(|(c, n)| (*c, n.as_str())).collect();
        out += &format!(
            "{} fold {} {}-shot\n",
            self.benchmark, self.fold, self.shots
        );
        out += &format!("{:<8}{:>8}{:>8}{:>10}", "seed", "mIoU", "FB-IoU", "support");
        for (c, _) in &self.classes {
            out += &format!(
                "{:>12}",
                names
                    .get(c)
                    .copied()
                    .unwrap_or("?")
                    .chars()
                    .take(11)
                    .collect::<String>()
            );
        }
        out.push('\n');
        for s in &self.seeds {
            out += &format!(
                "{:<8}{:>8.1}{:>8.1}{:>10.1}",
                s.seed,
                100.0 * s.miou,
                100.0 * s.fb_iou,
                100.0 * s.support_miou
            );
            for (c, _) in &self.classes {
                out += &s
                    .class_iou
                    .get(c)
                    .map_or(format!("{:>12}", "-"), |v| format!("{:>12.1}", 100.0 * v));
            }
            out.push('\n');
        }
        let [(m, ms), (f, fs), (sm, ss)] = self.summary();
        out += &format!(
            "mean    {:>5.1} +- {:.1}   FB-IoU {:.1} +- {:.1}   support-recovery mIoU {:.1} +- {:.1}\n",
            100.0 * m,
            100.0 * ms,
            100.0 * f,
            100.0 * fs,
            100.0 * sm,
            100.0 * ss
        );
        if self.skipped_empty_support > 0 {
            out += &format!(
                "{} episode(s) left out: a support region was empty at the network size\n",
                self.skipped_empty_support
            );
        }
        out
    }

    /// The CSV of every seed and class, under the provenance header.
    pub fn write_csv(&self, path: &Path, provenance: &Provenance) -> Result<(), EvalError> {
        let mut text = provenance.header();
        text += "seed,class_id,class,metric,value\n";
        for s in &self.seeds {
            for (name, v) in [
                ("miou", s.miou),
                ("miou_episode_wise", s.miou_episode_wise),
                ("fb_iou", s.fb_iou),
                ("support_miou", s.support_miou),
            ] {
                text += &format!("{},,,{name},{v:.6}\n", s.seed);
            }
            for (c, v) in &s.class_iou {
                let name = self
                    .classes
                    .iter()
                    .find(|(id, _)| id == c)
                    .map_or("", |(_, n)| n.as_str());
                text += &format!("{},{c},{name},class_iou,{v:.6}\n", s.seed);
            }
        }
        write_atomic(path, text.as_bytes()).map_err(|source| EvalError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The per-episode CSV: query IoU beside support-recovery IoU.
    pub fn write_episodes_csv(
        &self,
        path: &Path,
        provenance: &Provenance,
    ) -> Result<(), EvalError> {
        let mut buf = provenance.header().into_bytes();
        writeln!(buf, "seed,index,class_id,query_iou,support_iou").expect("writing to memory");
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.6}"));
        for e in &self.episodes {
            writeln!(
                buf,
                "{},{},{},{},{}",
                e.seed,
                e.index,
                e.class_id,
                opt(e.query_iou),
                opt(e.support_iou)
            )
            .expect("writing to memory");
        }
        write_atomic(path, &buf).map_err(|source| EvalError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}
