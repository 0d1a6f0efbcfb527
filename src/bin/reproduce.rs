//! `reproduce <id>`: regenerate the paper's tables and figures (see `reproductions/`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

use srpnet::backend::BackendKind;
use srpnet::model::Profile;
use srpnet::reproduce::{
    EXIT_INTERRUPTED, Interrupted, Options, install_interrupt_handler, list, run, verify, worker,
};

#[derive(Parser)]
#[command(
    name = "reproduce",
    about = "Regenerate SRPNet's tables and figures",
    version
)]
struct Cli {
    /// Which table or figure (`--list` shows them), `all`, or several ids separated by commas
    /// (`table3,table4`): each model is then trained once for all of them.
    id: Option<String>,
    /// List the ids.
    #[arg(long)]
    list: bool,
    /// Folder with the benchmark's data (else $SRPNET_DATA); without one, synthetic-5i.
    #[arg(long)]
    data_root: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "flex")]
    backend: BackendKind,
    /// embedded (small ResNet, minutes on a CPU) or paper (ResNet-50, GPU hours). Default:
    /// embedded without a data root, paper with one.
    #[arg(long, value_enum)]
    profile: Option<Profile>,
    /// Evaluation seeds (comma-separated), instead of the reproduction's.
    #[arg(long, value_delimiter = ',')]
    seeds: Option<Vec<u64>>,
    /// Training seeds (comma-separated), instead of the reproduction's: one model per method,
    /// fold and training seed.
    #[arg(long, value_delimiter = ',')]
    train_seeds: Option<Vec<u64>>,
    /// Evaluation episodes per seed, instead of the reproduction's.
    #[arg(long)]
    episodes: Option<u64>,
    /// Training steps per model (smoke runs only: the numbers then mean nothing).
    #[arg(long)]
    steps: Option<u64>,
    /// Where results (and `figures/`, `runs/`) go; default reproductions/results and figures/.
    #[arg(long)]
    out: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Ignore the run cache: train every model anew (the committed results are made so).
    #[arg(long)]
    fresh: bool,
    /// Regenerate afresh (into --out, else a temporary folder) and compare every cell with the
    /// committed CSV; exits 1 if a mean over folds lies outside its committed interval.
    #[arg(long)]
    verify: bool,
    /// With --verify: the folder of the committed results (default reproductions/results).
    #[arg(long, requires = "verify")]
    against: Option<PathBuf>,
    /// The backbone's starting weights: a TF.js model.json (or its folder), a torchvision
    /// .safetensors/.pth, `fetched` (scripts/fetch-weights.sh's, the paper profile's default) or
    /// `random`.
    #[arg(long)]
    weights: Option<String>,
    /// Print every model to be trained, the evaluations, and a projection of wall time and peak
    /// memory measured on a few real steps of the exact configuration; train nothing.
    #[arg(long)]
    plan: bool,
    /// Child processes that train and evaluate side by side; default one per core for the
    /// embedded profile on the CPU, else 1. The results are the same for any number.
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    jobs: Option<usize>,
    /// Internal: run as one of those child processes, on the job file the parent wrote.
    #[arg(long, hide = true)]
    worker: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match srpnet::backend::in_compute_pool(|| main_result(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        // --verify found a mean outside its committed interval.
        Ok(false) => ExitCode::from(1),
        // Ctrl-C or SIGTERM: the checkpoints are written; the same command continues.
        Err(e) if e.chain().any(|c| c.is::<Interrupted>()) => {
            eprintln!("{Interrupted}");
            ExitCode::from(EXIT_INTERRUPTED)
        }
        Err(e) => {
            eprintln!("error: {}", srpnet::error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// `Ok(false)`: a verification failed (the report says which cell).
fn main_result(cli: Cli) -> Result<bool> {
    // A worker only notes a signal; the parent exits on a second Ctrl-C.
    install_interrupt_handler(cli.worker.is_none());
    if let Some(job) = &cli.worker {
        worker(job)?;
        return Ok(true);
    }
    if cli.list || cli.id.is_none() {
        for (id, title) in list()? {
            println!("{id:<10} {title}");
        }
        println!("{:<10} every id above, sharing trained models", "all");
        return Ok(true);
    }
    let id = cli.id.unwrap_or_default();
    let started = std::time::Instant::now();
    let options = Options {
        data_root: cli.data_root,
        backend: cli.backend,
        profile: cli.profile,
        seeds: cli.seeds,
        train_seeds: cli.train_seeds,
        episodes: cli.episodes,
        steps: cli.steps,
        out: cli.out,
        quiet: cli.quiet,
        fresh: cli.fresh,
        weights: cli.weights,
        plan: cli.plan,
        jobs: cli.jobs,
    };
    if cli.verify {
        let committed = cli
            .against
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("reproductions/results"));
        let (report, ok) = verify(&id, options, &committed)?;
        println!("{report}");
        return Ok(ok);
    }
    let written = run(&id, options)?;
    if cli.plan {
        return Ok(true);
    }
    println!("wrote, in {:.0} s:", started.elapsed().as_secs_f64());
    for path in written {
        println!("  {}", path.display());
    }
    Ok(true)
}
