//! The book includes real code: every `{{#include file:anchor}}` names a file that exists and an
//! anchor that file defines, and every model component has a chapter that includes it.

use std::fs;
use std::path::{Path, PathBuf};

fn chapters() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir("book/src")
        .expect("book/src exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    files
}

/// (chapter, included path relative to the chapter, optional anchor)
fn includes() -> Vec<(PathBuf, String, Option<String>)> {
    let mut out = Vec::new();
    for chapter in chapters() {
        let text = fs::read_to_string(&chapter).unwrap();
        for piece in text.split("{{#include ").skip(1) {
            let target = piece.split("}}").next().unwrap().trim();
            let (file, anchor) = match target.rsplit_once(':') {
                Some((f, a)) if !a.chars().all(|c| c.is_ascii_digit() || c == '-') => {
                    (f.to_string(), Some(a.to_string()))
                }
                _ => (target.to_string(), None),
            };
            out.push((chapter.clone(), file, anchor));
        }
    }
    out
}

#[test]
fn every_include_names_an_existing_file_and_anchor() {
    let found = includes();
    assert!(!found.is_empty(), "the book includes no code at all");
    for (chapter, file, anchor) in found {
        let path = Path::new("book/src").join(&file);
        let text = fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("{}: cannot read {}: {e}", chapter.display(), path.display())
        });
        if let Some(anchor) = anchor {
            let start = format!("ANCHOR: {anchor}\n");
            let end = format!("ANCHOR_END: {anchor}\n");
            assert!(
                text.contains(&start) && text.contains(&end),
                "{}: anchor `{anchor}` is not defined in {}",
                chapter.display(),
                path.display()
            );
        }
    }
}

#[test]
fn every_include_sits_in_a_code_block() {
    // Outside a fence, mdBook renders the code as a paragraph (and `<T>` as an HTML tag).
    for chapter in chapters() {
        let text = fs::read_to_string(&chapter).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            // Markdown results are included as Markdown; code always in a fence.
            if line.trim_start().starts_with("{{#include") && !line.contains(".md") {
                let fenced = i > 0 && lines[i - 1].trim_start().starts_with("```");
                assert!(
                    fenced,
                    "{} line {}: an include outside a code block",
                    chapter.display(),
                    i + 1
                );
            }
        }
    }
}

#[test]
fn every_model_component_has_a_chapter_with_its_code() {
    let included: Vec<String> = includes().into_iter().map(|(_, f, _)| f).collect();
    for entry in fs::read_dir("src/model").unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name == "mod.rs" {
            continue;
        }
        assert!(
            included
                .iter()
                .any(|f| f.ends_with(&format!("src/model/{name}"))),
            "no chapter includes src/model/{name}"
        );
    }
}

#[test]
fn every_chapter_is_in_the_summary() {
    let summary = fs::read_to_string("book/src/SUMMARY.md").unwrap();
    for chapter in chapters() {
        let name = chapter.file_name().unwrap().to_str().unwrap();
        if name != "SUMMARY.md" {
            assert!(
                summary.contains(&format!("({name})")),
                "{name} is not in SUMMARY.md"
            );
        }
    }
}
