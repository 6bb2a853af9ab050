#!/usr/bin/env bash
# Fuzz smoke run for CI: every cargo-fuzz target for $FUZZ_SECONDS (default 60) on the stable
# toolchain. Fails on any crash, property violation or timeout; the input that broke is kept in
# fuzz/artifacts/<target>/ (replay it with the command printed below). New corpus entries go to a
# temporary directory, so the committed corpus (fuzz/corpus/<target>/) is only read.
#
# If cargo-fuzz is missing and cannot be installed (offline, no C++ compiler for libFuzzer), this
# prints why and exits 0: the corpus replay in `cargo test` still runs every property.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${FUZZ_SECONDS:-60}
targets=(ts_mux playlist_window ts_demux_robust fmp4_mux)

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "fuzz smoke: installing cargo-fuzz from crates.io"
    if ! cargo install cargo-fuzz --locked; then
        echo "fuzz smoke: SKIPPED: cargo-fuzz could not be installed (see the error above)"
        exit 0
    fi
fi

# cargo-fuzz passes a few -Z flags to rustc; RUSTC_BOOTSTRAP lets the stable compiler take them.
export RUSTC_BOOTSTRAP=1
# -s none: no sanitizer (the code under test is safe Rust; builds and runs about twice as fast).
# -a: debug assertions, so integer overflow panics as in `cargo test`.
flags=(-s none -a)
# The reference readers (mpeg2ts, hls-testkit-readers) without comparison tracing, the playlist
# reader m3u8-rs, its nom and chrono and the date library time without coverage instrumentation;
# see fuzz/rustc-wrapper and fuzz/README.md ("Throughput").
export RUSTC_WRAPPER="$PWD/fuzz/rustc-wrapper"
# Cargo does not know what the wrapper changes: rebuild those crates once in a target
# directory that was built without it.
host=$(rustc -vV | sed -n 's/^host: //p')
# (The stamp's name changes with the rule: chrono joined it later, then time and time-core, then
# m3u8-rs, nom, chrono and time lost their coverage instrumentation as well, then mp4-atom.)
stamp="${CARGO_TARGET_DIR:-target}/$host/release/.reference-readers-untraced-5"
if [ ! -e "$stamp" ] && [ -d "${CARGO_TARGET_DIR:-target}/$host/release" ]; then
    cargo clean --release --target "$host" -p mpeg2ts -p m3u8-rs -p nom -p chrono \
        -p time -p time-core -p mp4-atom -p hls-testkit-readers
fi

echo "fuzz smoke: building ${targets[*]}"
cargo fuzz build "${flags[@]}"
mkdir -p "$(dirname "$stamp")" && touch "$stamp"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
for t in "${targets[@]}"; do
    mkdir -p "$work/$t" "fuzz/artifacts/$t"
    echo "fuzz smoke: $t for ${secs}s"
    if cargo fuzz run "${flags[@]}" "$t" "$work/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="fuzz/artifacts/$t/" >"$work/$t.log" 2>&1; then
        # The final status line: executions, coverage (cov: edges, ft: features), corpus.
        grep -E '^#[0-9]+[[:space:]]+DONE' "$work/$t.log" | tail -n 1 || true
    else
        echo "fuzz smoke: $t FAILED; the last lines of its log:"
        tail -n 40 "$work/$t.log"
        for a in fuzz/artifacts/"$t"/*; do
            [ -e "$a" ] || continue
            echo "fuzz smoke: replay with: RUSTC_BOOTSTRAP=1 cargo fuzz run ${flags[*]} $t $a"
        done
        failed+=("$t")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz smoke: FAILED: ${failed[*]}"
    exit 1
fi
echo "fuzz smoke: passed (${secs}s per target)"
