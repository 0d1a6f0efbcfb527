//! `srpnet train`, `srpnet eval` and `srpnet predict`: argument structs and what they run. The
//! binary only parses; the work is here and in [`crate::train`] / [`crate::eval`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail, ensure};
use clap::{Args, ValueEnum};

use crate::backend::BackendKind;
use crate::data::images::{OwnImages, load_image, overlay, save_mask, save_rgb};
use crate::data::transforms::resize_nearest;
use crate::data::{Mask, Split, Transform};
use crate::eval::{EvalProtocol, EvalSettings, evaluate, visualize};
use crate::experiment::{BenchmarkName, Provenance, load_config};
use crate::model::loss::{foreground_iou, predicted_mask};
use crate::model::{EpisodeTensors, ModelConfig, Phase, Profile, SrpNet};
use crate::train::{RunDir, TrainConfig, TrainOptions, load_checkpoint, train};
use crate::weights::init::{BackboneInit, load_backbone_into};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Method {
    Srpnet,
    Panet,
}

impl Method {
    pub fn model(self, profile: Profile) -> ModelConfig {
        match self {
            Method::Srpnet => ModelConfig::srpnet(profile),
            Method::Panet => ModelConfig::panet(profile),
        }
    }
}

/// What `train` and `eval` share: which benchmark and fold.
#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// The benchmark (default: the config's, synthetic-5i for the presets).
    #[arg(long, value_enum)]
    pub benchmark: Option<BenchmarkName>,
    /// Folder with the benchmark's data (else $SRPNET_DATA).
    #[arg(long)]
    pub data_root: Option<PathBuf>,
    #[arg(long)]
    pub fold: Option<usize>,
    #[arg(long)]
    pub shots: Option<usize>,
}

impl DataArgs {
    /// Puts --benchmark and --data-root into `data`.
    fn apply(&self, data: &mut crate::experiment::DataConfig) {
        if let Some(b) = self.benchmark {
            data.benchmark = b;
        }
        if let Some(root) = &self.data_root {
            data.root = Some(root.clone());
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// The run folder: config.json, train-log.csv and checkpoint/ go here.
    #[arg(long)]
    pub out: PathBuf,
    /// A training config (TOML or JSON); fields it leaves out take the defaults.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The preset when no --config is given.
    #[arg(long, value_enum, default_value = "srpnet")]
    pub method: Method,
    #[arg(long, value_enum, default_value = "embedded")]
    pub profile: Profile,
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(long)]
    pub steps: Option<u64>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Continue the run in --out from its last checkpoint (never reloads ImageNet weights).
    #[arg(long)]
    pub resume: bool,
    /// The backbone's starting weights: a TF.js model.json (or its folder), a torchvision
    /// .safetensors/.pth, `fetched` (what scripts/fetch-weights.sh put under $SRPNET_CACHE: the
    /// paper profile's default) or `random`. The file's format sets the backbone variant, its
    /// batch-norm epsilon and the input normalisation.
    #[arg(long, conflicts_with = "resume")]
    pub weights: Option<String>,
    #[arg(long, value_enum, default_value = "flex")]
    pub backend: BackendKind,
    /// No progress bar (for logs and scripts).
    #[arg(long)]
    pub quiet: bool,
}

/// The config a `train` call runs: the run's own on --resume without --config, else the
/// file or the preset, with the command line's overrides.
pub fn resolve_train_config(args: &TrainArgs) -> Result<TrainConfig> {
    let run = RunDir::new(&args.out);
    let mut config = match (&args.config, args.resume) {
        (Some(path), _) => load_config::<TrainConfig>(path)?,
        (None, true) if run.config_path().is_file() => {
            load_config::<TrainConfig>(&run.config_path())?
        }
        (None, _) => TrainConfig::preset(args.method.model(args.profile), args.profile),
    };
    args.data.apply(&mut config.data);
    if let Some(f) = args.data.fold {
        config.fold = f;
    }
    if let Some(k) = args.data.shots {
        config.shots = k;
    }
    if let Some(s) = args.steps {
        config.steps = s;
    }
    if let Some(s) = args.seed {
        config.seed = s;
    }
    if let Some(w) = &args.weights {
        config.backbone = BackboneInit::named(w);
    }
    Ok(config)
}

pub fn run_train(args: &TrainArgs) -> Result<()> {
    let config = resolve_train_config(args)?;
    // The config the user wrote is checked before its weights are looked for.
    config.validate()?;
    let (config, weights) = if args.resume {
        (config, None)
    } else {
        config.resolved()?
    };
    config.validate()?;
    let benchmark = config
        .data
        .open(config.image_size, &[Split::Train])
        .with_context(|| format!("opening {}", config.data.label()))?;
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = interrupt.clone();
    // Ctrl-C: finish the current step, save a checkpoint, exit. A second Ctrl-C kills at once.
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    });
    println!(
        "srpnet train: {} fold {} {}-shot, {} steps, {} px, backend {}, run folder {}",
        config.data.label(),
        config.fold,
        config.shots,
        config.steps,
        config.image_size,
        args.backend.name(),
        args.out.display()
    );
    match (&weights, &config.backbone.weights) {
        (Some(w), _) => println!("backbone: ImageNet weights {w}"),
        (None, Some(w)) => {
            println!("backbone: from the checkpoint (the run started from {w}; not reloaded)")
        }
        (None, None) => println!("backbone: random initialisation"),
    }
    let outcome = train(
        &config,
        &RunDir::new(&args.out),
        benchmark.as_ref(),
        &TrainOptions {
            backend: args.backend,
            resume: args.resume,
            progress: !args.quiet,
            interrupt: &interrupt,
            on_step: None,
        },
    )?;
    if outcome.interrupted {
        println!(
            "interrupted at step {}; resume with: srpnet train --out {} --resume",
            outcome.state.step,
            args.out.display()
        );
        std::process::exit(130);
    }
    println!(
        "trained {} steps in {:.0} s; checkpoint in {}",
        outcome.state.step,
        outcome.state.elapsed_s,
        RunDir::new(&args.out).checkpoint().display()
    );
    Ok(())
}

#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    /// A training run folder (its config.json and checkpoint/).
    #[arg(long, required_unless_present = "untrained")]
    pub run: Option<PathBuf>,
    /// Evaluate a freshly initialised model of --method/--profile instead (a floor).
    #[arg(long)]
    pub untrained: bool,
    /// With --untrained: a ResNet-50 on these ImageNet weights (see `load_model`).
    #[arg(long, requires = "untrained")]
    pub weights: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "srpnet")]
    pub method: Method,
    #[arg(long, value_enum, default_value = "embedded")]
    pub profile: Profile,
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(long, value_enum, default_value = "panet")]
    pub protocol: EvalProtocol,
    /// Override the protocol's episodes per seed.
    #[arg(long)]
    pub episodes: Option<u64>,
    /// Override the protocol's seeds (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub seeds: Option<Vec<u64>>,
    /// Where to write the CSVs (default: the run folder, or the current folder).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Score each query at its original label size (predictions upsampled bilinearly), as
    /// PFENet and HSNet report; the default scores at the network size.
    #[arg(long)]
    pub original_size: bool,
    /// Write a picture of each of the first --visualize-count episodes here: supports with
    /// their masks, the query with the prediction and with the ground truth (HSNet's --visualize).
    #[arg(long)]
    pub visualize: Option<PathBuf>,
    #[arg(long, default_value_t = 10, requires = "visualize")]
    pub visualize_count: usize,
    #[arg(long, value_enum, default_value = "flex")]
    pub backend: BackendKind,
}

/// Builds the model a command evaluates: a run's checkpoint, or an untrained preset. Returns
/// the model on the inference device, the training config, and where its weights came from.
pub fn load_model(
    run: Option<&Path>,
    weights: Option<&Path>,
    method: Method,
    profile: Profile,
    backend: BackendKind,
) -> Result<(SrpNet, TrainConfig, String)> {
    let device = backend.device(false)?;
    if let (None, Some(path)) = (run, weights) {
        return imagenet_model(path, method, backend);
    }
    match run {
        Some(dir) => {
            let run = RunDir::new(dir);
            let config: TrainConfig = load_config(&run.config_path())
                .with_context(|| format!("{} is not a training run folder", dir.display()))?;
            let checkpoint = run.latest_checkpoint().with_context(|| {
                format!("{} has no checkpoint yet; train it first", dir.display())
            })?;
            let model = config.model.init(&device)?;
            let (model, state) = load_checkpoint(&checkpoint, model)?;
            Ok((
                model,
                config,
                format!("{} (step {})", checkpoint.display(), state.step),
            ))
        }
        None => {
            let mut config = TrainConfig::preset(method.model(profile), profile);
            config.backbone = BackboneInit::default();
            device.seed(config.seed);
            let model = config.model.init(&device)?;
            Ok((model, config, "untrained (random initialisation)".into()))
        }
    }
}

pub fn run_eval(args: &EvalArgs) -> Result<()> {
    let (model, mut config, source) = load_model(
        args.run.as_deref(),
        args.weights.as_deref(),
        args.method,
        args.profile,
        args.backend,
    )?;
    args.data.apply(&mut config.data);
    let settings = EvalSettings {
        fold: args.data.fold.unwrap_or(config.fold),
        shots: args.data.shots.unwrap_or(config.shots),
        episodes: args.episodes.unwrap_or(args.protocol.episodes()),
        seeds: args.seeds.clone().unwrap_or_else(|| args.protocol.seeds()),
        image_size: config.image_size,
        normalization: config.normalization,
        original_size: args.original_size,
    };
    ensure!(
        settings.episodes > 0 && !settings.seeds.is_empty(),
        "give at least one episode and one seed"
    );
    // The output folders first: a path that cannot be written fails before the evaluation.
    let out = args
        .out
        .clone()
        .or_else(|| args.run.clone())
        .unwrap_or_else(|| PathBuf::from("."));
    for dir in args.visualize.iter().chain(std::iter::once(&out)) {
        std::fs::create_dir_all(dir).with_context(|| {
            format!(
                "cannot create the output folder {}: give a folder that can be written",
                dir.display()
            )
        })?;
    }
    let benchmark = config.data.open(config.image_size, &[Split::Test])?;
    let bar = indicatif::ProgressBar::new(settings.episodes * settings.seeds.len() as u64);
    let report = evaluate(&model, benchmark.as_ref(), &settings, |done, _| {
        bar.set_position(done)
    })?;
    bar.finish_and_clear();
    print!("{}", report.table());
    let mut provenance = Provenance::new(args.backend.name());
    provenance
        .push("dataset", config.data.label())
        .push("protocol", format!("{:?}", args.protocol).to_lowercase())
        .push("fold", settings.fold)
        .push("shots", settings.shots)
        .push("seeds", format!("{:?}", settings.seeds))
        .push("episodes per seed", settings.episodes)
        .push("image size", settings.image_size)
        .push("scored at", settings.scored_at())
        .push("checkpoint", &source);
    if let Some(w) = &config.backbone.weights {
        provenance.push(
            "backbone weights",
            format!(
                "{w} (sha256 {})",
                config.backbone.sha256.as_deref().unwrap_or("unknown")
            ),
        );
    }
    let stem = format!("eval-fold{}-{}shot", settings.fold, settings.shots);
    let csv = out.join(format!("{stem}.csv"));
    report.write_csv(&csv, &provenance)?;
    report.write_episodes_csv(&out.join(format!("{stem}-episodes.csv")), &provenance)?;
    println!("wrote {} and {stem}-episodes.csv", csv.display());
    if let Some(dir) = &args.visualize {
        let files = visualize(
            &model,
            benchmark.as_ref(),
            &settings,
            args.visualize_count,
            dir,
        )?;
        println!("wrote {} picture(s) to {}", files.len(), dir.display());
    }
    Ok(())
}

#[derive(Debug, Clone, Args)]
pub struct PredictArgs {
    /// A training run folder; without it, an untrained model of --method/--profile.
    #[arg(long, conflicts_with = "weights")]
    pub run: Option<PathBuf>,
    /// No training: the paper-profile model on these ImageNet weights (the Keras TF.js folder
    /// from scripts/fetch-weights.sh, or a torchvision .safetensors/.pth), its pyramid untrained.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "srpnet")]
    pub method: Method,
    #[arg(long, value_enum, default_value = "embedded")]
    pub profile: Profile,
    /// A support image; give one --mask for each.
    #[arg(long = "support", required = true)]
    pub supports: Vec<PathBuf>,
    /// The support masks, in the order of --support (0/255, 0/1 or palette PNGs).
    #[arg(long = "mask", required = true)]
    pub masks: Vec<PathBuf>,
    /// Query images (one or more).
    #[arg(long = "query", required = true)]
    pub queries: Vec<PathBuf>,
    /// Which mask value (or VOC palette index) is the foreground, when a mask holds several.
    #[arg(long)]
    pub class_id: Option<u8>,
    /// Output folder for the predicted masks and overlays.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value = "flex")]
    pub backend: BackendKind,
}

// ANCHOR: predict
pub fn run_predict(args: &PredictArgs) -> Result<()> {
    if args.supports.len() != args.masks.len() {
        bail!(
            "{} --support image(s) but {} --mask(s): give one mask per support image, in order",
            args.supports.len(),
            args.masks.len()
        );
    }
    // The user's images and masks first: every one is read and checked before the model (whose
    // weights may be missing) is loaded and before the output folder is created.
    let own = OwnImages {
        supports: args
            .supports
            .iter()
            .cloned()
            .zip(args.masks.iter().cloned())
            .collect(),
        queries: args.queries.iter().map(|q| (q.clone(), None)).collect(),
        class_id: args.class_id,
        class_name: "object".into(),
    };
    let episodes = own.episodes()?;
    let (model, config, source) = load_model(
        args.run.as_deref(),
        args.weights.as_deref(),
        args.method,
        args.profile,
        args.backend,
    )?;
    let device = args.backend.device(false)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    println!(
        "srpnet predict: {} support(s), {} query image(s), weights: {source}",
        args.supports.len(),
        args.queries.len()
    );
    let transform = Transform::eval(config.image_size, config.normalization);
    for (episode, query_path) in episodes.into_iter().zip(&args.queries) {
        let episode = transform.apply(episode, &mut crate::data::rng::Rng::new(0));
        let tensors = EpisodeTensors::from_episode(&episode, &device)?;
        let out = model.forward(&tensors, Phase::Infer)?;
        let support_iou = foreground_iou(out.support_logits, tensors.support_masks.clone())?;
        let labels = predicted_mask(out.query_probabilities)?;
        let (h, w) = episode.query.image.size();
        let (oh, ow) = episode.query.original_size;
        let mask = resize_nearest(
            &Mask {
                height: h,
                width: w,
                data: labels,
            },
            oh,
            ow,
        );
        let stem = query_path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("query");
        let mask_path = args.out.join(format!("{stem}-mask.png"));
        let white = Mask {
            data: mask.data.iter().map(|&v| v * 255).collect(),
            ..mask.clone()
        };
        save_mask(&mask_path, &white)?;
        let overlay_path = args.out.join(format!("{stem}-overlay.png"));
        save_rgb(&overlay_path, &overlay(&load_image(query_path)?, &mask))?;
        let share = 100.0 * mask.count(1) as f64 / mask.data.len().max(1) as f64;
        println!(
            "{}: foreground {share:.1}% of the image; support-recovery IoU {:.1}% \
             (how well the prototypes explain their own supports: the upper bound)\n  wrote {} and {}",
            query_path.display(),
            100.0 * support_iou,
            mask_path.display(),
            overlay_path.display()
        );
    }
    Ok(())
}
// ANCHOR_END: predict

/// The paper-profile model with its backbone on ImageNet weights and an untrained (seeded)
/// pyramid: what a user can run without training. The file's format sets the backbone variant
/// and the input normalisation (Keras TF.js: v1, Caffe BGR; torchvision: v1.5, mean/std).
fn imagenet_model(
    path: &Path,
    method: Method,
    backend: BackendKind,
) -> Result<(SrpNet, TrainConfig, String)> {
    let device = backend.device(false)?;
    let mut config = TrainConfig::preset(method.model(Profile::Paper), Profile::Paper);
    config.backbone = BackboneInit::named(&path.display().to_string());
    let (config, weights) = config.resolved()?;
    let weights = weights.context("ImageNet weights were named")?;
    device.seed(config.seed);
    let model = config.model.init(&device)?;
    let (model, _) = load_backbone_into(model, &weights, &device)?;
    Ok((
        model,
        config,
        format!("ImageNet weights {weights} (pyramid untrained)"),
    ))
}
