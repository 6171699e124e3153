//! Test-only: the import graph of `src/` has no circle. Each file is a node; an edge is a
//! path (`crate::…`, `super::…`, `use child::…`) in its non-test code that names another
//! file's module. Layering (facts ← config, node_view ← resolve ← patch, plan ← controller)
//! depends on it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use regex::Regex;

type Module = Vec<String>;

/// Every non-test source file's module path with its code before any `#[cfg(test)]`,
/// comments removed.
fn modules(root: &Path) -> BTreeMap<Module, String> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}")) {
            let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let rel = path.strip_prefix(root).unwrap_or(&path).with_extension("");
            let mut module: Module = rel.iter().map(|c| c.to_string_lossy().into()).collect();
            if module.last().is_some_and(|m| m == "mod" || m == "lib") {
                module.pop();
            }
            let name = module.last().cloned().unwrap_or_default();
            if path.extension().is_none_or(|e| e != "rs") || name == "tests" || name == "main" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let code: Vec<&str> = code
                .lines()
                .map(|l| l.split("//").next().unwrap_or(""))
                .collect();
            out.insert(module, code.join("\n"));
        }
    }
    out
}

/// The longest prefix of `path` that is a file's module.
fn file_of(files: &BTreeMap<Module, String>, mut path: Module) -> Option<Module> {
    while !path.is_empty() {
        if files.contains_key(&path) {
            return Some(path);
        }
        path.pop();
    }
    None
}

fn edges(files: &BTreeMap<Module, String>) -> BTreeMap<Module, BTreeSet<Module>> {
    let path =
        Regex::new(r"\b(crate|super)((?:::[A-Za-z_]\w*)+)").unwrap_or_else(|e| panic!("{e}"));
    let group = Regex::new(r"\b(crate|super)::\{([^}]*)\}").unwrap_or_else(|e| panic!("{e}"));
    let child = Regex::new(r"(?m)^\s*(?:pub(?:\([a-z]+\))?\s+)?use\s+([a-z_]\w*)::")
        .unwrap_or_else(|e| panic!("{e}"));
    let mut out = BTreeMap::new();
    for (module, code) in files {
        let base = |kind: &str| -> Module {
            match kind {
                "crate" => Vec::new(),
                _ => module[..module.len().saturating_sub(1)].to_vec(),
            }
        };
        let mut targets = BTreeSet::new();
        for c in path.captures_iter(code) {
            let mut p = base(&c[1]);
            p.extend(c[2].split("::").skip(1).map(String::from));
            targets.extend(file_of(files, p));
        }
        for c in group.captures_iter(code) {
            for item in c[2].split(',') {
                let mut p = base(&c[1]);
                p.extend(
                    item.split_whitespace()
                        .next()
                        .unwrap_or("")
                        .split("::")
                        .map(String::from),
                );
                targets.extend(file_of(files, p));
            }
        }
        for c in child.captures_iter(code) {
            let mut p = module.clone();
            p.push(c[1].to_string());
            if files.contains_key(&p) {
                targets.insert(p);
            }
        }
        targets.remove(module);
        out.insert(module.clone(), targets);
    }
    out
}

/// A circle through `from`, if one is reachable from it.
fn circle(
    graph: &BTreeMap<Module, BTreeSet<Module>>,
    from: &Module,
    stack: &mut Vec<Module>,
    done: &mut BTreeSet<Module>,
) -> Option<Vec<Module>> {
    if let Some(i) = stack.iter().position(|m| m == from) {
        return Some(stack[i..].to_vec());
    }
    if !done.insert(from.clone()) {
        return None;
    }
    stack.push(from.clone());
    for next in graph.get(from).into_iter().flatten() {
        if let Some(c) = circle(graph, next, stack, done) {
            return Some(c);
        }
    }
    stack.pop();
    None
}

#[test]
fn no_import_circle_among_source_files() {
    let files = modules(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(files.len() > 40, "read only {} files", files.len());
    let graph = edges(&files);
    let facts = graph
        .iter()
        .filter(|(m, _)| m.first().is_some_and(|f| f == "facts"))
        .flat_map(|(_, t)| t.iter())
        .find(|t| t.first().is_none_or(|f| f != "facts"));
    assert_eq!(facts, None, "facts imports nothing of ours");
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        let found = circle(&graph, module, &mut Vec::new(), &mut done);
        let names: Vec<String> = found.iter().flatten().map(|m| m.join("::")).collect();
        assert!(names.is_empty(), "import circle: {}", names.join(" -> "));
    }
}
