//! The reproductions: every id is listed, the committed results parse and carry their
//! provenance, a tiny smoke run of the same pipeline writes files of the same shape, `--fresh`
//! retrains, `--verify` passes against itself and its comparison fails on other numbers, table 2
//! without data writes nothing, and bad input (unknown id, unwritable folder, missing data) fails
//! with a message and nothing half-written.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use srpnet::reproduce::{compare, report};

const COLUMNS: [&str; 9] = [
    "method",
    "fold",
    "shots",
    "train_seed",
    "eval_seed",
    "miou",
    "fb_iou",
    "support_miou",
    "episodes",
];

mod common;

/// The committed results CSVs (not the differences), as (file name, text), from git's HEAD.
fn committed_csvs() -> Vec<(String, String)> {
    common::committed_results()
        .into_iter()
        .filter(|(name, _)| name.ends_with(".csv") && !name.ends_with(".differences.csv"))
        .collect()
}

/// The committed file `name` (from git's HEAD), or a panic naming it.
fn committed(name: &str) -> String {
    common::committed_results()
        .into_iter()
        .find_map(|(n, text)| (n == name).then_some(text))
        .unwrap_or_else(|| panic!("reproductions/results/{name} is not committed"))
}

fn reproduce() -> Command {
    Command::new(env!("CARGO_BIN_EXE_reproduce"))
}

/// (provenance keys, column names, rows) of a results CSV.
fn parse(path: &Path) -> (Vec<String>, Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse_text(&path.display().to_string(), &text)
}

/// (provenance keys, column names, rows) of the CSV text of file `name`.
fn parse_text(name: &str, text: &str) -> (Vec<String>, Vec<String>, Vec<Vec<String>>) {
    let mut keys = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next_if(|l| l.starts_with("# ")) {
        keys.push(line[2..].split(':').next().unwrap().to_string());
    }
    let body: String = lines.map(|l| format!("{l}\n")).collect();
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let columns = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    let rows = reader
        .records()
        .map(|r| {
            r.unwrap_or_else(|e| panic!("{name}: {e}"))
                .iter()
                .map(str::to_string)
                .collect()
        })
        .collect();
    (keys, columns, rows)
}

fn keys_of(rows: &[Vec<String>]) -> BTreeSet<(String, String, String)> {
    rows.iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[2].clone()))
        .collect()
}

#[test]
fn list_names_every_id() {
    let out = reproduce().arg("--list").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for id in [
        "table1",
        "table2",
        "table3",
        "table4",
        "fig1",
        "fig-bound",
        "all",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(id)),
            "--list lacks {id}:\n{text}"
        );
    }
}

/// Every config file under `reproductions/` reads (ids outside `--list`, like `smoke`, too).
#[test]
fn every_reproduction_config_reads() {
    let dir = srpnet::reproduce::configs_dir();
    let mut read = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let id = path.file_stem().unwrap().to_string_lossy().to_string();
            if let Err(e) = srpnet::reproduce::read(&id) {
                panic!("{}: {e:#}", path.display());
            }
            read += 1;
        }
    }
    assert!(read >= 7, "only {read} configs under {}", dir.display());
}

#[test]
fn committed_results_parse_with_provenance_and_sane_values() {
    let csvs = committed_csvs();
    assert!(
        !csvs.is_empty(),
        "no committed results in reproductions/results"
    );
    for (csv, text) in csvs {
        let (keys, columns, rows) = parse_text(&csv, &text);
        for k in [
            "produced by",
            "git commit",
            "backend",
            "dataset",
            "profile",
            "training",
            "evaluation",
        ] {
            assert!(
                keys.iter().any(|x| x == k),
                "{csv}: no `{k}` in the provenance header"
            );
        }
        assert!(!keys.iter().any(|k| k == "warning"), "{csv} is a smoke run");
        assert_eq!(columns, COLUMNS);
        assert!(!rows.is_empty());
        for r in &rows {
            for v in &r[5..8] {
                let v: f64 = v.parse().unwrap();
                assert!((0.0..=1.0).contains(&v), "{csv}: value {v} outside [0, 1]");
            }
        }
        committed(&csv.replace(".csv", ".md"));
    }
}

/// What every committed table must be: every model trained by the run that wrote it (no cache),
/// at a clean commit, with the machine, date and budget in its header; every method, fold and K
/// trained with at least eight training seeds (the unit of the intervals), each evaluated on the
/// same evaluation seeds; its paired differences beside it.
#[test]
fn committed_tables_are_fresh_multi_seed_and_carry_their_differences() {
    for (csv, text) in committed_csvs() {
        let header = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("# {key}: ")))
                .unwrap_or_else(|| panic!("{csv}: no `{key}` in the header"))
                .to_string()
        };
        let models = header("models");
        assert!(
            models.starts_with("all ") && models.ends_with(" trained by this run"),
            "{csv}: not every model was trained by the run that wrote it ({models})"
        );
        assert!(
            !header("git commit").ends_with("-dirty"),
            "{csv}: made from uncommitted code"
        );
        for key in [
            "code hash",
            "cpu",
            "threads",
            "date",
            "image size",
            "iqi",
            "training seeds",
        ] {
            header(key);
        }
        let (_, _, rows) = parse_text(&csv, &text);
        let mut seeds: std::collections::BTreeMap<(String, String, String), BTreeSet<String>> =
            Default::default();
        let mut evals: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
        for r in &rows {
            seeds
                .entry((r[0].clone(), r[1].clone(), r[2].clone()))
                .or_default()
                .insert(r[3].clone());
            evals
                .entry(format!("{} {} {} {}", r[0], r[1], r[2], r[3]))
                .or_default()
                .insert(r[4].clone());
        }
        for (cell, s) in &seeds {
            assert!(
                s.len() >= 8,
                "{csv}: {cell:?} has training seeds {s:?} (at least 8)"
            );
        }
        let first = evals.values().next().unwrap();
        assert!(
            evals.values().all(|e| e == first),
            "{csv}: not every model is evaluated on the same evaluation seeds"
        );
        let differences = csv.replace(".csv", ".differences.csv");
        let (_, columns, diffs) = parse_text(&differences, &committed(&differences));
        assert!(
            !diffs.is_empty() && columns.iter().any(|c| c == "verdict"),
            "{differences}: no paired differences with verdicts"
        );
    }
}

/// The smoke budget: 2 training steps, 2 training seeds, 2 episodes of one evaluation seed.
const SMOKE: [&str; 9] = [
    "--quiet",
    "--steps",
    "2",
    "--train-seeds",
    "1,2",
    "--episodes",
    "2",
    "--seeds",
    "7",
];

/// Runs a smoke table 1 with `args` into a new temporary folder; returns it and the stdout.
fn smoke_table1(name: &str, args: &[&str]) -> (PathBuf, String) {
    let out_dir = std::env::temp_dir().join(format!("srpnet-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out_dir);
    let out = reproduce()
        .arg("table1")
        .args(SMOKE)
        .args(args)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out_dir, String::from_utf8_lossy(&out.stdout).to_string())
}

/// The rows of a smoke table 1 with `--jobs jobs`, its differences, and its header.
fn smoke_with_jobs(jobs: &str) -> (Vec<Vec<String>>, Vec<Vec<String>>, String) {
    let (out_dir, _) = smoke_table1(&format!("jobs{jobs}"), &["--jobs", jobs]);
    let leftovers: Vec<_> = std::fs::read_dir(out_dir.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("jobs-"))
        .collect();
    assert!(leftovers.is_empty(), "job files left behind: {leftovers:?}");
    let csv = out_dir.join("table1.synthetic-5i.csv");
    let (_, _, rows) = parse(&csv);
    let (_, _, differences) = parse(&csv.with_extension("differences.csv"));
    let header = std::fs::read_to_string(&csv).unwrap();
    let _ = std::fs::remove_dir_all(&out_dir);
    (rows, differences, header)
}

#[test]
fn worker_processes_change_nothing_but_the_wall_time() {
    let (rows, differences, header) = smoke_with_jobs("1");
    assert!(header.contains("# processes: 1 (this process)"), "{header}");
    let (rows3, differences3, header3) = smoke_with_jobs("3");
    assert!(
        header3.contains("# processes: 3 worker processes (--jobs)"),
        "{header3}"
    );
    assert_eq!(
        rows.len(),
        2 * 4 * 2 * 2,
        "methods x folds x training seeds x shots"
    );
    assert_eq!(rows, rows3, "table 1 with 3 workers differs from 1 process");
    assert_eq!(differences, differences3);
}

#[test]
fn a_smoke_run_writes_files_of_the_committed_shape() {
    let (out_dir, stdout) = smoke_table1("smoke", &[]);
    assert!(
        stdout.contains("synthetic-5i"),
        "the run must say it used synthetic-5i:\n{stdout}"
    );
    let (keys, columns, rows) = parse(&out_dir.join("table1.synthetic-5i.csv"));
    let first_header = std::fs::read_to_string(out_dir.join("table1.synthetic-5i.csv")).unwrap();
    assert!(
        keys.iter().any(|k| k == "warning"),
        "a --steps run must be marked a smoke run"
    );
    for k in [
        "date",
        "code hash",
        "cpu",
        "threads",
        "processes",
        "image size",
        "training seeds",
        "iqi",
    ] {
        assert!(keys.iter().any(|x| x == k), "no `{k}` in the provenance");
    }
    assert_eq!(columns, COLUMNS);
    let train_seeds: BTreeSet<&str> = rows.iter().map(|r| r[3].as_str()).collect();
    assert_eq!(train_seeds, BTreeSet::from(["1", "2"]));
    let (_, committed_columns, committed_rows) = parse_text(
        "table1.synthetic-5i.csv",
        &committed("table1.synthetic-5i.csv"),
    );
    assert_eq!(columns, committed_columns);
    assert_eq!(
        keys_of(&rows),
        keys_of(&committed_rows),
        "the smoke run covers other (method, fold, shots)"
    );
    let md = std::fs::read_to_string(out_dir.join("table1.synthetic-5i.md")).unwrap();
    assert!(
        md.starts_with("# table1 (PASCAL-5i protocol) on synthetic-5i: "),
        "the header must name the protocol and the data used:\n{md}"
    );
    assert!(md.contains("`±` is the sample standard deviation (n - 1) over the training seeds"));
    // ... and under every table.
    assert_eq!(
        md.matches("`±`: the sample standard deviation").count(),
        md.matches("| method |").count()
    );
    assert!(md.contains("| SRPNet − PANet |"), "{md}");
    // PANet's cosine beside SRPNet's fidelity: the scale fidelity works at is measured.
    assert!(md.contains("| SRPNet | "), "{md}");
    assert!(md.contains("## Fidelity's effective logit scale"), "{md}");
    // The differences: SRPNet - PANet at 1 and 5 shots, on mIoU and FB-IoU, with an interval
    // around the estimate.
    let (_, columns, diffs) = parse(&out_dir.join("table1.synthetic-5i.differences.csv"));
    assert_eq!(
        columns,
        [
            "method",
            "reference",
            "shots",
            "metric",
            "difference",
            "low",
            "high",
            "verdict",
            "seeds",
            "per_seed"
        ]
    );
    assert_eq!(diffs.len(), 4);
    for d in &diffs {
        assert_eq!((d[0].as_str(), d[1].as_str()), ("SRPNet", "PANet"));
        let [est, low, high] = [4, 5, 6].map(|i| d[i].parse::<f64>().unwrap());
        assert!(low <= est + 1e-6 && est <= high + 1e-6, "{d:?}");
        // One difference per training seed, and the estimate is their mean.
        assert_eq!(d[8], "2");
        let per_seed: Vec<f64> = d[9].split(' ').map(|v| v.parse().unwrap()).collect();
        assert_eq!(per_seed.len(), 2);
        assert!(
            (est - (per_seed[0] + per_seed[1]) / 2.0).abs() < 2e-6,
            "{d:?}"
        );
        // The estimate is the table's difference of the means over folds (one evaluation seed
        // here: the mean over folds and training seeds).
        let column = if d[3] == "mIoU" { 5 } else { 6 };
        let table_mean = |method: &str| {
            let v: Vec<f64> = rows
                .iter()
                .filter(|r| r[0] == method && r[2] == d[2])
                .map(|r| r[column].parse::<f64>().unwrap())
                .collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        let table_difference = table_mean("SRPNet") - table_mean("PANet");
        assert!(
            (est - table_difference).abs() < 1e-5,
            "{est} vs {table_difference}"
        );
    }
    for ext in ["png", "svg"] {
        assert!(
            out_dir
                .join(format!("figures/table1-training-curves.{ext}"))
                .is_file()
        );
    }
    // Nothing half-written is left behind.
    let leftovers: Vec<_> = walk(&out_dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // A second run finds every model in the cache and trains nothing.
    let runs = out_dir.join("runs");
    let marker = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("marker");
    std::fs::write(&marker, b"").unwrap();
    let again = reproduce()
        .arg("table1")
        .args(SMOKE)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(again.status.success());
    assert!(marker.is_file(), "a cached run was replaced");
    let (_, _, rows_again) = parse(&out_dir.join("table1.synthetic-5i.csv"));
    assert_eq!(
        rows, rows_again,
        "a rerun from the cache gave other numbers"
    );
    // The header says what happened: the first run trained all 16 models (no --fresh needed),
    // the second took every one from the cache.
    let models_line = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("# models: "))
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(models_line(&first_header), "all 16 trained by this run");
    let second = std::fs::read_to_string(out_dir.join("table1.synthetic-5i.csv")).unwrap();
    assert!(
        models_line(&second).starts_with("0 of 16 trained by this run, 0 continued from a checkpoint of an earlier run, 16 taken from the run cache"),
        "{}",
        models_line(&second)
    );

    // --verify (which implies --fresh) into the same folder retrains every model, and on this
    // machine (the same computation) must give the same numbers exactly: it does.
    let committed = out_dir.join("committed");
    std::fs::create_dir_all(&committed).unwrap();
    std::fs::copy(
        out_dir.join("table1.synthetic-5i.csv"),
        committed.join("table1.synthetic-5i.csv"),
    )
    .unwrap();
    let verify = reproduce()
        .arg("table1")
        .args(SMOKE)
        .arg("--out")
        .arg(&out_dir)
        .arg("--verify")
        .arg("--against")
        .arg(&committed)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(
        !marker.exists(),
        "--verify did not retrain (the cached run survived)"
    );
    assert!(
        text.contains("every cell must match exactly: it does\n"),
        "{text}"
    );
    let (_, _, rows_fresh) = parse(&out_dir.join("table1.synthetic-5i.csv"));
    assert_eq!(
        rows, rows_fresh,
        "retraining on one machine gave other numbers"
    );
    std::fs::remove_dir_all(&out_dir).unwrap();
}

/// A results CSV of one method, fold 0, 1-shot, one evaluation seed: `miou` per training seed.
fn csv_of(mious: &[f64]) -> String {
    let mut text = "# produced by: a test\n".to_string();
    text += &COLUMNS.join(",");
    text.push('\n');
    for (i, m) in mious.iter().enumerate() {
        text += &format!("SRPNet,0,1,{},1234,{m},0.5,0.4,100\n", i + 1);
    }
    text
}

#[test]
fn verify_compares_against_the_committed_prediction_interval() {
    // Committed 0.30, 0.32, 0.34: mean 0.32, s = 0.02; two gated cells (mIoU, FB-IoU), each at
    // 1 - 0.05/2 (Bonferroni); half-width t(1 - 0.025/2, 2) * s * sqrt(1/3 + 1/3)
    // = 6.2053 * 0.02 * 0.8165 = 0.10133.
    let committed = csv_of(&[0.30, 0.32, 0.34]);
    let checks = compare(&committed, &csv_of(&[0.33, 0.35, 0.37])).unwrap();
    let mean_miou = checks
        .iter()
        .find(|c| c.fold.is_none() && c.metric == "mIoU")
        .unwrap();
    assert!((mean_miou.committed - 0.32).abs() < 1e-9);
    assert!((mean_miou.low - (0.32 - 0.10133)).abs() < 1e-4);
    assert!((mean_miou.high - (0.32 + 0.10133)).abs() < 1e-4);
    assert!((mean_miou.new - 0.35).abs() < 1e-9 && mean_miou.inside());
    let (text, ok) = report("table1", Path::new("committed.csv"), &checks);
    assert!(ok, "{text}");

    // 0.46 lies outside [0.2187, 0.4213]: the report says so and fails.
    let checks = compare(&committed, &csv_of(&[0.45, 0.46, 0.47])).unwrap();
    let (text, ok) = report("table1", Path::new("committed.csv"), &checks);
    assert!(!ok);
    assert!(text.contains("NO") && text.contains("OUTSIDE"), "{text}");

    // One committed training seed has no spread: no interval, so nothing can pass.
    let checks = compare(&csv_of(&[0.3]), &csv_of(&[0.3])).unwrap();
    assert!(!report("t", Path::new("c"), &checks).1);

    // A CSV from before training seeds cannot be verified, and the error says what to do.
    let legacy =
        "method,fold,shots,seed,miou,fb_iou,support_miou,episodes\nA,0,1,1,0.3,0.5,0.4,9\n";
    let err = compare(legacy, &committed).unwrap_err().to_string();
    assert!(
        err.contains("train_seed") && err.contains("--fresh"),
        "{err}"
    );
    // Rows that do not match are an error, not a pass.
    assert!(compare(&committed, &csv_of(&[0.3, 0.3]).replace("SRPNet", "PANet")).is_err());
}

#[test]
fn table2_without_coco_data_says_so_and_writes_nothing() {
    let out_dir = std::env::temp_dir().join(format!("srpnet-table2-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out_dir);
    let out = reproduce()
        .args(["table2", "--quiet", "--out"])
        .arg(&out_dir)
        .env_remove("SRPNET_DATA")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("no embedded stand-in"), "{text}");
    let files = if out_dir.exists() {
        walk(&out_dir)
    } else {
        Vec::new()
    };
    assert!(files.is_empty(), "{files:?}");
    let _ = std::fs::remove_dir_all(&out_dir);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn bad_input_fails_with_a_message() {
    let out = reproduce().arg("table9").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--list"));

    // An unknown id in a list stops the whole list before anything trains, naming the id.
    let listed = std::env::temp_dir().join(format!("srpnet-list-{}", std::process::id()));
    let out = reproduce()
        .args(["table1,table9", "--quiet", "--out"])
        .arg(&listed)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("table9") && err.contains("--list"), "{err}");
    assert!(
        !listed.exists(),
        "an unknown id in a list wrote {}",
        listed.display()
    );

    // A data root without the benchmark.
    let empty = std::env::temp_dir().join(format!("srpnet-empty-root-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let out_dir = std::env::temp_dir().join(format!("srpnet-bad-{}", std::process::id()));
    let out = reproduce()
        .args(["table1", "--quiet", "--steps", "1", "--data-root"])
        .arg(&empty)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&empty.display().to_string()) || err.contains("VOC"),
        "{err}"
    );
    assert!(!out_dir.join("table1.pascal-5i-panet.csv").exists());

    // A results folder that cannot be written (a file where the folder should be).
    let blocker = std::env::temp_dir().join(format!("srpnet-blocker-{}", std::process::id()));
    std::fs::write(&blocker, b"not a folder").unwrap();
    let out = reproduce()
        .args(["table1", "--quiet", "--out"])
        .arg(&blocker)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(&blocker.display().to_string()));
    let _ = std::fs::remove_file(&blocker);
    let _ = std::fs::remove_dir_all(&empty);
    let _ = std::fs::remove_dir_all(&out_dir);
}

/// Method names are free text ("PANet, final ReLU", "T = 3, alpha = 0.25"): the results CSVs
/// quote them, so every row keeps its nine fields (an unquoted comma once shifted them).
#[test]
fn method_names_with_commas_and_quotes_survive_the_csv() {
    for name in [
        "PANet",
        "PANet, final ReLU",
        "T = 3, alpha = 0.25",
        "a \"quoted\", name",
    ] {
        let line = format!("{},0,1\n", srpnet::reproduce::csv_field(name));
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(line.as_bytes());
        let record = reader.records().next().unwrap().unwrap();
        assert_eq!(record.len(), 3, "{line}");
        assert_eq!(&record[0], name);
    }
}

/// Every interval and verdict of the committed tables, recomputed here from the committed
/// per-model rows with an implementation of its own (not `srpnet::stats`): per training seed, a
/// row's number is the mean of its CSV values over folds and evaluation seeds; the difference's
/// interval is the paired t-interval over seeds, t from a printed table. The `.differences.csv`
/// must agree within the CSV's rounding, and the Markdown must print the same numbers and verdict:
/// a "gain" whose seed-level interval contains 0 fails here.
#[test]
fn committed_verdicts_are_paired_t_intervals_over_training_seeds() {
    // Student's t, 97.5%, df 1..=12 (a printed table).
    const T975: [f64; 12] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
    ];
    let mut checked = 0;
    for (name, text) in committed_csvs() {
        let (_, columns, rows) = parse_text(&name, &text);
        let col = |c: &str| columns.iter().position(|x| x == c).unwrap();
        // (method, shots, seed, metric column) -> values over folds and evaluation seeds
        let mut per_seed: std::collections::BTreeMap<(String, String, u64, usize), Vec<f64>> =
            Default::default();
        for r in &rows {
            for metric in [col("miou"), col("fb_iou")] {
                per_seed
                    .entry((r[0].clone(), r[2].clone(), r[3].parse().unwrap(), metric))
                    .or_default()
                    .push(r[metric].parse().unwrap());
            }
        }
        let differences = name.replace(".csv", ".differences.csv");
        let (_, dcols, diffs) = parse_text(&differences, &committed(&differences));
        let md = committed(&name.replace(".csv", ".md"));
        let d = |row: &[String], c: &str| row[dcols.iter().position(|x| x == c).unwrap()].clone();
        for row in &diffs {
            let (a, b, shots) = (d(row, "method"), d(row, "reference"), d(row, "shots"));
            let metric = if d(row, "metric") == "mIoU" {
                col("miou")
            } else {
                col("fb_iou")
            };
            let seeds: Vec<u64> = per_seed
                .keys()
                .filter(|k| k.0 == a && k.1 == shots && k.3 == metric)
                .map(|k| k.2)
                .collect();
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            let diff: Vec<f64> = seeds
                .iter()
                .map(|&s| {
                    mean(&per_seed[&(a.clone(), shots.clone(), s, metric)])
                        - mean(&per_seed[&(b.clone(), shots.clone(), s, metric)])
                })
                .collect();
            let n = diff.len();
            assert!(n >= 2, "{differences}: {a} − {b} has {n} seeds");
            let m = mean(&diff);
            let sd = (diff.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
            let half = T975[n - 2] * sd / (n as f64).sqrt();
            let (low, high) = (m - half, m + half);
            let verdict = if low > 0.0 {
                "gain"
            } else if high < 0.0 {
                "loss"
            } else {
                "not resolved"
            };
            let what = format!(
                "{differences}: {a} − {b}, {shots}-shot {}",
                d(row, "metric")
            );
            for (c, expected) in [("difference", m), ("low", low), ("high", high)] {
                let got: f64 = d(row, c).parse().unwrap();
                assert!(
                    (got - expected).abs() < 2e-5,
                    "{what}: {c} {got} vs {expected}"
                );
            }
            // A verdict that sits within rounding of 0 is left alone; any other must agree.
            if low.abs() > 2e-5 && high.abs() > 2e-5 {
                assert_eq!(d(row, "verdict"), verdict, "{what}: [{low}, {high}]");
            }
            assert_eq!(d(row, "seeds"), n.to_string(), "{what}");
            let signed = |v: f64| format!("{:+.1}", 100.0 * v);
            let line = format!(
                "| {a} − {b} | {} | {} | [{}, {}] | {} |",
                d(row, "metric"),
                signed(d(row, "difference").parse().unwrap()),
                signed(d(row, "low").parse().unwrap()),
                signed(d(row, "high").parse().unwrap()),
                d(row, "verdict")
            );
            assert!(md.contains(&line), "{what}: the Markdown lacks {line:?}");
            checked += 1;
        }
    }
    assert!(checked > 0, "no committed difference was checked");
}

#[test]
fn the_cpu_line_names_what_decides_the_kernels() {
    let zen2 = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 23\nmodel\t\t: 49\n\
                model name\t: AMD EPYC\nflags\t\t: fpu sse2 avx fma avx2 sha_ni\n";
    assert_eq!(
        srpnet::reproduce::describe_cpu(zen2),
        "AMD EPYC (family 23, model 49; AVX2 + FMA, no AVX-512)"
    );
    let zen4 = zen2
        .replace("model\t\t: 49", "model\t\t: 17")
        .replace("sha_ni", "sha_ni avx512f avx512bw");
    assert_eq!(
        srpnet::reproduce::describe_cpu(&zen4),
        "AMD EPYC (family 23, model 17; AVX-512)"
    );
    // Another architecture: the model name alone, and never a panic on a missing field.
    assert_eq!(
        srpnet::reproduce::describe_cpu("model name\t: Neoverse\n"),
        "Neoverse"
    );
    assert_eq!(srpnet::reproduce::describe_cpu(""), "unknown");
}
