//! The committed tables against their data: every cell of every committed `.md` table (mean ±
//! std per method, shots, metric and fold, and the mean column) recomputed from its `.csv`, every
//! paired-difference row from its `.differences.csv` with its sign, and the code hash in every
//! committed file's header equal to this build's (a table made by other training code is stale).
//!
//! `committed_tables_carry_this_builds_code_hash` fails on a branch that changed the training
//! sources until the tables are regenerated (`cargo run --bin reproduce all --fresh`); its
//! message names each stale file.

mod common;

use std::collections::BTreeMap;

/// The fields of one CSV line (RFC 4180: quoted fields may hold commas and doubled quotes).
fn fields(line: &str) -> Vec<String> {
    let (mut out, mut field, mut quoted, mut chars) =
        (vec![], String::new(), false, line.chars().peekable());
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    out.push(field);
    out
}

/// The data rows of a CSV (no `#` header lines), keyed by the column names of its first row.
fn rows(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut lines = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty());
    let names = fields(lines.next().expect("a column header"));
    lines
        .map(|l| names.iter().cloned().zip(fields(l)).collect())
        .collect()
}

fn number(text: &str, what: &str) -> f64 {
    text.trim()
        .trim_start_matches('+')
        .replace('−', "-")
        .parse()
        .unwrap_or_else(|_| panic!("{what}: {text:?} is not a number"))
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Sample standard deviation (n - 1), as the tables use.
fn std(v: &[f64]) -> f64 {
    let m = mean(v);
    (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() as f64 - 1.0)).sqrt()
}

/// A printed one-decimal number (points) against its recomputation from fractions: equal up to
/// the rounding to one decimal and the CSV's six decimals. A NaN fails.
#[track_caller]
fn assert_cell(printed: f64, fraction: f64, what: &str) {
    let diff = (printed - 100.0 * fraction).abs();
    assert!(
        diff <= 0.05 + 1e-3,
        "{what}: the table says {printed}, its CSV gives {:.4}",
        100.0 * fraction
    );
}

/// (name, text) of the committed results files, from git's HEAD.
fn committed() -> BTreeMap<String, String> {
    common::committed_results().into_iter().collect()
}

#[test]
fn every_cell_of_every_committed_table_is_recomputed_from_its_csv() {
    let files = committed();
    let mut tables = 0;
    let mut cells = 0;
    for (name, md) in &files {
        let Some(stem) = name.strip_suffix(".md") else {
            continue;
        };
        let Some(csv) = files.get(&format!("{stem}.csv")) else {
            continue;
        };
        tables += 1;
        // (method, shots, fold, train seed) -> the evaluation seeds' [miou, fb_iou, support].
        let mut data: BTreeMap<(String, String, String, String), Vec<[f64; 3]>> = BTreeMap::new();
        for r in rows(csv) {
            let key = (
                r["method"].clone(),
                r["shots"].clone(),
                r["fold"].clone(),
                r["train_seed"].clone(),
            );
            let value = ["miou", "fb_iou", "support_miou"].map(|c| number(&r[c], name));
            data.entry(key).or_default().push(value);
        }
        let mut section: Option<(String, usize)> = None;
        let mut folds: Vec<String> = vec![];
        for line in md.lines() {
            if let Some(title) = line.strip_prefix("## ") {
                // "1-shot mIoU (%)", "1-shot FB-IoU (%)", "1-shot support-recovery mIoU (%)".
                section = title.split_once("-shot ").and_then(|(shots, rest)| {
                    let metric = match rest {
                        "mIoU (%)" => 0,
                        "FB-IoU (%)" => 1,
                        "support-recovery mIoU (%)" => 2,
                        _ => return None,
                    };
                    Some((shots.to_string(), metric))
                });
                continue;
            }
            let Some((shots, metric)) = &section else {
                continue;
            };
            let cols: Vec<&str> = line
                .trim()
                .trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect();
            if cols.first() == Some(&"method") {
                folds = cols[1..cols.len() - 1]
                    .iter()
                    .map(|f| f.trim_start_matches("fold ").to_string())
                    .collect();
                continue;
            }
            if !line.starts_with("| ")
                || cols.len() != folds.len() + 2
                || line.contains("published")
            {
                continue;
            }
            let method = cols[0];
            let seeds: Vec<String> = data
                .keys()
                .filter(|k| k.0 == method && &k.1 == shots)
                .map(|k| k.3.clone())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            assert!(
                !seeds.is_empty(),
                "{name}: no CSV rows for {method}, {shots}-shot"
            );
            // [fold][train seed]: the mean over evaluation seeds.
            let per_fold: Vec<Vec<f64>> = folds
                .iter()
                .map(|fold| {
                    seeds
                        .iter()
                        .map(|s| {
                            let key = (method.to_string(), shots.clone(), fold.clone(), s.clone());
                            let evals = &data[&key];
                            mean(&evals.iter().map(|v| v[*metric]).collect::<Vec<_>>())
                        })
                        .collect()
                })
                .collect();
            let over_folds: Vec<f64> = (0..seeds.len())
                .map(|i| mean(&per_fold.iter().map(|v| v[i]).collect::<Vec<_>>()))
                .collect();
            let columns = per_fold.iter().chain(std::iter::once(&over_folds));
            for (i, (cell, values)) in cols[1..].iter().zip(columns).enumerate() {
                let what = format!("{name}, {method}, {shots}-shot metric {metric}, column {i}");
                let (m, s) = cell
                    .trim_matches('*')
                    .split_once(" ± ")
                    .unwrap_or_else(|| panic!("{what}: cell {cell:?} is not `mean ± std`"));
                assert_cell(number(m, &what), mean(values), &what);
                if s != "–" {
                    assert_cell(number(s, &what), std(values), &format!("{what} (std)"));
                }
                cells += 1;
            }
        }
    }
    assert!(tables > 0 && cells > 0, "no committed table was checked");
}

#[test]
fn every_paired_difference_row_is_its_csv_row_with_its_sign() {
    let files = committed();
    let mut checked = 0;
    for (name, md) in &files {
        let Some(stem) = name.strip_suffix(".md") else {
            continue;
        };
        let Some(csv) = files.get(&format!("{stem}.differences.csv")) else {
            continue;
        };
        let diffs = rows(csv);
        let mut shots = String::new();
        for line in md.lines() {
            if let Some(title) = line.strip_prefix("## ") {
                shots = title.split('-').next().unwrap_or("").to_string();
                continue;
            }
            let cols: Vec<&str> = line
                .trim()
                .trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect();
            // | a − b | metric | +1.4 | [-1.1, +4.0] | verdict | per seed |
            if cols.len() != 6 || !cols[0].contains(" − ") || !cols[3].starts_with('[') {
                continue;
            }
            let (method, reference) = cols[0].split_once(" − ").unwrap();
            let what = format!("{name}: {}-shot {} {}", shots, cols[0], cols[1]);
            let row = diffs
                .iter()
                .find(|r| {
                    r["method"] == method
                        && r["reference"] == reference
                        && r["shots"] == shots
                        && r["metric"] == cols[1]
                })
                .unwrap_or_else(|| panic!("{what}: no such row in the differences CSV"));
            assert_cell(
                number(cols[2], &what),
                number(&row["difference"], &what),
                &what,
            );
            let (low, high) = cols[3]
                .trim_matches(['[', ']'])
                .split_once(", ")
                .unwrap_or_else(|| panic!("{what}: interval {:?}", cols[3]));
            assert_cell(
                number(low, &what),
                number(&row["low"], &what),
                &format!("{what} low"),
            );
            assert_cell(
                number(high, &what),
                number(&row["high"], &what),
                &format!("{what} high"),
            );
            assert_eq!(cols[4], row["verdict"], "{what}: verdict");
            let printed: Vec<&str> = cols[5].split_whitespace().collect();
            let data: Vec<&str> = row["per_seed"].split_whitespace().collect();
            assert_eq!(printed.len(), data.len(), "{what}: per-seed count");
            for (p, d) in printed.iter().zip(data) {
                assert_cell(
                    number(p, &what),
                    number(d, &what),
                    &format!("{what} per seed"),
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 0, "no paired difference was checked");
}

#[test]
fn committed_tables_carry_this_builds_code_hash() {
    // The hash build.rs computes for this build (what `reproduce` writes into new headers).
    let current = env!("SRPNET_CODE_HASH");
    let mut stale = vec![];
    let mut checked = 0;
    for (name, text) in committed() {
        let hash = text.lines().find_map(|l| {
            l.strip_prefix("# code hash: ")
                .or_else(|| l.strip_prefix("- code hash: "))
        });
        let Some(hash) = hash else {
            continue;
        };
        checked += 1;
        if hash.trim() != current {
            stale.push(format!("{name} (code hash {})", hash.trim()));
        }
    }
    assert!(checked > 0, "no committed table has a code hash");
    assert!(
        stale.is_empty(),
        "tables made by other training code than this build's (code hash {current}): {}; \
         regenerate them with `cargo run --bin reproduce <table> --fresh` and commit the results",
        stale.join(", ")
    );
}

#[test]
fn the_csv_reader_handles_quoted_fields() {
    assert_eq!(
        fields(r#"a,"PANet, final ReLU","say ""hi""",3"#),
        ["a", "PANet, final ReLU", r#"say "hi""#, "3"]
    );
}

#[test]
#[should_panic(expected = "the table says -1.4")]
fn a_cell_printed_with_the_wrong_sign_fails() {
    assert_cell(-1.4, 0.014, "a flipped sign");
}
