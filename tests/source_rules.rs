//! Rules about the product's source that no compiler checks (issue 7): the 90 kHz clock is
//! spelled once, in `src/time.rs`, and `src/pipeline/` (the `pipeline` module's files) is the
//! only module that spawns threads. Test code (`tests.rs`, `*_tests.rs`, and everything after a file's top-level
//! `#[cfg(test)]`) may do either.

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
/// file under `src/` that `allowed` does not take (it gets the path from the repository root,
/// `src/...`), that contains one of `needles`.
fn offending(needles: &[&str], allowed: impl Fn(&str) -> bool) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    product_files(&root.join("src"), &mut files);
    assert!(files.len() > 20, "src/ was not found: {files:?}");
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
        "threads are spawned by the pipeline module (src/pipeline/) only (issue 7):\n{}",
        found.join("\n")
    );
}

/// A file of the `pipeline` module: `src/pipeline/mod.rs` and the files beside it.
fn in_pipeline(file: &str) -> bool {
    file.starts_with("src/pipeline/")
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
