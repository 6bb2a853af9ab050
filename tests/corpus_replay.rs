//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the same property checks
//! the fuzz targets run (`hls_testkit`), so every `cargo test` on the stable toolchain
//! exercises them without libFuzzer. Also keeps the hand-written seeds committed, keeps the corpus
//! small, and runs a few thousand deterministic mutations of the seeds (a poor man's fuzzer).
//!
//! A failing input prints its file name; replay it alone with
//! `cargo fuzz run <target> fuzz/corpus/<target>/<file>` (see `fuzz/README.md`).
//! `UPDATE_SEEDS=1 cargo test corpus_replay` rewrites the `seed-*` files after a deliberate change
//! of the input format (like `UPDATE_GOLDEN` for the golden playlists).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use hls_testkit::{self as testutil, Seed};

const CORPUS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus");
/// Each target's corpus holds at least this many inputs...
const MIN_FILES: usize = 5;
/// ...and stays small enough to review and to replay in seconds.
const MAX_FILES: usize = 250;
const MAX_BYTES: u64 = 1 << 20;

struct Target {
    name: &'static str,
    property: fn(&[u8]),
    seeds: fn() -> Vec<Seed>,
}

const TARGETS: [Target; 4] = [
    Target {
        name: "ts_mux",
        property: testutil::ts_mux_property,
        seeds: testutil::ts_mux_seeds,
    },
    Target {
        name: "playlist_window",
        property: testutil::playlist_window_property,
        seeds: testutil::playlist_window_seeds,
    },
    Target {
        name: "ts_demux_robust",
        property: testutil::ts_demux_property,
        seeds: testutil::ts_demux_seeds,
    },
    Target {
        name: "fmp4_mux",
        property: testutil::fmp4_mux_property,
        seeds: testutil::fmp4_mux_seeds,
    },
];

fn target(name: &str) -> &'static Target {
    TARGETS
        .iter()
        .find(|t| t.name == name)
        .expect("a known target")
}

/// The corpus files of `target`, sorted (dot files are libFuzzer's scratch, ignored as in git).
fn corpus_files(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(CORPUS_DIR).join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    files
}

/// Runs `property` on each input; panics naming every input that failed.
fn run_all<'a>(
    target: &str,
    property: fn(&[u8]),
    inputs: impl IntoIterator<Item = (String, &'a [u8])>,
) -> usize {
    let mut failed = Vec::new();
    let mut count = 0;
    for (name, bytes) in inputs {
        count += 1;
        if catch_unwind(AssertUnwindSafe(|| property(bytes))).is_err() {
            failed.push(name);
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {count} inputs break a property (messages above): {failed:?}",
        failed.len()
    );
    count
}

fn replay(name: &str) {
    let t = target(name);
    let files = corpus_files(name);
    let inputs: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|p| {
            let bytes = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.display().to_string(), bytes)
        })
        .collect();
    let n = run_all(
        name,
        t.property,
        inputs.iter().map(|(n, b)| (n.clone(), &b[..])),
    );
    assert!(
        n >= MIN_FILES,
        "{name}: only {n} corpus files in {CORPUS_DIR}/{name}"
    );
}

// The properties each target asserts are listed in `testkit/src/lib.rs` and its modules; the rules they cite are
// mapped in `tests/SPEC_COVERAGE.md`.

/// R1 (continuity counters and timestamps across segment files), R2 (keyframes carry
/// random_access_indicator and PCR), R3 (PAT, PMT first; one program), and the muxer's
/// round trip through `mpeg2ts`, over the committed `ts_mux` corpus.
#[test]
fn r1_r3_ts_mux_corpus_holds_properties() {
    replay("ts_mux");
}

/// R9-R26, R29, R32-R37 on the live playlist, over the committed `playlist_window` corpus.
#[test]
fn r9_r37_playlist_window_corpus_holds_properties() {
    replay("playlist_window");
}

/// `check::read_segment` never panics and only accepts sane segments (R1, R3 checks of the
/// validator itself), over the committed `ts_demux_robust` corpus.
#[test]
fn ts_demux_robust_corpus_holds_properties() {
    replay("ts_demux_robust");
}

/// R51: the fMP4 writer's output reads back with mp4-atom, over the committed `fmp4_mux` corpus.
#[test]
fn fmp4_mux_corpus_holds_properties() {
    replay("fmp4_mux");
}

/// Every hand-written seed (one per scenario, `testutil::*_seeds`) is committed byte for byte as
/// `seed-<name>`, so the fuzzers start from them and CI replays them.
#[test]
fn seeds_are_committed() {
    let update = std::env::var_os("UPDATE_SEEDS").is_some_and(|v| v == "1");
    for t in &TARGETS {
        let dir = Path::new(CORPUS_DIR).join(t.name);
        for (name, bytes) in (t.seeds)() {
            let path = dir.join(format!("seed-{name}"));
            if update {
                std::fs::create_dir_all(&dir).expect("create the corpus directory");
                std::fs::write(&path, &bytes).expect("write a seed");
                continue;
            }
            let committed = std::fs::read(&path).unwrap_or_else(|e| {
                panic!(
                    "{}: {e}; run `UPDATE_SEEDS=1 cargo test corpus_replay`",
                    path.display()
                )
            });
            assert!(
                committed == bytes,
                "{} differs from testutil's seed; rerun with UPDATE_SEEDS=1 if the input \
                 format changed on purpose",
                path.display()
            );
        }
    }
}

/// The committed corpus stays small: about 200 files (at most 250) and 1 MiB per target.
#[test]
fn corpus_is_small() {
    for t in &TARGETS {
        let files = corpus_files(t.name);
        let bytes: u64 = files
            .iter()
            .map(|p| std::fs::metadata(p).expect("corpus file metadata").len())
            .sum();
        assert!(
            (MIN_FILES..=MAX_FILES).contains(&files.len()) && bytes <= MAX_BYTES,
            "{}: {} files, {bytes} bytes (want {MIN_FILES}-{MAX_FILES} files, <= {MAX_BYTES} \
             bytes; minimise as fuzz/README.md shows)",
            t.name,
            files.len()
        );
    }
}

/// xorshift64*: a tiny deterministic generator, so this file needs no RNG dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Mutates `seed` the way libFuzzer's simplest mutators do: flip bits, overwrite or insert
/// bytes, erase ranges.
fn mutate(seed: &[u8], rng: &mut XorShift) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(4) {
            0 if at < v.len() => v[at] ^= 1 << rng.below(8),
            1 if at < v.len() => v[at] = rng.next() as u8,
            2 => v.insert(at, rng.next() as u8),
            _ if at < v.len() => {
                let end = (at + 1 + rng.below(8)).min(v.len());
                v.drain(at..end);
            }
            _ => v.push(rng.next() as u8),
        }
    }
    v
}

/// Deterministic mutations of every seed hold the properties too: fuzzing on stable, in small.
/// Set `CORPUS_MUTATIONS` to run more per seed (default 40).
#[test]
fn mutated_seeds_hold_properties() {
    let per_seed: usize = std::env::var("CORPUS_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let mut rng = XorShift(0x8216_2017_5eed_u64);
    for t in &TARGETS {
        let mut inputs = Vec::new();
        for (name, seed) in (t.seeds)() {
            for k in 0..per_seed {
                inputs.push((format!("seed-{name} mutation {k}"), mutate(&seed, &mut rng)));
            }
        }
        run_all(
            t.name,
            t.property,
            inputs.iter().map(|(n, b)| (n.clone(), &b[..])),
        );
    }
}
