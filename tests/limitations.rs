//! The "Limitations and deviations" chapter names the control rows that test each [ours] choice:
//! every row it names must exist in the table it names, so the chapter cannot drift from the
//! configs.

use std::fs;

fn method_names(table: &str) -> Vec<String> {
    let text = fs::read_to_string(format!("reproductions/{table}.toml")).unwrap();
    let value: toml::Value = toml::from_str(&text).unwrap();
    value["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_control_the_chapter_names_is_a_row_of_its_table() {
    let chapter = fs::read_to_string("book/src/limitations.md").unwrap();
    let mut checked = 0;
    for line in chapter.lines().filter(|l| l.starts_with('|')) {
        let Some(cell) = line.trim_end_matches('|').rsplit('|').next() else {
            continue;
        };
        // Cells like "table3: *a* against *b*; and ..." (one table per cell).
        for table in ["table3", "table4"] {
            let Some(rest) = cell.split(&format!("{table}:")).nth(1) else {
                continue;
            };
            let rest = rest.split(';').next().unwrap();
            let names = method_names(table);
            for (i, part) in rest.split('*').enumerate() {
                if i % 2 == 1 {
                    assert!(
                        names.iter().any(|n| n == part),
                        "limitations.md names {part:?} as a row of {table}; its rows are {names:?}"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(
        checked >= 10,
        "only {checked} named rows found: did the table format change?"
    );
}
