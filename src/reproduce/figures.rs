//! Figures: the Runner steps that gather the data of each figure and hand it to
//! `crate::figures` to draw.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, ensure};
use burn::tensor::module::interpolate;

use super::config::Reproduction;
use super::{Evaluation, Runner};
use crate::data::transforms::normalize;
use crate::data::{EpisodeSpec, Episodes, Normalization, Split, Transform};
use crate::figures::{
    BoundSeries, Curve, Fig1Row, Picture, ScoreSample, draw_bound, draw_curves, draw_fig1,
    draw_score_histograms,
};
use crate::metrics::binary_counts;
use crate::model::fidelity::similarity;
use crate::model::loss::predicted_mask;
use crate::model::prototype::masked_average_pool;
use crate::model::pyramid::bilinear_to;
use crate::model::{EpisodeTensors, Phase, SrpNet};
use crate::train::TrainConfig;

// ANCHOR: figures
impl Runner {
    /// A one-line caption: what produced the figure.
    fn caption(&self, r: &Reproduction) -> String {
        let b = self.budget(r);
        format!(
            "srpnet {} ({}), {}, {} profile, {} steps/model, {} episodes x {} seeds, backend {}",
            env!("CARGO_PKG_VERSION"),
            crate::experiment::git_commit(),
            self.data.label(),
            format!("{:?}", self.profile).to_lowercase(),
            b.train_steps,
            b.eval_episodes,
            b.eval_seeds.len(),
            self.options.backend.name()
        )
    }

    /// The loss terms of every method's fold-0 run, from its CSV log.
    pub(super) fn training_curves(
        &self,
        r: &Reproduction,
        evals: &[Evaluation],
    ) -> Result<Vec<PathBuf>> {
        let mut curves = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for e in evals.iter().filter(|e| e.fold == r.folds[0]) {
            if !seen.insert(e.run.clone()) {
                continue;
            }
            let log = e.run.join("train-log.csv");
            let mut reader = csv::Reader::from_path(&log)
                .with_context(|| format!("reading {}", log.display()))?;
            let mut terms: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
            for row in reader.records() {
                let row = row.with_context(|| format!("a malformed row in {}", log.display()))?;
                let step: f64 = row[0].parse().unwrap_or(f64::NAN);
                for (col, name) in [(3, "L_que"), (4, "L_sup"), (5, "L_PAR")] {
                    if let Ok(v) = row[col].parse::<f64>() {
                        terms.entry(name).or_default().push((step, v));
                    }
                }
            }
            // One episode's loss is noisy: draw the mean of a sliding window of logged steps.
            const WINDOW: usize = 10;
            for (name, points) in terms {
                let smooth = (0..points.len())
                    .map(|i| {
                        let w = &points[i.saturating_sub(WINDOW - 1)..=i];
                        (
                            points[i].0,
                            w.iter().map(|p| p.1).sum::<f64>() / w.len() as f64,
                        )
                    })
                    .collect();
                curves.push(Curve {
                    label: format!("{} {name}", e.method),
                    points: smooth,
                });
            }
        }
        let stem = self.paths.figures.join(format!("{}-training-curves", r.id));
        Ok(draw_curves(
            &curves,
            &format!(
                "Training losses, fold {}, {}",
                r.folds[0],
                self.data.label()
            ),
            "cross-entropy (nats), mean of the last 10 logged steps",
            &self.caption(r),
            &stem,
        )?)
    }

    /// Support-recovery IoU against query IoU per episode, and the score distributions.
    pub(super) fn fig_bound(&mut self, r: &Reproduction) -> Result<Vec<PathBuf>> {
        let evals = self.evaluations(r)?;
        let series: Vec<BoundSeries> = r
            .methods
            .iter()
            .map(|m| BoundSeries {
                label: m.name.clone(),
                points: evals
                    .iter()
                    .filter(|e| e.method == m.name && e.shots == r.shots[0])
                    .flat_map(|e| e.report.episodes.iter())
                    .filter_map(|ep| Some((ep.support_iou?, ep.query_iou?)))
                    .collect(),
            })
            .collect();
        let mut written = draw_bound(
            &series,
            &format!(
                "Support recovery bounds query quality ({}-shot, {})",
                r.shots[0],
                self.data.label()
            ),
            &self.caption(r),
            &self.paths.figures.join(&r.id),
        )?;
        let mut samples = Vec::new();
        for method in &r.methods {
            let (model, config, _) = self.trained(r, method, r.folds[0])?;
            samples.push(self.scores(&method.name, &model, &config, r)?);
        }
        written.extend(draw_score_histograms(
            &samples,
            "Similarity of query pixels to the foreground prototype",
            &self.caption(r),
            &self.paths.figures.join(format!("{}-scores", r.id)),
        )?);
        Ok(written)
    }

    /// The similarity of the query pixels of a few test episodes to the foreground prototype,
    /// split by their true label.
    fn scores(
        &self,
        name: &str,
        model: &SrpNet,
        config: &TrainConfig,
        r: &Reproduction,
    ) -> Result<ScoreSample> {
        let device = self.options.backend.device(false)?;
        let bench = config.data.open(config.image_size, &[Split::Test])?;
        let spec = EpisodeSpec {
            fold: r.folds[0],
            split: Split::Test,
            shots: 1,
            seed: 1234,
        };
        let stream = Episodes::new(
            bench.as_ref(),
            spec,
            Transform::eval(config.image_size, config.normalization),
        );
        let (mut fg, mut bg) = (Vec::new(), Vec::new());
        for episode in stream.take(20) {
            let episode = episode?;
            let t = EpisodeTensors::from_episode(&episode, &device)?;
            let features = model.features(burn::tensor::Tensor::cat(
                vec![t.support_images.clone(), t.query_image.clone()],
                0,
            ));
            let [_, c, h, w] = features.dims();
            let support = features.clone().slice([0..1, 0..c, 0..h, 0..w]);
            let query = features.slice([1..2, 0..c, 0..h, 0..w]);
            let Ok(prototypes) =
                masked_average_pool(support, t.support_masks.clone(), model.config.pooling)
            else {
                continue;
            };
            let sim = similarity(query, &prototypes, model.config.metric.metric);
            let sim = interpolate(sim, bilinear_to(t.image_size()));
            let values = sim
                .slice([0..1, 1..2])
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            for (v, &label) in values.iter().zip(&episode.query.mask.data) {
                match label {
                    1 => fg.push(*v),
                    0 => bg.push(*v),
                    _ => {}
                }
            }
        }
        let metric = format!("{:?}", model.config.metric.metric).to_lowercase();
        Ok(ScoreSample {
            label: format!("{metric} ({name})"),
            foreground: fg,
            background: bg,
        })
    }

    /// Rows of test episodes: supports recovered by each method's prototypes, query predictions.
    pub(super) fn fig1(&mut self, r: &Reproduction) -> Result<Vec<PathBuf>> {
        ensure!(
            r.methods.len() == 2,
            "{}: fig1 compares exactly two methods (baseline, SRPNet)",
            r.id
        );
        let fold = r.folds[0];
        let (baseline, config, _) = self.trained(r, &r.methods[0], fold)?;
        let (srpnet, _, _) = self.trained(r, &r.methods[1], fold)?;
        let device = self.options.backend.device(false)?;
        let bench = config.data.open(config.image_size, &[Split::Test])?;
        let spec = EpisodeSpec {
            fold,
            split: Split::Test,
            shots: 1,
            seed: 1234,
        };
        // Pictures unnormalised; the models get them normalised below.
        let stream = Episodes::new(
            bench.as_ref(),
            spec,
            Transform::eval(config.image_size, Normalization::None),
        );
        let mut rows = Vec::new();
        for episode in stream.take(4 * r.rows) {
            if rows.len() == r.rows {
                break;
            }
            let raw = episode?;
            let mut normalised = raw.clone();
            for shot in normalised
                .supports
                .iter_mut()
                .chain(std::iter::once(&mut normalised.query))
            {
                shot.image = normalize(shot.image.clone(), config.normalization);
            }
            let t = EpisodeTensors::from_episode(&normalised, &device)?;
            let (Ok(b), Ok(s)) = (
                baseline.forward(&t, Phase::Infer),
                srpnet.forward(&t, Phase::Infer),
            ) else {
                continue;
            };
            let picture = |img: &crate::data::Image| Picture {
                height: img.height,
                width: img.width,
                rgb: img.to_rgb8(),
            };
            let support_truth = raw.supports[0].mask.data.clone();
            let query_truth = raw.query.mask.data.clone();
            let iou = |pred: &[u8], truth: &[u8]| binary_counts(pred, truth).0.iou().unwrap_or(1.0);
            let sb = predicted_mask(b.support_logits)?;
            let ss = predicted_mask(s.support_logits)?;
            let qb = predicted_mask(b.query_probabilities)?;
            let qs = predicted_mask(s.query_probabilities)?;
            rows.push(Fig1Row {
                class_name: raw.class_name.clone(),
                support: picture(&raw.supports[0].image),
                support_baseline_iou: iou(&sb, &support_truth),
                support_srp_iou: iou(&ss, &support_truth),
                support_baseline: sb,
                support_srp: ss,
                support_truth,
                query: picture(&raw.query.image),
                query_baseline_iou: iou(&qb, &query_truth),
                query_srpnet_iou: iou(&qs, &query_truth),
                query_baseline: qb,
                query_srpnet: qs,
                query_truth,
            });
            self.bar.inc(1);
        }
        ensure!(!rows.is_empty(), "{}: no test episode could be drawn", r.id);
        Ok(draw_fig1(
            &rows,
            &format!(
                "Support recovery and query prediction: {} vs {} (fold {fold}, {})",
                r.methods[0].name,
                r.methods[1].name,
                self.data.label()
            ),
            &self.caption(r),
            &self.paths.figures.join(&r.id),
        )?)
    }
}
// ANCHOR_END: figures
