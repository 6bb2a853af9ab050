//! Rules about the product's source that no compiler checks (issue 7): the 90 kHz clock is
//! spelled once, in `src/time.rs`, and `src/pipeline/` (the `pipeline` module's files) is the
//! only module that spawns threads. Test code (`tests.rs`, `*_tests.rs`, and everything after a file's top-level
//! `#[cfg(test)]`) may do either. Both rules cover the detector's crate (`detect/src/`) too.
//!
//! And the floors of the module graph (issue 20, docs/architecture.md): a module uses only
//! modules on its own floor, without a cycle, and on the floors below it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

fn product_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("reading src/") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "tests") {
                product_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name != "tests.rs" && !name.ends_with("_tests.rs") {
                out.push(path);
            }
        }
    }
}

/// `(file, line number, line)` for every product line (not a comment, not test code) of every
/// file under `src/` and `detect/src/` that `allowed` does not take (it gets the path from the
/// repository root, `src/...`), that contains one of `needles`.
fn offending(needles: &[&str], allowed: impl Fn(&str) -> bool) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    product_files(&root.join("src"), &mut files);
    assert!(files.len() > 20, "src/ was not found: {files:?}");
    let library = files.len();
    product_files(&root.join("detect/src"), &mut files);
    assert!(files.len() > library + 3, "detect/src/ was not found");
    let mut found = Vec::new();
    for file in files {
        let rel = file
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if allowed(&rel) {
            continue;
        }
        let text = fs::read_to_string(&file).expect("reading a source file");
        for (n, line) in text.lines().enumerate() {
            if line.starts_with("#[cfg(test)]") {
                break;
            }
            let code = line.split("//").next().unwrap_or("");
            if needles.iter().any(|needle| code.contains(needle)) {
                found.push(format!("{rel}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn the_90khz_clock_is_spelled_only_in_the_time_module() {
    let found = offending(&["90_000", "90000", "90 * 1000"], |f| f == "src/time.rs");
    assert!(
        found.is_empty(),
        "use crate::time (TICKS_PER_SEC, Duration90k, StreamTime) instead of a literal:\n{}",
        found.join("\n")
    );
}

#[test]
fn only_the_pipeline_spawns_threads() {
    let found = offending(&["thread::spawn", "thread::Builder"], in_pipeline);
    assert!(
        found.is_empty(),
        "threads are spawned by the pipeline module (src/pipeline/) only, and the process's \
         control and signal threads by src/origin.rs (issue 7):\n{}",
        found.join("\n")
    );
}

/// A file of the `pipeline` module (`src/pipeline/mod.rs` and the files beside it), or the
/// process's `src/origin.rs` (its signal and control threads, above the server).
fn in_pipeline(file: &str) -> bool {
    file.starts_with("src/pipeline/") || file == "src/origin.rs"
}

/// The rule above can still fail: a spawn anywhere else is found, the pipeline's own are not.
#[test]
fn the_thread_rule_sees_spawns_outside_the_pipeline() {
    assert!(in_pipeline("src/pipeline/mod.rs") && in_pipeline("src/pipeline/rtsp.rs"));
    for other in [
        "src/pipeline.rs",
        "src/pipeline_extra.rs",
        "src/rtsp/mod.rs",
        "src/server/mod.rs",
    ] {
        assert!(!in_pipeline(other), "{other}");
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let pipeline = fs::read_to_string(root.join("src/pipeline/mod.rs")).unwrap();
    assert!(
        pipeline.contains("thread::Builder"),
        "the pipeline spawns its threads"
    );
    // With nothing allowed, the pipeline's own spawns are offending.
    let found = offending(&["thread::Builder"], |_| false);
    assert!(
        found.iter().any(|f| f.starts_with("src/pipeline/mod.rs:")),
        "{found:?}"
    );
}

/// The floors of the library's modules, from the bottom: a module uses modules on its own floor
/// (without a cycle) and on the floors below it, never one above. The same table as
/// docs/architecture.md: edit both together. A module on no floor fails the test.
const FLOORS: &[&[&str]] = &[
    // 0 base: errors, whole-file writes, buffers, time, names, clocks
    &[
        "error",
        "atomic_write",
        "frame",
        "procstat",
        "time",
        "name",
        "clock",
        "telemetry",
        "slots",
    ],
    // 1 pure media cores
    &[
        "yuv",
        "chroma",
        "overlay",
        "source",
        "encode",
        "ts",
        "fmp4",
        "segmenter",
        "playlist",
    ],
    // 2 stores
    &["store", "markers", "media_cache", "recording"],
    // 3 shared state
    &["state"],
    // 4 inputs
    &["rtsp", "input"],
    // 5 plan
    &["config", "config_file", "plan"],
    // 6 publishing
    &["publish"],
    // 7 pipeline
    &["pipeline"],
    // 8 server
    &["server"],
    // 9 the process of a configuration file
    &["origin"],
];

/// Arrows of the code that point up, `(from, to)`: none. An entry would name the work that
/// removes it (docs/architecture.md, "Known upward arrows"), and one that no longer occurs
/// fails the test.
const KNOWN_UPWARD: &[(&str, &str)] = &[];

/// The crate's macros (`crate::err!`), by the module that defines them.
const MACROS: &[(&str, &str)] = &[("err", "error"), ("bail", "error")];

/// The server's parts (`src/server/*.rs`) by their `super::X` references, from the bottom;
/// `mod.rs` only declares them. The same table as docs/architecture.md.
const SERVER_FLOORS: &[&[&str]] = &[
    // 0 leaves
    &["error", "cors", "limits", "assets", "media", "stream_info"],
    // 1 state
    &["state"],
    // 2 below the answers
    &["segments", "marker_api", "health", "metrics_api"],
    // 3 answers, the stream list
    &["answers", "streams"],
    // 4 front door, and the review routes (they use the answers' gzip rule)
    &["front", "recordings"],
    // 5 routes
    &["routes"],
    // 6 startup
    &["startup"],
];

/// Every `PREFIX::X` that the product code of `text` names (`PREFIX::{X, Y::Z}` too, across
/// lines), as `(line number, X)`: code before the file's top-level `#[cfg(test)]`, without
/// comments; a macro's `$crate::` is not ours to check.
fn references(text: &str, prefix: &str) -> Vec<(usize, String)> {
    let mut code = String::new();
    for line in text.lines() {
        if line.starts_with("#[cfg(test)]") {
            break;
        }
        code.push_str(line.split("//").next().unwrap_or(""));
        code.push('\n');
    }
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = code[from..].find(prefix).map(|i| i + from) {
        from = i + prefix.len();
        let before = code[..i].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$' || c == ':') {
            continue;
        }
        let line = code[..i].matches('\n').count() + 1;
        let after = &code[from..];
        let Some(group) = after.strip_prefix('{') else {
            out.push((line, ident(after)));
            continue;
        };
        // `{a, b::{c, d}, e}`: the first name of each item at depth 0.
        let (mut depth, mut item_start) = (0, true);
        for (k, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => item_start = true,
                c if item_start && !c.is_whitespace() => {
                    item_start = false;
                    out.push((line, ident(&group[k..])));
                }
                _ => {}
            }
        }
    }
    out.retain(|(_, name)| !name.is_empty());
    out
}

/// The arrows between the modules of `files` (`(module, path, text)`), by their `prefix`
/// references to `modules`' names: `(from, to)` to where each is written.
type Arrows = BTreeMap<(String, String), Vec<String>>;

fn arrows(files: &[(String, String, String)], prefix: &str) -> Arrows {
    let mut out = Arrows::new();
    for (module, path, text) in files {
        for (line, to) in references(text, prefix) {
            let to = MACROS
                .iter()
                .find(|(m, _)| *m == to)
                .map_or(to.clone(), |(_, module)| (*module).to_owned());
            if &to != module {
                out.entry((module.clone(), to))
                    .or_default()
                    .push(format!("{path}:{line}"));
            }
        }
    }
    out
}

/// What is wrong with `arrows` under `floors` with the `known` upward arrows: an arrow to or
/// from a module on no floor, one that points up, one that closes a cycle on a floor, a known
/// arrow that no longer occurs or no longer points up.
fn floor_violations(arrows: &Arrows, floors: &[&[&str]], known: &[(&str, &str)]) -> Vec<String> {
    let floor = |m: &str| floors.iter().position(|f| f.contains(&m));
    let mut found = Vec::new();
    let mut kept = BTreeMap::<&str, Vec<&str>>::new();
    for ((from, to), at) in arrows {
        let (Some(f), Some(t)) = (floor(from), floor(to)) else {
            found.push(format!(
                "{from} -> {to}: a module on no floor; add it to the table ({})",
                at.join(", ")
            ));
            continue;
        };
        let is_known = known.contains(&(from.as_str(), to.as_str()));
        if t > f && !is_known {
            found.push(format!(
                "{from} (floor {f}) -> {to} (floor {t}) points up: {}",
                at.join(", ")
            ));
        } else if !is_known {
            kept.entry(from).or_default().push(to);
        }
    }
    for (from, to) in known {
        let up = floor(to) > floor(from);
        if !up || !arrows.contains_key(&((*from).to_owned(), (*to).to_owned())) {
            found.push(format!(
                "known upward arrow {from} -> {to} no longer occurs (or no longer points up): delete it"
            ));
        }
    }
    // A cycle among the rest can only be on one floor: depth-first search for a back edge.
    fn visit<'a>(
        m: &'a str,
        kept: &BTreeMap<&'a str, Vec<&'a str>>,
        path: &mut Vec<&'a str>,
        done: &mut Vec<&'a str>,
        found: &mut Vec<String>,
    ) {
        if done.contains(&m) {
            return;
        }
        if let Some(i) = path.iter().position(|p| *p == m) {
            found.push(format!("cycle: {} -> {m}", path[i..].join(" -> ")));
            return;
        }
        path.push(m);
        for to in kept.get(m).into_iter().flatten() {
            visit(to, kept, path, done, found);
        }
        path.pop();
        done.push(m);
    }
    let mut done = Vec::new();
    for from in kept.keys() {
        visit(from, &kept, &mut Vec::new(), &mut done, &mut found);
    }
    found
}

/// `(module, path, text)` of every product file under `src/`: the module is the first
/// component of its path (`server` for `src/server/front.rs`); `lib.rs` and `main.rs` are left
/// out.
fn library_files() -> Vec<(String, String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    product_files(&root.join("src"), &mut files);
    let mut out = Vec::new();
    for file in files {
        let rel = file.strip_prefix(root.join("src")).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_owned();
        if module == "lib" || module == "main" {
            continue;
        }
        let text = fs::read_to_string(&file).expect("reading a source file");
        out.push((module, format!("src/{}", rel.display()), text));
    }
    out
}

/// Fails on what [`floor_violations`] finds among `files` by their `prefix` references, and
/// on a file of a module that is on no floor of `floors` (the test's table `table`).
fn assert_floors(
    files: &[(String, String, String)],
    prefix: &str,
    floors: &[&[&str]],
    known: &[(&str, &str)],
    table: &str,
) {
    let found = floor_violations(&arrows(files, prefix), floors, known);
    assert!(
        found.is_empty(),
        "the floors of docs/architecture.md ({table} here):\n{}",
        found.join("\n")
    );
    // Every module is on a floor, even one that uses nothing of ours.
    for (module, path, _) in files {
        assert!(
            floors.iter().any(|f| f.contains(&module.as_str())),
            "{path}: {module} is on no floor; add it to {table} and docs/architecture.md"
        );
    }
}

#[test]
fn modules_use_only_their_own_floor_and_the_ones_below() {
    assert_floors(&library_files(), "crate::", FLOORS, KNOWN_UPWARD, "FLOORS");
}

#[test]
fn the_servers_parts_use_only_their_own_floor_and_the_ones_below() {
    let files: Vec<_> = library_files()
        .into_iter()
        .filter(|(m, path, _)| m == "server" && !path.ends_with("/mod.rs"))
        .map(|(_, path, text)| {
            let part = Path::new(&path).file_stem().unwrap().to_string_lossy();
            (part.into_owned(), path, text)
        })
        .collect();
    assert!(files.len() > 10, "src/server/ was not found: {files:?}");
    assert_floors(&files, "super::", SERVER_FLOORS, &[], "SERVER_FLOORS");
}

/// The floor rule can still fail: references are read as the compiler would, and an arrow up,
/// a cycle on a floor, an unknown module and a stale known arrow are each reported.
#[test]
fn the_floor_rule_sees_arrows_up_and_cycles() {
    let text = "use crate::time::{Pts, StreamTime};\n\
                use crate::{\n    name::StreamName,\n    store::{self, MediaDir},\n};\n\
                // use crate::server;\n\
                let e = crate::err!(Internal, \"x\"); $crate::error::Error::new();\n\
                fn f() { crate::server::serve(); } // crate::config\n\
                #[cfg(test)]\nuse crate::pipeline;\n";
    let refs: Vec<_> = references(text, "crate::");
    assert_eq!(
        refs,
        [
            (1, "time".to_owned()),
            (2, "name".to_owned()),
            (2, "store".to_owned()),
            (7, "err".to_owned()),
            (8, "server".to_owned()),
        ]
    );
    let file = |m: &str, text: &str| (m.to_owned(), format!("src/{m}.rs"), text.to_owned());
    let files = [
        file("time", "use crate::error::Error;"),
        file("error", "crate::server::x(); crate::bail!(Io, \"\");"),
        file("state", "use crate::markers;"),
        file("markers", "use crate::state;"),
        file("pipeline", "use crate::nowhere;"),
    ];
    let found = floor_violations(
        &arrows(&files, "crate::"),
        FLOORS,
        &[("markers", "state"), ("input", "config")],
    );
    let says = |what: &str| found.iter().any(|f| f.contains(what));
    assert!(
        says("error (floor 0) -> server (floor 8) points up: src/error.rs:1"),
        "{found:?}"
    );
    assert!(
        says("pipeline -> nowhere: a module on no floor"),
        "{found:?}"
    );
    assert!(
        says("known upward arrow input -> config no longer occurs"),
        "{found:?}"
    );
    assert_eq!(found.len(), 3, "{found:?}");
    // Two modules of one floor using each other: a cycle.
    let files = [
        file("fmp4", "use crate::segmenter;"),
        file("segmenter", "use crate::fmp4;"),
    ];
    let found = floor_violations(&arrows(&files, "crate::"), FLOORS, &[]);
    assert!(found.iter().any(|f| f.starts_with("cycle: ")), "{found:?}");
}
