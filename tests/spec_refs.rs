//! The rules the code cites live in the repo: every `Rn` under `src/`, `tests/`, `fuzz/`,
//! `benches/` and `static/` is defined in `docs/spec.md`, and what the spec says about each rule's
//! tests is true.
//!
//! A citation is `R` + digits as a word of its own (`R22`, `R22/R26`, `(R1-R3)`; a range
//! `R22-R29` or `R22–R29` cites every rule in between), or a test-name prefix `r<n>_` at the
//! start of an identifier, repeated for several rules (`r1_r2_r3_every_segment_decodes_back`).
//! `RGB`, `R2D2`, `XR5`, `r0` (a variable) or `hdr1_` are not citations.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const SPEC: &str = "docs/spec.md";
const COVERAGE: &str = "tests/SPEC_COVERAGE.md";
/// Where citations are collected (relative to the crate root).
const SCANNED: &[&str] = &["src", "tests", "fuzz", "benches", "static", "README.md"];
/// Not ours, or not text: build output, fuzz inputs, vendored hls.js, npm packages.
const SKIPPED_DIRS: &[&str] = &["target", "corpus", "vendor", "node_modules", "artifacts"];
/// Lock files hold hashes that may look like citations by chance.
const SKIPPED_FILES: &[&str] = &["Cargo.lock", "package-lock.json"];
/// A range wider than this is a typo, not a citation.
const MAX_RANGE: u32 = 50;

#[derive(Debug, PartialEq)]
struct Cite {
    rule: u32,
    line: usize,
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The number written at `b[at..]` and where it ends, if there is one.
fn number_at(b: &[u8], at: usize) -> Option<(u32, usize)> {
    let end = at
        + b.get(at..)?
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
    if end == at || end - at > 4 {
        return None;
    }
    let n = std::str::from_utf8(&b[at..end]).ok()?.parse().ok()?;
    Some((n, end))
}

/// `R<n>` at `b[at..]` as a whole word (a digit or letter right after it means something else).
fn upper_cite_at(b: &[u8], at: usize) -> Option<(u32, usize)> {
    if b.get(at) != Some(&b'R') || (at > 0 && is_word_byte(b[at - 1])) {
        return None;
    }
    let (n, end) = number_at(b, at + 1)?;
    match b.get(end) {
        Some(c) if c.is_ascii_alphanumeric() => None,
        _ => Some((n, end)),
    }
}

/// Every rule citation in `text`, in order, with its 1-based line.
fn cited_rules(text: &str) -> Vec<Cite> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\n' {
            line += 1;
            i += 1;
            continue;
        }
        if let Some((n, end)) = upper_cite_at(b, i) {
            out.push(Cite { rule: n, line });
            i = end;
            // A range: R22-R29, R22–R29 (en dash), R22..R29.
            let sep = ["-", "\u{2013}", ".."]
                .iter()
                .find(|s| b[end..].starts_with(s.as_bytes()))
                .map(|s| s.len());
            if let Some((m, end2)) = sep.and_then(|s| upper_cite_at(b, end + s)) {
                if m > n && m - n <= MAX_RANGE {
                    out.extend((n + 1..m).map(|rule| Cite { rule, line }));
                }
                out.push(Cite { rule: m, line });
                i = end2;
            }
            continue;
        }
        if b[i] == b'r' && (i == 0 || !is_word_byte(b[i - 1])) {
            // Test names: r22_..., r1_r2_r3_...
            let mut j = i;
            let mut found = Vec::new();
            while b.get(j) == Some(&b'r') {
                match number_at(b, j + 1) {
                    Some((n, end)) if b.get(end) == Some(&b'_') => {
                        found.push(n);
                        j = end + 1;
                    }
                    _ => break,
                }
            }
            if !found.is_empty() {
                out.extend(found.into_iter().map(|rule| Cite { rule, line }));
                i = j;
                continue;
            }
        }
        i += 1;
    }
    out
}

#[test]
fn citations_are_read_as_words_ranges_and_test_names() {
    let rules = |t: &str| cited_rules(t).iter().map(|c| c.rule).collect::<Vec<_>>();
    assert_eq!(rules("R1 and R22/R26."), [1, 22, 26]);
    assert_eq!(rules("(R22-R25)"), [22, 23, 24, 25]);
    assert_eq!(rules("R34\u{2013}R37, R1..R3"), [34, 35, 36, 37, 1, 2, 3]);
    assert_eq!(rules("fn r1_r2_r3_every_segment() {}"), [1, 2, 3]);
    assert_eq!(rules("playlist::tests::r22_media_sequence"), [22]);
    assert_eq!(rules("`R13`: ceil; R9's rule"), [13, 9]);
    // Not citations.
    assert!(rules("RGB R2D2 XR5 R5a BR1 RFC 8216 let r0 = r1 + 2; hdr1_x r2d2_ R").is_empty());
    assert!(rules("R12345 r").is_empty());
    // A backwards or huge range cites only its ends (built at run time: this file is scanned
    // too, and must not cite an undefined rule itself).
    assert_eq!(rules(&format!("R9-R3 R1-R{}", 999)), [9, 3, 1, 999]);
    // Lines count from 1.
    let c = cited_rules("x\n\nR7");
    assert_eq!(c, [Cite { rule: 7, line: 3 }]);
}

/// One rule as `docs/spec.md` defines it.
#[derive(Debug, Default)]
struct Rule {
    line: usize,
    status: String,
    tests: Vec<String>,
}

const STATUSES: &[&str] = &["applies", "partly", "not applicable", "out of scope"];

/// Reads the `### R<n> title` sections of the spec with their `**Status:**` and
/// `**Tested by:**` items. Problems go to `errors`.
fn parse_spec(text: &str, errors: &mut Vec<String>) -> BTreeMap<u32, Rule> {
    let mut rules: BTreeMap<u32, Rule> = BTreeMap::new();
    let mut current: Option<u32> = None;
    let mut in_tests = false;
    for (idx, raw) in text.lines().enumerate() {
        let line_no = idx + 1;
        let line = raw.trim_end();
        if line.starts_with('#') {
            in_tests = false;
            current = None;
            if let Some(rest) = line.strip_prefix("### R") {
                let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
                let n: u32 = match digits.parse() {
                    Ok(n) if rest[digits.len()..].starts_with(' ') => n,
                    _ => {
                        errors.push(format!("{SPEC}:{line_no}: bad rule heading {line:?}"));
                        continue;
                    }
                };
                if let Some(first) = rules.get(&n) {
                    errors.push(format!(
                        "{SPEC}:{line_no}: R{n} defined again (first at line {})",
                        first.line
                    ));
                    continue;
                }
                rules.insert(
                    n,
                    Rule {
                        line: line_no,
                        ..Rule::default()
                    },
                );
                current = Some(n);
            }
            continue;
        }
        let Some(rule) = current.and_then(|n| rules.get_mut(&n)) else {
            continue;
        };
        if line.starts_with("- ") {
            in_tests = false;
        }
        if let Some(rest) = line.strip_prefix("- **Status:**") {
            let rest = rest.trim();
            match STATUSES.iter().find(|s| rest.starts_with(*s)) {
                Some(s) => rule.status = s.to_string(),
                None => errors.push(format!(
                    "{SPEC}:{line_no}: status {rest:?} is none of {STATUSES:?}"
                )),
            }
        }
        let tests_text = match line.strip_prefix("- **Tested by:**") {
            Some(rest) => {
                in_tests = true;
                rest
            }
            None if in_tests && line.starts_with("  ") => line,
            None => {
                in_tests = false;
                continue;
            }
        };
        // Backticked `module::...::test_name` paths.
        for (k, chunk) in tests_text.split('`').enumerate() {
            if k % 2 == 1 && chunk.contains("::") {
                rule.tests.push(chunk.to_string());
            }
        }
    }
    rules
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every text file under `rel` (a file or a directory), skipping what is not ours.
fn text_files(rel: &str) -> Vec<(String, String)> {
    fn walk(dir: &Path, rel: &str, out: &mut Vec<(String, String)>) {
        let path = dir.join(rel);
        if path.is_dir() {
            let mut entries: Vec<_> = fs::read_dir(&path)
                .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
                .map(|e| {
                    e.expect("dir entry")
                        .file_name()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect();
            entries.sort();
            for name in entries {
                let child = format!("{rel}/{name}");
                let child_path = dir.join(&child);
                if child_path.is_dir() && SKIPPED_DIRS.contains(&name.as_str()) {
                    continue;
                }
                if child_path.is_file() && SKIPPED_FILES.contains(&name.as_str()) {
                    continue;
                }
                walk(dir, &child, out);
            }
        } else if let Ok(bytes) = fs::read(&path) {
            // Binary files (images, fonts) cite nothing.
            if let Ok(text) = String::from_utf8(bytes) {
                out.push((rel.to_string(), text));
            }
        }
    }
    let mut out = Vec::new();
    walk(&root(), rel, &mut out);
    out
}

/// Names of all functions defined in the crate's Rust sources and tests.
fn function_names() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (path, text) in text_files("src").into_iter().chain(text_files("tests")) {
        if !path.ends_with(".rs") {
            continue;
        }
        for piece in text.split("fn ").skip(1) {
            let name: String = piece
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                names.insert(name);
            }
        }
    }
    names
}

/// `a::b::name`: is `a` a module of the library (`src/a.rs`, `src/a/`) or a test file?
fn module_exists(first: &str) -> bool {
    let r = root();
    r.join(format!("src/{first}.rs")).is_file()
        || r.join(format!("src/{first}")).is_dir()
        || r.join(format!("tests/{first}.rs")).is_file()
}

#[test]
fn every_cited_rule_is_defined_in_docs_spec_md() {
    let mut errors = Vec::new();
    let spec_text = fs::read_to_string(root().join(SPEC)).expect("docs/spec.md");
    let rules = parse_spec(&spec_text, &mut errors);
    if rules.len() < 44 {
        errors.push(format!(
            "{SPEC} defines only {} rules (R1-R44 at least)",
            rules.len()
        ));
    }

    // Numbered 1..=N without gaps.
    let max = *rules.keys().last().expect("rules");
    for n in 1..=max {
        if !rules.contains_key(&n) {
            errors.push(format!("{SPEC}: R{n} is missing (rules go up to R{max})"));
        }
    }

    // Every citation resolves.
    let mut files = 0;
    let mut cites = 0;
    for dir in SCANNED {
        for (path, text) in text_files(dir) {
            files += 1;
            for c in cited_rules(&text) {
                cites += 1;
                if !rules.contains_key(&c.rule) {
                    errors.push(format!(
                        "{path}:{}: cites R{}, which {SPEC} does not define",
                        c.line, c.rule
                    ));
                }
            }
        }
    }
    assert!(
        files > 20 && cites > 300,
        "scanned only {files} files, {cites} citations"
    );

    // Each rule has a status; one that applies names tests, and the tests exist.
    let fns = function_names();
    for (n, rule) in &rules {
        let at = format!("{SPEC}:{} (R{n})", rule.line);
        if rule.status.is_empty() {
            errors.push(format!("{at}: no `- **Status:**` line"));
            continue;
        }
        let applies = rule.status == "applies" || rule.status == "partly";
        if applies && rule.tests.is_empty() {
            errors.push(format!(
                "{at}: status {:?} but no `- **Tested by:**` test",
                rule.status
            ));
        }
        for t in &rule.tests {
            let parts: Vec<&str> = t.split("::").collect();
            let name = parts.last().expect("split yields one part");
            if !module_exists(parts[0]) {
                errors.push(format!("{at}: test `{t}`: no module `{}`", parts[0]));
            }
            if !fns.contains(*name) {
                errors.push(format!(
                    "{at}: test `{t}`: no `fn {name}` in src/ or tests/"
                ));
            }
        }
    }

    // The coverage matrix has a row for every rule.
    let coverage = fs::read_to_string(root().join(COVERAGE)).expect("SPEC_COVERAGE.md");
    for n in rules.keys() {
        if !coverage.lines().any(|l| l.starts_with(&format!("| R{n} "))) {
            errors.push(format!("{COVERAGE}: no row `| R{n} ...`"));
        }
    }

    assert!(
        errors.is_empty(),
        "{} problem(s) with rule references:\n  {}",
        errors.len(),
        errors.join("\n  ")
    );
}

#[test]
fn spec_parser_catches_gaps_repeats_and_bad_statuses() {
    let text = "\
### R1 One
- **Status:** applies
- **Tested by:** `a::r1_x`,
  `b::tests::r1_y`.
- **Ours:** `not::a_test` here is not read.

### R1 Again
### R3 Three
- **Status:** maybe
### Rx bad
";
    let mut errors = Vec::new();
    let rules = parse_spec(text, &mut errors);
    assert_eq!(rules.keys().copied().collect::<Vec<_>>(), [1, 3]);
    assert_eq!(rules[&1].status, "applies");
    assert_eq!(rules[&1].tests, ["a::r1_x", "b::tests::r1_y"]);
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(errors[0].contains("R1 defined again"));
    assert!(errors[1].contains("\"maybe\""));
    assert!(errors[2].contains("bad rule heading"));
}
