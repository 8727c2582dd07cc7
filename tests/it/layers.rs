//! The library's layering, checked: every `crate::`, `super::` and `self::` path in src/ (outside
//! the files' test modules) must point into the file's own unit or into a unit of a lower layer,
//! and the files of one unit must not import each other in a cycle. The order is declared here
//! (docs/architecture.md draws it); a new module is refused until it is given a place.
//!
//! The check reads the source text instead of relying on crates, so that the library stays one
//! crate and the suite builds the dependencies once. It sees paths, not name resolution: an
//! import through a re-export counts where the re-exporting file is, which is why files import
//! from the module that defines an item.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The units of the library, lowest layer first. A unit is a module and everything under it
/// that no longer entry claims. Units of one layer may not import each other.
const LAYERS: &[&[&str]] = &[
    &["error"],
    // The mechanisms of docs/reliability.md: how a user's file is read, how an output is
    // written, what identifies a run.
    &["base", "progress", "input", "outputs", "run_identity"],
    &["shapley", "store"],
    &["data"],
    &["teacher"],
    &["provenance", "utility", "reconstruct"],
    &["informativeness"],
    &["evaluate", "render"],
    &["report"],
    // distill/, the pipeline, step by step: options and candidates; utility scoring and
    // selection; stitching; the distilled file; soft labels; the methods' trait, each method,
    // their list; one class; the driver.
    &["distill/config", "distill/candidates"],
    &["distill/score"],
    &["distill/stitch"],
    &["distill/file"],
    &["distill/soft_labels"],
    &["distill/methods"],
    &[
        "distill/methods/infoutil",
        "distill/methods/rded",
        "distill/methods/random",
    ],
    &["distill/methods/list"],
    &["distill/run"],
    &["distill"],
    // Every parser as a function over bytes, for the fuzz targets and the suite's smoke run.
    &["fuzz"],
];

type Module = Vec<String>;

/// A source file of the library: its module path and its text.
struct File {
    module: Module,
    is_mod: bool,
    text: String,
}

#[test]
fn imports_point_down_the_declared_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = library_files(&src);
    assert!(
        files.len() > 50,
        "read {} files of {}",
        files.len(),
        src.display()
    );
    let problems = check(&files);
    assert!(
        problems.is_empty(),
        "layering broken:\n{}",
        problems.join("\n")
    );
}

#[test]
fn an_upward_import_and_a_cycle_are_caught() {
    let file = |path: &str, text: &str| {
        let (module, is_mod) = module_of(Path::new(path));
        File {
            module,
            is_mod,
            text: text.into(),
        }
    };
    let ok = [
        file("data/mod.rs", "use crate::error::Result;\nmod idx;"),
        file("data/idx.rs", "use super::Source;\n"),
        file("distill/mod.rs", "pub use crate::data::Source;"),
        file("error.rs", ""),
    ];
    assert_eq!(check(&ok), Vec::<String>::new());

    // Planted: data (layer 3) reaching up into distill, in a use tree and in an inline path.
    let up = [
        file(
            "data/mod.rs",
            "use crate::{error::Result, distill::{self, Method}};",
        ),
        file("data/idx.rs", "fn f() { crate::distill::run(); }"),
        file("distill/mod.rs", ""),
        file("error.rs", ""),
    ];
    let problems = check(&up);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems.iter().all(|p| p.contains("crate::distill")),
        "{problems:?}"
    );
    assert!(problems[1].contains("src/data/idx.rs"), "{problems:?}");
    // Planted: arrows that no `use` line shows going up. A method reaching its list through the
    // methods' module it may import (the list imports every method); an upward call after a
    // test-only helper in the middle of a file; a method call into the module above that gave a
    // lower module's type the method.
    let through_module = [
        file("distill/methods/mod.rs", ""),
        file(
            "distill/methods/rded.rs",
            "use crate::distill::methods;\nfn f() { let m = methods::list::Method::all(); }",
        ),
        file(
            "data/idx.rs",
            "#[cfg(test)]\nfn helper() {}\nfn g() { crate::distill::run(); }",
        ),
        // config's own type, given a method by the list above it, and config calling it.
        file(
            "distill/config.rs",
            "pub enum Method { A }\nfn f(m: Method) { m.proposal().check(); }",
        ),
        file(
            "distill/methods/list.rs",
            "use crate::distill::config::Method;\nimpl Method { pub fn proposal(self) {} }",
        ),
        file("distill/mod.rs", ""),
        file("error.rs", ""),
    ];
    let problems = check(&through_module);
    assert_eq!(problems.len(), 3, "{problems:?}");
    let caught = |file: &str, path: &str| {
        problems
            .iter()
            .any(|p| p.contains(file) && p.contains(&format!("imports {path} ")))
    };
    assert!(caught("src/data/idx.rs", "crate::distill"), "{problems:?}");
    assert!(
        caught(
            "src/distill/methods/rded.rs",
            "crate::distill::methods::list"
        ),
        "{problems:?}"
    );
    assert!(
        caught("src/distill/config.rs", "crate::distill::methods::list"),
        "{problems:?}"
    );

    // Peers of one layer, and a module the order does not know.
    let peers = [
        file("store/mod.rs", "use crate::shapley::Game;"),
        file("shapley/mod.rs", ""),
    ];
    assert_eq!(check(&peers).len(), 1);
    assert!(check(&[file("newstage.rs", "")])[0].contains("not in LAYERS"));

    // Planted: two files of one unit importing each other; a test module's imports are ignored.
    let cycle = [
        file("teacher/mod.rs", ""),
        file("teacher/meta.rs", "use super::cam::Cam;\n"),
        file("teacher/cam.rs", "use super::meta::Meta;\n"),
        file(
            "teacher/engine.rs",
            "#[cfg(test)]\nmod tests {\n    use crate::distill::Method;\n}\n",
        ),
    ];
    let problems = check(&cycle);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("cycle"), "{problems:?}");
}

/// Every problem: an import into a higher layer or a peer unit, a module with no layer, a cycle.
fn check(files: &[File]) -> Vec<String> {
    let modules: BTreeSet<Module> = files.iter().map(|f| f.module.clone()).collect();
    let extensions = extension_methods(files);
    let mut problems = Vec::new();
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for f in files.iter().filter(|f| !f.module.is_empty()) {
        let Some((layer, unit)) = unit_of(&f.module) else {
            problems.push(format!("{}: not in LAYERS (tests/it/layers.rs)", name(f)));
            continue;
        };
        // Each module a file names, once (the crate root's re-exports, crate::Result, aside),
        // and each module whose methods it calls on a type defined elsewhere.
        let mut named = paths(&f.text);
        named.extend(extension_calls(&f.text, &extensions));
        let targets: BTreeSet<Module> = named
            .iter()
            .map(|p| resolve(p, f, &modules))
            .filter(|t| !t.is_empty())
            .collect();
        for target in targets {
            match unit_of(&target) {
                // A module's own file may name what lies under it (re-exports, drivers).
                Some((_, u)) if u == unit && target.starts_with(&f.module) => {}
                Some((_, u)) if u == unit => {
                    edges.entry(f.module.clone()).or_default().insert(target);
                }
                Some((l, _)) if l < layer => {}
                Some((l, u)) => problems.push(format!(
                    "{}: imports crate::{} ({u}, layer {l}) from {unit} (layer {layer})",
                    name(f),
                    target.join("::")
                )),
                None => {}
            }
        }
    }
    problems.extend(cycles(&edges));
    problems
}

fn name(f: &File) -> String {
    let mut p = format!("src/{}", f.module.join("/"));
    p.push_str(if f.is_mod { "/mod.rs" } else { ".rs" });
    p
}

/// The layer and unit of a module: the longest declared unit that is a prefix of it.
fn unit_of(module: &[String]) -> Option<(usize, &'static str)> {
    LAYERS
        .iter()
        .enumerate()
        .flat_map(|(l, units)| units.iter().map(move |u| (l, *u)))
        .filter(|(_, u)| {
            let u: Vec<&str> = u.split('/').collect();
            module.len() >= u.len() && module.iter().zip(&u).all(|(a, b)| a == b)
        })
        .max_by_key(|(_, u)| u.split('/').count())
}

/// One cycle of imports among the files of a unit, if any, as a message.
fn cycles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Option<String> {
    // Depth-first search; a module met again on the current path closes a cycle.
    fn visit(
        m: &Module,
        edges: &BTreeMap<Module, BTreeSet<Module>>,
        path: &mut Vec<Module>,
        done: &mut BTreeSet<Module>,
    ) -> Option<Vec<Module>> {
        if let Some(at) = path.iter().position(|p| p == m) {
            return Some(path[at..].to_vec());
        }
        if !done.insert(m.clone()) {
            return None;
        }
        path.push(m.clone());
        for next in edges.get(m).into_iter().flatten() {
            if let Some(c) = visit(next, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    edges.keys().find_map(|m| {
        let cycle = visit(m, edges, &mut Vec::new(), &mut done)?;
        let names: Vec<String> = cycle.iter().map(|m| m.join("::")).collect();
        Some(format!(
            "import cycle: {} → {}",
            names.join(" → "),
            names[0]
        ))
    })
}

/// The module a path names: the longest prefix of its absolute form that is a module.
fn resolve(path: &[String], f: &File, modules: &BTreeSet<Module>) -> Module {
    let mut abs: Module = Vec::new();
    let mut rest = path;
    match path[0].as_str() {
        "crate" => rest = &path[1..],
        "self" | "super" => {
            abs = f.module.clone();
            while let Some(first) = rest.first() {
                match first.as_str() {
                    "self" => {}
                    "super" => {
                        abs.pop();
                    }
                    _ => break,
                }
                rest = &rest[1..];
            }
        }
        _ => unreachable!("paths() returns crate, self and super paths"),
    }
    let mut best = abs.clone();
    for seg in rest {
        abs.push(seg.clone());
        if modules.contains(&abs) {
            best = abs.clone();
        } else {
            break;
        }
    }
    best
}

/// The tokens of a file's code, less every item marked `#[cfg(test)]` (its test module, and any
/// test-only function or import elsewhere in the file).
fn code_tokens(text: &str) -> Vec<String> {
    let tokens = tokenize(text);
    let mut out = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let attr = ["#", "[", "cfg", "(", "test", ")", "]"];
        if tokens[i..].starts_with(&attr.map(String::from)) {
            // The item runs to its first `;` or to the `}` that closes its first `{`.
            let mut k = i + attr.len();
            while k < tokens.len() && tokens[k] != ";" && tokens[k] != "{" {
                k += 1;
            }
            i = match tokens.get(k).map(String::as_str) {
                Some("{") => matching(&tokens, k) + 1,
                _ => k + 1,
            };
            continue;
        }
        out.push(tokens[i].clone());
        i += 1;
    }
    out
}

/// Every `crate::`, `self::` and `super::` path of `text`'s code: use trees expanded, and paths
/// written inline in expressions, types and attributes, also where they start with a name a
/// `use` bound to a module (`use crate::distill; … distill::methods::list::all()` names
/// crate::distill::methods::list).
fn paths(text: &str) -> Vec<Vec<String>> {
    let tokens = code_tokens(text);
    let mut imported: Vec<(Vec<String>, Option<String>)> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i] == "use" {
            let end = tokens[i..]
                .iter()
                .position(|t| t == ";")
                .map_or(tokens.len(), |e| i + e);
            expand(&tokens[i + 1..end], &mut Vec::new(), &mut imported);
            i = end;
        }
        i += 1;
    }
    imported.retain(|(p, _)| matches!(p[0].as_str(), "crate" | "self" | "super"));
    // The name each import binds: its alias, its last segment, or for `a::b::{self}` b.
    let mut bound: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (path, alias) in &imported {
        let mut full = path.clone();
        if full.last().is_some_and(|l| l == "self") {
            full.pop();
        }
        let name = alias.clone().or_else(|| full.last().cloned());
        if let Some(name) = name.filter(|n| n != "_" && !matches!(n.as_str(), "crate" | "super")) {
            bound.insert(name, full);
        }
    }
    let mut out: Vec<Vec<String>> = imported.into_iter().map(|(p, _)| p).collect();
    out.extend(inline_paths(&tokens, &bound));
    out
}

/// Methods a module adds to a type that another module defines (`impl Method { fn proposal … }`
/// in distill/methods/list.rs, for config.rs's `Method`), by name, with the module that adds
/// them: a call `cfg.method.proposal()` names no path, so only this shows the arrow it draws.
/// Names that more than one function of the library has are left out (the text cannot tell
/// which one a call means).
fn extension_methods(files: &[File]) -> BTreeMap<String, Module> {
    let mut fns: BTreeMap<String, usize> = BTreeMap::new();
    let mut types: BTreeMap<String, BTreeSet<Module>> = BTreeMap::new();
    for f in files {
        let tokens = code_tokens(&f.text);
        for w in tokens.windows(2) {
            match w[0].as_str() {
                "fn" => *fns.entry(w[1].clone()).or_default() += 1,
                "struct" | "enum" | "trait" | "type" | "union" => {
                    types
                        .entry(w[1].clone())
                        .or_default()
                        .insert(f.module.clone());
                }
                _ => {}
            }
        }
    }
    let mut out = BTreeMap::new();
    for f in files {
        let tokens = code_tokens(&f.text);
        for (i, _) in tokens.iter().enumerate().filter(|(_, t)| *t == "impl") {
            let Some(open) = tokens[i..].iter().position(|t| t == "{").map(|o| i + o) else {
                continue;
            };
            let mut header = &tokens[i + 1..open];
            if header.first().is_some_and(|t| t == "<") {
                // The impl's own generic parameters (`impl<T: Check> Valid<T>`) name no type.
                let mut depth = 0;
                let end = header.iter().position(|t| {
                    depth += match t.as_str() {
                        "<" => 1,
                        ">" => -1,
                        _ => 0,
                    };
                    depth == 0
                });
                header = &header[end.map_or(header.len(), |e| e + 1)..];
            }
            // An inherent impl (not `impl Trait for Type`) of a type this module does not define.
            let ty = header
                .iter()
                .find(|t| t.starts_with(|c: char| c.is_uppercase()));
            let foreign = ty.is_some_and(|t| !types.get(t).is_some_and(|m| m.contains(&f.module)));
            if header.iter().any(|t| t == "for") || !foreign {
                continue;
            }
            let body = &tokens[open..=matching(&tokens, open).min(tokens.len() - 1)];
            for w in body.windows(2).filter(|w| w[0] == "fn") {
                if fns.get(&w[1]) == Some(&1) {
                    out.insert(w[1].clone(), f.module.clone());
                }
            }
        }
    }
    out
}

/// The modules whose extension methods ([`extension_methods`]) `text` calls, as `crate::` paths.
fn extension_calls(text: &str, extensions: &BTreeMap<String, Module>) -> Vec<Vec<String>> {
    let tokens = code_tokens(text);
    tokens
        .windows(3)
        .filter(|w| (w[0] == "." || w[0] == "::") && w[2] == "(")
        .filter_map(|w| extensions.get(&w[1]))
        .map(|m| {
            std::iter::once("crate".to_string())
                .chain(m.iter().cloned())
                .collect()
        })
        .collect()
}

/// The paths written outside `use` lines: from `crate`, `self` or `super`, or from a name in
/// `bound` (an imported module) at the start of a path.
fn inline_paths(tokens: &[String], bound: &BTreeMap<String, Vec<String>>) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i].as_str();
        if t == "use" {
            i += tokens[i..]
                .iter()
                .position(|t| t == ";")
                .unwrap_or(tokens.len());
            continue;
        }
        let starts = tokens.get(i + 1).is_some_and(|n| n == "::")
            && !(i > 0 && (tokens[i - 1] == "in" || tokens[i - 1] == "::" || tokens[i - 1] == "."));
        let head = match t {
            "crate" | "self" | "super" => Some(vec![t.to_string()]),
            _ => bound.get(t).cloned(),
        };
        if let (true, Some(mut path)) = (starts, head) {
            i += 1;
            while tokens.get(i).is_some_and(|n| n == "::")
                && tokens.get(i + 1).is_some_and(|n| is_ident(n))
            {
                path.push(tokens[i + 1].clone());
                i += 2;
            }
            out.push(path);
            continue;
        }
        i += 1;
    }
    out
}

/// The paths of one use tree (`a::{b, c::{d, e as f}}` → a::b, a::c::d, a::c::e bound as f).
fn expand(
    tokens: &[String],
    prefix: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, Option<String>)>,
) {
    let mut path = prefix.clone();
    let mut alias = None;
    let mut i = 0;
    while i < tokens.len() {
        match tokens[i].as_str() {
            "::" => {}
            "{" => {
                let close = matching(tokens, i);
                for part in split_top(&tokens[i + 1..close]) {
                    expand(part, &mut path.clone(), out);
                }
                return;
            }
            "as" => {
                alias = tokens.get(i + 1).cloned();
                break;
            }
            t if is_ident(t) || t == "*" => path.push(t.to_string()),
            _ => {}
        }
        i += 1;
    }
    if !path.is_empty() && path != *prefix {
        out.push((path, alias));
    }
}

fn matching(tokens: &[String], open: usize) -> usize {
    let mut depth = 0;
    for (k, t) in tokens.iter().enumerate().skip(open) {
        match t.as_str() {
            "{" => depth += 1,
            "}" => {
                depth -= 1;
                if depth == 0 {
                    return k;
                }
            }
            _ => {}
        }
    }
    tokens.len()
}

/// The comma-separated parts of a brace group's inside, nested groups kept whole.
fn split_top(tokens: &[String]) -> Vec<&[String]> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (k, t) in tokens.iter().enumerate() {
        match t.as_str() {
            "{" => depth += 1,
            "}" => depth -= 1,
            "," if depth == 0 => {
                parts.push(&tokens[start..k]);
                start = k + 1;
            }
            _ => {}
        }
    }
    parts.push(&tokens[start..]);
    parts
}

fn is_ident(t: &str) -> bool {
    t.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// Identifiers, `::` and single punctuation; comments, string and char literals dropped.
fn tokenize(code: &str) -> Vec<String> {
    let chars: Vec<char> = code.chars().collect();
    let at = |i: usize| chars.get(i).copied().unwrap_or(' ');
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && at(i + 1) == '/') {
                i += 1;
            }
            i += 2;
        } else if c == '\'' {
            // A char literal ('a', '\n', '"') is skipped; a lifetime ('a) is one quote.
            i += match (at(i + 1), at(i + 2)) {
                ('\\', _) => 2 + chars[i + 2..].iter().position(|&c| c == '\'').unwrap_or(0) + 1,
                (_, '\'') => 3,
                _ => 1,
            };
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(chars[start..i].iter().collect());
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            tokens.push("::".into());
            i += 2;
        } else {
            if !c.is_whitespace() {
                tokens.push(c.to_string());
            }
            i += 1;
        }
    }
    tokens
}

/// The library's files (the binary's, src/main.rs and src/cli/, are not the library's).
fn library_files(src: &Path) -> Vec<File> {
    let mut found = Vec::new();
    walk(src, &mut found);
    found
        .into_iter()
        .filter_map(|p| {
            let rel = p.strip_prefix(src).expect("under src").to_path_buf();
            if rel == Path::new("main.rs") || rel.starts_with("cli") {
                return None;
            }
            let (module, is_mod) = module_of(&rel);
            let text = std::fs::read_to_string(&p).expect("readable source");
            Some(File {
                module,
                is_mod,
                text,
            })
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src readable") {
        let p = entry.expect("entry").path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// `a/b.rs` → (a::b, false); `a/mod.rs` → (a, true); `lib.rs` → (the root, true).
fn module_of(rel: &Path) -> (Module, bool) {
    let mut parts: Module = rel
        .iter()
        .map(|s| s.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    let last = parts.pop().unwrap_or_default();
    let is_mod = last == "mod" || (last == "lib" && parts.is_empty());
    if !is_mod {
        parts.push(last);
    }
    (parts, is_mod)
}
