//! `srpnet data ...`: export, check, figure, episodes, probe. Thin: parse, call the library, print.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};

use super::baseline::{BaselineReport, episodes_per_second, fixed_feature_baseline};
use super::coco::{COCO_EXPECTED, COCO_HELP, Coco20i};
use super::episode::{ClassId, EpisodeSpec, Split};
use super::export::{ExportLayout, ExportOptions, export_synthetic, read_manifest};
use super::figure::{SAMPLES_FIGURE, write_samples_figure};
use super::folder::{FOLDER_HELP, FolderBenchmark};
use super::folds::{FoldConvention, NUM_FOLDS};
use super::pascal::{
    Pascal5i, PascalConfig, PascalProtocol, VOC_EXPECTED, VOC_HELP, resolve_voc_root,
};
use super::prepare::prepare_pascal;
use super::sampler::Benchmark;
use super::synthetic::Synthetic5i;
use super::transforms::{Normalization, Transform};

#[derive(Subcommand, Debug, Clone)]
pub enum DataCommand {
    /// Write synthetic-5i to disk: the VOC layout (JPEGImages, SegmentationClassAug, lists) or a
    /// `folder` benchmark (`--layout folder`).
    Export(ExportArgs),
    /// Build PASCAL-5i from the two official archives (VOC2012 tar + SBD tgz), then check it.
    Prepare(PrepareArgs),
    /// Check a PASCAL-5i, COCO-20i or own-folder tree: what it holds per split and fold, against
    /// the expected numbers where they are known.
    Check(CheckArgs),
    /// Draw the synthetic-5i sample figure of the book.
    Figure {
        #[arg(long, default_value = SAMPLES_FIGURE)]
        out: PathBuf,
        /// Image size in pixels.
        #[arg(long, default_value_t = 96)]
        size: usize,
    },
    /// Print the plans (class, support ids, query id) of the first episodes of a stream.
    Episodes(EpisodesArgs),
    /// Measure synthetic-5i: generation speed and the fixed-feature baseline's mIoU.
    Probe(ProbeArgs),
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportBenchmark {
    #[value(name = "synthetic-5i")]
    Synthetic5i,
}

#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    pub benchmark: ExportBenchmark,
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 96)]
    pub size: usize,
    /// Images per class from the train pool.
    #[arg(long, default_value_t = 50)]
    pub train_per_class: usize,
    /// Images per class from the test pool (the val list).
    #[arg(long, default_value_t = 20)]
    pub val_per_class: usize,
    /// `voc` (for the PASCAL-5i loader) or `folder` (a `folder` benchmark).
    #[arg(long, value_enum, default_value = "voc")]
    pub layout: ExportLayout,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrepareBenchmark {
    Pascal,
}

#[derive(Args, Debug, Clone)]
pub struct PrepareArgs {
    pub benchmark: PrepareBenchmark,
    /// VOCtrainval_11-May-2012.tar, as downloaded.
    #[arg(long)]
    pub voc: PathBuf,
    /// SBD's benchmark.tgz, as downloaded.
    #[arg(long)]
    pub sbd: PathBuf,
    /// The data root to write (VOCdevkit/VOC2012 inside); a rerun reuses what is complete.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileBenchmark {
    Pascal,
    Coco,
    Folder,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnyBenchmark {
    #[value(name = "synthetic-5i")]
    Synthetic5i,
    Pascal,
    Coco,
    Folder,
}

#[derive(Args, Debug, Clone)]
pub struct RootArgs {
    /// The data root (else $SRPNET_DATA).
    #[arg(long, alias = "data-root")]
    pub root: Option<PathBuf>,
    /// PASCAL-5i protocol.
    #[arg(long, default_value = "panet")]
    pub protocol: PascalProtocol,
    /// PASCAL-5i: override the protocol's small-object filter (pixels).
    #[arg(long)]
    pub min_object_pixels: Option<usize>,
    /// COCO-20i fold convention.
    #[arg(long, default_value = "interleaved")]
    pub folds: FoldConvention,
}

#[derive(Args, Debug, Clone)]
pub struct CheckArgs {
    pub benchmark: FileBenchmark,
    #[command(flatten)]
    pub root: RootArgs,
}

#[derive(Args, Debug, Clone)]
pub struct EpisodesArgs {
    pub benchmark: AnyBenchmark,
    #[command(flatten)]
    pub root: RootArgs,
    #[arg(long, default_value_t = 0)]
    pub fold: usize,
    #[arg(long, default_value = "test")]
    pub split: Split,
    #[arg(long, default_value_t = 1)]
    pub shots: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, default_value_t = 5)]
    pub count: u64,
}

#[derive(Args, Debug, Clone)]
pub struct ProbeArgs {
    /// Image sizes to time.
    #[arg(long, value_delimiter = ',', default_values_t = vec![96, 417])]
    pub sizes: Vec<usize>,
    /// Episodes per size for the timing.
    #[arg(long, default_value_t = 50)]
    pub timing_episodes: usize,
    /// Test episodes per fold for the baseline (0 skips it).
    #[arg(long, default_value_t = 250)]
    pub episodes: usize,
    #[arg(long, default_value_t = 1)]
    pub shots: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Runs one `srpnet data` command.
pub fn run(cmd: DataCommand) -> anyhow::Result<()> {
    match cmd {
        DataCommand::Export(a) => {
            let m = export_synthetic(&ExportOptions {
                out: a.out.clone(),
                size: a.size,
                train_per_class: a.train_per_class,
                val_per_class: a.val_per_class,
                layout: a.layout,
            })?;
            let (dir, check) = match a.layout {
                ExportLayout::Voc => (a.out.join("VOCdevkit/VOC2012"), "pascal"),
                ExportLayout::Folder => (a.out.clone(), "folder"),
            };
            println!(
                "wrote synthetic-5i (generator v{}, {} px) to {}: {} train + {} val images per class",
                m.generator_version,
                m.size,
                dir.display(),
                m.train_per_class,
                m.val_per_class
            );
            println!(
                "check it with: srpnet data check {check} --root {}",
                a.out.display()
            );
            Ok(())
        }
        DataCommand::Prepare(a) => {
            let PrepareBenchmark::Pascal = a.benchmark;
            let p = prepare_pascal(&a.voc, &a.sbd, &a.out)?;
            println!(
                "prepared {}: {} images, SegmentationClassAug {} masks from VOC + {} from SBD, \
                 trainaug.txt {} names ({} files already complete, reused)",
                p.voc_root.display(),
                p.images,
                p.masks_from_voc,
                p.masks_from_sbd,
                p.trainaug,
                p.reused
            );
            check_pascal(&RootArgs {
                root: Some(a.out.clone()),
                protocol: PascalProtocol::Panet,
                min_object_pixels: None,
                folds: FoldConvention::Interleaved,
            })
        }
        DataCommand::Check(a) => match a.benchmark {
            FileBenchmark::Pascal => check_pascal(&a.root),
            FileBenchmark::Coco => check_coco(&a.root),
            FileBenchmark::Folder => check_folder(&a.root),
        },
        DataCommand::Figure { out, size } => {
            write_samples_figure(&out, size)?;
            println!("wrote {}", out.display());
            Ok(())
        }
        DataCommand::Episodes(a) => print_episodes(&a),
        DataCommand::Probe(a) => probe(&a),
    }
}

fn root_of(args: &RootArgs) -> anyhow::Result<PathBuf> {
    match super::data_root(args.root.as_deref()) {
        Some(r) => Ok(r),
        None => bail!(
            "no data root: pass --root DIR or set {}",
            super::DATA_ROOT_ENV
        ),
    }
}

fn count_files(dir: &Path, ext: &str) -> usize {
    std::fs::read_dir(dir).map_or(0, |rd| {
        rd.filter_map(Result::ok)
            .filter(|e| {
                e.path()
                    .extension()
                    .and_then(|x| x.to_str())
                    .is_some_and(|x| x.eq_ignore_ascii_case(ext))
            })
            .count()
    })
}

fn count_lines(path: &Path) -> Option<usize> {
    std::fs::read_to_string(path)
        .ok()
        .map(|t| t.lines().filter(|l| !l.trim().is_empty()).count())
}

/// Prints found-vs-expected counts and per-fold class counts; fails if anything is missing.
pub fn check_pascal(args: &RootArgs) -> anyhow::Result<()> {
    let root = root_of(args)?;
    let voc = resolve_voc_root(&root)?;
    let manifest = read_manifest(&voc);
    let expected: Vec<(String, usize)> = match &manifest {
        Some(m) => m.expected.clone(),
        None => VOC_EXPECTED
            .iter()
            .map(|(p, n)| (p.to_string(), *n))
            .collect(),
    };
    println!("pascal-5i check of {}", voc.display());
    if let Some(m) = &manifest {
        println!(
            "  (an export of {} v{} at {} px: expected numbers from its manifest)",
            m.benchmark, m.generator_version, m.size
        );
    }
    let mut problems: Vec<String> = Vec::new();
    println!("  {:<40} {:>8} {:>9}", "item", "found", "expected");
    for (item, want) in &expected {
        let found = if let Some(dir) = item.strip_suffix("/*.jpg") {
            Some(count_files(&voc.join(dir), "jpg"))
        } else if let Some(dir) = item.strip_suffix("/*.png") {
            Some(count_files(&voc.join(dir), "png"))
        } else {
            count_lines(&voc.join(item))
        };
        let shown = found.map_or("missing".to_string(), |n| n.to_string());
        let ok = found == Some(*want);
        println!(
            "  {:<40} {:>8} {:>9} {}",
            item,
            shown,
            want,
            if ok { "ok" } else { "<-" }
        );
        if !ok {
            problems.push(format!(
                "{}: found {shown}, expected {want}",
                voc.join(item).display()
            ));
        }
    }
    let config = PascalConfig {
        root: root.clone(),
        protocol: args.protocol,
        min_object_pixels: args.min_object_pixels,
    };
    let bench = Pascal5i::open(&config)?;
    println!(
        "  protocol {}: train list {} entries, test list {} entries; usable images {}; small-object filter {} px",
        bench.protocol,
        bench.list_lengths.0,
        bench.list_lengths.1,
        bench.records.len(),
        bench.min_object_pixels
    );
    let note = format!(
        " (small-object filter {} px; --min-object-pixels changes it)",
        bench.min_object_pixels
    );
    fold_counts(
        &bench,
        |f, s| bench.class_counts(f, s),
        &note,
        &mut problems,
    );
    finish(problems, &bench.skipped(), VOC_HELP)
}

/// Prints what a COCO tree holds per split and fold; fails if anything is missing.
pub fn check_coco(args: &RootArgs) -> anyhow::Result<()> {
    let root = root_of(args)?;
    let bench = Coco20i::open(&root, args.folds, &[Split::Train, Split::Test])?;
    println!(
        "coco-20i check of {} (folds: {})",
        bench.root.display(),
        bench.convention
    );
    let mut problems = Vec::new();
    for ((name, want), split) in COCO_EXPECTED.iter().zip([Split::Train, Split::Test]) {
        let s = bench.split(split)?;
        println!(
            "  {name}: {} images listed (expected {want}), {} usable, {} annotations",
            s.listed_images,
            s.images.len(),
            s.images.iter().map(|i| i.anns.len()).sum::<usize>()
        );
        if s.listed_images != *want {
            problems.push(format!(
                "{}: {} images listed, expected {want}",
                s.json.display(),
                s.listed_images
            ));
        }
    }
    fold_counts(&bench, |f, s| bench.class_counts(f, s), "", &mut problems);
    finish(problems, &bench.skipped(), COCO_HELP)
}

/// Prints what a folder benchmark holds: classes, folds, images per class and split; fails if a
/// class of some fold has fewer than two images (a 1-shot episode needs a support and a query).
pub fn check_folder(args: &RootArgs) -> anyhow::Result<()> {
    let bench = FolderBenchmark::open(&root_of(args)?)?;
    println!(
        "folder check of {}: {} classes, {} usable images; folds from {}; test episodes from {}",
        bench.root.display(),
        bench.classes.len(),
        bench.records.len(),
        bench.folds_from,
        if bench.test_list {
            "test.txt (training uses the other images)"
        } else {
            "every image (as PANet's protocol)"
        }
    );
    let mut problems = Vec::new();
    fold_counts(
        &bench,
        |f, s| bench.class_counts(f, s),
        " (a 1-shot episode needs 2)",
        &mut problems,
    );
    finish(problems, &bench.skipped(), FOLDER_HELP)
}

/// Prints the images per class of every fold and split; a class with fewer than two (a 1-shot
/// episode needs a support and a query) is a problem, with `note` after it.
fn fold_counts(
    bench: &dyn Benchmark,
    counts: impl Fn(usize, Split) -> Vec<(ClassId, usize)>,
    note: &str,
    problems: &mut Vec<String>,
) {
    for fold in 0..NUM_FOLDS {
        for split in [Split::Test, Split::Train] {
            let counts = counts(fold, split);
            let text: Vec<String> = counts
                .iter()
                .map(|(c, n)| format!("{} {n}", bench.class_name(*c)))
                .collect();
            println!("  fold {fold} {split:<5}: {}", text.join(", "));
            for (c, n) in counts {
                if n < 2 {
                    problems.push(format!(
                        "fold {fold} {split}: class {} has {n} images{note}",
                        bench.class_name(c)
                    ));
                }
            }
        }
    }
}

fn finish(problems: Vec<String>, skipped: &super::SkipReport, help: &str) -> anyhow::Result<()> {
    println!("  {skipped}");
    if problems.is_empty() && skipped.is_empty() {
        println!("  verdict: complete");
        return Ok(());
    }
    for p in &problems {
        println!("  missing: {p}");
    }
    if problems.is_empty() {
        println!(
            "  verdict: usable, with {} skipped item(s) listed above",
            skipped.len()
        );
        return Ok(());
    }
    bail!(
        "the tree is incomplete ({} problem(s) above); {help}",
        problems.len()
    )
}

fn open_any(
    which: AnyBenchmark,
    args: &RootArgs,
    split: Split,
) -> anyhow::Result<Box<dyn Benchmark>> {
    Ok(match which {
        AnyBenchmark::Synthetic5i => Box::new(Synthetic5i::default()),
        AnyBenchmark::Pascal => {
            let root = root_of(args)?;
            Box::new(Pascal5i::open(&PascalConfig {
                root,
                protocol: args.protocol,
                min_object_pixels: args.min_object_pixels,
            })?)
        }
        AnyBenchmark::Coco => Box::new(Coco20i::open(&root_of(args)?, args.folds, &[split])?),
        AnyBenchmark::Folder => Box::new(FolderBenchmark::open(&root_of(args)?)?),
    })
}

fn print_episodes(a: &EpisodesArgs) -> anyhow::Result<()> {
    let bench = open_any(a.benchmark, &a.root, a.split)?;
    let spec = EpisodeSpec {
        fold: a.fold,
        split: a.split,
        shots: a.shots,
        seed: a.seed,
    };
    println!(
        "{} fold {} {} {}-shot seed {}",
        bench.name(),
        a.fold,
        a.split,
        a.shots,
        a.seed
    );
    for i in 0..a.count {
        let p = bench
            .plan(&spec, i)
            .with_context(|| format!("episode {i}"))?;
        println!(
            "  {i}: class {} ({}), supports {:?}, query {}",
            p.class_id,
            bench.class_name(p.class_id),
            p.support_ids(),
            p.query.id
        );
    }
    Ok(())
}

fn probe(a: &ProbeArgs) -> anyhow::Result<()> {
    for &size in &a.sizes {
        let bench = Synthetic5i::with_size(size);
        let spec = EpisodeSpec {
            fold: 0,
            split: Split::Train,
            shots: a.shots,
            seed: a.seed,
        };
        let eps = episodes_per_second(
            &bench,
            spec,
            &Transform::train(size, Normalization::Unit),
            a.timing_episodes,
        )?;
        println!(
            "synthetic-5i {size} px, {}-shot train episodes (generate + flip + normalise): {eps:.1} episodes/s ({:.1} ms each)",
            a.shots,
            1000.0 / eps
        );
    }
    if a.episodes > 0 {
        let bench = Synthetic5i::default();
        let r: BaselineReport =
            fixed_feature_baseline(&bench, a.shots, a.episodes, a.seed, &Transform::default())?;
        let fmt = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.1}"))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        println!(
            "{} {}-shot, {} test episodes per fold, seed {}:",
            r.benchmark, r.shots, r.episodes_per_fold, r.seed
        );
        println!(
            "  fixed-feature baseline (colour + local texture, MAP + cosine): mIoU {} (mean {:.1})",
            fmt(&r.fixed_feature_miou),
            BaselineReport::mean(&r.fixed_feature_miou)
        );
        println!(
            "  everything foreground:                                        mIoU {} (mean {:.1})",
            fmt(&r.all_foreground_miou),
            BaselineReport::mean(&r.all_foreground_miou)
        );
        println!(
            "  everything background:                                        FB-IoU {} (mean {:.1})",
            fmt(&r.all_background_fb_iou),
            BaselineReport::mean(&r.all_background_fb_iou)
        );
    }
    Ok(())
}
