//! The layout rules of issue 12 ("a layout that reads as the packet's path
//! and the daemon's roles"), checked on the source tree so that they stay
//! true:
//!
//! 1. no module of router-core or router-user imports a module that imports
//!    it back, directly or through a chain: imports are `use` trees and
//!    paths through `crate::`, `super::`, `self::` or a child module, at
//!    any level (inline modules included);
//! 2. no non-test source file (any crate's `src/`; files named `tests.rs`
//!    and `#[cfg(test)]` modules aside) is over 1,000 lines;
//! 3. router-core depends on no aya, tokio or netlink crate (nor on the
//!    daemon's HTTP and metrics crates, nor on router-common's `user`
//!    feature, which pulls aya in);
//! 4. router-ebpf/src/main.rs, the entry point, is under 120 lines.
//!
//! Comments and string literals are not read: a doc link is not an
//! import. `the_checks_can_fail` runs each check on sources made to break
//! it.
use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

/// Most lines of a non-test source file.
const MAX_LINES: usize = 1000;
/// router-ebpf/src/main.rs has fewer lines than this.
const EBPF_MAIN_LINES: usize = 120;
/// The crates whose module graphs must have no circle.
const GRAPH_CRATES: &[&str] = &["router-core", "router-user"];
/// What router-core must not depend on (`*`: any suffix).
const CORE_FORBIDDEN: &[&str] = &[
    "aya",
    "aya-*",
    "tokio",
    "tokio-*",
    "rtnetlink",
    "netlink-*",
    "axum",
    "hyper",
    "hyper-*",
    "prometheus",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests lives in the workspace")
        .to_path_buf()
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let mut found = Vec::new();
    for name in GRAPH_CRATES {
        let src = workspace().join(name).join("src");
        let graph = module_graph(&src);
        assert!(
            graph.len() > 1,
            "{name}: no module found under {}",
            src.display()
        );
        for cycle in cycles(&graph) {
            found.push(format!("{name}: {}", cycle.join(" -> ")));
        }
    }
    assert!(
        found.is_empty(),
        "modules that import each other (directly or through a chain):\n{}",
        found.join("\n")
    );
}

/// bench/src/main.rs (1210 lines on this branch) is shortened by the bench
/// split (branch tests-split, which moves each part's figures beside it):
/// until that branch is merged here, this fails on it alone.
#[test]
fn no_non_test_source_file_is_over_1000_lines() {
    let long = long_files(&source_dirs(&workspace()));
    assert!(
        long.is_empty(),
        "non-test source files over {MAX_LINES} lines (split them along their seams, or move \
         their tests to a sibling tests.rs):\n{}",
        long.iter()
            .map(|(path, n)| format!("{} ({n} lines)", path.display()))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn router_core_depends_on_no_kernel_async_or_network_crate() {
    let manifest = workspace().join("router-core/Cargo.toml");
    let text = fs::read_to_string(&manifest).expect("router-core/Cargo.toml");
    let bad = forbidden_dependencies(&text);
    assert!(
        bad.is_empty(),
        "{} depends on {}: router-core plans, the daemon (router-user) does the I/O",
        manifest.display(),
        bad.join(", ")
    );
}

/// This one waits for the eBPF split (branch ebpf-split), which leaves the
/// entry point alone in main.rs: until that branch is merged, it fails.
#[test]
fn the_ebpf_entry_point_is_short() {
    let main = workspace().join("router-ebpf/src/main.rs");
    let lines = fs::read_to_string(&main)
        .expect("router-ebpf/src/main.rs")
        .lines()
        .count();
    assert!(
        lines < EBPF_MAIN_LINES,
        "{} has {lines} lines; the entry point belongs there, the program's jobs in modules \
         beside it (fewer than {EBPF_MAIN_LINES} lines)",
        main.display()
    );
}

/// Each check, on sources made to break it.
#[test]
fn the_checks_can_fail() {
    let dir = std::env::temp_dir().join(format!("collecte-layout-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let src = dir.join("src");
    let write = |path: &str, text: &str| {
        let path = src.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    };
    write(
        "lib.rs",
        "//! use crate::c; (a comment)\npub mod a;\npub mod b;\npub mod c;\npub mod d;\n",
    );
    // a -> b -> c -> a, through a use tree, a plain path and `super::`.
    write(
        "a.rs",
        "use crate::{b::{self, X}};\nfn f() -> X { b::make() }\n",
    );
    write(
        "b.rs",
        "pub struct X;\npub fn make() -> X { crate::c::g(); X }\n",
    );
    write(
        "c/mod.rs",
        "mod inner;\npub use inner::Z;\npub fn g() {}\n#[cfg(test)]\nmod tests {\n    use crate::a;\n}\n",
    );
    write("c/inner.rs", "pub struct Z;\nuse super::super::a as _;\n");
    // d and its child import each other; strings and comments do not count.
    write(
        "d/mod.rs",
        "mod e;\nuse e::Y;\nconst S: &str = \"use crate::a;\";\n// use crate::b;\n",
    );
    write(
        "d/e.rs",
        "pub struct Y;\nfn h() { super::helper(); let _ = r#\"crate::a\"#; }\n",
    );
    let graph = module_graph(&src);
    let found: BTreeSet<Vec<String>> = cycles(&graph)
        .into_iter()
        .map(|c| {
            let mut c = c[..c.len() - 1].to_vec();
            c.sort();
            c
        })
        .collect();
    let expect = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        found,
        BTreeSet::from([expect(&["a", "b", "c", "c::inner"]), expect(&["d", "d::e"])]),
        "{graph:?}"
    );
    assert!(
        !graph["crate"].contains("c")
            && !graph["d"].contains("a")
            && !graph["d"].contains("b")
            && !graph["d::e"].contains("a"),
        "a comment or a string counted as an import: {graph:?}"
    );
    assert!(graph["c::tests"].contains("a"), "{graph:?}");
    // A test module's lines do not count; a file's own lines do.
    let body = "fn f() {}\n".repeat(MAX_LINES - 5);
    let tests = format!("#[cfg(test)]\nmod tests {{\n{}}}\n", "// x\n".repeat(50));
    write("ok.rs", &format!("{body}{tests}"));
    write("tests.rs", &"// x\n".repeat(MAX_LINES + 1));
    write("long.rs", &format!("{body}{}", "fn g() {}\n".repeat(10)));
    let long = long_files(std::slice::from_ref(&src));
    assert_eq!(
        long,
        vec![(src.join("long.rs"), MAX_LINES + 5)],
        "only long.rs is too long"
    );
    // Forbidden dependencies, however they are declared.
    let manifest = "[package]\nname = \"x\"\n[dependencies]\nserde = \"1\"\ntokio = { workspace = true }\n\
                    router-common = { workspace = true, features = [\"user\"] }\n\
                    [dependencies.netlink-sys]\nversion = \"0.8\"\n\
                    [dev-dependencies]\nrt = { package = \"rtnetlink\", version = \"0.14\" }\n";
    assert_eq!(
        forbidden_dependencies(manifest),
        vec![
            "tokio",
            "router-common with the user feature (aya)",
            "netlink-sys",
            "rtnetlink"
        ]
    );
    assert!(forbidden_dependencies("[dependencies]\nserde = \"1\"\nipnet = \"2\"\n").is_empty());
    let _ = fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------
// Sources, without comments and literals
// ---------------------------------------------------------------------------

/// The `src/` directory of every crate of the workspace.
fn source_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(root)
        .expect("the workspace")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("Cargo.toml").is_file() && p.join("src").is_dir())
        .map(|p| p.join("src"))
        .collect();
    dirs.sort();
    dirs
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = e.expect("a directory entry").path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// `src` with comments and the contents of string and character literals
/// blanked (newlines kept, so that lines keep their numbers).
fn blank(src: &str) -> String {
    let b = src.as_bytes();
    let n = b.len();
    let mut out = b.to_vec();
    let wipe = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to.min(n)] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let ident = |i: usize| i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
    let mut i = 0;
    while i < n {
        let c = b[i];
        let next = b.get(i + 1).copied().unwrap_or(0);
        if c == b'/' && next == b'/' {
            let end = b[i..].iter().position(|&x| x == b'\n').map_or(n, |k| i + k);
            wipe(&mut out, i, end);
            i = end;
        } else if c == b'/' && next == b'*' {
            let (mut depth, mut j) = (1, i + 2);
            while j < n && depth > 0 {
                if b[j] == b'/' && b.get(j + 1) == Some(&b'*') {
                    depth += 1;
                    j += 2;
                } else if b[j] == b'*' && b.get(j + 1) == Some(&b'/') {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            wipe(&mut out, i, j);
            i = j;
        } else if (c == b'r' || (c == b'b' && next == b'r')) && !ident(i) {
            // A raw string: r"..." or r#"..."#, perhaps a byte string.
            let start = if c == b'b' { i + 2 } else { i + 1 };
            let hashes = b[start..].iter().take_while(|&&x| x == b'#').count();
            if b.get(start + hashes) != Some(&b'"') {
                i += 1;
                continue;
            }
            let body = start + hashes + 1;
            let mut j = body;
            while j < n
                && !(b[j] == b'"'
                    && b[j + 1..]
                        .iter()
                        .take(hashes)
                        .filter(|&&x| x == b'#')
                        .count()
                        == hashes)
            {
                j += 1;
            }
            wipe(&mut out, body, j);
            i = j + 1 + hashes;
        } else if c == b'"' || (c == b'b' && next == b'"' && !ident(i)) {
            let mut j = if c == b'b' { i + 2 } else { i + 1 };
            let body = j;
            while j < n && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            wipe(&mut out, body, j);
            i = j + 1;
        } else if c == b'\'' {
            // A character literal, or a lifetime.
            let end = if next == b'\\' {
                // Past the escaped character, which may be a quote.
                b[i + 3..]
                    .iter()
                    .position(|&x| x == b'\'')
                    .map(|k| i + 3 + k)
            } else if next >= 0x80 {
                b[i + 1..]
                    .iter()
                    .take(5)
                    .position(|&x| x == b'\'')
                    .map(|k| i + 1 + k)
            } else if b.get(i + 2) == Some(&b'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(end) => {
                    wipe(&mut out, i + 1, end);
                    i = end + 1;
                }
                None => i += 1,
            }
        } else {
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Ident(String),
    /// `::`.
    Sep,
    Punct(char),
}

/// Tokens, each with its line (1-based).
type Tokens = Vec<(Tok, usize)>;

/// The tokens of blanked source.
fn tokens(text: &str) -> Tokens {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c.is_alphabetic() || c == '_' {
            // A raw identifier (r#type) is its name.
            if c == 'r' && chars.get(i + 1) == Some(&'#') {
                i += 2;
            }
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((Tok::Ident(chars[start..i].iter().collect()), line));
        } else if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push((Tok::Sep, line));
            i += 2;
        } else {
            out.push((Tok::Punct(c), line));
            i += 1;
        }
    }
    out
}

// ---------------------------------------------------------------------------
// 1. The module graph
// ---------------------------------------------------------------------------

/// Module path (`a::b`, "crate" for the root) → the modules it imports.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// The module of a file under `src` (`lib.rs` is the root); `None` for
/// the roots of other crates (`main.rs`, `bin/`).
fn file_module(src: &Path, file: &Path) -> Option<Vec<String>> {
    let rel = file.strip_prefix(src).ok()?;
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop()?;
    if parts.first().is_some_and(|p| p == "bin") || (parts.is_empty() && last == "main.rs") {
        return None;
    }
    match last.as_str() {
        "lib.rs" if parts.is_empty() => {}
        "mod.rs" => {}
        name => parts.push(name.trim_end_matches(".rs").to_owned()),
    }
    Some(parts)
}

fn name(m: &[String]) -> String {
    if m.is_empty() {
        "crate".to_owned()
    } else {
        m.join("::")
    }
}

/// Inline modules (`mod name { ... }`) of a file whose module is `base`.
fn inline_modules(toks: &[(Tok, usize)], base: &[String], out: &mut BTreeSet<Vec<String>>) {
    walk(
        toks,
        base,
        |_, _| {},
        |m| {
            out.insert(m.to_vec());
        },
    );
}

/// Walks the tokens of a file of module `base`, calling `path` with each
/// path it reads (a `use` tree's paths, or a plain path) and the module it
/// is in, and `module` with each inline module.
fn walk(
    toks: &[(Tok, usize)],
    base: &[String],
    mut path: impl FnMut(&[String], Vec<String>),
    mut module: impl FnMut(&[String]),
) {
    // The inline modules open around this point, with the depth they close at.
    let mut stack: Vec<(Vec<String>, usize)> = vec![(base.to_vec(), 0)];
    let mut depth = 0;
    let mut i = 0;
    let ident = |k: usize| match toks.get(k) {
        Some((Tok::Ident(s), _)) => Some(s.as_str()),
        _ => None,
    };
    while i < toks.len() {
        let here = stack.last().expect("the file's module").0.clone();
        match &toks[i].0 {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                if stack.len() > 1 && stack.last().unwrap().1 == depth {
                    stack.pop();
                }
                depth -= 1;
            }
            Tok::Ident(kw) if kw == "mod" => {
                if let (Some(m), Some((Tok::Punct('{'), _))) = (ident(i + 1), toks.get(i + 2)) {
                    let mut inner = here.clone();
                    inner.push(m.to_owned());
                    module(&inner);
                    depth += 1;
                    stack.push((inner, depth));
                    i += 3;
                    continue;
                }
            }
            Tok::Ident(kw) if kw == "use" => {
                let end = (i..toks.len())
                    .find(|&k| toks[k].0 == Tok::Punct(';'))
                    .unwrap_or(toks.len());
                let tree: Vec<Tok> = toks[i + 1..end].iter().map(|(t, _)| t.clone()).collect();
                let mut paths = Vec::new();
                use_tree(&tree, 0, &[], &mut paths);
                for p in paths {
                    path(&here, p);
                }
                i = end + 1;
                continue;
            }
            Tok::Ident(first) if toks.get(i + 1).map(|t| &t.0) == Some(&Tok::Sep) => {
                let mut p = vec![first.clone()];
                let mut k = i + 1;
                while toks.get(k).map(|t| &t.0) == Some(&Tok::Sep) {
                    match ident(k + 1) {
                        Some(s) => p.push(s.to_owned()),
                        None => break,
                    }
                    k += 2;
                }
                path(&here, p);
                i = k;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
}

/// The paths of a `use` tree (the tokens between `use` and `;`), from
/// position `p`, under `prefix`; returns where the tree ends.
fn use_tree(t: &[Tok], mut p: usize, prefix: &[String], out: &mut Vec<Vec<String>>) -> usize {
    let mut path = prefix.to_vec();
    if t.get(p) == Some(&Tok::Sep) {
        p += 1;
    }
    loop {
        match t.get(p) {
            Some(Tok::Ident(s)) => {
                // `a::{self, ...}` is `a` itself.
                if s != "self" || path.is_empty() {
                    path.push(s.clone());
                }
                p += 1;
                match t.get(p) {
                    Some(Tok::Sep) => p += 1,
                    Some(Tok::Ident(a)) if a == "as" => {
                        out.push(path);
                        return p + 2;
                    }
                    _ => {
                        out.push(path);
                        return p;
                    }
                }
            }
            Some(Tok::Punct('{')) => {
                p += 1;
                loop {
                    if t.get(p) == Some(&Tok::Punct('}')) {
                        return p + 1;
                    }
                    p = use_tree(t, p, &path, out);
                    match t.get(p) {
                        Some(Tok::Punct(',')) => p += 1,
                        Some(Tok::Punct('}')) => return p + 1,
                        _ => return p,
                    }
                }
            }
            Some(Tok::Punct('*')) => {
                out.push(path);
                return p + 1;
            }
            _ => {
                if !path.is_empty() {
                    out.push(path);
                }
                return p;
            }
        }
    }
}

/// The module `path`, read in module `here`, leads to: the deepest module
/// on it. `None` for other crates' paths.
fn resolve(
    modules: &BTreeSet<Vec<String>>,
    here: &[String],
    path: &[String],
) -> Option<Vec<String>> {
    let (mut target, rest) = match path.first()?.as_str() {
        "crate" => (Vec::new(), &path[1..]),
        "self" => (here.to_vec(), &path[1..]),
        "super" => {
            let mut base = here.to_vec();
            let mut rest = path;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
            (base, rest)
        }
        first => {
            // A child module, as `use child::Item` reads in 2018 and later.
            let mut child = here.to_vec();
            child.push(first.to_owned());
            if !modules.contains(&child) {
                return None;
            }
            (here.to_vec(), path)
        }
    };
    for seg in rest {
        target.push(seg.clone());
        if !modules.contains(&target) {
            target.pop();
            break;
        }
    }
    Some(target)
}

/// The import graph of the crate whose sources are in `src`.
fn module_graph(src: &Path) -> Graph {
    let files: Vec<(Vec<String>, Tokens)> = rust_files(src)
        .into_iter()
        .filter_map(|f| {
            let m = file_module(src, &f)?;
            let text = fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            Some((m, tokens(&blank(&text))))
        })
        .collect();
    let mut modules: BTreeSet<Vec<String>> = files.iter().map(|(m, _)| m.clone()).collect();
    for (m, toks) in &files {
        inline_modules(toks, m, &mut modules);
    }
    let mut graph: Graph = modules.iter().map(|m| (name(m), BTreeSet::new())).collect();
    for (m, toks) in &files {
        walk(
            toks,
            m,
            |here, path| {
                if let Some(to) = resolve(&modules, here, &path)
                    && to != here
                {
                    graph.get_mut(&name(here)).unwrap().insert(name(&to));
                }
            },
            |_| {},
        );
    }
    graph
}

/// A cycle in each group of modules that reach each other (strongly
/// connected), as `[a, b, ..., a]`.
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_owned()];
        while let Some(m) = todo.pop() {
            for n in graph.get(&m).into_iter().flatten() {
                if seen.insert(n.clone()) {
                    todo.push(n.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|m| (m, reach(m))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for m in graph.keys() {
        if done.contains(m) || !reaches[m].contains(m) {
            continue;
        }
        let group: BTreeSet<String> = graph
            .keys()
            .filter(|n| reaches[m].contains(*n) && reaches[*n].contains(m))
            .cloned()
            .collect();
        done.extend(group.iter().cloned());
        // The shortest way back to `m`, within the group.
        let mut back: BTreeMap<String, String> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([m.clone()]);
        'search: while let Some(x) = queue.pop_front() {
            for n in &graph[&x] {
                if !group.contains(n) || back.contains_key(n) {
                    continue;
                }
                back.insert(n.clone(), x.clone());
                if n == m {
                    break 'search;
                }
                queue.push_back(n.clone());
            }
        }
        let mut cycle = vec![m.clone()];
        let mut at = m.clone();
        loop {
            at = back[&at].clone();
            cycle.push(at.clone());
            if &at == m {
                break;
            }
        }
        cycle.reverse();
        out.push(cycle);
    }
    out
}

// ---------------------------------------------------------------------------
// 2. Long files
// ---------------------------------------------------------------------------

/// The non-test source files over [`MAX_LINES`] lines under `dirs`, with
/// their line counts (test modules' lines left out).
fn long_files(dirs: &[PathBuf]) -> Vec<(PathBuf, usize)> {
    let mut out = Vec::new();
    for file in dirs.iter().flat_map(|d| rust_files(d)) {
        if file.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let text = fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let lines = text.lines().count() - test_lines(&tokens(&blank(&text)));
        if lines > MAX_LINES {
            out.push((file, lines));
        }
    }
    out
}

/// Lines of the `#[cfg(test)] mod name { ... }` modules, attribute included.
fn test_lines(toks: &[(Tok, usize)]) -> usize {
    let cfg_test = [
        Tok::Punct('#'),
        Tok::Punct('['),
        Tok::Ident("cfg".into()),
        Tok::Punct('('),
        Tok::Ident("test".into()),
        Tok::Punct(')'),
        Tok::Punct(']'),
    ];
    let mut total = 0;
    let mut i = 0;
    while i + cfg_test.len() + 3 <= toks.len() {
        let at = |k: usize| &toks[k].0;
        let attr = (0..cfg_test.len()).all(|k| *at(i + k) == cfg_test[k]);
        let m = i + cfg_test.len();
        if attr
            && *at(m) == Tok::Ident("mod".into())
            && matches!(at(m + 1), Tok::Ident(_))
            && *at(m + 2) == Tok::Punct('{')
        {
            let mut depth = 0;
            let mut k = m + 2;
            while k < toks.len() {
                match at(k) {
                    Tok::Punct('{') => depth += 1,
                    Tok::Punct('}') => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                k += 1;
            }
            let end = toks.get(k).map_or(toks[toks.len() - 1].1, |t| t.1);
            total += end - toks[i].1 + 1;
            i = k;
        }
        i += 1;
    }
    total
}

// ---------------------------------------------------------------------------
// 3. router-core's dependencies
// ---------------------------------------------------------------------------

/// The forbidden dependencies a manifest declares, in any dependency table
/// (normal, dev, build, per target; inline or as `[dependencies.name]`,
/// renamed with `package = "..."` or not).
fn forbidden_dependencies(manifest: &str) -> Vec<String> {
    // (name, what follows it) of every dependency.
    let mut deps: Vec<(String, String)> = Vec::new();
    let mut in_deps = false;
    let mut in_table = false;
    for line in manifest.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let header = header.trim_matches(['[', ']']).trim();
            in_deps = header.ends_with("dependencies");
            in_table = false;
            if let Some((table, name)) = header.rsplit_once('.')
                && table.ends_with("dependencies")
            {
                deps.push((name.trim_matches('"').to_owned(), String::new()));
                in_table = true;
            }
        } else if in_table {
            let body = &mut deps.last_mut().expect("the table's dependency").1;
            body.push_str(line);
            body.push('\n');
        } else if in_deps && let Some((key, value)) = line.split_once('=') {
            deps.push((key.trim().trim_matches('"').to_owned(), value.to_owned()));
        }
    }
    let forbidden = |name: &str| {
        CORE_FORBIDDEN.iter().any(|f| match f.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == *f,
        })
    };
    let mut out = Vec::new();
    for (name, value) in &deps {
        let package = value
            .split("package")
            .nth(1)
            .and_then(|rest| rest.split('"').nth(1))
            .unwrap_or(name);
        if forbidden(package) {
            out.push(package.to_owned());
        } else if package == "router-common" && value.contains("\"user\"") {
            out.push("router-common with the user feature (aya)".to_owned());
        }
    }
    out
}
