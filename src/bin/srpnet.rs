//! The `srpnet` command line: thin argument parsing over the library.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use srpnet::backend::{BackendKind, compiled_backends};
use srpnet::bench::{BenchCase, BenchSettings, resnet50_conv_shapes, run_case, time_conv_shape};
use srpnet::commands::Method;
use srpnet::experiment::load_config;
use srpnet::model::{ModelConfig, Profile};

#[derive(Parser)]
#[command(
    name = "srpnet",
    version,
    about = "SRPNet few-shot segmentation on Burn"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the backends compiled into this binary and how to add the others.
    Backends,
    /// Time one training step and one inference episode (median after warm-up, peak memory).
    Bench {
        #[arg(long, value_enum, default_value = "flex")]
        backend: BackendKind,
        /// Profiles to time: the embedded small ResNet and/or the paper's ResNet-50 at 417 px
        /// (small first: the process's peak memory only grows).
        #[arg(long, value_enum, num_args = 1.., default_values = ["embedded", "paper"])]
        profile: Vec<Profile>,
        #[arg(long, value_enum, default_value = "srpnet")]
        method: Method,
        /// A model config file (TOML or JSON) to time instead of the method's preset; fields it
        /// leaves out take the paper-profile defaults.
        #[arg(long)]
        config: Option<std::path::PathBuf>,
        /// Override the profile's square image size.
        #[arg(long)]
        size: Option<usize>,
        #[arg(long, default_value_t = 1)]
        shots: usize,
        #[arg(long, default_value_t = 1)]
        warmup: usize,
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Keep every batch norm on its running statistics (a speed lever).
        #[arg(long)]
        frozen_bn: bool,
        /// Freeze the stem and the first N-1 layers (0 = none, 5 = the whole backbone).
        #[arg(long, default_value_t = 0)]
        frozen_stages: usize,
        /// Also time the backbone and the upsampling alone, to see where the step's time goes.
        #[arg(long)]
        breakdown: bool,
    },
    /// Train SRPNet or the PANet baseline episodically (checkpoints; --resume continues).
    Train(srpnet::commands::TrainArgs),
    /// Evaluate a run (or an untrained model): mIoU, FB-IoU, support-recovery IoU; CSVs.
    Eval(srpnet::commands::EvalArgs),
    /// Segment your own query images from a few labelled support images.
    Predict(srpnet::commands::PredictArgs),
    /// Episodes and benchmarks: export, prepare, check, figure, episodes, probe.
    Data {
        #[command(subcommand)]
        cmd: srpnet::data::cli::DataCommand,
    },
    /// ImageNet weights: check that they load and classify photos.
    Weights {
        #[command(subcommand)]
        cmd: srpnet::weights::cli::WeightsCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match srpnet::backend::in_compute_pool(|| run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", srpnet::error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Data { cmd } => srpnet::data::cli::run(cmd)?,
        Command::Weights { cmd } => srpnet::weights::cli::run(cmd)?,
        Command::Train(args) => srpnet::commands::run_train(&args)?,
        Command::Eval(args) => srpnet::commands::run_eval(&args)?,
        Command::Predict(args) => srpnet::commands::run_predict(&args)?,
        Command::Backends => {
            println!("{:<10} {:<10} feature", "backend", "compiled");
            for b in BackendKind::ALL {
                let yes = if b.is_compiled() { "yes" } else { "no" };
                println!("{:<10} {:<10} {}", b.name(), yes, b.feature());
            }
            let names: Vec<_> = compiled_backends().iter().map(|b| b.name()).collect();
            println!(
                "\nCompiled in: {}. Pick one with `--backend NAME`.",
                names.join(", ")
            );
            println!("GPU backends: see README.md, section \"Backends\".");
        }
        Command::Bench {
            backend,
            profile,
            method,
            config,
            size,
            shots,
            warmup,
            runs,
            frozen_bn,
            frozen_stages,
            breakdown,
        } => {
            anyhow::ensure!(runs > 0, "--runs must be at least 1");
            backend.device(false)?;
            let settings = BenchSettings {
                backend,
                warmup,
                runs,
                breakdown,
            };
            println!(
                "srpnet bench: backend {}, {shots}-shot, warm-up {warmup}, median of {runs} run(s), \
                 frozen BN {frozen_bn}, frozen stages {frozen_stages}, srpnet {} ({})",
                backend.name(),
                env!("CARGO_PKG_VERSION"),
                if cfg!(debug_assertions) {
                    "dev build"
                } else {
                    "release build"
                },
            );
            println!(
                "{:<24} {:>6} {:>12} {:>12} {:>12} {:>14}",
                "case", "size", "params", "train s", "infer s", "peak RSS MiB"
            );
            for p in profile {
                let mut model = match &config {
                    Some(path) => load_config::<ModelConfig>(path)?,
                    None => method.model(p),
                };
                model.backbone.frozen_batch_norm = frozen_bn;
                model.backbone.frozen_stages = frozen_stages;
                let name = format!(
                    "{}-{}",
                    match (&config, method) {
                        (Some(_), _) => "config",
                        (None, Method::Srpnet) => "srpnet",
                        (None, Method::Panet) => "panet",
                    },
                    match p {
                        Profile::Paper => "resnet50",
                        Profile::Embedded => "embedded",
                    }
                );
                let case = BenchCase {
                    name,
                    model,
                    image_size: size.unwrap_or(p.image_size()),
                    shots,
                };
                let r = run_case(&case, &settings)?;
                println!(
                    "{:<24} {:>6} {:>12} {:>12.3} {:>12.3} {:>14}",
                    r.name,
                    r.image_size,
                    r.parameters,
                    r.train_step_s,
                    r.inference_s,
                    r.peak_rss_mib.map_or("n/a".into(), |m| format!("{m:.0}")),
                );
                for (part, s) in &r.breakdown {
                    println!("    {part:<56} {s:>8.3} s");
                }
            }
            if breakdown {
                print_conv_shapes(&settings)?;
            }
        }
    }
    Ok(())
}

/// The per-shape table of `bench --breakdown`: each convolution's forward pass and its two
/// gradients, in seconds and GFLOP/s.
fn print_conv_shapes(settings: &BenchSettings) -> anyhow::Result<()> {
    println!(
        "\nResNet-50 convolutions at 417 px, batch 2 (median s, GFLOP/s in brackets):\n\
         {:<28} {:>7} {:>16} {:>16} {:>16}",
        "shape", "GFLOP", "forward", "input grad", "weight grad"
    );
    for shape in resnet50_conv_shapes() {
        let t = time_conv_shape(&shape, settings)?;
        let cell = |s: f64| format!("{s:.3} ({:.0})", shape.gflop() / s);
        println!(
            "{:<28} {:>7.2} {:>16} {:>16} {:>16}",
            shape.name,
            shape.gflop(),
            cell(t.forward_s),
            cell(t.input_grad_s),
            cell(t.weight_grad_s)
        );
    }
    Ok(())
}
