//! No import cycle between the modules of the facade (`facade/src`) and of the sandbox
//! (`sandbox/src`): what is layered stays layered (model, then provider rooms, then the client).
//!
//! A module is a file, except that a provider's room (a folder under `providers/`) is one
//! module. A module depends on another when its code names it by path (`crate::error::..`, in a
//! `use` line or inline, docs and comments aside); a `pub use` that only re-exports an item at
//! an old public path is not a dependency of the module's code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module name of a source file: `providers/moyasar/transformers.rs` -> `providers::moyasar`,
/// `providers/mapping.rs` -> `providers::mapping`, `providers/mod.rs` -> `providers`.
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).expect("a file under src");
    let mut parts: Vec<String> = relative
        .with_extension("")
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    // A folder two levels down (a provider's room) is one module.
    if parts.len() > 2 || (parts.len() == 2 && src.join(&parts[0]).join(&parts[1]).is_dir()) {
        parts.truncate(2);
    }
    if parts.is_empty() {
        "crate".to_owned()
    } else {
        parts.join("::")
    }
}

fn rust_files(dir: &Path, into: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}

/// Every `crate::a::b::..` path in the code of `text` (comments, docs and re-exports aside).
fn crate_paths(text: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or_default().trim();
        if code.starts_with("pub use ") {
            continue;
        }
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let tail = &rest[at + "crate::".len()..];
            let path: Vec<String> = tail
                .split("::")
                .map(|part| {
                    part.chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect::<String>()
                })
                .take_while(|part| !part.is_empty() && part.chars().all(|c| !c.is_uppercase()))
                .collect();
            paths.push(path);
            rest = tail;
        }
    }
    paths
}

/// The module graph of the crate whose sources are in `src`.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(src, f)).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = modules
        .iter()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    for file in &files {
        let from = module_of(src, file);
        let text = std::fs::read_to_string(file).unwrap();
        for path in crate_paths(&text) {
            // The longest prefix of the path that names a module.
            let target = (1..=path.len())
                .rev()
                .map(|n| path[..n].join("::"))
                .find(|candidate| modules.contains(candidate));
            if let Some(to) = target
                && to != from
                && !from.starts_with(&format!("{to}::"))
            {
                edges.get_mut(&from).unwrap().insert(to);
            }
        }
    }
    edges
}

/// The cycles of `edges` (strongly connected components of more than one module), each as the
/// modules in it with their edges inside it.
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<(String, Vec<String>)>> {
    // Reachability closure is plenty for a graph of a few dozen modules.
    let reach = |start: &str| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![start.to_owned()];
        while let Some(next) = stack.pop() {
            for to in &edges[&next] {
                if seen.insert(to.clone()) {
                    stack.push(to.clone());
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<&String, BTreeSet<String>> =
        edges.keys().map(|m| (m, reach(m))).collect();
    let mut found: Vec<BTreeSet<String>> = Vec::new();
    for module in edges.keys() {
        let component: BTreeSet<String> = reachable[module]
            .iter()
            .filter(|other| reachable[*other].contains(module))
            .cloned()
            .collect();
        if component.len() > 1 && !found.contains(&component) {
            found.push(component);
        }
    }
    found
        .into_iter()
        .map(|component| {
            component
                .iter()
                .map(|m| {
                    let inside = edges[m]
                        .iter()
                        .filter(|to| component.contains(*to))
                        .cloned()
                        .collect();
                    (m.clone(), inside)
                })
                .collect()
        })
        .collect()
}

fn assert_no_cycle(crate_dir: &str) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(crate_dir)
        .join("src");
    let edges = graph(&src);
    assert!(edges.len() > 3, "{}: too few modules found", src.display());
    let found = cycles(&edges);
    assert!(
        found.is_empty(),
        "{crate_dir}/src has import cycles (module -> the modules of its cycle it uses):\n{}",
        found
            .iter()
            .map(|cycle| cycle
                .iter()
                .map(|(m, to)| format!("  {m} -> {}", to.join(", ")))
                .collect::<Vec<_>>()
                .join("\n"))
            .collect::<Vec<_>>()
            .join("\n\n")
    );
}

#[test]
fn the_facade_has_no_import_cycle() {
    assert_no_cycle("facade");
}

#[test]
fn the_sandbox_has_no_import_cycle() {
    assert_no_cycle("sandbox");
}

#[test]
fn a_cycle_is_found() {
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("model", &["error"][..]),
        ("error", &["model"][..]),
        ("client", &["model"][..]),
    ]
    .into_iter()
    .map(|(m, to)| (m.to_owned(), to.iter().map(|t| (*t).to_owned()).collect()))
    .collect();
    let found = cycles(&edges);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].len(), 2);
    assert_eq!(
        crate_paths("use crate::providers::mapping::{answer_error, decode};\n// crate::client"),
        vec![vec!["providers".to_owned(), "mapping".to_owned()]]
    );
    assert!(crate_paths("pub use crate::providers::moyasar::NAMESPACE;").is_empty());
}
