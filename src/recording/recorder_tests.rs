//! The recorder against a real database and directory, with segments dated in the past (the
//! sweep runs on the wall clock): what retention, the budget, clips, releases and a restart
//! delete and keep, file by file.

use super::*;

const SEG_MS: i64 = 2000;
/// 2020-01-01T00:00:00Z: every segment here is long over, whatever the retention.
const T0: i64 = 1_577_836_800_000;

struct Dir {
    tmp: tempfile::TempDir,
    name: StreamName,
}

impl Dir {
    fn new() -> Dir {
        Dir {
            tmp: tempfile::tempdir().unwrap(),
            name: StreamName::new("cam").unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// Opens the store and runs its worker on a thread of the test.
    fn open(&self, storage_max: u64) -> (Recordings, std::thread::JoinHandle<()>) {
        let (r, worker) = open_store(self.path(), storage_max).unwrap();
        (r, std::thread::spawn(move || worker.run()))
    }

    fn write(&self, seq: u64, len: usize) {
        fs::write(
            self.path().join(self.name.segment_file(seq)),
            vec![0x47; len],
        )
        .unwrap();
    }

    /// Sequence numbers of the segment files on disk.
    fn files(&self) -> Vec<u64> {
        let mut v: Vec<u64> = fs::read_dir(self.path())
            .unwrap()
            .filter_map(|e| {
                self.name
                    .parse_segment_file(e.unwrap().file_name().to_str()?)
            })
            .collect();
        v.sort();
        v
    }
}

fn settings(record_s: u64, clip_s: u64) -> RecordingSettings {
    RecordingSettings {
        record_retention: Duration::from_secs(record_s),
        clip_retention: Duration::from_secs(clip_s),
        thumbnail_width: 320,
    }
}

/// Publishes segment `seq` (a file of `len` bytes) dated `start_ms`.
fn publish(d: &Dir, rec: &mut Recorder, seq: u64, start_ms: i64, len: usize) {
    d.write(seq, len);
    rec.segment_published(
        seq,
        WallClock::from_unix_millis(start_ms),
        StreamTime(seq * 180_000),
        Duration90k::from_millis(SEG_MS as u64),
        len as u64,
        false,
    );
}

/// Waits for the database thread to run everything queued before.
fn settle(r: &Recordings) -> Vec<(u64, bool, Option<i64>)> {
    r.db()
        .call_blocking(|db| {
            db.segments_of("cam")?
                .into_iter()
                .map(|s| {
                    let live = db.segment_is_live("cam", s.sequence)?.unwrap();
                    Ok((
                        s.sequence,
                        live,
                        s.retained_until.map(WallClock::unix_millis),
                    ))
                })
                .collect::<Result<Vec<_>, DbError>>()
        })
        .unwrap()
}

/// Live segments are never deleted, however old; once released, continuous retention (here
/// 0: nothing kept for its own sake) deletes them, file and row.
#[test]
fn live_segments_stay_and_released_ones_follow_retention() {
    let d = Dir::new();
    let (r, _t) = d.open(u64::MAX);
    let mut rec = Recorder::start(&r, &d.name, settings(0, 3600), false).unwrap();
    for seq in 0..6 {
        publish(&d, &mut rec, seq, T0 + seq as i64 * SEG_MS, 1000);
    }
    let rows = settle(&r);
    assert_eq!(rows.len(), 6);
    assert!(rows.iter().all(|&(_, live, _)| live), "{rows:?}");
    assert_eq!(d.files(), (0..6).collect::<Vec<_>>());
    rec.release(vec![0, 1, 2]);
    let rows = settle(&r);
    assert_eq!(
        rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        [3, 4, 5],
        "released segments past retention go"
    );
    assert_eq!(d.files(), [3, 4, 5]);
    assert_eq!(rec.lost(), 0);
}

/// A long retention keeps released segments; a marker keeps its clip's segments (5 s before,
/// 10 s after its frame) past a retention of 0, until the marker's clip retention ends.
#[test]
fn retention_keeps_recent_recording_and_clips_keep_their_segments() {
    let d = Dir::new();
    let (r, _t) = d.open(u64::MAX);
    let now = WallClock::now().unix_millis();
    let mut rec = Recorder::start(&r, &d.name, settings(3600, 7 * 86_400), false).unwrap();
    // Recent segments (a minute ago) under a one-hour retention: kept once released.
    let recent = now - 60_000;
    for seq in 0..3 {
        publish(&d, &mut rec, seq, recent + seq as i64 * SEG_MS, 1000);
    }
    rec.release(vec![0, 1, 2]);
    settle(&r);
    assert_eq!(d.files(), [0, 1, 2]);
    drop(rec);

    // Retention 0 now; a marker 20 s before `now`: segments overlapping [m-5 s, m+10 s) stay.
    let mut rec = Recorder::start(&r, &d.name, settings(0, 7 * 86_400), false).unwrap();
    assert!(
        d.files().is_empty(),
        "the restart's sweep applies the new retention"
    );
    let base = now - 40_000;
    let marker = WallClock::from_unix_millis(base + 20_000 + 500);
    for seq in 10..20u64 {
        let start = base + (seq as i64 - 10) * SEG_MS;
        if seq == 17 {
            // The marker is published with the segment that holds its frame, before it.
            rec.marker(marker);
        }
        publish(&d, &mut rec, seq, start, 1000);
    }
    rec.release((10..20).collect());
    let rows = settle(&r);
    // Clip [m-5 s, m+10 s) = [base+15.5 s, base+30.5 s): segments 17 (base+14 s) and after,
    // kept by the clip as they are published.
    let kept: Vec<u64> = rows.iter().map(|r| r.0).collect();
    assert_eq!(kept, [17, 18, 19], "{rows:?}");
    assert_eq!(d.files(), kept);
    let until = marker.unix_millis() + 7 * 86_400_000;
    assert!(rows.iter().all(|r| r.2 == Some(until)), "{rows:?}");
}

/// A marker published after its segments (a detector's late post) retains what is recorded.
#[test]
fn a_late_marker_retains_segments_already_recorded() {
    let d = Dir::new();
    let (r, _t) = d.open(u64::MAX);
    let now = WallClock::now().unix_millis();
    let mut rec = Recorder::start(&r, &d.name, settings(0, 3600), false).unwrap();
    for seq in 0..10u64 {
        publish(&d, &mut rec, seq, now - 60_000 + seq as i64 * SEG_MS, 1000);
    }
    rec.marker(WallClock::from_unix_millis(now - 60_000 + 9_000));
    rec.release((0..10).collect());
    settle(&r);
    // [4 s, 19 s) of the run: segments 2 (4-6 s) to 9.
    assert_eq!(d.files(), (2..10).collect::<Vec<_>>());
}

/// Over the budget: continuous recording goes first (oldest first), then the oldest clips;
/// live segments never.
#[test]
fn the_storage_budget_evicts_continuous_recording_then_the_oldest_clips() {
    let d = Dir::new();
    let (r, _t) = d.open(10_000);
    let now = WallClock::now().unix_millis();
    let mut rec = Recorder::start(&r, &d.name, settings(86_400, 86_400), false).unwrap();
    let base = now - 600_000;
    // A clip around segment 2 (its marker at base+5 s: [0 s, 15 s) = segments 0..=7).
    rec.marker(WallClock::from_unix_millis(base + 5_000));
    for seq in 0..12u64 {
        publish(&d, &mut rec, seq, base + seq as i64 * SEG_MS, 1000);
    }
    settle(&r);
    assert_eq!(d.files().len(), 12, "live segments are never evicted");
    // Released: 12 kB recorded for a 10 kB budget. Continuous (8..=9, oldest) go first.
    rec.release((0..10).collect());
    settle(&r);
    assert_eq!(d.files(), [0, 1, 2, 3, 4, 5, 6, 7, 10, 11]);
    // Two more live segments: the continuous recording left (10, 11) is live, so the oldest
    // clip segments make room.
    for seq in 12..14u64 {
        publish(&d, &mut rec, seq, base + seq as i64 * SEG_MS, 1000);
    }
    settle(&r);
    assert_eq!(d.files(), [2, 3, 4, 5, 6, 7, 10, 11, 12, 13]);
    rec.release(vec![10, 11, 12, 13]);
    settle(&r);
    assert_eq!(d.files().len(), 10, "at the budget: nothing more goes");
    // One more: released continuous recording goes before the (older) clips.
    publish(&d, &mut rec, 14, base + 14 * SEG_MS, 1000);
    settle(&r);
    assert_eq!(d.files(), [2, 3, 4, 5, 6, 7, 11, 12, 13, 14]);
}

/// At start a row whose file is gone is dropped; a file of ours with no row is left alone
/// (the live path deletes it after its grace: `release` of a row-less segment deletes its
/// file); a row naming a file that is not ours never deletes anything.
#[test]
fn reconciliation_drops_rows_without_files_and_releases_delete_unrecorded_files() {
    let d = Dir::new();
    {
        let (r, t) = d.open(u64::MAX);
        let mut rec = Recorder::start(&r, &d.name, settings(3600, 3600), false).unwrap();
        for seq in 0..4u64 {
            publish(
                &d,
                &mut rec,
                seq,
                WallClock::now().unix_millis() + seq as i64,
                100,
            );
        }
        settle(&r);
        drop((rec, r));
        t.join().unwrap();
    }
    fs::remove_file(d.path().join("cam1.ts")).unwrap();
    d.write(9, 100); // a file with no row (an insert that was lost)
    fs::write(d.path().join("keep.ts"), b"x").unwrap();
    let (r, _t) = d.open(u64::MAX);
    let mut rec = Recorder::start(&r, &d.name, settings(3600, 3600), false).unwrap();
    let rows = settle(&r);
    assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), [0, 2, 3]);
    assert_eq!(d.files(), [0, 2, 3, 9]);
    rec.release(vec![9]);
    settle(&r);
    assert_eq!(d.files(), [0, 2, 3]);
    assert!(d.path().join("keep.ts").exists());
    // --fresh: the stream's rows go with its files.
    drop(rec);
    let rec = Recorder::start(&r, &d.name, settings(3600, 3600), true).unwrap();
    assert!(settle(&r).is_empty());
    drop(rec);
}

/// A database queue that is full loses the call (counted), never waits.
#[test]
fn a_full_queue_loses_calls_without_waiting() {
    let d = Dir::new();
    let (r, worker) = open_store(d.path(), u64::MAX).unwrap();
    // No thread runs the worker until the queue is full.
    let (block_tx, block_rx) = std::sync::mpsc::channel::<()>();
    let mut rec = {
        let t = std::thread::spawn(move || worker.run());
        let rec = Recorder::start(&r, &d.name, settings(3600, 3600), false).unwrap();
        r.db()
            .try_call(move |_| {
                let _ = block_rx.recv();
            })
            .unwrap();
        (rec, t)
    };
    let started = std::time::Instant::now();
    for seq in 0..(crate::recording::db::QUEUE_DEPTH as u64 + 10) {
        publish(&d, &mut rec.0, seq, T0 + seq as i64 * SEG_MS, 10);
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(rec.0.lost() >= 9, "lost {}", rec.0.lost());
    block_tx.send(()).unwrap();
    settle(&r);
}

/// The database's own checks reach the caller as the crate's errors: exit code 1, a message
/// that names the file.
#[test]
fn a_corrupt_database_is_an_error_at_open() {
    let d = Dir::new();
    fs::write(d.path().join(DB_FILE), vec![0x55; 8192]).unwrap();
    let Err(e) = open_store(d.path(), u64::MAX) else {
        panic!("a corrupt database opened")
    };
    assert_eq!(e.kind().exit_code(), 1);
    assert!(e.to_string().contains("hls.db"), "{e}");
}
