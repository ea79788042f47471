//! The README's promises that name code: every test the *Bad input* table
//! names exists where it says, and every script and fuzz target it names
//! is there.

mod common;

use std::path::PathBuf;

/// The rows of the README's *Bad input* table, without its header.
fn bad_input_rows() -> Vec<String> {
    let readme = std::fs::read_to_string(common::repo("README.md")).unwrap();
    let section = readme
        .split("\n## Bad input\n")
        .nth(1)
        .expect("the README has a Bad input section");
    section
        .lines()
        .skip_while(|line| !line.starts_with("| input a unit reads"))
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(String::from)
        .collect()
}

/// The tests column of a row: `file: name, name; file: name; fuzz x`.
fn named_tests(row: &str) -> Vec<(String, String)> {
    let cells: Vec<&str> = row.trim_matches('|').split(" | ").collect();
    let tests = cells.last().expect("a tests column");
    let mut named = Vec::new();
    for group in tests.split("; ") {
        let Some((file, names)) = group.split_once(": ") else {
            continue;
        };
        let file = file.trim().trim_matches('`');
        for name in names.split(", ") {
            let name = name
                .split_whitespace()
                .next()
                .unwrap_or("")
                .trim_matches('`');
            if !name.is_empty() {
                named.push((file.to_string(), name.to_string()));
            }
        }
    }
    named
}

#[test]
fn every_row_of_the_bad_input_table_names_tests_that_exist() {
    let rows = bad_input_rows();
    assert!(rows.len() >= 50, "{} rows", rows.len());
    let fuzz_targets = std::fs::read_to_string(common::repo("fuzz/Cargo.toml")).unwrap();
    for row in &rows {
        let cells: Vec<&str> = row.trim_matches('|').split(" | ").collect();
        assert_eq!(cells.len(), 4, "a row of four columns: {row}");
        let tests_cell = cells[3];
        let named = named_tests(row);
        let scripts: Vec<&str> = tests_cell
            .split('`')
            .filter(|s| s.starts_with("scripts/"))
            .collect();
        assert!(
            !named.is_empty() || !scripts.is_empty(),
            "a row without a test: {row}"
        );
        for (file, name) in named {
            let path: PathBuf = if file.contains('/') {
                common::repo(&file)
            } else {
                common::repo(&format!("tests/{file}.rs"))
            };
            let source = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (named in: {row})", path.display()));
            assert!(
                source.contains(&format!("fn {name}(")),
                "{} has no test {name} (named in: {row})",
                path.display()
            );
        }
        for script in scripts {
            assert!(
                common::repo(script).is_file(),
                "no {script} (named in: {row})"
            );
        }
        for target in tests_cell.split("fuzz ").skip(1) {
            for target in target.split(", ") {
                let target = target
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .trim_matches('`');
                assert!(
                    fuzz_targets.contains(&format!("name = \"{target}\"")),
                    "no fuzz target {target} (named in: {row})"
                );
            }
        }
    }
}
