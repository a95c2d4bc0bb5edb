//! The layout docs/ARCHITECTURE.md promises, checked on the source: no import circle
//! between the crate's top-level modules, the pure modules free of actix and config,
//! the Coordinator free of the front end and the backends, concrete backends named only
//! by the composition root, and one place that ends the process.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `src/`, with its code up to its unit tests (test code may reach
/// anywhere) and without its comments.
fn sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    files.sort();
    let test_only = ["tests.rs", "testing.rs", "props.rs", "fixtures.rs"];
    files
        .into_iter()
        .filter(|p| !test_only.contains(&p.file_name().unwrap().to_str().unwrap()))
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let text = match text.find("#[cfg(test)]\nmod tests") {
                Some(at) => text[..at].to_string(),
                None => text,
            };
            // Comments may name anything: only code counts.
            let code: Vec<&str> = text.lines().filter(|l| !l.trim_start().starts_with("//")).collect();
            (path.strip_prefix(&src).unwrap().to_str().unwrap().to_string(), code.join("\n"))
        })
        .collect()
}

/// The crate's top-level modules a text names: `crate::x::...` and `crate::{x, y::z}`.
fn imports(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let ident =
        |s: &str| s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        match rest.strip_prefix('{') {
            Some(group) => {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                found.extend(group.split(',').map(|part| ident(part.trim())).filter(|m| !m.is_empty()));
            }
            None => {
                found.insert(ident(rest));
            }
        }
    }
    found.retain(|m| !m.is_empty());
    found
}

/// `fetch/mod.rs` -> `fetch`, `report.rs` -> `report`.
fn top(path: &str) -> String {
    path.split('/').next().unwrap().trim_end_matches(".rs").to_string()
}

#[test]
fn the_top_level_modules_import_each_other_without_a_circle() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, text) in sources() {
        let from = top(&path);
        if from == "lib" || from == "main" {
            continue;
        }
        let deps = graph.entry(from.clone()).or_default();
        deps.extend(imports(&text).into_iter().filter(|m| *m != from));
    }
    // Depth-first, keeping the path: the first circle met is reported whole.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut circle = path[at..].to_vec();
            circle.push(node.to_string());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        let circle = visit(node, &graph, &mut Vec::new(), &mut done);
        assert!(circle.is_none(), "an import circle: {}", circle.unwrap().join(" -> "));
    }
}

#[test]
fn the_circle_check_sees_a_circle() {
    assert_eq!(
        imports("use crate::{a::B, c};\nlet x = crate::d::e();"),
        ["a", "c", "d"].map(String::from).into()
    );
}

#[test]
fn pure_code_imports_no_actix_and_no_config() {
    let pure = [
        "frontier/",
        "html/",
        "robots.rs",
        "task.rs",
        "counts.rs",
        "storage.rs",
        "name_template.rs",
        "urllist/",
        "manifest/",
        "fetch/decode.rs",
        "fetch/validate.rs",
        "fetch/opt_out.rs",
        "fetch/dimensions.rs",
        "net/proxy/",
        "net/tls.rs",
        "render/decide.rs",
        "render/scroll.rs",
        "coordinator/outcome.rs",
    ];
    for (path, text) in sources() {
        if !pure.iter().any(|p| path.starts_with(p)) {
            continue;
        }
        for banned in ["actix", "crate::config", "crate::settings"] {
            assert!(!text.contains(banned), "{path} is pure but names {banned}");
        }
    }
}

#[test]
fn the_coordinator_knows_no_front_end_no_settings_and_no_backend() {
    let banned = [
        "crate::config",
        "crate::report",
        "crate::progress",
        "crate::redis_job",
        "crate::workers",
        "crate::store::folder",
        "crate::store::bucket",
        "LocalFrontier::",
    ];
    for (path, text) in sources().into_iter().filter(|(p, _)| p.starts_with("coordinator/")) {
        for name in banned {
            assert!(!text.contains(name), "{path} names {name}");
        }
    }
}

#[test]
fn only_the_composition_root_names_the_concrete_backends() {
    // Each backend's own folder names itself; `job.rs` is the `job` command's own
    // root (a shared job read from outside, with no run).
    let backends = [
        ("RedisFrontier", "redis_job/"),
        ("RedisRate", "redis_job/"),
        ("RedisNames", "redis_job/"),
        ("SharedWalk", "redis_job/"),
        ("BucketStore", "store/"),
        ("FolderStore", "store/"),
        ("Downloader::", "workers/"),
        ("Blocking::", "workers/"),
        ("Renderer::", "render/"),
    ];
    for (path, text) in sources() {
        for (name, home) in backends {
            let allowed = path.starts_with(home) || path == "app/wiring.rs" || path == "job.rs";
            assert!(allowed || !text.contains(name), "{path} names {name}: only app/wiring.rs may");
        }
    }
}

#[test]
fn only_main_ends_the_process() {
    for (path, text) in sources() {
        if path != "main.rs" {
            assert!(!text.contains("process::exit"), "{path} ends the process: only main.rs may");
        }
    }
}
