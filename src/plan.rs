//! `reproduce <id> --plan`: what a reproduction will train and evaluate, and what it will cost,
//! measured by running a few real training steps and inference episodes of the exact
//! configuration (same weights, image size, data and backend) before anything is trained.

use crate::bench::{peak_rss_mib, reset_peak_rss};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;

use crate::backend::BackendKind;
use crate::data::{Benchmark, EpisodeSpec, Episodes, Split, Transform};
use crate::model::{EpisodeTensors, ModelConfig, ModelError, Phase, SrpNet};
use crate::train::{TrainConfig, TrainError};
use crate::weights::init::load_backbone_into;

/// One model the reproduction trains (or finds in its cache).
#[derive(Debug, Clone)]
pub struct PlannedModel {
    pub method: String,
    pub fold: usize,
    /// The resolved training config (weights located and hashed).
    pub config: TrainConfig,
    /// The model config it is evaluated with (IQI lives there).
    pub eval_model: ModelConfig,
    /// Steps its cached run has done already.
    pub done_steps: u64,
    /// An earlier row trains the same model (same training config): nothing to train here.
    pub shared: bool,
}

/// One evaluation: a trained model on K-shot test episodes.
#[derive(Debug, Clone)]
pub struct PlannedEval {
    pub method: String,
    pub fold: usize,
    pub shots: usize,
    pub episodes: u64,
    pub seeds: Vec<u64>,
}

/// Everything a reproduction will do.
#[derive(Debug, Clone)]
pub struct Plan {
    pub title: String,
    pub backend: BackendKind,
    pub models: Vec<PlannedModel>,
    pub evals: Vec<PlannedEval>,
}

/// Wall times of real steps: warm-up excluded.
#[derive(Debug, Clone)]
pub struct Measured {
    pub warmup: usize,
    /// Seconds per training step, by method.
    pub train_step_s: BTreeMap<String, Vec<f64>>,
    /// Seconds per inference episode, by (method, shots).
    pub inference_s: BTreeMap<(String, usize), Vec<f64>>,
    /// Peak resident memory of the process (MiB; host memory, not GPU memory).
    pub peak_rss_mib: Option<f64>,
    /// Seconds to build a model and load its weights (paid once per trained model).
    pub setup_s: f64,
}

/// How many real steps [`measure`] runs for each timing.
#[derive(Debug, Clone, Copy)]
pub struct MeasureSettings {
    pub warmup: usize,
    pub timed: usize,
}

impl Default for MeasureSettings {
    fn default() -> Self {
        Self {
            warmup: 1,
            timed: 2,
        }
    }
}

// ANCHOR: measure
/// Times `settings.timed` training steps (after `settings.warmup`) of each method's exact
/// training config on real episodes of `train`'s benchmark, and as many inference episodes of
/// each (method, shots) on `test`'s. Weights load as in training; nothing is written.
pub fn measure(
    plan: &Plan,
    train: &dyn Benchmark,
    test: &dyn Benchmark,
    settings: MeasureSettings,
) -> Result<Measured, TrainError> {
    let runs = settings.warmup + settings.timed;
    let mut measured = Measured {
        warmup: settings.warmup,
        train_step_s: BTreeMap::new(),
        inference_s: BTreeMap::new(),
        peak_rss_mib: None,
        setup_s: 0.0,
    };
    reset_peak_rss();
    for model in &plan.models {
        if measured.train_step_s.contains_key(&model.method) {
            continue;
        }
        let started = Instant::now();
        let trained = build(&model.config, plan.backend, true)?;
        measured.setup_s = measured.setup_s.max(started.elapsed().as_secs_f64());
        eprintln!(
            "plan: timing {runs} training step(s) of {} ({} px)...",
            model.method, model.config.image_size
        );
        let times = time_training(trained, &model.config, train, runs)?;
        measured
            .train_step_s
            .insert(model.method.clone(), times[settings.warmup..].to_vec());

        let inference = SrpNet {
            config: model.eval_model.clone(),
            ..build(&model.config, plan.backend, false)?
        };
        let mut shots: Vec<usize> = plan
            .evals
            .iter()
            .filter(|e| e.method == model.method)
            .map(|e| e.shots)
            .collect();
        shots.sort_unstable();
        shots.dedup();
        for k in shots {
            eprintln!(
                "plan: timing {runs} {k}-shot inference episode(s) of {}...",
                model.method
            );
            let times = time_inference(&inference, &model.config, test, k, runs)?;
            measured
                .inference_s
                .insert((model.method.clone(), k), times[settings.warmup..].to_vec());
        }
    }
    measured.peak_rss_mib = peak_rss_mib();
    Ok(measured)
}
// ANCHOR_END: measure

/// The model of `config` on `backend`, its backbone on the config's weights.
fn build(config: &TrainConfig, backend: BackendKind, train: bool) -> Result<SrpNet, TrainError> {
    let (config, weights) = config.resolved()?;
    let device = backend.device(train)?;
    device.seed(config.seed);
    let model = config.model.init(&device)?;
    Ok(match weights {
        Some(w) => load_backbone_into(model, &w, &device)?.0,
        None => model,
    })
}

fn time_training(
    mut model: SrpNet,
    config: &TrainConfig,
    bench: &dyn Benchmark,
    runs: usize,
) -> Result<Vec<f64>, TrainError> {
    let device = model.devices()[0].clone();
    let mut optimizer = config.optimizer().init();
    let transform = Transform::train(config.image_size, config.normalization);
    let mut episodes = Episodes::new(bench, config.spec(), transform);
    let mut times = Vec::with_capacity(runs);
    while times.len() < runs {
        let started = Instant::now();
        let episode = next_episode(&mut episodes)?;
        let tensors = EpisodeTensors::from_episode(&episode, &device)?;
        let losses = match model.forward(&tensors, Phase::Train) {
            Ok(out) => out.losses.expect("training episodes carry the query mask"),
            Err(ModelError::EmptyMask { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        let _ = losses.total.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(losses.total.backward(), &model);
        model = optimizer.step(config.learning_rate, model, grads);
        let _ = device.sync();
        times.push(started.elapsed().as_secs_f64());
    }
    Ok(times)
}

fn time_inference(
    model: &SrpNet,
    config: &TrainConfig,
    bench: &dyn Benchmark,
    shots: usize,
    runs: usize,
) -> Result<Vec<f64>, TrainError> {
    let device = model.devices()[0].clone();
    let spec = EpisodeSpec {
        fold: config.fold,
        split: Split::Test,
        shots,
        seed: 1234,
    };
    let transform = Transform::eval(config.image_size, config.normalization);
    let mut episodes = Episodes::new(bench, spec, transform);
    let mut times = Vec::with_capacity(runs);
    while times.len() < runs {
        let started = Instant::now();
        let episode = next_episode(&mut episodes)?;
        let tensors = EpisodeTensors::from_episode(&episode, &device)?;
        match model.forward(&tensors, Phase::Infer) {
            Ok(out) => {
                let _ = crate::model::loss::predicted_mask(out.query_probabilities)?;
            }
            Err(ModelError::EmptyMask { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
        times.push(started.elapsed().as_secs_f64());
    }
    Ok(times)
}

fn next_episode<B: Benchmark + ?Sized>(
    episodes: &mut Episodes<'_, B>,
) -> Result<crate::data::Episode, TrainError> {
    episodes
        .next()
        .ok_or_else(|| {
            TrainError::Data(crate::data::DataError::InvalidSpec(
                "the episode stream ended".into(),
            ))
        })?
        .map_err(TrainError::from)
}

/// Median of a non-empty sample (the mean of the middle two for an even count).
fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n.is_multiple_of(2) {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    } else {
        v[n / 2]
    }
}

fn spread(xs: &[f64]) -> (f64, f64) {
    let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (lo, hi)
}

/// The projected wall time: (training s, evaluation s), from the medians of `measured`.
pub fn projection(plan: &Plan, measured: &Measured) -> (f64, f64) {
    let training: f64 = plan
        .models
        .iter()
        .filter(|m| !m.shared)
        .map(|m| {
            let left = m.config.steps.saturating_sub(m.done_steps) as f64;
            let step = measured
                .train_step_s
                .get(&m.method)
                .map_or(0.0, |t| median(t));
            if left > 0.0 {
                left * step + measured.setup_s
            } else {
                0.0
            }
        })
        .sum();
    let evaluation: f64 = plan
        .evals
        .iter()
        .map(|e| {
            let per = measured
                .inference_s
                .get(&(e.method.clone(), e.shots))
                .map_or(0.0, |t| median(t));
            per * (e.episodes * e.seeds.len() as u64) as f64
        })
        .sum();
    (training, evaluation)
}

/// `3725.0` -> `1 h 02 min`.
pub fn human(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..=119 => format!("{s} s"),
        120..=5_999 => format!("{} min {:02} s", s / 60, s % 60),
        6_000..=172_799 => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
        _ => format!("{:.1} days", seconds / 86_400.0),
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "plan: {}", self.title)?;
        writeln!(
            f,
            "models ({} rows, {} distinct trainings; method, fold, steps, shots, seed, weights):",
            self.models.len(),
            self.models.iter().filter(|m| !m.shared).count()
        )?;
        for m in &self.models {
            let c = &m.config;
            let weights = match (&c.backbone.weights, &c.backbone.sha256) {
                (Some(w), Some(sha)) => format!("{w} sha256 {}", &sha[..12.min(sha.len())]),
                (Some(w), None) => w.clone(),
                (None, _) => "random".into(),
            };
            let cached = match m.done_steps {
                _ if m.shared => "  (the model of an earlier row)".into(),
                0 => String::new(),
                d if d >= c.steps => "  (cached: done)".into(),
                d => format!("  (cached: {d} done)"),
            };
            writeln!(
                f,
                "  {:<32} fold {}  {:>6} steps  {}-shot  seed {}  {} px  {weights}{cached}",
                m.method, m.fold, c.steps, c.shots, c.seed, c.image_size
            )?;
        }
        let episodes: u64 = self
            .evals
            .iter()
            .map(|e| e.episodes * e.seeds.len() as u64)
            .sum();
        writeln!(
            f,
            "evaluations ({}; {episodes} test episodes in all):",
            self.evals.len()
        )?;
        for e in &self.evals {
            writeln!(
                f,
                "  {:<32} fold {}  {}-shot  {} episodes x seeds {:?}",
                e.method, e.fold, e.shots, e.episodes, e.seeds
            )?;
        }
        Ok(())
    }
}

/// The measured projection as text.
pub fn describe(plan: &Plan, measured: &Measured) -> String {
    let mut out = String::new();
    let timed = measured.train_step_s.values().next().map_or(0, |v| v.len());
    out += &format!(
        "measured on backend {} ({} warm-up + {timed} timed real step(s) each; median, min-max):\n",
        plan.backend.name(),
        measured.warmup
    );
    for (method, t) in &measured.train_step_s {
        let (lo, hi) = spread(t);
        out += &format!(
            "  train step   {method:<32} {:>8.2} s  ({lo:.2}-{hi:.2})\n",
            median(t)
        );
    }
    for ((method, k), t) in &measured.inference_s {
        let (lo, hi) = spread(t);
        out += &format!(
            "  {k}-shot episode {method:<30} {:>8.2} s  ({lo:.2}-{hi:.2})\n",
            median(t)
        );
    }
    out += &format!(
        "  model setup (init + weights)                  {:>8.2} s\n",
        measured.setup_s
    );
    let (training, evaluation) = projection(plan, measured);
    out += &format!(
        "projection: training {}, evaluation {}, total {} (one process, this machine)\n",
        human(training),
        human(evaluation),
        human(training + evaluation)
    );
    out += &match measured.peak_rss_mib {
        Some(m) => format!(
            "peak memory: {m:.0} MiB resident (host memory of the measuring process{})\n",
            if plan.backend.name() == "flex" {
                ""
            } else {
                "; GPU memory is not included"
            }
        ),
        None => "peak memory: not reported by this OS\n".into(),
    };
    out
}
