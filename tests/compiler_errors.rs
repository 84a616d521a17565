//! The compiler's full report for each broken plan under tests/plans/broken, snapshotted:
//! every error, with file:line:column, step and help. Review changes with `cargo insta`.

use std::path::Path;

#[test]
fn broken_plans_report_every_error() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plans/broken");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 12, "expected a dozen broken plans, found {}", files.len());
    for path in files {
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let source = std::fs::read_to_string(&path).unwrap();
        let shown = format!("tests/plans/broken/{name}.yaml");
        let diagnostics =
            lifeboat::plan::compile(&shown, &source, lifeboat::steps::catalog()).expect_err(&format!("{name} must not compile"));
        assert!(diagnostics.iter().all(|d| d.pos.line >= 1), "{name}: every error has a line");
        insta::assert_snapshot!(name, lifeboat::plan::diagnostic::render_all(&diagnostics, &source));
    }
}

#[test]
fn example_plans_compile() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let source = std::fs::read_to_string(&path).unwrap();
            if let Err(d) = lifeboat::plan::compile(&path.display().to_string(), &source, lifeboat::steps::catalog()) {
                panic!("{}", lifeboat::plan::diagnostic::render_all(&d, &source));
            }
            count += 1;
        }
    }
    assert!(count >= 2);
}

#[test]
fn committed_schema_is_current() {
    let committed = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/plan.schema.json")).unwrap();
    let current = serde_json::to_string_pretty(&lifeboat::plan::compiler::plan_schema_for_editors(lifeboat::steps::catalog())).unwrap();
    assert_eq!(
        committed.trim(),
        current.trim(),
        "docs/plan.schema.json is stale: run `cargo run -- plan schema > docs/plan.schema.json`"
    );
}
