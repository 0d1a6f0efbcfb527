//! Figures: the Runner steps that gather the data of each figure and hand it to
//! `crate::figures` to draw.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use burn::tensor::module::interpolate;

use super::config::Reproduction;
use super::{Evaluation, Runner};
use crate::data::transforms::normalize;
use crate::data::{EpisodeSpec, Episodes, Normalization, Split, Transform};
use crate::figures::{
    BoundSeries, Curve, CurvePanel, Fig1Row, Picture, ScoreSample, draw_bound, draw_curves,
    draw_fig1, draw_score_margins, quantile_rows, selection_rule,
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

    /// The loss terms of every method's run (first training seed), one panel per fold, from the
    /// runs' CSV logs, with the learning-rate drops of the schedule that ran.
    pub(super) fn training_curves(
        &self,
        r: &Reproduction,
        evals: &[Evaluation],
    ) -> Result<Vec<PathBuf>> {
        let mut panels = Vec::new();
        let mut drops = std::collections::BTreeSet::new();
        for &fold in &r.folds {
            let mut curves = Vec::new();
            let mut seen = std::collections::HashSet::new();
            let seed = self.budget(r).train_seeds[0];
            for e in evals
                .iter()
                .filter(|e| e.fold == fold && e.train_seed == seed)
            {
                if !seen.insert(e.run.clone()) {
                    continue;
                }
                if let Some(method) = r.methods.iter().find(|m| m.name == e.method) {
                    let config = self.train_config(r, method, fold, seed)?;
                    drops.extend(config.lr_milestones.iter().copied());
                }
                for (term, points) in loss_terms(&e.run.join("train-log.csv"))? {
                    curves.push(Curve {
                        method: e.method.clone(),
                        term: term.to_string(),
                        points,
                    });
                }
            }
            panels.push(CurvePanel {
                label: format!("fold {fold}"),
                curves,
            });
        }
        let drops: Vec<f64> = drops.into_iter().map(|s| s as f64).collect();
        let stem = self.paths.figures.join(format!("{}-training-curves", r.id));
        Ok(draw_curves(
            &panels,
            &drops,
            &format!("Training losses per fold, {}", self.data.label()),
            "cross-entropy (nats)",
            &format!(
                "One training run per method and fold (the first training seed). Each line: the mean of the last {LOSS_WINDOW} logged steps. {}",
                self.caption(r)
            ),
            &stem,
        )?)
    }

    /// Support-recovery IoU against query IoU per episode, and the score margins of the matched
    /// metric ablation (`score_methods`: models that differ only in the metric).
    pub(super) fn fig_bound(&mut self, r: &Reproduction) -> Result<Vec<PathBuf>> {
        let evals = self.evaluations(r)?;
        let seeds = self.trained_seeds(r, &self.budget(r)).to_vec();
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
                "{}-shot, folds {:?}, training seed(s) {:?}, {}",
                r.shots[0],
                r.folds,
                seeds,
                self.data.label()
            ),
            &self.caption(r),
            &self.paths.figures.join(&r.id),
        )?;
        if r.score_methods.is_empty() {
            return Ok(written);
        }
        let mut samples = Vec::new();
        for method in &r.score_methods {
            let (model, config, _) = self.trained(r, method, r.folds[0])?;
            samples.push(self.score_margins(&method.name, &model, &config, r)?);
        }
        let names: Vec<&str> = r.score_methods.iter().map(|m| m.name.as_str()).collect();
        written.extend(draw_score_margins(
            &samples,
            &format!(
                "Foreground - background score margin of query pixels: {} (fold {}, same training, only the metric differs)",
                names.join(" vs "),
                r.folds[0]
            ),
            &format!(
                "{SCORE_EPISODES} test episodes (seed 1234), every labelled query pixel. {}",
                self.caption(r)
            ),
            &self.paths.figures.join(format!("{}-scores", r.id)),
        )?);
        Ok(written)
    }

    /// Per query pixel of the first test episodes: similarity to the foreground prototype minus
    /// similarity to the background prototype, split by the pixel's true label.
    fn score_margins(
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
        for episode in stream.take(SCORE_EPISODES) {
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
            let margin = sim.clone().slice([0..1, 1..2]) - sim.slice([0..1, 0..1]);
            let values = margin
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
        Ok(ScoreSample {
            label: name.to_string(),
            foreground: fg,
            background: bg,
        })
    }

    /// Fig. 1: the first `FIG1_CANDIDATES_PER_ROW * rows` test episodes are run through both
    /// models; the rows are the episodes at the quantiles of SRP's support-recovery gain
    /// (`quantile_rows`), a rule the caption states.
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
        let candidates = FIG1_CANDIDATES_PER_ROW * r.rows;
        let mut rows = Vec::new();
        for episode in stream.take(candidates) {
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
        let gains: Vec<f64> = rows
            .iter()
            .map(|row| row.support_srp_iou - row.support_baseline_iou)
            .collect();
        let picked: Vec<Fig1Row> = quantile_rows(&gains, r.rows)
            .into_iter()
            .map(|i| rows[i].clone())
            .collect();
        Ok(draw_fig1(
            &picked,
            (&r.methods[0].name, &r.methods[1].name),
            &selection_rule(rows.len(), r.rows, fold),
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

/// Test episodes whose query pixels make the score-margin figure.
const SCORE_EPISODES: usize = 20;
/// Fig. 1 picks its rows among this many episodes per row.
const FIG1_CANDIDATES_PER_ROW: usize = 10;
/// Training curves show the mean of a sliding window of this many logged steps (one episode's
/// loss is noisy).
const LOSS_WINDOW: usize = 10;

/// A loss term's name and its (step, smoothed value) points.
type LossTerm = (&'static str, Vec<(f64, f64)>);

/// The loss terms of a run's CSV log (`step, ..., L_que, L_sup, L_PAR`), in that order,
/// smoothed over `LOSS_WINDOW` logged steps; terms the run did not log are left out.
fn loss_terms(log: &Path) -> Result<Vec<LossTerm>> {
    let mut reader =
        csv::Reader::from_path(log).with_context(|| format!("reading {}", log.display()))?;
    let mut terms: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    for row in reader.records() {
        let row = row.with_context(|| format!("a malformed row in {}", log.display()))?;
        let step: f64 = row[0].parse().unwrap_or(f64::NAN);
        for (col, name) in [(3, "L_que"), (4, "L_sup"), (5, "L_PAR")] {
            if let Some(v) = row.get(col).and_then(|v| v.parse::<f64>().ok()) {
                terms.entry(name).or_default().push((step, v));
            }
        }
    }
    let mut terms: Vec<LossTerm> = ["L_que", "L_sup", "L_PAR"]
        .into_iter()
        .filter_map(|name| terms.remove(name).map(|points| (name, points)))
        .collect();
    for (_, points) in &mut terms {
        let smooth = (0..points.len())
            .map(|i| {
                let w = &points[i.saturating_sub(LOSS_WINDOW - 1)..=i];
                (
                    points[i].0,
                    w.iter().map(|p| p.1).sum::<f64>() / w.len() as f64,
                )
            })
            .collect();
        *points = smooth;
    }
    Ok(terms)
}
// ANCHOR_END: figures

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reproduce::config::{MethodSpec, read};

    #[test]
    fn the_score_models_are_table3s_rows_that_differ_only_in_the_metric() {
        let bound = read("fig-bound").unwrap();
        let table3 = read("table3").unwrap();
        assert_eq!(bound.score_methods.len(), 2);
        for m in &bound.score_methods {
            let row = table3
                .methods
                .iter()
                .find(|t| t.name == m.name)
                .unwrap_or_else(|| panic!("table3 has no row {:?}", m.name));
            // Same preset and overrides: the same training config, hence the same cached run.
            assert_eq!(format!("{:?}", row.preset), format!("{:?}", m.preset));
            assert_eq!(row.train, m.train, "{}", m.name);
            assert_eq!(row.eval, m.eval, "{}", m.name);
        }
        let without_metric = |m: &MethodSpec| {
            let mut t = m.train.clone();
            t.remove("metric");
            t
        };
        let (a, b) = (&bound.score_methods[0], &bound.score_methods[1]);
        assert_eq!(
            without_metric(a),
            without_metric(b),
            "they differ in more than the metric"
        );
        assert_ne!(
            a.train.get("metric"),
            b.train.get("metric"),
            "they have the same metric"
        );
    }

    #[test]
    fn loss_terms_are_smoothed_over_the_window() {
        let dir = std::env::temp_dir().join(format!("srpnet-loss-terms-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("train-log.csv");
        let mut text = String::from("step,lr,loss,L_que,L_sup,L_PAR\n");
        for step in 0..12 {
            text.push_str(&format!("{step},0.1,0,{step},1,\n"));
        }
        std::fs::write(&log, text).unwrap();
        let terms = loss_terms(&log).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let names: Vec<&str> = terms.iter().map(|t| t.0).collect();
        assert_eq!(names, ["L_que", "L_sup"], "an empty column is not a term");
        let que = &terms[0].1;
        assert_eq!(que[0], (0.0, 0.0));
        // Step 11: the mean of steps 2..=11.
        assert_eq!(que[11], (11.0, 6.5));
        assert!(terms[1].1.iter().all(|p| p.1 == 1.0));
    }
}
