//! The book's text is tied to the data cell by cell: every decimal number quoted in the prose of
//! `results.md` is listed, in the order it appears, in `book/results-quotes.tsv` with the
//! committed table cell it is read from (table file, section, row, column, which number of the
//! cell), and each is that cell's number with its sign (`+1.4`, `−1.4` and `1.4` are three
//! numbers). `tests/tables.rs` ties each table cell to its CSV, so a quote is tied to the data.
//! Included files are the data themselves and are not checked; code blocks are not prose.

use std::fs;
use std::path::Path;

/// Decimal numbers (`28.9`, `-1.2`) of a text: digits, one point, digits. Version-like tokens
/// with two points (`0.22.1`) and numbers glued to letters (`v1.5`, `x0.1`) are not results.
fn decimals(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
            i += 1;
        }
        let token: String = chars[start..i].iter().collect();
        let token = token.trim_end_matches('.');
        let glued = start > 0 && (chars[start - 1].is_alphabetic() || chars[start - 1] == '_')
            || chars.get(i).is_some_and(|c| c.is_alphabetic());
        // A sign directly before the number is part of it (`−` and `-` alike): "+1.4" is not
        // "-1.4", and neither is "1.4".
        let sign = match start.checked_sub(1).map(|j| chars[j]) {
            Some('+') => "+",
            Some('-' | '−') => "-",
            _ => "",
        };
        if token.matches('.').count() == 1 && !glued {
            out.push(format!("{sign}{token}"));
        }
    }
    out
}

/// The prose of a chapter: no code blocks, no include lines.
fn prose(text: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced && !line.contains("{{#include") {
            out += line;
            out.push('\n');
        }
    }
    out
}

mod common;

const MANIFEST: &str = "book/results-quotes.tsv";

/// One line of the manifest: a quoted number and the table cell it is read from.
struct Quote {
    line: usize,
    quote: String,
    file: String,
    section: String,
    row: String,
    column: String,
    index: usize,
}

fn quotes() -> Vec<Quote> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(MANIFEST);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.starts_with('#') && !l.is_empty() && !l.starts_with("quote\t"))
        .map(|(i, l)| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 6, "{MANIFEST}:{}: six tab-separated fields", i + 1);
            Quote {
                line: i + 1,
                quote: f[0].to_string(),
                file: f[1].to_string(),
                section: f[2].to_string(),
                row: f[3].to_string(),
                column: f[4].to_string(),
                index: f[5]
                    .parse()
                    .unwrap_or_else(|_| panic!("{MANIFEST}:{}: index {:?}", i + 1, f[5])),
            }
        })
        .collect()
}

/// The `index`-th decimal number, with its sign, of one cell of a committed `.md` table: the
/// table under the `## section` heading, the row whose first cell (and ` | ` and the metric, in a
/// table with a `metric` column) is `row`, the column headed `column`.
fn cell_number(
    md: &str,
    section: &str,
    row: &str,
    column: &str,
    index: usize,
) -> Result<String, String> {
    let mut in_section = false;
    let mut header: Option<Vec<String>> = None;
    for line in md.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            in_section = title == section;
            header = None;
            continue;
        }
        if !in_section || !line.starts_with('|') {
            continue;
        }
        let cells: Vec<String> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_string())
            .collect();
        if cells
            .iter()
            .all(|c| c.chars().all(|ch| ch == '-' || ch == ':'))
        {
            continue;
        }
        let Some(names) = &header else {
            header = Some(cells);
            continue;
        };
        let key = match names.get(1).map(String::as_str) {
            Some("metric") => format!("{} | {}", cells[0], cells[1]),
            _ => cells[0].clone(),
        };
        if key != row {
            continue;
        }
        let at = names
            .iter()
            .position(|n| n == column)
            .ok_or_else(|| format!("section {section:?} has no column {column:?}"))?;
        return decimals(&cells[at]).get(index).cloned().ok_or_else(|| {
            format!(
                "cell {:?} has no number {index} (counting from 0)",
                cells[at]
            )
        });
    }
    Err(format!("no row {row:?} in a section {section:?}"))
}

/// Every committed results file (from git's HEAD), by file name.
fn committed() -> std::collections::BTreeMap<String, String> {
    common::committed_results().into_iter().collect()
}

#[test]
fn the_decimal_parser_finds_quoted_numbers_only() {
    assert_eq!(
        decimals("mIoU 28.9 vs 25.8 (-1.2), +0.4 [−0.3, Burn 0.22.1, v1.5, T = 3, 0.5x."),
        ["28.9", "25.8", "-1.2", "+0.4", "-0.3"]
    );
}

#[test]
fn a_quote_of_another_cell_or_with_another_sign_is_not_that_cell() {
    let md = "## 1-shot mIoU (%)\n\n| method | fold 0 | mean |\n|---|---:|---:|\n\
              | PANet | 26.0 ± 2.9 | **26.0 ± 2.9** |\n\n\
              ## 1-shot paired differences\n\n\
              | difference | metric | mean | 95% interval |\n|---|---|---:|---:|\n\
              | A − B | mIoU | +2.0 | [-0.9, +4.9] |\n| A − B | FB-IoU | -2.0 | [-3.0, -1.0] |\n";
    let diffs = "1-shot paired differences";
    assert_eq!(
        cell_number(md, "1-shot mIoU (%)", "PANet", "mean", 1).unwrap(),
        "2.9"
    );
    assert_eq!(
        cell_number(md, diffs, "A − B | mIoU", "mean", 0).unwrap(),
        "+2.0"
    );
    assert_eq!(
        cell_number(md, diffs, "A − B | FB-IoU", "mean", 0).unwrap(),
        "-2.0"
    );
    assert_eq!(
        cell_number(md, diffs, "A − B | mIoU", "95% interval", 0).unwrap(),
        "-0.9"
    );
    // A quote of +2.0 tied to the FB-IoU row, whose number is -2.0, does not pass.
    assert_ne!(
        cell_number(md, diffs, "A − B | FB-IoU", "mean", 0).unwrap(),
        "+2.0"
    );
    assert!(cell_number(md, diffs, "A − B", "mean", 0).is_err());
    assert!(cell_number(md, diffs, "A − B | mIoU", "fold 0", 0).is_err());
    assert!(cell_number(md, "5-shot mIoU (%)", "PANet", "mean", 0).is_err());
    assert!(cell_number(md, diffs, "A − B | mIoU", "mean", 1).is_err());
}

#[test]
fn every_number_quoted_in_the_results_chapter_is_listed_in_order() {
    let book = Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src");
    let chapter = fs::read_to_string(book.join("results.md")).unwrap();
    let quoted = decimals(&prose(&chapter));
    let listed: Vec<String> = quotes().into_iter().map(|q| q.quote).collect();
    assert!(!quoted.is_empty(), "results.md quotes no number");
    let first_difference = quoted.iter().zip(&listed).position(|(a, b)| a != b);
    assert!(
        first_difference.is_none() && quoted.len() == listed.len(),
        "results.md quotes {} numbers, {MANIFEST} lists {}; the first difference is number {} \
         (results.md: {:?}, {MANIFEST}: {:?}): list every quoted number, in order, with its cell",
        quoted.len(),
        listed.len(),
        first_difference.unwrap_or(quoted.len().min(listed.len())) + 1,
        first_difference.map(|i| &quoted[i]),
        first_difference.map(|i| &listed[i]),
    );
    // Other chapters that include a results file quote no number of their own: they would need
    // a manifest too.
    for entry in fs::read_dir(&book).unwrap() {
        let path = entry.unwrap().path();
        let text = fs::read_to_string(&path).unwrap_or_default();
        if path.file_name().is_some_and(|n| n != "results.md")
            && text.contains("{{#include ../../reproductions/results/")
        {
            assert!(
                decimals(&prose(&text)).is_empty(),
                "{} includes a results file and quotes numbers: quote them in results.md",
                path.display()
            );
        }
    }
}

#[test]
fn every_quoted_number_is_its_cell_of_the_committed_tables() {
    let files = committed();
    let quotes = quotes();
    assert!(!quotes.is_empty(), "{MANIFEST} lists no quote");
    for q in &quotes {
        let md = files.get(&q.file).unwrap_or_else(|| {
            panic!(
                "{MANIFEST}:{}: no committed results file {}",
                q.line, q.file
            )
        });
        let cell = cell_number(md, &q.section, &q.row, &q.column, q.index)
            .unwrap_or_else(|e| panic!("{MANIFEST}:{}: {}: {e}", q.line, q.file));
        assert_eq!(
            cell, q.quote,
            "{MANIFEST}:{}: the book quotes {} for {} / {} / {} / {} (number {}), the committed \
             table says {cell}",
            q.line, q.quote, q.file, q.section, q.row, q.column, q.index
        );
    }
}
