//! The publisher over an in-memory store that records every call, so the order of events is
//! checked as well as the outcome.

use std::sync::Mutex;
use std::{fs, io};

use super::*;
use crate::config::Config;
use crate::name::StreamName;
use crate::time::StreamTime;

/// One call the publisher made on its store.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Event {
    Segment(u64),
    Init(u64),
    Playlist,
    Delete(String),
}

/// An in-memory [`Storage`]: files in a map, every call in `events`, segment writes that fail
/// for the sequence numbers in `fail`, and every write failing while `full` (a full disk).
#[derive(Default)]
struct MemoryStore {
    name: Option<StreamName>,
    segments: std::collections::BTreeMap<u64, Vec<u8>>,
    inits: std::collections::BTreeMap<u64, Vec<u8>>,
    playlist: Option<String>,
    multivariant: Option<String>,
    clock: Option<String>,
    events: Vec<Event>,
    fail: Vec<u64>,
    /// The disk is full: every write fails (segments, init segments, playlists).
    full: bool,
    /// Playlist writes fail (a disk with room for a segment but not for the playlist after it).
    fail_playlists: bool,
    /// Writes refused so far.
    refused: u64,
    /// A marker log exists beside the stream.
    marker_log: bool,
}

impl Storage for &mut MemoryStore {
    fn write_segment(&mut self, sequence: u64, bytes: &[u8]) -> io::Result<Option<fs::File>> {
        if self.full || self.fail.contains(&sequence) {
            self.refused += 1;
            return Err(io::Error::other("disk full"));
        }
        self.events.push(Event::Segment(sequence));
        self.segments.insert(sequence, bytes.to_vec());
        Ok(None)
    }

    fn write_init(&mut self, init: u64, bytes: &[u8]) -> io::Result<Option<fs::File>> {
        self.events.push(Event::Init(init));
        self.inits.insert(init, bytes.to_vec());
        Ok(None)
    }

    fn write_playlist(&mut self, text: &str) -> io::Result<()> {
        if self.full || self.fail_playlists {
            self.refused += 1;
            return Err(io::Error::other("disk full"));
        }
        self.events.push(Event::Playlist);
        self.playlist = Some(text.to_owned());
        Ok(())
    }

    fn write_multivariant(&mut self, text: &str) -> io::Result<()> {
        if self.full {
            self.refused += 1;
            return Err(io::Error::other("disk full"));
        }
        self.multivariant = Some(text.to_owned());
        Ok(())
    }

    fn read_playlist(&self) -> io::Result<Option<Vec<u8>>> {
        Ok(self.playlist.clone().map(String::into_bytes))
    }

    fn delete_segment(&mut self, file: &str) -> io::Result<()> {
        let name = self.name.as_ref().expect("store has a name");
        match name.parse_file(file) {
            Some(crate::name::MediaFile::Segment(seq)) => {
                self.segments.remove(&seq);
            }
            Some(crate::name::MediaFile::Init(init)) => {
                self.inits.remove(&init);
            }
            _ => return Err(io::Error::other(format!("not a segment: {file}"))),
        }
        self.events.push(Event::Delete(file.to_owned()));
        Ok(())
    }

    fn list_segments(&self) -> io::Result<Vec<(u64, String)>> {
        let name = self.name.as_ref().expect("store has a name");
        Ok(self
            .segments
            .keys()
            .map(|&s| (s, name.segment_file(s)))
            .collect())
    }

    fn read_clock(&self) -> io::Result<Option<Vec<u8>>> {
        Ok(self.clock.clone().map(String::into_bytes))
    }

    fn write_clock(&mut self, text: &str) -> io::Result<()> {
        self.clock = Some(text.to_owned());
        Ok(())
    }

    fn has_marker_log(&self) -> io::Result<bool> {
        Ok(self.marker_log)
    }
}

/// One-second segments of stream `cam` in a window of `list_size`.
fn config(list_size: usize) -> Plan {
    let list_size = list_size.to_string();
    let args = [
        "x",
        "--name",
        "cam",
        "--hls-time",
        "1",
        "--list-size",
        &list_size,
    ];
    Config::from_args(args).unwrap().flags_plan()
}

fn store() -> MemoryStore {
    MemoryStore {
        name: Some(StreamName::new("cam").unwrap()),
        ..MemoryStore::default()
    }
}

fn seg(k: u64) -> ClosedSegment {
    ClosedSegment {
        start: StreamTime::ZERO + Duration90k::from_secs(k),
        duration: Duration90k::from_secs(1),
        frames: 30,
        bytes: vec![0x47; 188],
    }
}

/// A playlist hook counting the versions into `n`.
fn counter(n: &Arc<Mutex<u64>>) -> Option<PlaylistHook> {
    let n = n.clone();
    Some(Box::new(move |_: &str| *n.lock().unwrap() += 1))
}

/// A playlist hook keeping every version's text in `texts`.
fn recorder(texts: &Arc<Mutex<Vec<String>>>) -> Option<PlaylistHook> {
    let texts = texts.clone();
    Some(Box::new(move |t: &str| {
        texts.lock().unwrap().push(t.to_string())
    }))
}

/// R5/R20/R25: every segment is written before the playlist that lists it, and a file is
/// deleted only after the playlist without it is in place, exactly when its grace ends: with 3
/// one-second segments listed, segment 0 leaves with the push of 3 and waits its own second plus
/// the 3 s of the longest playlist that held it, so it goes with the push of 7.
#[test]
fn r25_segment_then_playlist_then_deletions() {
    let cfg = config(3);
    let mut mem = store();
    let versions = Arc::new(Mutex::new(0));
    let mut p = Publisher::new(&cfg, &mut mem, Arc::default(), counter(&versions)).unwrap();
    for k in 0..8 {
        p.publish(seg(k), 30 * (k + 1));
    }
    p.end(240);
    drop(p);
    assert_eq!(*versions.lock().unwrap(), 9);
    let mut expected = Vec::new();
    for k in 0..8 {
        expected.push(Event::Segment(k));
        expected.push(Event::Playlist);
        if k == 7 {
            expected.push(Event::Delete("cam0.ts".into()));
        }
    }
    expected.push(Event::Playlist);
    assert_eq!(mem.events, expected);
    let text = mem.playlist.unwrap();
    assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:5\n"), "{text}");
    assert!(text.ends_with("cam7.ts\n#EXT-X-ENDLIST\n"), "{text}");
}

/// R7/R6: a segment that cannot be written is left out, nothing stops, and the next one
/// carries EXT-X-DISCONTINUITY under the same sequence number (no hole, no bad entry).
#[test]
fn r7_lost_segment_write_becomes_a_discontinuity() {
    let cfg = config(5);
    let mut mem = store();
    mem.fail = vec![1];
    let versions = Arc::new(Mutex::new(Vec::new()));
    let mut p = Publisher::new(&cfg, &mut mem, Arc::default(), recorder(&versions)).unwrap();
    p.publish(seg(0), 30);
    p.publish(seg(1), 60);
    p.store.fail.clear();
    p.publish(seg(2), 90);
    p.publish(seg(3), 120);
    drop(p);
    let versions = versions.lock().unwrap();
    assert_eq!(
        versions.len(),
        3,
        "no playlist version for the lost segment"
    );
    let last = &versions[2];
    let body: Vec<&str> = last
        .lines()
        .skip_while(|l| !l.starts_with("#EXT-X-PROGRAM-DATE-TIME"))
        .filter(|l| !l.starts_with("#EXT-X-PROGRAM-DATE-TIME"))
        .collect();
    assert_eq!(
        body,
        [
            "#EXTINF:1.000,",
            "cam0.ts",
            "#EXT-X-DISCONTINUITY",
            "#EXTINF:1.000,",
            "cam1.ts",
            "#EXTINF:1.000,",
            "cam2.ts"
        ],
        "{last}"
    );
    assert!(
        last.contains("#EXT-X-DISCONTINUITY-SEQUENCE:0"),
        "R16: {last}"
    );
    assert_eq!(
        mem.events,
        [
            Event::Segment(0),
            Event::Playlist,
            Event::Segment(1),
            Event::Playlist,
            Event::Segment(2),
            Event::Playlist
        ]
    );
}

/// Every segment the stored playlist lists is in the store (R5, R25).
fn assert_listed_are_stored(mem: &MemoryStore, when: &str) {
    let Some(text) = &mem.playlist else { return };
    for line in text.lines().filter(|l| l.ends_with(".ts")) {
        let seq = mem.name.as_ref().unwrap().parse_segment_file(line).unwrap();
        assert!(
            mem.segments.contains_key(&seq),
            "{when}: the stored playlist lists {line}, which was deleted\n{text}"
        );
    }
}

/// A full disk behind the storage trait: while every write fails, segments are left out,
/// each failure counted, nothing stops; while only the playlist cannot be written (room for a
/// segment, none for the playlist after it), the stored playlist, one version behind, still
/// lists only segments the store holds: expired segments wait for a playlist without them. When
/// space returns, writing resumes by itself and the waiting deletions are done.
#[test]
fn r5_r25_a_full_disk_never_leaves_a_listed_segment_missing() {
    let cfg = config(3);
    let mut mem = store();
    let versions = Arc::new(Mutex::new(Vec::new()));
    let mut p = Publisher::new(&cfg, &mut mem, Arc::default(), recorder(&versions)).unwrap();
    for k in 0..4 {
        p.publish(seg(k), 30 * (k + 1));
    }
    // Full: segments 4-5 are lost (nothing else is tried for them), the encoder goes on.
    p.store.full = true;
    p.publish(seg(4), 150);
    p.publish(seg(5), 180);
    assert_eq!(p.store.refused, 2);
    assert_listed_are_stored(p.store, "full");
    // Room for segments but not for the playlist, for longer than a segment's grace.
    p.store.full = false;
    p.store.fail_playlists = true;
    for k in 6..16 {
        p.publish(seg(k), 30 * (k + 1));
        assert_listed_are_stored(p.store, &format!("segment {k}, playlist not written"));
    }
    assert_eq!(p.store.refused, 12);
    // Space again: the next segment is listed, and the expired ones go.
    p.store.fail_playlists = false;
    for k in 16..24 {
        p.publish(seg(k), 30 * (k + 1));
        assert_listed_are_stored(p.store, &format!("segment {k}"));
    }
    drop(p);
    assert_eq!(mem.refused, 12);
    let last = versions.lock().unwrap().last().cloned().unwrap();
    assert!(last.contains("cam21.ts\n"), "{last}");
    // Nothing leaks: the lost segments' numbers went to the next ones (segment 23 is number
    // 21), and as in `r25_segment_then_playlist_then_deletions` number s goes with the push of
    // s + 7: the waiting deletions were done, 15-21 are kept.
    assert_eq!(
        mem.segments.keys().copied().collect::<Vec<_>>(),
        (15..=21).collect::<Vec<_>>(),
        "{last}"
    );
}

/// R22/R36: a second publisher over the same store continues the first one's playlist after a
/// discontinuity and keeps its markers' DATERANGEs while they are in the window.
#[test]
fn r22_a_restart_continues_the_stored_playlist() {
    let cfg = config(5);
    let mut mem = store();
    let shared = Arc::new(Shared::default());
    {
        let mut p = Publisher::new(&cfg, &mut mem, shared.clone(), None).unwrap();
        shared
            .markers
            .insert(crate::markers::tests::marker(1, 15, None));
        p.publish(seg(0), 30);
        p.publish(seg(1), 60);
        p.end(60);
    }
    let epoch = read_epoch(mem.clock.as_ref().unwrap().as_bytes()).unwrap();
    let mut p = Publisher::new(&cfg, &mut mem, shared.clone(), None).unwrap();
    // One clock: the same epoch, and the new run starts after the old one's 2 s.
    assert_eq!(p.clock().epoch, epoch);
    assert_eq!(
        p.previous_end_slot(),
        Some(60),
        "the old run's frames end before slot 60"
    );
    // The first run published 2 s (60 frames) in no time: its end is the new start.
    assert_eq!(p.first_slot(), 60, "first slot {}", p.first_slot());
    // The reloaded marker is already in the playlist (read back): not added twice.
    p.publish(seg(2), 30);
    drop(p);
    let text = mem.playlist.clone().unwrap();
    assert!(text.contains("#EXT-X-DISCONTINUITY\n"), "{text}");
    assert!(text.contains("cam2.ts"), "numbers go on: {text}");
    assert!(!text.contains("#EXT-X-ENDLIST"), "{text}");
    assert_eq!(text.matches("#EXT-X-DATERANGE:").count(), 1, "{text}");
}

/// Markers come in id order, not time order: one posted for a frame already published goes in
/// with the next segment, one for a frame not yet published waits for its segment.
#[test]
fn r36_markers_join_the_playlist_when_their_frame_is_published() {
    use crate::markers::tests::marker;
    let cfg = config(5);
    let mut mem = store();
    let shared = Arc::new(Shared::default());
    let texts = Arc::new(Mutex::new(Vec::new()));
    let mut p = Publisher::new(&cfg, &mut mem, shared.clone(), recorder(&texts)).unwrap();
    p.publish(seg(0), 30);
    // Frame 75 (2.5 s, in segment 2) first, then frame 10 (0.33 s, in segment 0, published).
    shared.markers.insert(marker(1, 75, None));
    shared.markers.insert(marker(2, 10, None));
    p.publish(seg(1), 60);
    p.publish(seg(2), 90);
    drop(p);
    let ids = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| l.starts_with("#EXT-X-DATERANGE:"))
            .map(|l| l.split(',').next().unwrap().to_string())
            .collect()
    };
    let texts = texts.lock().unwrap();
    assert_eq!(texts.len(), 3);
    assert!(ids(&texts[0]).is_empty());
    assert_eq!(ids(&texts[1]).len(), 1, "{}", texts[1]);
    assert!(ids(&texts[1])[0].ends_with("-2\""), "{}", texts[1]);
    assert_eq!(ids(&texts[2]).len(), 2, "{}", texts[2]);
}

/// A clock file from before the frame rate was kept is read (its epoch goes on) and gets the
/// rate; the file written for a new stream has it.
#[test]
fn an_old_clock_file_gets_the_frame_rate() {
    let cfg = config(5);
    let mut mem = store();
    mem.clock =
        Some(r#"{"epoch":"2026-01-01T00:00:00.000Z","epoch_unix_ms":1767225600000}"#.into());
    let shared = Arc::new(Shared::default());
    let p = Publisher::new(&cfg, &mut mem, shared, None).unwrap();
    assert_eq!(p.clock().epoch.unix_millis(), 1_767_225_600_000);
    drop(p);
    let (epoch, rate) = read_clock_file(mem.clock.as_ref().unwrap().as_bytes()).unwrap();
    assert_eq!(epoch.unix_millis(), 1_767_225_600_000);
    assert_eq!(
        rate,
        Some(ClockRate {
            num: cfg.rate().num,
            den: cfg.rate().den
        })
    );
}

/// No clock but a marker log: refused before anything is written.
#[test]
fn markers_without_their_clock_are_refused() {
    let cfg = config(5);
    let mut mem = store();
    mem.marker_log = true;
    let shared = Arc::new(Shared::default());
    let e = Publisher::new(&cfg, &mut mem, shared, None)
        .err()
        .expect("refused");
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.message().contains("--fresh"), "{e}");
    assert!(mem.clock.is_none() && mem.events.is_empty());
}
