//! `reproduce <id> --plan`: the reproduction's models and evaluations as a [`Plan`], and the
//! projection of its cost measured by [`crate::plan::measure`].

use std::collections::HashSet;

use anyhow::{Context, Result};

use super::Runner;
use super::config::{Kind, Reproduction, merge};
use crate::data::Split;
use crate::plan::{MeasureSettings, Plan, PlannedEval, PlannedModel, describe, measure};
use crate::weights::init::locate;

/// A run with this many training steps still to do prints its projection when it starts.
const LONG_RUN_STEPS: u64 = 1_000;

impl Runner {
    /// Every (method, fold) to train and every evaluation of `r`, with resolved configs.
    pub(super) fn plan(&self, r: &Reproduction) -> Result<Plan> {
        let budget = self.budget(r);
        let mut models = Vec::new();
        let mut evals = Vec::new();
        let mut seen = HashSet::new();
        for method in &r.methods {
            for &fold in &r.folds {
                for &seed in self.trained_seeds(r, &budget) {
                    let config = self.train_config(r, method, fold, seed)?;
                    let dir = self.run_dir(&config);
                    let eval_model = merge(&config.model, &method.eval)?;
                    models.push(PlannedModel {
                        method: method.name.clone(),
                        fold,
                        done_steps: self.done_steps(&dir),
                        shared: !seen.insert(dir.root.clone()),
                        config,
                        eval_model,
                    });
                    let (shots, episodes, seeds) = match r.kind {
                        Kind::Fig1 => (vec![1], r.rows as u64, vec![1234]),
                        _ => (
                            r.shots.clone(),
                            budget.eval_episodes,
                            budget.eval_seeds.clone(),
                        ),
                    };
                    for k in shots {
                        evals.push(PlannedEval {
                            method: method.name.clone(),
                            fold,
                            shots: k,
                            episodes,
                            seeds: seeds.clone(),
                        });
                    }
                }
            }
        }
        Ok(Plan {
            title: format!(
                "reproduce {} ({}) on {}, {} profile",
                r.id,
                r.title,
                self.data.label(),
                format!("{:?}", self.profile).to_lowercase()
            ),
            backend: self.options.backend,
            models,
            evals,
        })
    }

    /// The plan and its measured projection, as printed by `--plan` and at the start of a long
    /// run. Opens the benchmark: a data root without it is an error naming what is missing.
    pub(super) fn projection(&self, r: &Reproduction) -> Result<String> {
        let plan = self.plan(r)?;
        let first = plan
            .models
            .first()
            .context("the reproduction has no model")?;
        let c = &first.config;
        let bench = c
            .data
            .open(c.image_size, &[Split::Train, Split::Test])
            .with_context(|| format!("--plan: opening {}", c.data.label()))?;
        let measured = measure(
            &plan,
            bench.as_ref(),
            bench.as_ref(),
            MeasureSettings::default(),
        )?;
        let mut text = format!("{plan}{}", describe(&plan, &measured));
        if self.jobs() > 1 {
            // Measured: table 1's 15-minute projection took 9 minutes with 2 workers on 2 cores.
            text += &format!(
                "with --jobs {0}: {0} worker processes share the models; at best the total / {0} \
                 on {0} free cores\n",
                self.jobs()
            );
        }
        Ok(text)
    }

    /// True when `r` still has [`LONG_RUN_STEPS`] or more training steps to do.
    pub(super) fn is_long(&self, r: &Reproduction) -> Result<bool> {
        let plan = self.plan(r)?;
        let left: u64 = plan
            .models
            .iter()
            .filter(|m| !m.shared)
            .map(|m| m.config.steps.saturating_sub(m.done_steps))
            .sum();
        Ok(left >= LONG_RUN_STEPS)
    }

    /// The backbone weights of `r`'s models and their sha256, for the provenance.
    pub(super) fn weights_label(&self, r: &Reproduction) -> Option<String> {
        let c = self
            .train_config(
                r,
                r.methods.first()?,
                *r.folds.first()?,
                self.budget(r).train_seeds[0],
            )
            .ok()?;
        let weights = locate(&c.backbone).ok()??;
        Some(weights.to_string())
    }
}
