//! The `srpnet` command line: thin argument parsing over the library.

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};

use srpnet::backend::{BackendKind, compiled_backends};
use srpnet::bench::{BenchCase, BenchSettings, run_case};
use srpnet::model::{ModelConfig, Profile};

#[derive(Parser)]
#[command(name = "srpnet", version, about = "SRPNet few-shot segmentation on Burn")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Method {
    Srpnet,
    Panet,
}

#[derive(Subcommand)]
enum Command {
    /// List the backends compiled into this binary and how to add the others.
    Backends,
    /// Time one training step and one inference episode (median after warm-up, peak memory).
    Bench {
        #[arg(long, value_enum, default_value = "flex")]
        backend: BackendKind,
        /// Profiles to time: the paper's ResNet-50 at 417 px and/or the embedded small ResNet.
        #[arg(long, value_enum, num_args = 1.., default_values = ["paper", "embedded"])]
        profile: Vec<Profile>,
        #[arg(long, value_enum, default_value = "srpnet")]
        method: Method,
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
    /// Episodes and benchmarks: export, check, figure, episodes, probe.
    Data {
        #[command(subcommand)]
        cmd: srpnet::data::cli::DataCommand,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Data { cmd } => srpnet::data::cli::run(cmd)?,
        Command::Backends => {
            println!("{:<10} {:<10} feature", "backend", "compiled");
            for b in BackendKind::ALL {
                let yes = if b.is_compiled() { "yes" } else { "no" };
                println!("{:<10} {:<10} {}", b.name(), yes, b.feature());
            }
            let names: Vec<_> = compiled_backends().iter().map(|b| b.name()).collect();
            println!("\nCompiled in: {}. Pick one with `--backend NAME`.", names.join(", "));
            println!("GPU backends: see README.md, section \"Backends\".");
        }
        Command::Bench {
            backend,
            profile,
            method,
            size,
            shots,
            warmup,
            runs,
            frozen_bn,
            frozen_stages,
            breakdown,
        } => {
            anyhow::ensure!(runs > 0, "--runs must be at least 1");
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
                if cfg!(debug_assertions) { "dev build" } else { "release build" },
            );
            println!(
                "{:<24} {:>6} {:>12} {:>12} {:>12} {:>14}",
                "case", "size", "params", "train s", "infer s", "peak RSS MiB"
            );
            for p in profile {
                let mut model = match method {
                    Method::Srpnet => ModelConfig::srpnet(p),
                    Method::Panet => ModelConfig::panet(p),
                };
                model.backbone.frozen_batch_norm = frozen_bn;
                model.backbone.frozen_stages = frozen_stages;
                let name = format!(
                    "{}-{}",
                    match method {
                        Method::Srpnet => "srpnet",
                        Method::Panet => "panet",
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
        }
    }
    Ok(())
}
