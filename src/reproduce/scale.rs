//! The logit scale fidelity works at, measured: what a cosine row must use to be fidelity's
//! temperature-matched control.

use anyhow::Result;
use burn::tensor::Tensor;

use super::Runner;
use super::config::{Reproduction, merge};
use crate::data::{EpisodeSpec, Episodes, Split, Transform};
use crate::model::EpisodeTensors;
use crate::model::fidelity::{Metric, similarity};
use crate::model::prototype::masked_average_pool;
use crate::stats::{mean, sample_std};

/// Test episodes per fold and training seed of the measurement.
const EPISODES: usize = 10;

// ANCHOR: effective_scale
impl Runner {
    /// For every row trained with fidelity, in a table that also has a cosine row: fidelity's
    /// logits `s cos^2` differ between the two prototypes by `s (c_fg + c_bg) (c_fg - c_bg)`, so
    /// per pixel fidelity is a cosine at the scale `s (c_fg + c_bg)`. Returns, per such row, that
    /// scale averaged over the query pixels (at feature resolution) of `EPISODES` test episodes
    /// per fold, one value per training seed.
    pub(super) fn effective_scales(&self, r: &Reproduction) -> Result<Vec<(String, Vec<f64>)>> {
        let budget = self.budget(r);
        let mut metrics = Vec::new();
        let mut runs = Vec::new();
        for m in &r.methods {
            let c = self.train_config(r, m, r.folds[0], budget.train_seeds[0])?;
            metrics.push(c.model.metric.metric);
            runs.push(self.run_dir(&c).root);
        }
        if !metrics.contains(&Metric::Cosine) {
            return Ok(Vec::new());
        }
        let device = self.options.backend.device(false)?;
        let mut out = Vec::new();
        for (i, (m, &metric)) in r.methods.iter().zip(&metrics).enumerate() {
            // Rows that share a trained model (they differ only at inference) share its scale.
            if metric != Metric::Fidelity || runs[..i].contains(&runs[i]) {
                continue;
            }
            let mut per_seed = Vec::new();
            for &seed in &budget.train_seeds {
                let mut values = Vec::new();
                for &fold in &r.folds {
                    let (model, config, _) = self.trained_seed(r, m, fold, seed)?;
                    let scale = merge(&config.model, &m.eval)?.metric.scale;
                    let bench = config.data.open(config.image_size, &[Split::Test])?;
                    let spec = EpisodeSpec {
                        fold,
                        split: Split::Test,
                        shots: 1,
                        seed: 1234,
                    };
                    let transform = Transform::eval(config.image_size, config.normalization);
                    for episode in Episodes::new(bench.as_ref(), spec, transform).take(EPISODES) {
                        let t = EpisodeTensors::from_episode(&episode?, &device)?;
                        let features = model.features(Tensor::cat(
                            vec![t.support_images.clone(), t.query_image.clone()],
                            0,
                        ));
                        let [_, c, h, w] = features.dims();
                        let support = features.clone().slice([0..1, 0..c, 0..h, 0..w]);
                        let query = features.slice([1..2, 0..c, 0..h, 0..w]);
                        let Ok(prototypes) =
                            masked_average_pool(support, t.support_masks, model.config.pooling)
                        else {
                            continue;
                        };
                        let cos = similarity(query, &prototypes, Metric::Cosine);
                        let v = cos
                            .sum_dim(1)
                            .mean()
                            .into_data()
                            .convert::<f64>()
                            .try_to_vec::<f64>()
                            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
                        values.push(scale * v[0]);
                    }
                }
                per_seed.push(mean(&values));
            }
            out.push((m.name.clone(), per_seed));
        }
        Ok(out)
    }
}
// ANCHOR_END: effective_scale

/// The Markdown section of the measured scales.
pub fn effective_scale_markdown(scales: &[(String, Vec<f64>)]) -> String {
    if scales.is_empty() {
        return String::new();
    }
    let mut md = "## Fidelity's effective logit scale\n\n| row | scale x mean(c_fg + c_bg) |\n\
                  |---|---:|\n"
        .to_string();
    for (name, values) in scales {
        md += &format!(
            "| {name} | {:.1} ± {:.1} |\n",
            mean(values),
            sample_std(values)
        );
    }
    md += &format!(
        "\nPer query pixel, fidelity's logit gap `s (c_fg^2 - c_bg^2)` is a cosine's gap at the \
         scale `s (c_fg + c_bg)` (`c`: the pixel's cosines to the two prototypes). Measured on \
         the query pixels of {EPISODES} test episodes per fold, at feature resolution; mean ± \
         sample std over training seeds. A cosine row at this fixed scale is fidelity's \
         temperature-matched control.\n\n"
    );
    md
}
