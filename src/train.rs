//! Episodic training: one episode a step, SGD with momentum and weight decay, a multi-step
//! learning rate, a CSV log, and checkpoints that a killed run resumes from exactly.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, OptimizerRecord, SgdConfig};
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};

use crate::backend::{BackendError, BackendKind};
use crate::data::{Benchmark, DataError, EpisodeSpec, Episodes, Normalization, Split, Transform};
use crate::experiment::{ConfigFileError, DataConfig, write_atomic};
use crate::model::{EpisodeTensors, ModelConfig, ModelError, Phase, Profile, SrpNet};
use crate::weights::init::{
    BackboneInit, FETCHED, InitError, ResolvedWeights, adopt_format, load_backbone_into, locate,
};

// ANCHOR: config
/// Everything that defines a training run. Every field has a default (SRPNet, paper profile).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub model: ModelConfig,
    /// Where the backbone's weights start: ImageNet (the paper profile's `"fetched"`) or random
    /// (`{}` or `weights = "random"`). Left out of a config file, the paper default applies.
    pub backbone: BackboneInit,
    pub data: DataConfig,
    pub fold: usize,
    /// K of the training episodes.
    pub shots: usize,
    /// Square network input size.
    pub image_size: usize,
    pub normalization: Normalization,
    pub steps: u64,
    pub learning_rate: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    /// Steps at which the learning rate is multiplied by `lr_gamma`.
    pub lr_milestones: Vec<u64>,
    pub lr_gamma: f64,
    /// Seeds the model's initialisation and the episode stream.
    pub seed: u64,
    pub log_every: u64,
    pub checkpoint_every: u64,
}
// ANCHOR_END: config

impl Default for TrainConfig {
    fn default() -> Self {
        Self::preset(ModelConfig::srpnet(Profile::Paper), Profile::Paper)
    }
}

impl TrainConfig {
    /// PANet's schedule at paper scale (lr 1e-3, 30k steps, 417 px, x0.1 at 10k and 20k); a
    /// short one for the embedded profile, whose small network trains from scratch.
    pub fn preset(model: ModelConfig, profile: Profile) -> Self {
        let common = Self {
            model,
            backbone: match profile {
                Profile::Paper => BackboneInit::fetched(),
                Profile::Embedded => BackboneInit::default(),
            },
            data: DataConfig::default(),
            fold: 0,
            shots: 1,
            image_size: profile.image_size(),
            normalization: Normalization::CaffeBgr,
            steps: 30_000,
            learning_rate: 1e-3,
            momentum: 0.9,
            weight_decay: 5e-4,
            lr_milestones: vec![10_000, 20_000],
            lr_gamma: 0.1,
            seed: 1234,
            log_every: 100,
            checkpoint_every: 1_000,
        };
        match profile {
            Profile::Paper => common,
            Profile::Embedded => Self {
                normalization: Normalization::Unit,
                steps: 600,
                learning_rate: 0.02,
                lr_milestones: vec![450],
                log_every: 10,
                checkpoint_every: 100,
                ..common
            },
        }
    }

    pub fn validate(&self) -> Result<(), TrainError> {
        self.model.validate()?;
        let bad = |field: &'static str, value: String, hint: &'static str| {
            Err(TrainError::InvalidConfig { field, value, hint })
        };
        if self.fold > 3 {
            return bad("fold", self.fold.to_string(), "folds are 0, 1, 2 and 3");
        }
        if self.shots == 0 {
            return bad(
                "shots",
                "0".into(),
                "an episode needs at least one support shot",
            );
        }
        if self.image_size < 33 {
            return bad(
                "image_size",
                self.image_size.to_string(),
                "use 33 px or more",
            );
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad(
                "learning_rate",
                self.learning_rate.to_string(),
                "must be positive",
            );
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad("momentum", self.momentum.to_string(), "must lie in [0, 1)");
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(
                "weight_decay",
                self.weight_decay.to_string(),
                "must be 0 or positive",
            );
        }
        if !(self.lr_gamma.is_finite() && self.lr_gamma > 0.0) {
            return bad("lr_gamma", self.lr_gamma.to_string(), "must be positive");
        }
        if self.log_every == 0 || self.checkpoint_every == 0 {
            return bad(
                "log_every / checkpoint_every",
                "0".into(),
                "must be at least 1",
            );
        }
        Ok(())
    }

    // ANCHOR: resolve
    /// The config a run records: with ImageNet weights, their file located and hashed
    /// (`backbone.sha256`), and the backbone variant, batch-norm epsilon and input normalisation
    /// set to what the file's format implies. Idempotent; a recorded sha256 must still match.
    pub fn resolved(&self) -> Result<(TrainConfig, Option<ResolvedWeights>), TrainError> {
        let mut config = self.clone();
        let weights = locate(&config.backbone)?;
        if let Some(w) = &weights {
            adopt_format(
                w.format,
                &mut config.model.backbone,
                &mut config.normalization,
            );
            if config.backbone.weights.as_deref() != Some(FETCHED) {
                config.backbone.weights = Some(w.path.display().to_string());
            }
            config.backbone.sha256 = Some(w.sha256.clone());
        } else {
            config.backbone = BackboneInit::default();
        }
        Ok((config, weights))
    }
    // ANCHOR_END: resolve

    /// The learning rate at `step` (0-based): multi-step decay.
    pub fn learning_rate_at(&self, step: u64) -> f64 {
        let decays = self.lr_milestones.iter().filter(|&&m| step >= m).count();
        self.learning_rate * self.lr_gamma.powi(decays as i32)
    }

    /// SGD with the config's momentum and weight decay (the learning rate is given per step).
    pub(crate) fn optimizer(&self) -> SgdConfig {
        SgdConfig::new()
            .with_momentum(Some(MomentumConfig {
                momentum: self.momentum,
                dampening: 0.0,
                nesterov: false,
            }))
            .with_weight_decay(Some(WeightDecayConfig {
                penalty: self.weight_decay as f32,
            }))
    }

    /// The training episodes' stream: this fold's training classes, shots and seed.
    pub(crate) fn spec(&self) -> EpisodeSpec {
        EpisodeSpec {
            fold: self.fold,
            split: Split::Train,
            shots: self.shots,
            seed: self.seed,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("invalid training config: `{field}` = {value}: {hint}")]
    InvalidConfig {
        field: &'static str,
        value: String,
        hint: &'static str,
    },
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Init(#[from] InitError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    ConfigFile(#[from] ConfigFileError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("checkpoint {path}: {message}")]
    Checkpoint { path: PathBuf, message: String },
    #[error(
        "{run}/config.json describes another run than the config given; resume with the run's own \
         config (omit --config) or start a new run folder"
    )]
    ConfigMismatch { run: PathBuf },
    #[error(
        "{run} already holds a training run; pass --resume to continue it, or choose another --out"
    )]
    RunExists { run: PathBuf },
    #[error("{run} has no checkpoint to resume from; start it without --resume")]
    NothingToResume { run: PathBuf },
    #[error(
        "the loss became {value} at step {step}; the last checkpoint is kept. Lower the learning \
         rate or check the data"
    )]
    NonFiniteLoss { step: u64, value: f32 },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

// ANCHOR: run_layout
/// A run folder: `config.json` (the resolved config), `train-log.csv`, and `checkpoint/`
/// (`model.bpk`, `optimizer.bpk`, `state.json`), replaced as a whole on every save.
pub struct RunDir {
    pub root: PathBuf,
}

/// Where training stands in a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainState {
    /// Steps done.
    pub step: u64,
    /// The index of the next episode in the training stream (bad files can make it run ahead
    /// of `step`).
    pub next_episode: u64,
    pub elapsed_s: f64,
    /// Episodes skipped because a support region was empty at the network size.
    #[serde(default)]
    pub skipped_episodes: u64,
}
// ANCHOR_END: run_layout

impl RunDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.json")
    }

    pub fn log_path(&self) -> PathBuf {
        self.root.join("train-log.csv")
    }

    pub fn checkpoint(&self) -> PathBuf {
        self.root.join("checkpoint")
    }

    /// The newest complete checkpoint: `checkpoint/`, or `checkpoint.old/` if a save was cut
    /// between its two renames.
    pub fn latest_checkpoint(&self) -> Option<PathBuf> {
        [self.checkpoint(), self.root.join("checkpoint.old")]
            .into_iter()
            .find(|d| d.join("state.json").is_file())
    }

    /// Writes the checkpoint into `checkpoint.tmp-PID/` (a name no other process writes), then
    /// swaps it in with renames.
    fn save(
        &self,
        model: &SrpNet,
        optimizer: &ModuleOptimizer,
        state: &TrainState,
    ) -> Result<(), TrainError> {
        let tmp = self
            .root
            .join(format!("checkpoint.tmp-{}", std::process::id()));
        let old = self.root.join("checkpoint.old");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
        }
        std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        let fail = |message: String| TrainError::Checkpoint {
            path: tmp.clone(),
            message,
        };
        // `valid()` folds the batch norms' pending running-statistics updates into the values
        // that are saved (a plain record would read them one update stale).
        model
            .valid()
            .save_file(tmp.join("model.bpk"))
            .map_err(|e| fail(e.to_string()))?;
        optimizer
            .save(tmp.join("optimizer.bpk"))
            .map_err(|e| fail(e.to_string()))?;
        let json = serde_json::to_vec_pretty(state).expect("a state serialises");
        std::fs::write(tmp.join("state.json"), json).map_err(io(&tmp))?;
        let current = self.checkpoint();
        if current.exists() {
            if old.exists() {
                std::fs::remove_dir_all(&old).map_err(io(&old))?;
            }
            std::fs::rename(&current, &old).map_err(io(&current))?;
        }
        std::fs::rename(&tmp, &current).map_err(io(&current))?;
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(io(&old))?;
        }
        Ok(())
    }

    /// Loads model weights, optimiser state and training state from the latest checkpoint.
    fn load(
        &self,
        model: SrpNet,
        optimizer: ModuleOptimizer,
    ) -> Result<(SrpNet, ModuleOptimizer, TrainState), TrainError> {
        let dir = self
            .latest_checkpoint()
            .ok_or_else(|| TrainError::NothingToResume {
                run: self.root.clone(),
            })?;
        let (model, state) = load_checkpoint(&dir, model)?;
        let path = dir.join("optimizer.bpk");
        let record = std::fs::read(&path).map_err(io(&path)).and_then(|bytes| {
            OptimizerRecord::from_bytes(Bytes::from_bytes_vec(bytes)).map_err(|e| {
                TrainError::Checkpoint {
                    path: path.clone(),
                    message: e.to_string(),
                }
            })
        })?;
        let optimizer = optimizer.load_record(record);
        Ok((model, optimizer, state))
    }
}

/// Loads the weights of a checkpoint folder into `model`, which must have the same config.
pub fn load_checkpoint(dir: &Path, model: SrpNet) -> Result<(SrpNet, TrainState), TrainError> {
    let fail = |path: PathBuf, message: String| TrainError::Checkpoint { path, message };
    let state_path = dir.join("state.json");
    let text = std::fs::read_to_string(&state_path).map_err(io(&state_path))?;
    let state: TrainState =
        serde_json::from_str(&text).map_err(|e| fail(state_path.clone(), e.to_string()))?;
    let weights = dir.join("model.bpk");
    // Read now, not when a tensor is first used (Burn's default): the checkpoint may be
    // replaced or deleted after this returns (the next save, or another process's `--fresh`).
    let bytes = std::fs::read(&weights).map_err(io(&weights))?;
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| fail(weights.clone(), e.to_string()))?;
    let model = model.try_load_record(record).map_err(|e| {
        fail(
            weights.clone(),
            format!("{e}; was it written by a model with another config?"),
        )
    })?;
    Ok((model, state))
}

/// How a call to [`train`] ended.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    pub state: TrainState,
    /// Ctrl-C (or the `interrupt` flag) stopped it before the last step; a checkpoint was saved.
    pub interrupted: bool,
    pub last_losses: Option<StepLosses>,
}

/// The loss terms of one step, read back from the device.
#[derive(Debug, Clone, Copy, Default)]
pub struct StepLosses {
    pub total: f32,
    pub query: f32,
    pub support: Option<f32>,
    pub alignment: Option<f32>,
}

/// Options that do not change the result.
pub struct TrainOptions<'a> {
    pub backend: BackendKind,
    pub resume: bool,
    pub progress: bool,
    /// Set (by Ctrl-C) to stop after the current step with a checkpoint.
    pub interrupt: &'a AtomicBool,
    /// Called after every step (for a progress bar that spans several runs).
    pub on_step: Option<&'a dyn Fn()>,
}

// ANCHOR: train
/// Trains `config` into `run`. With `resume`, continues from the run's latest checkpoint, so
/// that a run killed at any moment ends with the same weights as one that never stopped.
pub fn train(
    config: &TrainConfig,
    run: &RunDir,
    benchmark: &dyn Benchmark,
    options: &TrainOptions,
) -> Result<TrainOutcome, TrainError> {
    // A resumed run takes everything from its checkpoint and its recorded config: its weights
    // file is neither read nor needed. A new run locates and hashes its weights first.
    let resolved;
    let (config, weights) = if options.resume {
        (config, None)
    } else {
        resolved = config.resolved()?;
        (&resolved.0, resolved.1)
    };
    config.validate()?;
    let device = options.backend.device(true)?;
    device.seed(config.seed);
    let mut model = config.model.init(&device)?;
    // ImageNet weights start a new run only: a resumed run takes everything from its checkpoint.
    // They load before the run folder is touched, so a bad file leaves nothing behind.
    if let Some(w) = &weights {
        model = load_backbone_into(model, w, &device)?.0;
    }
    prepare_run_dir(config, run, options.resume)?;
    let mut optimizer = config.optimizer().init();
    let mut state = TrainState {
        step: 0,
        next_episode: 0,
        elapsed_s: 0.0,
        skipped_episodes: 0,
    };
    if options.resume {
        (model, optimizer, state) = run.load(model, optimizer)?;
    }
    let mut log = TrainLog::open(&run.log_path(), state.step)?;
    let transform = Transform::train(config.image_size, config.normalization);
    let mut episodes =
        Episodes::new(benchmark, config.spec(), transform).starting_at(state.next_episode);
    let bar = progress_bar(config.steps, state.step, options.progress);
    let started = Instant::now();
    let elapsed_before = state.elapsed_s;
    let mut last_losses = None;
    while state.step < config.steps {
        if options.interrupt.load(Ordering::SeqCst) {
            run.save(&model, &optimizer, &state)?;
            bar.abandon_with_message(format!(
                "interrupted at step {}; checkpoint saved",
                state.step
            ));
            return Ok(TrainOutcome {
                state,
                interrupted: true,
                last_losses,
            });
        }
        let episode = episodes.next().ok_or_else(|| {
            TrainError::Data(DataError::InvalidSpec("the episode stream ended".into()))
        })??;
        let tensors = EpisodeTensors::from_episode(&episode, &device)?;
        let losses = match model.forward(&tensors, Phase::Train) {
            Ok(out) => out.losses.expect("training episodes carry the query mask"),
            // A support whose object vanished at the network size (or was all border) has no
            // prototype: skip the episode, count it, and draw the next.
            Err(ModelError::EmptyMask { .. }) => {
                state.next_episode = episode.index + 1;
                state.skipped_episodes += 1;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let values = StepLosses {
            total: losses.total.clone().into_scalar::<f32>(),
            query: losses.query.into_scalar::<f32>(),
            support: losses.support.map(|l| l.into_scalar::<f32>()),
            alignment: losses.alignment.map(|l| l.into_scalar::<f32>()),
        };
        if !values.total.is_finite() {
            return Err(TrainError::NonFiniteLoss {
                step: state.step,
                value: values.total,
            });
        }
        let lr = config.learning_rate_at(state.step);
        let grads = GradientsParams::from_grads(losses.total.backward(), &model);
        model = optimizer.step(lr, model, grads);
        state.step += 1;
        state.next_episode = episode.index + 1;
        state.elapsed_s = elapsed_before + started.elapsed().as_secs_f64();
        last_losses = Some(values);
        let rate = (state.step as f64) / state.elapsed_s.max(1e-9);
        if state.step.is_multiple_of(config.log_every) || state.step == config.steps {
            log.write(&state, lr, &values, rate)?;
        }
        bar.set_position(state.step);
        if let Some(f) = options.on_step {
            f();
        }
        bar.set_message(format!(
            "loss {:.3} (que {:.3}{}) lr {lr:.1e} {rate:.1} ep/s",
            values.total,
            values.query,
            values
                .support
                .map_or(String::new(), |s| format!(", sup {s:.3}")),
        ));
        if state.step.is_multiple_of(config.checkpoint_every) || state.step == config.steps {
            run.save(&model, &optimizer, &state)?;
        }
    }
    bar.finish_with_message(format!(
        "done: {} steps in {:.0} s ({} episodes skipped for an empty support region)",
        state.step, state.elapsed_s, state.skipped_episodes
    ));
    Ok(TrainOutcome {
        state,
        interrupted: false,
        last_losses,
    })
}
// ANCHOR_END: train

/// A new run writes its resolved config; a resumed run must find the same config there.
fn prepare_run_dir(config: &TrainConfig, run: &RunDir, resume: bool) -> Result<(), TrainError> {
    std::fs::create_dir_all(&run.root).map_err(io(&run.root))?;
    let path = run.config_path();
    let json = serde_json::to_string_pretty(config).expect("a config serialises");
    if path.exists() {
        let saved: TrainConfig = crate::experiment::load_config(&path)?;
        if &saved != config {
            return Err(TrainError::ConfigMismatch {
                run: run.root.clone(),
            });
        }
        if !resume && run.latest_checkpoint().is_some() {
            return Err(TrainError::RunExists {
                run: run.root.clone(),
            });
        }
        Ok(())
    } else if resume {
        Err(TrainError::NothingToResume {
            run: run.root.clone(),
        })
    } else {
        write_atomic(&path, json.as_bytes()).map_err(io(&path))
    }
}

/// The CSV log of the logged steps. Reopened on resume, dropping rows written after the
/// checkpoint (they will be written again).
struct TrainLog {
    path: PathBuf,
    file: std::fs::File,
}

const LOG_HEADER: &str =
    "step,learning_rate,loss_total,loss_query,loss_support,loss_alignment,episodes_per_s,elapsed_s";

impl TrainLog {
    fn open(path: &Path, resume_step: u64) -> Result<Self, TrainError> {
        let mut kept = vec![LOG_HEADER.to_string()];
        if let Ok(text) = std::fs::read_to_string(path) {
            for line in text.lines().skip(1) {
                let step: Option<u64> = line.split(',').next().and_then(|s| s.parse().ok());
                if step.is_some_and(|s| s <= resume_step) {
                    kept.push(line.to_string());
                }
            }
        }
        write_atomic(path, (kept.join("\n") + "\n").as_bytes()).map_err(io(path))?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(io(path))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    fn write(
        &mut self,
        state: &TrainState,
        lr: f64,
        l: &StepLosses,
        rate: f64,
    ) -> Result<(), TrainError> {
        let opt = |v: Option<f32>| v.map_or(String::new(), |v| v.to_string());
        writeln!(
            self.file,
            "{},{lr},{},{},{},{},{rate:.3},{:.2}",
            state.step,
            l.total,
            l.query,
            opt(l.support),
            opt(l.alignment),
            state.elapsed_s
        )
        .map_err(io(&self.path))
    }
}

fn progress_bar(total: u64, done: u64, visible: bool) -> indicatif::ProgressBar {
    let bar = if visible {
        indicatif::ProgressBar::new(total)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "train {pos:>6}/{len} [{bar:30}] {elapsed} < {eta} {msg}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.set_position(done);
    bar
}
