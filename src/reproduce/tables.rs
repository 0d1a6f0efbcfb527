//! Tables: the provenance header, the per-seed CSV, the Markdown table, and the published
//! reference numbers printed beside ours.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use super::config::{Reproduction, configs_dir};
use super::{Evaluation, Runner};
use crate::experiment::{BenchmarkName, DataConfig, Provenance, write_atomic};
use crate::metrics::mean_std;

impl Runner {
    fn provenance(&self, r: &Reproduction) -> Provenance {
        let budget = self.budget(r);
        let mut p = Provenance::new(self.options.backend.name());
        p.push("reproduction", format!("{} ({})", r.id, r.title))
            .push("dataset", self.data.label())
            .push("profile", format!("{:?}", self.profile).to_lowercase())
            .push(
                "training",
                format!(
                    "{} steps of {}-shot episodes per model, one model per method and fold",
                    budget.train_steps, budget.train_shots
                ),
            )
            .push(
                "evaluation",
                format!(
                    "{} episodes x seeds {:?} per fold and shots",
                    budget.eval_episodes, budget.eval_seeds
                ),
            )
            .push(
                "wall time so far",
                format!("{:.0} s", self.started.elapsed().as_secs_f64()),
            );
        if let Some(size) = budget.image_size {
            p.push(
                "image size",
                format!("{size} px (the reproduction's budget)"),
            );
        }
        if let Some(weights) = self.weights_label(r) {
            p.push("backbone weights", weights);
        }
        if budget.smoke {
            p.push(
                "warning",
                "a smoke run, not a result: a few steps at a reduced image size",
            );
        }
        if self.options.steps.is_some() {
            p.push(
                "warning",
                "--steps overrode the training budget: a smoke run, not a result",
            );
        }
        p
    }

    fn stem(&self, r: &Reproduction) -> String {
        format!("{}.{}", r.id, self.data.label().replace('/', "-"))
    }

    pub(super) fn table(&mut self, r: &Reproduction) -> Result<Vec<PathBuf>> {
        let evals = self.evaluations(r)?;
        let provenance = self.provenance(r);
        let stem = self.stem(r);
        let csv = self.paths.results.join(format!("{stem}.csv"));
        let md = self.paths.results.join(format!("{stem}.md"));
        write_atomic(&csv, table_csv(&evals, &provenance).as_bytes())?;
        let references =
            read_reference_numbers(&configs_dir().join("reference-numbers.csv"), &self.data)?;
        let text = table_markdown(r, &evals, &provenance, &references, &self.data);
        write_atomic(&md, text.as_bytes())?;
        self.bar.suspend(|| println!("{text}"));
        let mut written = vec![csv, md];
        if r.id == "table1" {
            written.extend(self.training_curves(r, &evals)?);
        }
        Ok(written)
    }
}

// ANCHOR: outputs
/// Every seed's numbers, one row each.
pub fn table_csv(evals: &[Evaluation], provenance: &Provenance) -> String {
    let mut text = provenance.header();
    text += "method,fold,shots,seed,miou,fb_iou,support_miou,episodes\n";
    for e in evals {
        for s in &e.report.seeds {
            let episodes = e
                .report
                .episodes
                .iter()
                .filter(|x| x.seed == s.seed)
                .count();
            text += &format!(
                "{},{},{},{},{:.6},{:.6},{:.6},{episodes}\n",
                e.method, e.fold, e.shots, s.seed, s.miou, s.fb_iou, s.support_miou
            );
        }
    }
    text
}
// ANCHOR_END: outputs

/// The Markdown table: per shots and metric, methods as rows, folds and their mean as columns
/// (mean +- std over seeds), then the published reference numbers with their sources.
pub fn table_markdown(
    r: &Reproduction,
    evals: &[Evaluation],
    provenance: &Provenance,
    references: &[ReferenceNumber],
    data: &DataConfig,
) -> String {
    let mut md = format!("# {}: {}\n\n", r.id, r.title);
    for (k, v) in &provenance.fields {
        md += &format!("- {k}: {v}\n");
    }
    md.push('\n');
    type Pick = fn(&crate::eval::SeedResult) -> f64;
    let metrics: [(&str, Pick); 3] = [
        ("mIoU", |s| s.miou),
        ("FB-IoU", |s| s.fb_iou),
        ("support-recovery mIoU", |s| s.support_miou),
    ];
    for &shots in &r.shots {
        for (metric, pick) in metrics {
            md += &format!("## {shots}-shot {metric} (%)\n\n| method |");
            for f in &r.folds {
                md += &format!(" fold {f} |");
            }
            md += " mean |\n|---|";
            md += &"---:|".repeat(r.folds.len() + 1);
            md.push('\n');
            for method in r.methods.iter().map(|m| &m.name) {
                md += &format!("| {method} |");
                let mut per_fold = Vec::new();
                for &fold in &r.folds {
                    match evals
                        .iter()
                        .find(|e| &e.method == method && e.fold == fold && e.shots == shots)
                    {
                        Some(e) => {
                            let values: Vec<f64> = e.report.seeds.iter().map(pick).collect();
                            let (m, s) = mean_std(&values);
                            per_fold.push(values);
                            md += &format!(" {:.1} ± {:.1} |", 100.0 * m, 100.0 * s);
                        }
                        None => md += " – |",
                    }
                }
                // The paper-style number: the mean over folds, per seed; then mean +- std over seeds.
                let seeds = per_fold.first().map_or(0, |v| v.len());
                let over_folds: Vec<f64> = (0..seeds)
                    .map(|i| per_fold.iter().map(|v| v[i]).sum::<f64>() / per_fold.len() as f64)
                    .collect();
                let (m, s) = mean_std(&over_folds);
                md += &format!(" **{:.1}** ± {:.1} |\n", 100.0 * m, 100.0 * s);
            }
            if metric != "support-recovery mIoU" {
                let rows: Vec<&ReferenceNumber> = references
                    .iter()
                    .filter(|n| n.shots == shots && n.metric == metric)
                    .collect();
                for n in &rows {
                    md += &format!("| {} ({}, published) |", n.method, n.backbone);
                    md += &" |".repeat(r.folds.len());
                    md += &format!(" {} [^{}] |\n", n.value, n.key());
                }
            }
            md.push('\n');
        }
    }
    if data.benchmark == BenchmarkName::Synthetic5i {
        md += "No published numbers exist for synthetic-5i, the embedded benchmark: the rows above \
               are ours only. They show how the methods compare under one small budget, not what \
               they reach on PASCAL-5i or COCO-20i.\n\n";
    } else {
        md += "SRPNet's own published table was not available to us (only the abstract was), so \
               no SRPNet reference row is printed.\n\n";
    }
    for n in references {
        md += &format!(
            "[^{}]: {} {} {}: {}\n",
            n.key(),
            n.method,
            n.dataset,
            n.protocol,
            n.source
        );
    }
    md
}

/// One row of `reproductions/reference-numbers.csv`.
#[derive(Debug, Clone, Deserialize)]
pub struct ReferenceNumber {
    pub method: String,
    pub backbone: String,
    pub dataset: String,
    pub protocol: String,
    pub shots: usize,
    pub fold: String,
    pub metric: String,
    pub value: f64,
    pub source: String,
}

impl ReferenceNumber {
    fn key(&self) -> String {
        format!("{}-{}-{}", self.method, self.backbone, self.protocol).replace([' ', '*', '/'], "")
    }
}

/// Reads the reference numbers that apply to `data`.
pub fn read_reference_numbers(path: &Path, data: &DataConfig) -> Result<Vec<ReferenceNumber>> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for row in reader.deserialize() {
        let n: ReferenceNumber =
            row.with_context(|| format!("a malformed row in {}", path.display()))?;
        // A number counts only on the same dataset under the same protocol or fold convention:
        // PANet's and OSLSM's PASCAL-5i test sets are not comparable.
        let (dataset, protocol) = match data.benchmark {
            BenchmarkName::Pascal5i => ("pascal-5i", data.pascal_protocol.name()),
            BenchmarkName::Coco20i => ("coco-20i", data.coco_folds.name()),
            BenchmarkName::Synthetic5i => ("synthetic-5i", ""),
        };
        if n.dataset == dataset && n.protocol == protocol && n.fold == "mean" {
            out.push(n);
        }
    }
    Ok(out)
}
