//! The module graph is the architecture: imports run one way, down the
//! pipeline. Each `crate::` path in `src/` is an edge from the module that
//! writes it to the module it names; this test fails on any edge that runs
//! back up — between the top-level folders (layers) and, inside a folder, between
//! its modules in pipeline order. `make lint` runs it. Unit-test modules
//! (`#[cfg(test)] mod tests { … }` at the end of a file, or a `tests.rs` file)
//! may reach anywhere; doc comments are not imports.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Top-level modules from the bottom of the pipeline to the top. A module may
/// import those on earlier lines only; modules on the same line are peers and
/// may not import each other.
const LAYERS: &[&[&str]] = &[
    &["text", "recent"],
    &["error", "files"],
    &["source", "pg"],
    &["engine"],
    &["report"],
    &["testkit"],
    &["rehearse"],
    &["bench"],
];

/// Inside a folder, its modules in pipeline order (a module may import only
/// those listed before it). Modules not listed are free within their folder.
const INSIDE: &[(&str, &[&str])] = &[
    (
        "source",
        &["split", "project", "ledger", "catalog", "environment"],
    ),
    (
        "pg",
        &["sql", "url", "tls", "target", "lock", "sandbox", "tools"],
    ),
    (
        "engine",
        &[
            "outcome",
            "environment",
            "effects",
            "variants",
            "diagnose",
            "inspect",
            "plan",
            "backup",
            "verify",
            "journal",
            "execute",
            "predict",
            "rollback",
            "repair",
            "restore_file",
        ],
    ),
];

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Edge {
    file: String,
    from: Vec<String>,
    to: Vec<String>,
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/engine/backup/checksum.rs` → `["engine", "backup", "checksum"]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("under src/");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The code of a file without its unit tests and comments.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::a::b` path (module names only: the lower-case segments),
/// including those inside `use crate::{a::b, c::{d, e}}` groups.
fn paths(code: &str) -> BTreeSet<Vec<String>> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        collect(rest, Vec::new(), &mut found);
    }
    found
}

/// Reads one path (or group) at the start of `text`, below `prefix`.
fn collect(text: &str, prefix: Vec<String>, found: &mut BTreeSet<Vec<String>>) {
    let mut path = prefix;
    let mut rest = text;
    loop {
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item_start = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        collect(group[item_start..i].trim(), path.clone(), found);
                        return;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        collect(group[item_start..i].trim(), path.clone(), found);
                        item_start = i + 1;
                    }
                    _ => {}
                }
            }
            return;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_lowercase()) || name == "self"
        {
            break;
        }
        path.push(name.clone());
        match rest[name.len()..].strip_prefix("::") {
            Some(next) => rest = next,
            None => break,
        }
    }
    if !path.is_empty() {
        found.insert(path);
    }
}

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn edges() -> Vec<Edge> {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut edges = Vec::new();
    for file in files {
        let from = module_of(&src, &file);
        if matches!(
            from.first().map(String::as_str),
            Some("main" | "lib" | "cli")
        ) || from.last().is_some_and(|m| m == "tests")
        {
            continue; // the binary, the crate root, and unit-test files
        }
        let text = std::fs::read_to_string(&file).expect("readable source");
        for to in paths(&code(&text)) {
            edges.push(Edge {
                file: file.strip_prefix(&src).unwrap().display().to_string(),
                from: from.clone(),
                to,
            });
        }
    }
    edges
}

/// Why `edge` runs against the pipeline, if it does.
fn violation(edge: &Edge) -> Option<String> {
    let (a, b) = (&edge.from[0], &edge.to[0]);
    if a != b {
        let (la, lb) = (layer(a)?, layer(b)?);
        return (lb >= la).then(|| {
            format!(
                "{}: {a} imports crate::{} — {b} is {} in the pipeline",
                edge.file,
                edge.to.join("::"),
                if lb == la { "a peer" } else { "above it" }
            )
        });
    }
    let (_, order) = INSIDE.iter().find(|(folder, _)| folder == a)?;
    let (sa, sb) = (edge.from.get(1)?, edge.to.get(1)?);
    if sa == sb {
        return None;
    }
    let (ia, ib) = (
        order.iter().position(|m| m == sa)?,
        order.iter().position(|m| m == sb)?,
    );
    (ib > ia).then(|| {
        format!(
            "{}: {a}::{sa} imports crate::{} — {sb} comes after {sa} in the pipeline",
            edge.file,
            edge.to.join("::")
        )
    })
}

#[test]
fn imports_run_down_the_pipeline() {
    let edges = edges();
    assert!(
        edges.len() > 50,
        "found only {} imports: is src/ there?",
        edges.len()
    );
    let violations: Vec<String> = edges.iter().filter_map(violation).collect();
    assert!(
        violations.is_empty(),
        "{} imports run back up the pipeline (see tests/architecture.rs for the order):\n{}",
        violations.len(),
        violations.join("\n")
    );
}

#[test]
fn every_top_level_module_has_a_layer() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut unknown = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        let is_module = path.is_dir() || path.extension().is_some_and(|e| e == "rs");
        if is_module && !matches!(name.as_str(), "main" | "lib" | "cli") && layer(&name).is_none() {
            unknown.push(name);
        }
    }
    assert!(
        unknown.is_empty(),
        "top-level modules without a place in LAYERS: {unknown:?}"
    );
}

#[test]
fn the_check_sees_a_backward_import() {
    let edge = Edge {
        file: "engine/backup.rs".into(),
        from: vec!["engine".into(), "backup".into()],
        to: vec!["engine".into(), "journal".into(), "write_atomic".into()],
    };
    assert!(violation(&edge).is_some_and(|v| v.contains("comes after")));
    let edge = Edge {
        file: "engine/journal.rs".into(),
        from: vec!["engine".into(), "journal".into()],
        to: vec!["report".into(), "journal_markdown".into()],
    };
    assert!(violation(&edge).is_some_and(|v| v.contains("above it")));
    let edge = Edge {
        file: "pg/tools/mod.rs".into(),
        from: vec!["pg".into(), "tools".into()],
        to: vec!["source".into(), "catalog".into()],
    };
    assert!(violation(&edge).is_some_and(|v| v.contains("a peer")));
    assert_eq!(
        paths(
            "use crate::{Error, engine::{plan::Plan, journal}, pg::sql};\nlet x = crate::source::ledger::SCHEMA;"
        ),
        BTreeSet::from([
            vec!["engine".to_string(), "journal".into()],
            vec!["engine".to_string(), "plan".into()],
            vec!["pg".into(), "sql".into()],
            vec!["source".into(), "ledger".into()],
        ])
    );
}
