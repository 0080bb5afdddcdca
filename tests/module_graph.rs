//! No module imports a module that imports it back.
//!
//! Reads every `.rs` file of the library (`src/lib.rs`) and of the binary
//! (`src/main.rs`) and builds the import graph between files, then fails
//! naming every cycle in it (one strongly connected component of more than
//! one file is one cycle), with the line of each import on the way round.
//!
//! What counts:
//!
//! - A *module* is a file: `src/store/blobs.rs` and `src/store/mod.rs` are two
//!   modules. An inline `mod x { ... }` belongs to the file it is written in
//!   (a file's `#[cfg(test)] mod tests { use super::*; }` is the file itself,
//!   so its imports are the file's).
//! - A file *imports* another when it names a path into it anywhere in its
//!   code (`use` declarations, use-tree groups and paths in expressions and
//!   types alike): `crate::a::b::Item`, `super::x::Item`, `self::x::Item`,
//!   `x::Item` for a child `x` it declares, and `bulwark::a::Item` from the
//!   binary. The path resolves to the deepest *file* it walks through:
//!   `crate::config::defaults::LISTEN` (an inline module) is `config.rs`.
//! - Declaring a child (`mod x;`, `pub mod x;`) is not importing it. A parent
//!   (`foo.rs` or `foo/mod.rs`) imports a child only if its own code uses
//!   the child's items. Re-exporting them (`pub use x::Item;`, `pub(crate)
//!   use ...`) publishes the child, as `pub mod x;` would, and is not a use:
//!   a facade that re-exports its children, whose children use items the
//!   facade defines, has no cycle. A parent that calls into a child that
//!   calls back into the parent has one, as two siblings would.
//! - Comments, strings and character literals are skipped.
//!
//! `KNOWN` lists cycles being removed by work in progress; it only shrinks.
//! The test fails when a listed cycle is gone too, so that its entry goes
//! with it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Cycles (as the sorted set of their files, relative to `src/`) that are
/// known and being removed. Empty is the goal.
const KNOWN: &[&[&str]] = &[];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    /// `::`
    Path,
    Open,
    Close,
    Comma,
    Star,
    Dot,
    Semi,
    /// Anything else that ends a path.
    Other,
}

/// The tokens of `src` with the line each starts on; comments, strings,
/// raw strings, byte strings and char literals are dropped.
fn lex(src: &str) -> Vec<(Tok, usize)> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let count_lines = |from: usize, to: usize| b[from..to].iter().filter(|&&c| c == b'\n').count();
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c == b'\n' {
            line += 1;
            i += 1;
            continue;
        }
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        // Comments.
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            line += count_lines(start, i);
            continue;
        }
        // Raw strings: r"..", r#".."#, br#".."#.
        let raw_at = if c == b'r' {
            Some(i + 1)
        } else if c == b'b' && b.get(i + 1) == Some(&b'r') {
            Some(i + 2)
        } else {
            None
        };
        if let Some(mut j) = raw_at {
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) == Some(&b'"') {
                j += 1;
                loop {
                    if j >= b.len() {
                        break;
                    }
                    if b[j] == b'"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&b'#')) {
                        j += 1 + hashes;
                        break;
                    }
                    j += 1;
                }
                line += count_lines(start, j.min(b.len()));
                i = j;
                continue;
            }
        }
        // Strings and byte strings.
        if c == b'"' || (c == b'b' && b.get(i + 1) == Some(&b'"')) {
            let mut j = if c == b'b' { i + 2 } else { i + 1 };
            while j < b.len() && b[j] != b'"' {
                if b[j] == b'\\' {
                    j += 1;
                }
                j += 1;
            }
            j = (j + 1).min(b.len());
            line += count_lines(start, j);
            i = j;
            continue;
        }
        // Char literals ('a', '\n', '\u{1F600}', b'x'), not lifetimes ('a).
        if c == b'\'' || (c == b'b' && b.get(i + 1) == Some(&b'\'')) {
            let q = if c == b'b' { i + 1 } else { i };
            if b.get(q + 1) == Some(&b'\\') {
                let mut j = q + 2;
                while j < b.len() && b[j] != b'\'' {
                    j += 1;
                }
                i = (j + 1).min(b.len());
                continue;
            }
            // One (possibly multi-byte) character then a quote.
            let rest = &src[q + 1..];
            if let Some(ch) = rest.chars().next() {
                let after = q + 1 + ch.len_utf8();
                if b.get(after) == Some(&b'\'') {
                    i = after + 1;
                    continue;
                }
            }
            // A lifetime: skip the quote, the identifier follows.
            i = q + 1;
            out.push((Tok::Other, line));
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let mut j = i;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                j += 1;
            }
            let mut word = &src[i..j];
            // r#ident
            if word == "r" && b.get(j) == Some(&b'#') {
                let k = j + 1;
                let mut e = k;
                while e < b.len() && (b[e].is_ascii_alphanumeric() || b[e] == b'_') {
                    e += 1;
                }
                word = &src[k..e];
                j = e;
            }
            out.push((Tok::Ident(word.to_string()), line));
            i = j;
            continue;
        }
        let tok = match c {
            b':' if b.get(i + 1) == Some(&b':') => {
                i += 2;
                out.push((Tok::Path, line));
                continue;
            }
            b'{' => Tok::Open,
            b'}' => Tok::Close,
            b',' => Tok::Comma,
            b'*' => Tok::Star,
            b'.' => Tok::Dot,
            b';' => Tok::Semi,
            _ => Tok::Other,
        };
        out.push((tok, line));
        i += 1;
    }
    out
}

/// A file module: its crate, its path below the crate root, its file.
#[derive(Debug, Clone)]
struct Module {
    krate: &'static str,
    path: Vec<String>,
    file: PathBuf,
    /// Child modules declared with `mod x;` (not inline), by name.
    children: BTreeMap<String, usize>,
    parent: Option<usize>,
}

/// `mod x;` declarations at the top level of a file (not inside inline
/// modules or functions).
fn declared_children(toks: &[(Tok, usize)]) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    for (k, (t, _)) in toks.iter().enumerate() {
        match t {
            Tok::Open => depth += 1,
            Tok::Close => depth = depth.saturating_sub(1),
            Tok::Ident(w) if w == "mod" && depth == 0 => {
                if let (Some((Tok::Ident(name), _)), Some((Tok::Semi, _))) =
                    (toks.get(k + 1), toks.get(k + 2))
                {
                    out.push(name.clone());
                }
            }
            _ => {}
        }
    }
    out
}

fn child_file(parent: &Path, name: &str) -> Option<PathBuf> {
    let stem = parent.file_stem()?.to_str()?;
    let dir = parent.parent()?;
    let dir = if matches!(stem, "mod" | "lib" | "main") {
        dir.to_path_buf()
    } else {
        dir.join(stem)
    };
    let a = dir.join(format!("{name}.rs"));
    let b = dir.join(name).join("mod.rs");
    if a.is_file() {
        Some(a)
    } else if b.is_file() {
        Some(b)
    } else {
        None
    }
}

struct Graph {
    modules: Vec<Module>,
    /// importer → imported → first line of an import.
    edges: BTreeMap<usize, BTreeMap<usize, usize>>,
}

fn load(root: &Path) -> Graph {
    let mut modules: Vec<Module> = Vec::new();
    let mut sources: Vec<Vec<(Tok, usize)>> = Vec::new();
    for (krate, file) in [("lib", "lib.rs"), ("bin", "main.rs")] {
        let mut stack = vec![(root.join(file), Vec::<String>::new(), None::<usize>)];
        while let Some((file, path, parent)) = stack.pop() {
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let toks = lex(&text);
            let id = modules.len();
            for name in declared_children(&toks) {
                if let Some(f) = child_file(&file, &name) {
                    let mut p = path.clone();
                    p.push(name);
                    stack.push((f, p, Some(id)));
                }
            }
            if let Some(p) = parent {
                let name = path.last().expect("child has a name").clone();
                modules[p].children.insert(name, id);
            }
            modules.push(Module {
                krate,
                path,
                file,
                children: BTreeMap::new(),
                parent,
            });
            sources.push(toks);
        }
    }
    let lib_root = modules
        .iter()
        .position(|m| m.krate == "lib" && m.path.is_empty())
        .expect("lib root");
    let bin_root = modules
        .iter()
        .position(|m| m.krate == "bin" && m.path.is_empty());
    let mut edges: BTreeMap<usize, BTreeMap<usize, usize>> = BTreeMap::new();
    for (id, toks) in sources.iter().enumerate() {
        let own_root = if modules[id].krate == "lib" {
            lib_root
        } else {
            bin_root.expect("bin root")
        };
        for w in paths(toks) {
            let Some(target) = resolve(&modules, id, own_root, lib_root, &w.segments, w.inline)
            else {
                continue;
            };
            // Re-exporting a descendant's items publishes it (as `pub mod`
            // would); it is not a use of it.
            if target == id || (w.reexport && is_descendant(&modules, target, id)) {
                continue;
            }
            edges.entry(id).or_default().entry(target).or_insert(w.line);
        }
    }
    Graph { modules, edges }
}

/// A path written in a file.
struct Written {
    segments: Vec<String>,
    line: usize,
    /// How many inline modules it is written in.
    inline: usize,
    /// Whether it is in a `pub use` (or `pub(..) use`) declaration.
    reexport: bool,
}

/// Every path in the file. Use-tree groups (`a::{b, c::{d, e}}`) give one
/// path per leaf.
fn paths(toks: &[(Tok, usize)]) -> Vec<Written> {
    let mut out = Vec::new();
    // Inside a `pub use ... ;`.
    let mut reexport = false;
    // Brace depths at which an inline `mod x {` opened.
    let mut inline: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    let mut k = 0;
    while k < toks.len() {
        match &toks[k].0 {
            Tok::Open => {
                let is_mod = k >= 2
                    && matches!(&toks[k - 2].0, Tok::Ident(w) if w == "mod")
                    && matches!(&toks[k - 1].0, Tok::Ident(_));
                depth += 1;
                if is_mod {
                    inline.push(depth);
                }
                k += 1;
            }
            Tok::Close => {
                if inline.last() == Some(&depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
                k += 1;
            }
            Tok::Semi => {
                reexport = false;
                k += 1;
            }
            Tok::Ident(w) if w == "use" => {
                // `pub use` or `pub(crate) use` / `pub(super) use`.
                let before = |n: usize| k.checked_sub(n).map(|i| &toks[i].0);
                let is_pub = |t: Option<&Tok>| matches!(t, Some(Tok::Ident(p)) if p == "pub");
                reexport =
                    is_pub(before(1)) || (before(1) == Some(&Tok::Other) && is_pub(before(4)));
                k += 1;
            }
            Tok::Ident(_) => {
                // A path starts at an identifier not preceded by `::` (the
                // middle of a path), `.` (a field or method) or `mod` (a
                // declaration).
                let not_a_start = k > 0
                    && match &toks[k - 1].0 {
                        Tok::Path | Tok::Dot => true,
                        Tok::Ident(w) => w == "mod",
                        _ => false,
                    };
                if not_a_start {
                    k += 1;
                    continue;
                }
                let line = toks[k].1;
                let mut leaves = Vec::new();
                k = use_tree(toks, k, Vec::new(), false, &mut leaves);
                for segments in leaves {
                    out.push(Written {
                        segments,
                        line,
                        inline: inline.len(),
                        reexport,
                    });
                }
            }
            _ => k += 1,
        }
    }
    out
}

/// Parses `ident (:: ident)* (:: { tree, ... } | :: *)?` from `k`, pushing the
/// full path of every leaf that has at least one `::` (`joined`: the prefix
/// had one); returns the index after it. A lone identifier is not a path
/// into a module.
fn use_tree(
    toks: &[(Tok, usize)],
    mut k: usize,
    mut prefix: Vec<String>,
    mut joined: bool,
    out: &mut Vec<Vec<String>>,
) -> usize {
    loop {
        match toks.get(k).map(|t| &t.0) {
            Some(Tok::Ident(w)) => {
                prefix.push(w.clone());
                k += 1;
            }
            Some(Tok::Star) => {
                k += 1;
                break;
            }
            Some(Tok::Open) => {
                // A group: trees separated by commas.
                k += 1;
                loop {
                    match toks.get(k).map(|t| &t.0) {
                        Some(Tok::Close) => {
                            k += 1;
                            break;
                        }
                        Some(Tok::Comma) => k += 1,
                        Some(Tok::Ident(_)) | Some(Tok::Star) | Some(Tok::Open) => {
                            k = use_tree(toks, k, prefix.clone(), true, out);
                            // Skip `as name`.
                            if matches!(toks.get(k).map(|t| &t.0), Some(Tok::Ident(w)) if w == "as")
                            {
                                k += 2;
                            }
                        }
                        _ => {
                            // Not a use tree after all (e.g. `x::<T>{..}`).
                            return k;
                        }
                    }
                }
                return k;
            }
            _ => break,
        }
        if toks.get(k).map(|t| &t.0) == Some(&Tok::Path) {
            k += 1;
            joined = true;
        } else {
            break;
        }
    }
    if joined && !prefix.is_empty() {
        out.push(prefix);
    }
    k
}

/// The file a path written in module `at` (inside `inline` inline modules)
/// resolves to, if it names a module of this crate.
fn resolve(
    modules: &[Module],
    at: usize,
    own_root: usize,
    lib_root: usize,
    segments: &[String],
    inline: usize,
) -> Option<usize> {
    let first = segments.first()?;
    let (mut cur, rest) = match first.as_str() {
        "crate" => (own_root, &segments[1..]),
        "bulwark" if modules[at].krate == "bin" => (lib_root, &segments[1..]),
        "self" => (at, &segments[1..]),
        "super" => {
            let supers = segments.iter().take_while(|s| *s == "super").count();
            // The first `inline` supers leave inline modules of this file.
            let mut cur = at;
            for _ in 0..supers.saturating_sub(inline) {
                cur = modules[cur].parent?;
            }
            (cur, &segments[supers..])
        }
        // `x::..` for a child `x` declared here (outside inline modules).
        name if inline == 0 && modules[at].children.contains_key(name) => (at, segments),
        _ => return None,
    };
    for s in rest {
        match modules[cur].children.get(s) {
            Some(&c) => cur = c,
            None => break,
        }
    }
    Some(cur)
}

/// Whether `m` is below `ancestor` in the module tree.
fn is_descendant(modules: &[Module], mut m: usize, ancestor: usize) -> bool {
    while let Some(p) = modules[m].parent {
        if p == ancestor {
            return true;
        }
        m = p;
    }
    false
}

/// Strongly connected components with more than one file (Tarjan).
fn cycles(g: &Graph) -> Vec<Vec<usize>> {
    struct T<'a> {
        g: &'a Graph,
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(t: &mut T, v: usize) {
        t.index[v] = Some(t.next);
        t.low[v] = t.next;
        t.next += 1;
        t.stack.push(v);
        t.on[v] = true;
        let succ: Vec<usize> =
            t.g.edges
                .get(&v)
                .map(|m| m.keys().copied().collect())
                .unwrap_or_default();
        for w in succ {
            match t.index[w] {
                None => {
                    visit(t, w);
                    t.low[v] = t.low[v].min(t.low[w]);
                }
                Some(i) if t.on[w] => t.low[v] = t.low[v].min(i),
                _ => {}
            }
        }
        if Some(t.low[v]) == t.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = t.stack.pop().expect("on stack");
                t.on[w] = false;
                comp.push(w);
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                t.out.push(comp);
            }
        }
    }
    let n = g.modules.len();
    let mut t = T {
        g,
        index: vec![None; n],
        low: vec![0; n],
        on: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if t.index[v].is_none() {
            visit(&mut t, v);
        }
    }
    t.out
}

/// One way round a component, from its first file back to it (breadth
/// first, so the shortest).
fn one_cycle(g: &Graph, comp: &[usize]) -> Vec<usize> {
    let inside: BTreeSet<usize> = comp.iter().copied().collect();
    let start = *comp.iter().min().expect("non-empty");
    let mut prev: BTreeMap<usize, usize> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for &w in g.edges.get(&v).map(|m| m.keys()).into_iter().flatten() {
            if !inside.contains(&w) {
                continue;
            }
            if w == start {
                let mut path = vec![v];
                let mut x = v;
                while x != start {
                    x = prev[&x];
                    path.push(x);
                }
                path.reverse();
                path.push(start);
                return path;
            }
            if let std::collections::btree_map::Entry::Vacant(e) = prev.entry(w) {
                e.insert(v);
                queue.push_back(w);
            }
        }
    }
    vec![start]
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rel(g: &Graph, m: usize) -> String {
    g.modules[m]
        .file
        .strip_prefix(src_dir())
        .unwrap_or(&g.modules[m].file)
        .display()
        .to_string()
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let g = load(&src_dir());
    let mut report = String::new();
    let mut found: Vec<Vec<String>> = Vec::new();
    for comp in cycles(&g) {
        let mut files: Vec<String> = comp.iter().map(|&m| rel(&g, m)).collect();
        files.sort();
        let known = KNOWN
            .iter()
            .any(|k| k.len() == files.len() && k.iter().zip(&files).all(|(a, b)| a == b));
        found.push(files.clone());
        if known {
            continue;
        }
        let path = one_cycle(&g, &comp);
        let _ = writeln!(report, "cycle among {}:", files.join(", "));
        for w in path.windows(2) {
            let line = g.edges[&w[0]][&w[1]];
            let _ = writeln!(
                report,
                "  {}:{line} imports {}",
                rel(&g, w[0]),
                rel(&g, w[1])
            );
        }
    }
    for k in KNOWN {
        let gone = !found
            .iter()
            .any(|f| f.len() == k.len() && f.iter().zip(k.iter()).all(|(a, b)| a == b));
        if gone {
            let _ = writeln!(
                report,
                "the known cycle {k:?} is gone (or changed): remove it from KNOWN in {}",
                file!()
            );
        }
    }
    assert!(report.is_empty(), "\n{report}");
}

/// The checker itself: a parent calling into a child that calls back into
/// it is a cycle; a facade re-exporting a child that uses the facade's own
/// items is not; declaring a child is not; `super` inside an inline `mod
/// tests` is the file itself; paths in comments, strings and after a `.`
/// are not imports.
#[test]
fn the_checker_finds_what_it_should_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    let write = |p: &str, text: &str| {
        let f = src.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, text).unwrap();
    };
    write("lib.rs", "pub mod a;\npub mod b;\npub mod c;\npub mod d;\n");
    write(
        "a.rs",
        "mod child;\nfn helper() {}\nfn g() { child::make() }\n#[cfg(test)]\nmod tests { use super::*; }\n",
    );
    write("a/child.rs", "pub fn make() { super::helper() }\n");
    write(
        "b.rs",
        "// crate::c::X in a comment\nconst S: &str = \"crate::c::X\";\nconst C: char = '{';\nuse crate::{a::{self}, c::X as Y};\nfn f(v: Vec<u8>) { v.c::<u8>(); }\n",
    );
    write(
        "c.rs",
        "pub struct X;\nmod tests { fn f<'a>(x: &'a str) { let _ = super::X; } }\n",
    );
    write(
        "d.rs",
        "mod inner;\npub(crate) use inner::{Y, Z};\npub struct Shared;\n",
    );
    write(
        "d/inner.rs",
        "use super::Shared;\npub struct Y(Shared);\npub struct Z;\n",
    );
    write("main.rs", "fn main() { bulwark::b::f(); }\n");
    let g = load(src);
    let name = |m: usize| {
        g.modules[m]
            .file
            .strip_prefix(src)
            .unwrap()
            .display()
            .to_string()
    };
    let edges: BTreeSet<(String, String)> = g
        .edges
        .iter()
        .flat_map(|(a, m)| m.keys().map(move |b| (*a, *b)))
        .map(|(a, b)| (name(a), name(b)))
        .collect();
    let want: BTreeSet<(String, String)> = [
        ("a.rs", "a/child.rs"),
        ("a/child.rs", "a.rs"),
        ("b.rs", "a.rs"),
        ("b.rs", "c.rs"),
        ("d/inner.rs", "d.rs"),
        ("main.rs", "b.rs"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(edges, want);
    let comps = cycles(&g);
    assert_eq!(comps.len(), 1, "{comps:?}");
    let mut files: Vec<String> = comps[0].iter().map(|&m| name(m)).collect();
    files.sort();
    assert_eq!(files, ["a.rs", "a/child.rs"]);
}
