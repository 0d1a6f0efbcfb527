//! Tables: the provenance header, the per-seed CSV, the Markdown table with its paired
//! differences, and the published reference numbers printed beside ours.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use super::compare::{Difference, differences, method_sentence};
use super::config::{Budget, Reproduction, configs_dir};
use super::scale::effective_scale_markdown;
use super::{Evaluation, Runner};
use crate::experiment::{BenchmarkName, DataConfig, Provenance, unix_time, write_atomic};
use crate::model::iqi::IqiWeighting;
use crate::stats::{mean, sample_std};

impl Runner {
    fn provenance(&self, r: &Reproduction) -> Result<Provenance> {
        let budget = self.budget(r);
        let mut p = Provenance::new(self.options.backend.name());
        let first = self.train_config(r, &r.methods[0], r.folds[0], budget.train_seeds[0])?;
        let schedule = format!(
            "SGD, lr {} x{} at steps {:?}, momentum {}, weight decay {}",
            first.learning_rate,
            first.lr_gamma,
            first.lr_milestones,
            first.momentum,
            first.weight_decay
        );
        p.push("date", utc_date(unix_time()))
            .push("code hash", code_hash())
            .push(
                "build",
                format!(
                    "{}, features [{}]",
                    env!("SRPNET_RUSTC"),
                    env!("SRPNET_FEATURES")
                ),
            )
            .push("cpu", cpu_model())
            .push("threads", threads())
            .push("processes", self.processes.clone())
            .push(
                "reproduction",
                format!("{} ({} protocol): {}", r.id, protocol_name(r), r.title),
            )
            .push("dataset", self.data.label())
            .push("profile", format!("{:?}", self.profile).to_lowercase())
            .push("image size", format!("{} px", first.image_size))
            .push(
                "training",
                format!(
                    "{} steps of {}-shot episodes per model, one model per method, fold and \
                     training seed",
                    budget.train_steps, budget.train_shots
                ),
            )
            .push("schedule", schedule)
            .push("training seeds", format!("{:?}", budget.train_seeds))
            .push("models", self.models_line(r)?)
            .push(
                "evaluation",
                format!(
                    "{} episodes x seeds {:?} per fold and shots, the same for every row and \
                     training seed",
                    budget.eval_episodes, budget.eval_seeds
                ),
            )
            .push("iqi", iqi_summary(r, self)?)
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
        Ok(p)
    }

    /// Where the models of `r` came from, as it really happened: trained by this run,
    /// continued from a checkpoint, or taken whole from the run cache.
    fn models_line(&self, r: &Reproduction) -> Result<String> {
        let budget = self.budget(r);
        let mut seen = std::collections::HashSet::new();
        let (mut trained, mut continued, mut cached) = (0, 0, 0);
        for m in &r.methods {
            for &fold in &r.folds {
                for &seed in self.trained_seeds(r, &budget) {
                    let c = self.train_config(r, m, fold, seed)?;
                    let dir = self.run_dir(&c).root;
                    if !seen.insert(dir.clone()) {
                        continue;
                    }
                    match self.steps_before.get(&dir).copied().unwrap_or(0) {
                        0 => trained += 1,
                        s if s < c.steps => continued += 1,
                        _ => cached += 1,
                    }
                }
            }
        }
        let total = trained + continued + cached;
        Ok(if trained == total {
            format!("all {total} trained by this run")
        } else {
            format!(
                "{trained} of {total} trained by this run, {continued} continued from a \
                 checkpoint of an earlier run, {cached} taken from the run cache (key: training \
                 config, backend, crate version and code hash)"
            )
        })
    }

    pub(super) fn stem(&self, r: &Reproduction) -> String {
        format!("{}.{}", r.id, self.data.label().replace('/', "-"))
    }

    pub(super) fn table(&mut self, r: &Reproduction) -> Result<Vec<PathBuf>> {
        let evals = self.evaluations(r)?;
        let budget = self.budget(r);
        let diffs = differences(r, &evals, &budget.train_seeds, &budget.eval_seeds)?;
        let provenance = self.provenance(r)?;
        let stem = self.stem(r);
        let csv = self.paths.results.join(format!("{stem}.csv"));
        let diff_csv = self.paths.results.join(format!("{stem}.differences.csv"));
        let md = self.paths.results.join(format!("{stem}.md"));
        write_atomic(&csv, table_csv(&evals, &provenance).as_bytes())?;
        write_atomic(&diff_csv, differences_csv(&diffs, &provenance).as_bytes())?;
        let references =
            read_reference_numbers(&configs_dir().join("reference-numbers.csv"), &self.data)?;
        let mut text = table_markdown(
            r,
            &evals,
            &budget,
            &diffs,
            &provenance,
            &references,
            &self.data,
        );
        text += &effective_scale_markdown(&self.effective_scales(r)?);
        write_atomic(&md, text.as_bytes())?;
        self.bar.suspend(|| println!("{text}"));
        let mut written = vec![csv, diff_csv, md];
        if r.id == "table1" {
            written.extend(self.training_curves(r, &evals)?);
        }
        Ok(written)
    }
}

/// "PASCAL-5i" for a table of the paper's PASCAL-5i protocol, whatever data stood in.
fn protocol_name(r: &Reproduction) -> &'static str {
    match r.benchmark {
        BenchmarkName::Pascal5i => "PASCAL-5i",
        BenchmarkName::Coco20i => "COCO-20i",
        BenchmarkName::Synthetic5i => "synthetic-5i",
        BenchmarkName::Folder => "folder",
    }
}

/// IQI as each row runs it at inference: `T = 3, alpha 0.5, support-score weights`, or off.
fn iqi_summary(r: &Reproduction, runner: &Runner) -> Result<String> {
    let mut parts = Vec::new();
    for m in &r.methods {
        let c = runner.train_config(r, m, r.folds[0], 0)?;
        let iqi = super::config::merge(&c.model, &m.eval)?.iqi;
        parts.push(if iqi.iterations == 0 {
            format!("{}: off", m.name)
        } else {
            format!(
                "{}: T = {}, alpha {}, {} weights",
                m.name,
                iqi.iterations,
                iqi.alpha,
                match iqi.weighting {
                    IqiWeighting::Uniform => "uniform",
                    IqiWeighting::SupportScore => "support-recovery",
                }
            )
        });
    }
    Ok(parts.join("; "))
}

/// The hash of the training sources this binary was built from (see `build.rs`).
pub fn code_hash() -> &'static str {
    env!("SRPNET_CODE_HASH")
}

/// The CPU as far as it decides the numbers: its model name, and on x86 its family and model
/// and the widest vector instructions the kernels can pick at run time (`gemm` and flex dispatch
/// on them, and AVX-512 sums in another order than AVX2: two "AMD EPYC" of other generations
/// train other models). From /proc/cpuinfo on Linux; "unknown" elsewhere.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo").map_or_else(|_| "unknown".into(), |t| describe_cpu(&t))
}

/// [`cpu_model`] from the text of /proc/cpuinfo.
pub fn describe_cpu(info: &str) -> String {
    let field = |name: &str| {
        info.lines()
            .find(|l| l.split(':').next().is_some_and(|k| k.trim() == name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    let name = field("model name").unwrap_or_else(|| "unknown".into());
    let (Some(family), Some(model), Some(flags)) =
        (field("cpu family"), field("model"), field("flags"))
    else {
        return name;
    };
    let has = |flag: &str| flags.split_whitespace().any(|f| f == flag);
    let simd = if has("avx512f") {
        "AVX-512"
    } else if has("avx2") && has("fma") {
        "AVX2 + FMA, no AVX-512"
    } else {
        "no AVX2"
    };
    format!("{name} (family {family}, model {model}; {simd})")
}

/// The threads the CPU kernels may use: `RAYON_NUM_THREADS` if set, else the available cores.
pub fn threads() -> String {
    match std::env::var("RAYON_NUM_THREADS") {
        Ok(n) if !n.is_empty() => format!("{n} (RAYON_NUM_THREADS)"),
        _ => std::thread::available_parallelism()
            .map_or("unknown".into(), |n| format!("{n} (available cores)")),
    }
}

/// `2026-11-26 23:52 UTC` from seconds since the Unix epoch (Hinnant's civil-from-days).
pub fn utc_date(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let (h, m) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02} UTC")
}

// ANCHOR: outputs
/// Every (training seed, evaluation seed)'s numbers, one row each.
pub fn table_csv(evals: &[Evaluation], provenance: &Provenance) -> String {
    let mut text = provenance.header();
    text += "method,fold,shots,train_seed,eval_seed,miou,fb_iou,support_miou,episodes\n";
    for e in evals {
        for s in &e.report.seeds {
            let episodes = e
                .report
                .episodes
                .iter()
                .filter(|x| x.seed == s.seed)
                .count();
            text += &format!(
                "{},{},{},{},{},{:.6},{:.6},{:.6},{episodes}\n",
                csv_field(&e.method),
                e.fold,
                e.shots,
                e.train_seed,
                s.seed,
                s.miou,
                s.fb_iou,
                s.support_miou
            );
        }
    }
    text
}

/// Every paired difference with its interval (fractions, like the results CSV).
pub fn differences_csv(diffs: &[Difference], provenance: &Provenance) -> String {
    let mut text = provenance.header();
    text += "method,reference,shots,metric,difference,low,high,verdict,seeds,per_seed\n";
    for d in diffs {
        let per_seed: Vec<String> = d.per_seed.iter().map(|v| format!("{v:.6}")).collect();
        text += &format!(
            "{},{},{},{},{:.6},{:.6},{:.6},{},{},{}\n",
            csv_field(&d.method),
            csv_field(&d.reference),
            d.shots,
            d.metric,
            d.interval.estimate,
            d.interval.low,
            d.interval.high,
            d.verdict(),
            d.per_seed.len(),
            per_seed.join(" ")
        );
    }
    text
}
// ANCHOR_END: outputs

/// A CSV field as RFC 4180 writes it: quoted when it holds a comma, a quote or a line break
/// (method names like "PANet, final ReLU" do), with inner quotes doubled.
pub fn csv_field(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\"")).into()
    } else {
        text.into()
    }
}

/// `28.9 ± 1.2` (points); `28.9 ± –` when one training seed gives no spread.
fn cell(values: &[f64]) -> String {
    let s = sample_std(values);
    if s.is_nan() {
        format!("{:.1} ± –", 100.0 * mean(values))
    } else {
        format!("{:.1} ± {:.1}", 100.0 * mean(values), 100.0 * s)
    }
}

/// `+3.1` points.
fn signed(v: f64) -> String {
    format!("{:+.1}", 100.0 * v)
}

// ANCHOR: markdown
/// The Markdown table: per shots and metric, methods as rows, folds and their mean as columns
/// (mean ± std over training seeds), the published reference numbers with their sources, and
/// the paired differences the config asks for, each with its interval and verdict.
pub fn table_markdown(
    r: &Reproduction,
    evals: &[Evaluation],
    budget: &Budget,
    diffs: &[Difference],
    provenance: &Provenance,
    references: &[ReferenceNumber],
    data: &DataConfig,
) -> String {
    let mut md = format!(
        "# {} ({} protocol) on {}: {}\n\n",
        r.id,
        protocol_name(r),
        data.label(),
        r.title
    );
    for (k, v) in &provenance.fields {
        md += &format!("- {k}: {v}\n");
    }
    md.push('\n');
    md += &format!(
        "Each cell is the mean over {n} training seeds {seeds:?} (each seed: its own \
         initialisation and training episodes) of the model's number on the fold's test \
         episodes, {episodes} episodes x evaluation seeds {eval:?}, identical for every row and \
         training seed; the number of one model is the mean over its evaluation seeds of the \
         class-accumulated metric. `±` is the sample standard deviation (n - 1) over the \
         training seeds. The mean column averages the folds per training seed, then gives the \
         mean ± std of those over the seeds.\n\n",
        n = budget.train_seeds.len(),
        seeds = budget.train_seeds,
        episodes = budget.eval_episodes,
        eval = budget.eval_seeds,
    );
    let plus_minus = format!(
        "Mean over {} training seeds; `±`: the sample standard deviation (n - 1) over the \
         training seeds, all evaluated on the same test episodes.\n\n",
        budget.train_seeds.len()
    );
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
                // [fold][training seed]: the mean over evaluation seeds.
                let mut per_fold: Vec<Vec<f64>> = Vec::new();
                for &fold in &r.folds {
                    let per_seed: Vec<f64> = budget
                        .train_seeds
                        .iter()
                        .filter_map(|&t| {
                            evals
                                .iter()
                                .find(|e| {
                                    &e.method == method
                                        && e.fold == fold
                                        && e.shots == shots
                                        && e.train_seed == t
                                })
                                .map(|e| mean(&e.report.seeds.iter().map(pick).collect::<Vec<_>>()))
                        })
                        .collect();
                    md += &if per_seed.is_empty() {
                        " – |".to_string()
                    } else {
                        format!(" {} |", cell(&per_seed))
                    };
                    per_fold.push(per_seed);
                }
                let seeds = per_fold.iter().map(Vec::len).min().unwrap_or(0);
                let over_folds: Vec<f64> = (0..seeds)
                    .map(|i| mean(&per_fold.iter().map(|v| v[i]).collect::<Vec<_>>()))
                    .collect();
                md += &format!(" **{}** |\n", cell(&over_folds));
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
            md += &plus_minus;
        }
        let here: Vec<&Difference> = diffs.iter().filter(|d| d.shots == shots).collect();
        if !here.is_empty() {
            md += &format!(
                "## {shots}-shot paired differences (points, mean over folds)\n\n\
                 | difference | metric | mean | 95% interval | verdict | per training seed |\n\
                 |---|---|---:|---:|---|---|\n"
            );
            for d in &here {
                let per_seed: Vec<String> = d.per_seed.iter().map(|v| signed(*v)).collect();
                md += &format!(
                    "| {} − {} | {} | {} | [{}, {}] | {} | {} |\n",
                    d.method,
                    d.reference,
                    d.metric,
                    signed(d.interval.estimate),
                    signed(d.interval.low),
                    signed(d.interval.high),
                    d.verdict(),
                    per_seed.join(" ")
                );
            }
            md += &format!("\n{}\n\n", method_sentence(budget.train_seeds.len()));
            md += &verdict_summary(&here);
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
// ANCHOR_END: markdown

/// One generated paragraph: which differences are gains, which losses, which not resolved.
fn verdict_summary(diffs: &[&Difference]) -> String {
    let mut text = String::new();
    for verdict in ["gain", "loss", "not resolved"] {
        let names: Vec<String> = diffs
            .iter()
            .filter(|d| d.verdict() == verdict)
            .map(|d| format!("{} − {} ({})", d.method, d.reference, d.metric))
            .collect();
        if !names.is_empty() {
            text += &format!(
                "{}: {}.\n\n",
                match verdict {
                    "gain" => "Gains (interval above 0)",
                    "loss" => "Losses (interval below 0)",
                    _ => "Not resolved (interval contains 0)",
                },
                names.join("; ")
            );
        }
    }
    text
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
            BenchmarkName::Folder => ("folder", ""),
        };
        if n.dataset == dataset && n.protocol == protocol && n.fold == "mean" {
            out.push(n);
        }
    }
    Ok(out)
}
