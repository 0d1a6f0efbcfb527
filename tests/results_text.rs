//! The book's text is tied to the data: every decimal number quoted in a chapter that discusses
//! results (`results.md`, and any chapter that includes a committed results file) occurs in the
//! committed results under `reproductions/results/`, with its sign (`+1.4`, `−1.4` and `1.4`
//! are three numbers). Included files are the data themselves and are not checked; code blocks
//! are not prose. `tests/tables.rs` ties each table cell to its CSV.

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

/// Every committed results file (from git's HEAD), as one text.
fn committed_results() -> String {
    common::committed_results()
        .into_iter()
        .map(|(_, text)| text)
        .collect()
}

#[test]
fn the_decimal_parser_finds_quoted_numbers_only() {
    assert_eq!(
        decimals("mIoU 28.9 vs 25.8 (-1.2), +0.4 [−0.3, Burn 0.22.1, v1.5, T = 3, 0.5x."),
        ["28.9", "25.8", "-1.2", "+0.4", "-0.3"]
    );
}

#[test]
fn every_number_quoted_with_the_results_occurs_in_the_committed_results() {
    let results: std::collections::BTreeSet<String> =
        decimals(&committed_results()).into_iter().collect();
    assert!(!results.is_empty(), "no committed results");
    let book = Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src");
    let mut checked = 0;
    for entry in fs::read_dir(&book).unwrap() {
        let path = entry.unwrap().path();
        let text = fs::read_to_string(&path).unwrap_or_default();
        let discusses_results = path.file_name().is_some_and(|n| n == "results.md")
            || text.contains("{{#include ../../reproductions/results/");
        if !discusses_results {
            continue;
        }
        checked += 1;
        let missing: Vec<String> = decimals(&prose(&text))
            .into_iter()
            .filter(|number| !results.contains(number))
            .collect();
        assert!(
            missing.is_empty(),
            "{} quotes {}, which no committed file under reproductions/results/ contains (with \
             that sign): quote the generated tables, or regenerate them",
            path.display(),
            missing.join(", ")
        );
    }
    assert!(checked > 0, "no chapter discusses the results");
}
