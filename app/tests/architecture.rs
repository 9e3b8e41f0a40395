//! Architecture invariants of the viewer that the compiler does not check,
//! checked on the source text (docs/ARCHITECTURE.md).

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, recursively, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("a readable source folder") {
            let path = entry.expect("a readable source folder").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Whether a line of Rust names the viewer's `app` module in a path: the
/// drawing code may use the state (`app_state`), never the app.
fn names_the_app_module(line: &str) -> bool {
    let code = line.split("//").next().unwrap_or("");
    [
        "viewer::app::",
        "super::app::",
        "super::super::app::",
        "viewer::app;",
        "viewer::ViewerApp",
    ]
    .iter()
    .any(|needle| code.contains(needle))
        || code.contains("ViewerApp")
}

/// Architecture Invariant: the drawing code (`viewer/ui`) depends on the
/// state and the commands only, never on the app module.
#[test]
fn drawing_code_never_imports_the_app() {
    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/viewer/ui");
    let files = rust_files(&ui);
    assert!(files.len() >= 10, "the ui folder moved: {}", ui.display());
    let mut offenders = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("a readable source file");
        for (i, line) in text.lines().enumerate() {
            if names_the_app_module(line) {
                offenders.push(format!("{}:{}: {}", file.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "ui code names the app:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_check_sees_an_app_import() {
    assert!(names_the_app_module("use crate::viewer::app::AppState;"));
    assert!(names_the_app_module("use super::super::app::ViewerApp;"));
    assert!(!names_the_app_module(
        "use crate::viewer::app_state::AppState;"
    ));
    assert!(!names_the_app_module("// see viewer::app::apply"));
}
