//! The reproductions: every id is listed, the committed results parse and carry their
//! provenance, a tiny smoke run of the same pipeline writes files of the same shape, and bad
//! input (unknown id, unwritable folder, missing data) fails with a message and nothing
//! half-written.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

fn reproduce() -> Command {
    Command::new(env!("CARGO_BIN_EXE_reproduce"))
}

/// (provenance keys, column names, rows) of a results CSV.
fn parse(path: &Path) -> (Vec<String>, Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
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
            r.unwrap_or_else(|e| panic!("{}: {e}", path.display()))
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

#[test]
fn committed_results_parse_with_provenance_and_sane_values() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("reproductions/results");
    let csvs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    assert!(
        !csvs.is_empty(),
        "no committed results in {}",
        dir.display()
    );
    for csv in csvs {
        let (keys, columns, rows) = parse(&csv);
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
                "{}: no `{k}` in the provenance header",
                csv.display()
            );
        }
        assert!(
            !keys.iter().any(|k| k == "warning"),
            "{} is a smoke run",
            csv.display()
        );
        assert_eq!(
            columns,
            [
                "method",
                "fold",
                "shots",
                "seed",
                "miou",
                "fb_iou",
                "support_miou",
                "episodes"
            ]
        );
        assert!(!rows.is_empty());
        for r in &rows {
            for v in &r[4..7] {
                let v: f64 = v.parse().unwrap();
                assert!(
                    (0.0..=1.0).contains(&v),
                    "{}: value {v} outside [0, 1]",
                    csv.display()
                );
            }
        }
        assert!(
            csv.with_extension("md").is_file(),
            "{} has no Markdown table",
            csv.display()
        );
    }
}

#[test]
fn a_smoke_run_writes_files_of_the_committed_shape() {
    let out_dir = std::env::temp_dir().join(format!("srpnet-smoke-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out_dir);
    let out = reproduce()
        .args([
            "table1",
            "--quiet",
            "--steps",
            "2",
            "--episodes",
            "2",
            "--seeds",
            "7",
            "--out",
        ])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("synthetic-5i"),
        "the run must say it used synthetic-5i:\n{stdout}"
    );
    let (keys, columns, rows) = parse(&out_dir.join("table1.synthetic-5i.csv"));
    assert!(
        keys.iter().any(|k| k == "warning"),
        "a --steps run must be marked a smoke run"
    );
    let committed =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("reproductions/results/table1.synthetic-5i.csv");
    let (_, committed_columns, committed_rows) = parse(&committed);
    assert_eq!(columns, committed_columns);
    assert_eq!(
        keys_of(&rows),
        keys_of(&committed_rows),
        "the smoke run covers other (method, fold, shots)"
    );
    assert!(out_dir.join("table1.synthetic-5i.md").is_file());
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
    let again = reproduce()
        .args([
            "table1",
            "--quiet",
            "--steps",
            "2",
            "--episodes",
            "2",
            "--seeds",
            "7",
            "--out",
        ])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(again.status.success());
    let (_, _, rows_again) = parse(&out_dir.join("table1.synthetic-5i.csv"));
    assert_eq!(
        rows, rows_again,
        "a rerun from the cache gave other numbers"
    );
    std::fs::remove_dir_all(&out_dir).unwrap();
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
