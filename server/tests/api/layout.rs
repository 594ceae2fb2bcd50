//! The layout, checked on the source: `app/src` is split by feature over shared leaves, no
//! feature imports another (the graph has no cycles to untangle), and no file of `app/src` or
//! `core/src` grows past what one reads in a sitting.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Modules every feature may use; they import no feature themselves.
const LEAVES: &[&str] = &["ui", "ssr", "browser"];
/// Lines a source file may have before its `#[cfg(test)]` module.
const MAX_LINES: usize = 450;

fn app_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../app/src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`drops` for `drops/list.rs`); `lib` for the root.
fn module_of(root: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(root).unwrap();
    let first = rel.components().next().unwrap().as_os_str().to_string_lossy().to_string();
    first.trim_end_matches(".rs").to_string()
}

/// Every `crate::NAME` the source refers to (in `use` lines and paths alike).
fn crate_refs(source: &str) -> Vec<String> {
    let mut out = vec![];
    let mut rest = source;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().last();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `dropcheck_core::…`-like paths that merely end in "crate"
        }
        let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if !name.is_empty() {
            out.push(name);
        }
    }
    out
}

#[test]
fn no_feature_of_the_dashboard_imports_another() {
    let root = app_src();
    let mut files = vec![];
    rust_files(&root, &mut files);
    let modules: Vec<String> = files.iter().map(|f| module_of(&root, f)).collect();
    assert!(modules.iter().any(|m| m == "drops") && modules.iter().any(|m| m == "ui"), "app/src is laid out by feature: {modules:?}");
    let mut wrong: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in &files {
        let module = module_of(&root, file);
        if module == "lib" {
            continue; // the root assembles the routes from every feature
        }
        let source = std::fs::read_to_string(file).unwrap();
        for name in crate_refs(&source) {
            let allowed = if LEAVES.contains(&module.as_str()) {
                // A leaf uses other leaves only (ui may call the server glue, say).
                LEAVES.contains(&name.as_str())
            } else {
                name == module || LEAVES.contains(&name.as_str())
            };
            if !allowed && modules.contains(&name) {
                wrong.entry(file.strip_prefix(&root).unwrap().display().to_string()).or_default().push(format!("crate::{name}"));
            }
        }
    }
    assert!(wrong.is_empty(), "features import only themselves and {LEAVES:?}; these do not: {wrong:#?}");
}

#[test]
fn the_rule_sees_an_import_of_a_sibling() {
    // The check above would be blind if it missed these forms.
    assert_eq!(crate_refs("use crate::drops::list::X;\nfn f() { crate::ui::page(); }"), vec!["drops", "ui"]);
    assert_eq!(crate_refs("use dropcheck_core::x; // not_crate::y"), Vec::<String>::new());
}

#[test]
fn no_file_of_the_dashboard_or_the_core_is_longer_than_one_reads_in_a_sitting() {
    let mut long = vec![];
    for dir in ["../app/src", "../core/src"] {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let mut files = vec![];
        rust_files(&root, &mut files);
        assert!(files.len() > 10, "{dir} has its sources");
        for f in &files {
            let source = std::fs::read_to_string(f).unwrap();
            let lines = source.lines().take_while(|l| !l.starts_with("#[cfg(test)]")).count();
            if lines > MAX_LINES {
                long.push(format!("{dir}/{} ({lines} lines)", f.strip_prefix(&root).unwrap().display()));
            }
        }
    }
    assert!(long.is_empty(), "split these by what they hold (at most {MAX_LINES} lines before the tests): {long:?}");
}
