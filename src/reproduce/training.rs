//! Training: a row's training config on one fold, and the trained model (from the cache, or
//! trained now).

use anyhow::{Context, Result};

use super::Runner;
use super::cache::{self, cache_key};
use super::config::{MethodPreset, MethodSpec, Reproduction, merge};
use super::interrupt::{self, INTERRUPTED, Interrupted};
use crate::backend::BackendKind;
use crate::commands::Method;
use crate::data::Split;
use crate::model::SrpNet;
use crate::train::{RunDir, TrainConfig, TrainOptions, load_checkpoint, train};
use crate::weights::init::BackboneInit;

impl Runner {
    /// The training config of `method` on `fold` with `train_seed` (its initialisation and
    /// training episode stream).
    pub(super) fn train_config(
        &self,
        r: &Reproduction,
        method: &MethodSpec,
        fold: usize,
        train_seed: u64,
    ) -> Result<TrainConfig> {
        let preset = match method.preset {
            MethodPreset::Srpnet => Method::Srpnet,
            MethodPreset::Panet => Method::Panet,
        };
        let model = merge(&preset.model(self.profile), &method.train)
            .with_context(|| format!("{}: the `train` overrides of {:?}", r.id, method.name))?;
        let budget = self.budget(r);
        let mut c = TrainConfig::preset(model, self.profile);
        c.data = self.data_config(r);
        c.fold = fold;
        c.seed = train_seed;
        c.shots = budget.train_shots;
        if c.steps != budget.train_steps {
            // Keep the schedule's shape when the budget changes the length.
            let scale = budget.train_steps as f64 / c.steps as f64;
            c.lr_milestones = c
                .lr_milestones
                .iter()
                .map(|m| (*m as f64 * scale) as u64)
                .collect();
            c.checkpoint_every = (budget.train_steps / 4).max(1);
            c.log_every = (budget.train_steps / 100).max(1);
            c.steps = budget.train_steps;
        }
        if let Some(size) = budget.image_size {
            c.image_size = size;
        }
        if let Some(w) = &self.options.weights {
            c.backbone = BackboneInit::named(w);
        }
        // Weights located and hashed now: a missing file stops the run before anything trains,
        // and the cache key covers the weights' sha256.
        Ok(c.resolved()?.0)
    }

    /// The model of `method` on `fold` with the first training seed (what the figures draw).
    pub(super) fn trained(
        &self,
        r: &Reproduction,
        method: &MethodSpec,
        fold: usize,
    ) -> Result<(SrpNet, TrainConfig, RunDir)> {
        let seed = self.budget(r).train_seeds[0];
        self.trained_seed(r, method, fold, seed)
    }

    /// Trains (or finds in the cache) the model of `method` on `fold` with `train_seed`.
    pub(super) fn trained_seed(
        &self,
        r: &Reproduction,
        method: &MethodSpec,
        fold: usize,
        train_seed: u64,
    ) -> Result<(SrpNet, TrainConfig, RunDir)> {
        let config = self.train_config(r, method, fold, train_seed)?;
        let dir = self.run_dir(&config);
        self.bar.set_message(format!(
            "train {} fold {fold} seed {train_seed}",
            method.name
        ));
        let tick = || self.bar.inc(1);
        let fresh = self.take_fresh(&dir);
        let model = trained_model(&config, &dir, self.options.backend, fresh, &tick).with_context(
            || {
                format!(
                    "training {} on fold {fold}, training seed {train_seed}",
                    method.name
                )
            },
        )?;
        let eval_config = merge(&config.model, &method.eval)
            .with_context(|| format!("{}: the `eval` overrides of {:?}", r.id, method.name))?;
        Ok((
            SrpNet {
                config: eval_config,
                ..model
            },
            config,
            dir,
        ))
    }
}

// ANCHOR: trained_model
/// The model of `config` in `dir`, trained now if the run has steps left (resuming from its
/// checkpoint), with the folder held against other processes from the check to the load.
/// `fresh` (`--fresh`, first use in this invocation) empties the folder first; so does a stored
/// cache key that differs from this build's. `tick` after every step. The serial path and the
/// `--jobs` workers both train through here.
pub(super) fn trained_model(
    config: &TrainConfig,
    dir: &RunDir,
    backend: BackendKind,
    fresh: bool,
    tick: &dyn Fn(),
) -> Result<SrpNet> {
    interrupt::check()?;
    let _lock = cache::lock(dir)?;
    cache::prepare(dir, &cache_key(config, backend.name()), fresh)?;
    if cache::done_steps(dir) < config.steps {
        train_run(config, dir, backend, tick)?;
    }
    load_run(config, dir, backend)
}
// ANCHOR_END: trained_model

/// Trains `config` into `dir` (resuming from its checkpoint if there is one); `tick` after
/// every step. A signal stops it after the current step with a checkpoint.
fn train_run(
    config: &TrainConfig,
    dir: &RunDir,
    backend: BackendKind,
    tick: &dyn Fn(),
) -> Result<()> {
    let bench = config.data.open(config.image_size, &[Split::Train])?;
    let outcome = train(
        config,
        dir,
        bench.as_ref(),
        &TrainOptions {
            backend,
            resume: dir.latest_checkpoint().is_some(),
            progress: false,
            interrupt: &INTERRUPTED,
            on_step: Some(tick),
        },
    )
    .with_context(|| format!("training in {}", dir.root.display()))?;
    if outcome.interrupted {
        return Err(Interrupted.into());
    }
    Ok(())
}

/// The trained model of a finished run, on `backend`'s device.
fn load_run(config: &TrainConfig, dir: &RunDir, backend: BackendKind) -> Result<SrpNet> {
    let device = backend.device(false)?;
    let model = config.model.init(&device)?;
    let checkpoint = dir
        .latest_checkpoint()
        .with_context(|| format!("{} has no checkpoint", dir.root.display()))?;
    Ok(load_checkpoint(&checkpoint, model)?.0)
}
