//! The layers of crm-core have no cycle: no source file imports (through `crate::…` or
//! `super::…` paths) a file that imports it back, directly or through others. Storage and
//! context sit below the services; each service declares its own `Tenant` accessor.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (`record::service`) → source file, for every file under `src/`.
fn modules(root: &Path) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root).expect("under src");
                let mut parts: Vec<String> = rel
                    .with_extension("")
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
                    parts.pop();
                }
                out.insert(parts.join("::"), path);
            }
        }
    }
    out
}

/// The paths that follow `prefix` in `src`, e.g. `record::service::Records` after `crate::`.
fn paths_after<'a>(src: &'a str, prefix: &'a str) -> impl Iterator<Item = Vec<&'a str>> + 'a {
    src.match_indices(prefix).map(move |(i, _)| {
        let rest = &src[i + prefix.len()..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        rest[..end].split("::").filter(|s| !s.is_empty()).collect()
    })
}

/// The longest known module that `path` starts with.
fn resolve(mods: &BTreeMap<String, PathBuf>, path: &[&str]) -> Option<String> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|m| mods.contains_key(m))
}

fn graph(root: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mods = modules(root);
    let mut g = BTreeMap::new();
    for (name, file) in &mods {
        let text = std::fs::read_to_string(file).expect("read source");
        // Unit tests may reach anywhere; comments and docs are not imports.
        let code: String = text
            .split("#[cfg(test)]")
            .next()
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let here: Vec<&str> = name.split("::").filter(|s| !s.is_empty()).collect();
        // `super` of `a::b` (a/b.rs or a/b/mod.rs) is `a`.
        let parent = &here[..here.len().saturating_sub(1)];
        let mut deps = BTreeSet::new();
        for p in paths_after(&code, "crate::") {
            deps.extend(resolve(&mods, &p));
        }
        for p in paths_after(&code, "super::") {
            let full: Vec<&str> = parent.iter().copied().chain(p).collect();
            deps.extend(resolve(&mods, &full));
        }
        deps.remove(name);
        deps.remove("");
        g.insert(name.clone(), deps);
    }
    g
}

/// A cycle through `start`, if any, as the list of modules on it.
fn cycle_from(g: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_owned(), vec![start.to_owned()])];
    let mut seen = BTreeSet::new();
    while let Some((node, path)) = stack.pop() {
        for next in g.get(&node).into_iter().flatten() {
            if next == start {
                return Some(path);
            }
            if seen.insert(next.clone()) {
                let mut p = path.clone();
                p.push(next.clone());
                stack.push((next.clone(), p));
            }
        }
    }
    None
}

#[test]
fn crm_core_modules_have_no_cycle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let g = graph(&root);
    assert!(g.len() > 30, "found the sources: {:?}", g.keys());
    assert!(
        g["record::service"].contains("tenant"),
        "the import graph is read: {:?}",
        g["record::service"]
    );
    let cycles: Vec<Vec<String>> = g.keys().filter_map(|m| cycle_from(&g, m)).collect();
    assert!(cycles.is_empty(), "module cycles: {cycles:#?}");
}

/// Authorization has one home: outside `access/`, no source file asks whether the caller is
/// a company admin (`role().is_admin()`) or refuses with `admin_only` itself; they call
/// `access::roles` (or the grants) instead.
#[test]
fn admin_checks_live_in_the_access_module() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for (module, file) in modules(&root) {
        if module == "access" || module.starts_with("access::") {
            continue;
        }
        let src = std::fs::read_to_string(&file).unwrap();
        for (n, line) in src.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            if code.contains("role().is_admin()") || code.contains("\"admin_only\"") {
                found.push(format!("{}:{}: {code}", file.display(), n + 1));
            }
        }
    }
    assert!(
        modules(&root).contains_key("access::roles"),
        "the sources are read"
    );
    assert!(found.is_empty(), "role checks outside access: {found:#?}");
}
