//! `reproduce <id>`: regenerate the paper's tables and figures (issue 5 builds the runs).

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Parser;

const IDS: [(&str, &str); 7] = [
    ("table1", "PASCAL-5i (synthetic-5i without data): PANet vs SRPNet, 1/5-shot, mIoU and FB-IoU"),
    ("table2", "COCO-20i: the same shape as table1"),
    ("table3", "component ablation: cosine vs fidelity, SRP, IQI, PAR"),
    ("table4", "IQI iterations T = 0..5"),
    ("fig1", "support-recovery pictures in the style of the paper's Fig. 1"),
    ("fig-bound", "support-recovery IoU against query IoU, per episode"),
    ("all", "every id above"),
];

#[derive(Parser)]
#[command(name = "reproduce", about = "Regenerate SRPNet's tables and figures")]
struct Cli {
    /// Which table or figure (see --list).
    id: Option<String>,
    /// List the ids.
    #[arg(long)]
    list: bool,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    if cli.list || cli.id.is_none() {
        for (id, what) in IDS {
            println!("{id:<10} {what}");
        }
        return Ok(());
    }
    let id = cli.id.unwrap_or_default();
    if !IDS.iter().any(|(known, _)| *known == id) {
        bail!("unknown reproduction id `{id}`; `reproduce --list` shows the ids");
    }
    bail!(
        "`{id}` is not built yet: the model, benchmark and book exist, but the episodic training \
         and evaluation it needs are still to come (see the project's open issues)"
    )
}
