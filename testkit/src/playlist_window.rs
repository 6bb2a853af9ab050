//! `playlist_window`: the live playlist driven by fuzz input against a model of the window.

use super::*;

// ---------------------------------------------------------------------------------------------
// playlist_window
// ---------------------------------------------------------------------------------------------

/// Operations decoded from one `playlist_window` input at most.
pub(crate) const PL_MAX_OPS: usize = 256;
/// Playlist text (bytes over all renders) one input may have checked before its operation list
/// ends. Every render is rendered, checked against the model and compared with the previous
/// one, and the window holds three target durations (R24): with 1 ms segments that is thousands
/// of lines, so without this budget the work per input grew with the square of the operation
/// count. The hand-written seeds stay under it (`tests::seeds_fit_the_budgets`; 32 KiB would
/// cut `short_segments_r24`).
const PL_MAX_RENDERED: usize = 64 * 1024;
/// m3u8-rs (the independent parser) reads at least every this many renders; see
/// [`PlaylistRun::m3u8_due`] for the others it reads.
const PL_M3U8_EVERY: u64 = 32;
/// 2026-11-25T12:00:00.000Z (the golden files' anchor).
const PL_T0_MS: i64 = 1_795_608_000_000;
const TICKS_PER_MS: u64 = TICKS_PER_SEC / 1000;
const SEGMENT_NAME: &str = "chessboard";
/// Names `Playlist::new` must refuse (not RFC 3986 unreserved, or empty).
const BAD_NAMES: [&str; 6] = ["", "seg ment", "seg/ment", "seg\"", "s\u{e9}ance", "seg%20"];

/// Config byte of a `playlist_window` input: bits 0-3 list size (below 3 must be refused),
/// bits 4-6 target duration in seconds (0 must be refused), bit 7 a bad segment name (a u8
/// picks it). Then a varint start sequence, a u8 start discontinuity sequence, a u32 anchor in
/// milliseconds after 2026-11-25T12:00:00Z.
pub const PL_BAD_NAME: u8 = 0x80;

/// Operation byte, bits 0-2: 0-1 continuous push, 2 `push_resumed` (a segment read back after a
/// restart; bit 6 makes it a discontinuity), 3 push after a discontinuity, 4-5 add a DATERANGE,
/// 6 end, 7 render into a dirty buffer.
pub const PL_PUSH: u8 = 0;
pub const PL_PUSH_RESUMED: u8 = 2;
pub const PL_PUSH_DISCONTINUITY: u8 = 3;
pub const PL_RANGE: u8 = 4;
pub const PL_END: u8 = 6;
pub const PL_RENDER_INTO: u8 = 7;
/// Push bits 3-4: the duration: the target, a u16 of ms plus a u8 of ticks (mod 90), a varint
/// of ticks, or 1.001 x the target (29.97 fps).
pub const PL_DUR_TARGET: u8 = 0x00;
pub const PL_DUR_MS: u8 = 0x08;
pub const PL_DUR_VARINT: u8 = 0x10;
pub const PL_DUR_NTSC: u8 = 0x18;
/// Continuous push bit: an i8 of milliseconds added to the correct PDT (R33 drift; for
/// `push_resumed` the u8 mod 3 gives -1, 0 or +1 ms, text rounding). A discontinuity push
/// instead reads an i16 of milliseconds: the gap after the previous end.
pub const PL_JITTER: u8 = 0x20;
/// `push_resumed` bit: the segment follows a discontinuity.
pub const PL_RESUMED_DISCONTINUITY: u8 = 0x40;
/// Range bits 3-4: the ID: 0-1 a fresh `ev-<n>`, 2 an earlier one (a u8 picks it), 3 raw bytes
/// (a u8 length mod 12). Then an i16 start offset in 10 ms from the end of the stream, the
/// duration (a u16 of ms, or a varint of ticks with [`PL_RANGE_LONG`]), a u8 label length mod 32
/// and the label bytes (lossy UTF-8).
pub const PL_ID_FRESH: u8 = 0x00;
pub const PL_ID_REUSE: u8 = 0x10;
pub const PL_ID_RAW: u8 = 0x18;
pub const PL_RANGE_LONG: u8 = 0x20;

/// Why a push must be refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PushRefusal {
    Ended,
    ZeroDuration,
    TooLong,
    NotAfter,
    Drift,
    Overlap,
    Exhausted,
}

/// Why a DATERANGE must be refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RangeRefusal {
    Ended,
    InvalidId,
    DuplicateId,
    Expired,
}

/// A range the playlist holds, as the model sees it.
#[derive(Clone, Debug)]
struct ModelRange {
    id: String,
    /// Epoch ticks.
    start: i64,
    end: i128,
    start_text: String,
    duration_ms: u64,
    label: String,
}

/// EXTINF milliseconds of a duration, rounded to nearest (what the playlist writes).
fn ticks_to_ms(t: u64) -> u64 {
    t.saturating_add(TICKS_PER_MS / 2) / TICKS_PER_MS
}

fn epoch_ticks(w: WallClock) -> i64 {
    w.unix_millis() * TICKS_PER_MS as i64
}

/// The documented sanitising of quoted strings (R37): `"` becomes `'`, control characters and
/// the two line separators JavaScript readers break lines at (U+2028, U+2029) become spaces.
fn sanitised(label: &str) -> String {
    label
        .chars()
        .map(|c| match c {
            '"' => '\'',
            c if breaks_a_line(c) => ' ',
            c => c,
        })
        .collect()
}

/// A control character, or U+2028 / U+2029 (ECMA-262 line terminators).
fn breaks_a_line(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

/// Fuzz property of the live playlist; see the module docs.
pub fn playlist_window_property(data: &[u8]) {
    playlist_window_run(data);
}

/// Runs the `playlist_window` property; true if the input ran out of render budget before its
/// operations did.
pub(crate) fn playlist_window_run(data: &[u8]) -> bool {
    let mut input = Input::new(data);
    let Some(mut run) = PlaylistRun::new(&mut input) else {
        return false;
    };
    let mut rendered = run.check_render();
    let mut budget_hit = false;
    for _ in 0..PL_MAX_OPS {
        if rendered >= PL_MAX_RENDERED {
            budget_hit = !input.is_empty();
            break;
        }
        if run.step(&mut input).is_none() {
            break;
        }
        rendered += run.check_render();
    }
    run.finish();
    budget_hit
}

/// What [`PlaylistRun::check_render`] holds the render after an operation to, besides the
/// state: every operation is followed by exactly one render, so the render before the
/// operation is the previous one.
#[derive(Clone, Debug, PartialEq, Eq)]
enum NextRender {
    /// The playlist may have changed.
    Any,
    /// A refused push or DATERANGE (what, and the error): the render must equal the one
    /// before the operation.
    Unchanged(&'static str, String),
    /// The `render_into` operation: `buf` already holds a `render()` of the state, which must
    /// equal the previous render (a `render_into` into a dirty buffer of the same state, as
    /// the operation changes nothing).
    Fresh,
}

/// Stale text in the render buffer before the first render (see [`PlaylistRun::buf`]).
const STALE_RENDER: &str = "#EXTM3U\nstale text that render_into must replace\n";

/// What the model knows of one accepted segment (R25).
#[derive(Clone, Copy, Debug, Default)]
struct SegmentModel {
    duration: u64,
    /// The longest window that listed it.
    longest: u64,
    /// The R25 clock when it left the window.
    removed_at: Option<u64>,
    deleted: bool,
}

/// The assertion context of an accepted push.
struct PushContext {
    sequence: u64,
    duration: u64,
}

impl std::fmt::Display for PushContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let PushContext { sequence, duration } = self;
        write!(f, "push of segment {sequence} ({duration} ticks)")
    }
}

/// One accepted push, as the model saw it.
struct Pushed {
    duration: u64,
    /// Epoch ticks.
    pdt: i64,
    discontinuity: bool,
    resumed: bool,
}

struct PlaylistRun {
    pl: Playlist,
    cfg: PlaylistConfig,
    target_ticks: u64,
    /// PDT (epoch ticks) of the first segment of the current timeline.
    anchor: i64,
    /// Durations pushed since the anchor.
    since_anchor: u64,
    /// PDT (epoch ticks) and duration of the last accepted segment.
    last: Option<(i64, u64)>,
    next_sequence: u64,
    ended: bool,
    ranges: Vec<ModelRange>,
    ids: Vec<String>,
    next_id: u64,
    /// Sum of every accepted duration: the R25 clock.
    stream: u64,
    /// What the model knows of each accepted segment, indexed by sequence number minus the
    /// configured start sequence (sequence numbers are consecutive from there).
    accepted: Vec<SegmentModel>,
    /// Segments removed from the window so far.
    removed_count: u64,
    /// Removed and not deleted, kept up to date.
    pending: BTreeSet<u64>,
    /// Media and discontinuity sequence of the previous render.
    rendered: Option<(u64, u64)>,
    /// The previous render, read back (R21 compares consecutive versions).
    previous: Option<StrictRead>,
    /// The previous render's text: the playlist as it is between two operations (every
    /// operation is followed by a checked render).
    text: String,
    /// The window (state) the previous render showed.
    window: Vec<Segment>,
    /// The next render's buffer: [`Self::check_render`] renders into it with `render_into`
    /// (it holds the render before the previous one, or stale text at the start, so every
    /// `render_into` replaces a dirty buffer) and swaps it with `text`.
    buf: String,
    /// What the last operation promised about the render that follows it.
    expect: NextRender,
    /// Renders checked so far.
    renders: u64,
    /// The last render, if m3u8-rs has not read it (see [`PlaylistRun::m3u8_due`]).
    m3u8_pending: Option<M3u8Pending>,
    /// Sequence number of the last segment listed by a render m3u8-rs has read.
    m3u8_through: Option<u64>,
}

/// What [`check_with_m3u8_rs`] needs of one render.
struct M3u8Check<'a> {
    text: &'a str,
    parsed: &'a RenderedPlaylist,
    /// The segments' PDTs (turned into milliseconds only when m3u8-rs reads the render).
    pdts: &'a [WallClock],
    last_range_ms: Option<i64>,
}

/// What [`M3u8Check`] needs of the previous render besides its text and reading (kept in
/// [`PlaylistRun`]) while m3u8-rs has not read it.
struct M3u8Pending {
    pdts: Vec<WallClock>,
    last_range_ms: Option<i64>,
}

/// What the renders listed (`.0`) and what m3u8-rs read of them (`.1`): segment URIs and
/// DATERANGE lists, for the test that m3u8-rs's sample misses none.
#[cfg(test)]
pub(crate) type Seen = (HashSet<String>, HashSet<String>);
#[cfg(test)]
thread_local! {
    pub(crate) static M3U8_SEEN: std::cell::RefCell<Seen> = std::cell::RefCell::default();
    /// A segment URI m3u8-rs is made to "disagree" about (a seeded checker failure).
    pub(crate) static M3U8_POISON: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}
#[cfg(test)]
fn note_seen(p: &RenderedPlaylist, by_m3u8: bool) {
    M3U8_SEEN.with_borrow_mut(|seen| {
        let set = if by_m3u8 { &mut seen.1 } else { &mut seen.0 };
        set.extend(p.segments.iter().map(|s| s.uri.clone()));
        set.insert(format!("{:?}", p.date_ranges));
    });
}

impl M3u8Pending {
    /// The check of the render this belongs to: `text` and `read` are its text and reading.
    fn of<'a>(&'a self, text: &'a str, read: Option<&'a StrictRead>) -> M3u8Check<'a> {
        M3u8Check {
            text,
            parsed: &read.expect("a pending render was read").parsed,
            pdts: &self.pdts,
            last_range_ms: self.last_range_ms,
        }
    }
}

impl M3u8Check<'_> {
    /// Sequence number of the last listed segment.
    fn last_sequence(&self) -> Option<u64> {
        let n = self.parsed.segments.len() as u64;
        (n > 0).then(|| self.parsed.media_sequence + n - 1)
    }

    fn run(&self, through: &mut Option<u64>) {
        #[cfg(test)]
        {
            note_seen(self.parsed, true);
            let poisoned = M3U8_POISON.with_borrow(|p| {
                p.as_ref()
                    .is_some_and(|uri| self.parsed.segments.iter().any(|s| &s.uri == uri))
            });
            assert!(!poisoned, "playlist_window: m3u8-rs (poisoned) disagrees");
        }
        let pdt_ms: Vec<i64> = self.pdts.iter().map(|p| p.unix_millis()).collect();
        if let Err(e) = check_with_m3u8_rs(self.text, self.parsed, &pdt_ms, self.last_range_ms) {
            panic!("playlist_window: {e}\nin:\n{}", self.text);
        }
        if let Some(last) = self.last_sequence() {
            *through = Some(through.map_or(last, |t| t.max(last)));
        }
    }
}

impl PlaylistRun {
    fn new(input: &mut Input<'_>) -> Option<Self> {
        let b = input.u8().unwrap_or(0x25);
        let list_size = usize::from(b & 0x0F);
        let target = u64::from((b >> 4) & 0x07);
        let name = if b & PL_BAD_NAME == 0 {
            SEGMENT_NAME
        } else {
            BAD_NAMES[usize::from(input.u8().unwrap_or(0)) % BAD_NAMES.len()]
        };
        // A bad name never reaches the playlist: the stream-name type refuses it.
        let name = match StreamName::new(name) {
            Ok(n) => n,
            Err(e) => {
                assert!(
                    b & PL_BAD_NAME != 0 && !e.to_string().is_empty(),
                    "playlist_window: StreamName refuses {name:?}"
                );
                return None;
            }
        };
        assert!(
            b & PL_BAD_NAME == 0,
            "playlist_window: StreamName accepts the bad name {name:?}"
        );
        let cfg = PlaylistConfig {
            name,
            target_duration_secs: target,
            list_size,
            start_sequence: input.varint().unwrap_or(0),
            start_discontinuity_sequence: u64::from(input.u8().unwrap_or(0)),
        };
        let anchor_ms = PL_T0_MS + i64::from(input.u32().unwrap_or(0));
        let valid = target >= 1 && list_size >= MIN_LIST_SIZE;
        let pl = match Playlist::new(cfg.clone()) {
            Ok(pl) => {
                assert!(valid, "playlist_window: Playlist::new accepts {cfg:?}");
                pl
            }
            Err(e) => {
                let fits = match e {
                    PlaylistError::TargetDurationZero => target == 0,
                    PlaylistError::ListTooShort { .. } => list_size < MIN_LIST_SIZE,
                    _ => false,
                };
                assert!(
                    !valid && fits && !e.to_string().is_empty(),
                    "playlist_window: Playlist::new refuses {cfg:?} with {e}"
                );
                return None;
            }
        };
        if let Err(e) = pl.check_invariants() {
            panic!("playlist_window: check_invariants fails on a new playlist: {e}");
        }
        assert_eq!(
            pl.config(),
            &cfg,
            "playlist_window: config() is not the config given"
        );
        Some(PlaylistRun {
            pl,
            target_ticks: target * TICKS_PER_SEC,
            anchor: anchor_ms * TICKS_PER_MS as i64,
            since_anchor: 0,
            last: None,
            next_sequence: cfg.start_sequence,
            ended: false,
            ranges: Vec::new(),
            ids: Vec::new(),
            next_id: 0,
            stream: 0,
            accepted: Vec::new(),
            removed_count: 0,
            pending: BTreeSet::new(),
            rendered: None,
            previous: None,
            text: String::new(),
            window: Vec::new(),
            buf: STALE_RENDER.to_owned(),
            expect: NextRender::Any,
            renders: 0,
            m3u8_pending: None,
            m3u8_through: None,
            cfg,
        })
    }

    fn step(&mut self, input: &mut Input<'_>) -> Option<()> {
        let op = input.u8()?;
        match op & 0x07 {
            0 | 1 => self.push(input, op, false, false)?,
            PL_PUSH_RESUMED => {
                self.push(input, op, op & PL_RESUMED_DISCONTINUITY != 0, true)?;
            }
            PL_PUSH_DISCONTINUITY => self.push(input, op, true, false)?,
            4 | 5 => self.add_range(input, op)?,
            PL_END => {
                self.pl.end();
                self.ended = true;
                assert!(self.pl.is_ended());
            }
            _ => {
                // Held against the previous render (render_into into a dirty buffer, of the
                // same state) and checked as this operation's render by check_render.
                self.buf = self.pl.render();
                self.expect = NextRender::Fresh;
            }
        }
        if let Err(e) = self.pl.check_invariants() {
            panic!("playlist_window: check_invariants fails: {e}");
        }
        Some(())
    }

    /// A push (`resumed`: through `push_resumed`, which takes the PDT as written).
    fn push(
        &mut self,
        input: &mut Input<'_>,
        op: u8,
        discontinuity: bool,
        resumed: bool,
    ) -> Option<()> {
        let td = self.cfg.target_duration_secs;
        let duration = match op & 0x18 {
            PL_DUR_TARGET => self.target_ticks,
            PL_DUR_MS => {
                u64::from(input.u16()?) * TICKS_PER_MS + u64::from(input.u8()?) % TICKS_PER_MS
            }
            PL_DUR_VARINT => input.varint()?,
            _ => td * (TICKS_PER_SEC + TICKS_PER_SEC / 1000),
        };
        let pdt_ms = if discontinuity {
            let gap = i64::from(input.u16()? as i16);
            let end = match self.last {
                Some((pdt, d)) => pdt + d as i64,
                None => self.anchor,
            };
            end.div_euclid(TICKS_PER_MS as i64) + gap
        } else {
            let jitter = match (op & PL_JITTER != 0, resumed) {
                (false, _) => 0,
                (true, false) => i64::from(input.u8()? as i8),
                // A segment read back from an earlier playlist: usually off by the text's
                // millisecond rounding, sometimes by more (a corrupt file), which is refused.
                (true, true) => i64::from(input.u8()? as i8 / 16),
            };
            (self.anchor + self.since_anchor as i64).div_euclid(TICKS_PER_MS as i64) + jitter
        };
        let pdt = pdt_ms * TICKS_PER_MS as i64;

        let mut expected = Vec::new();
        if self.ended {
            expected.push(PushRefusal::Ended);
        }
        let ms = ticks_to_ms(duration);
        if ms == 0 {
            expected.push(PushRefusal::ZeroDuration);
        }
        if (ms + 500) / 1000 > td {
            expected.push(PushRefusal::TooLong); // R13: rounded EXTINF <= target
        }
        if let Some((last_pdt, last_duration)) = self.last {
            if pdt <= last_pdt {
                expected.push(PushRefusal::NotAfter);
            }
            if discontinuity {
                if last_pdt + last_duration as i64 - pdt >= TICKS_PER_SEC as i64 {
                    expected.push(PushRefusal::Overlap); // R33: only sub-second overlap
                }
            } else if resumed {
                // R33: a read-back segment follows its predecessor within rounding (2 ms).
                if (pdt - (last_pdt + last_duration as i64)).abs() >= 2 * TICKS_PER_MS as i64 {
                    expected.push(PushRefusal::Drift);
                }
            } else if (pdt - (self.anchor + self.since_anchor as i64)).abs() >= TICKS_PER_MS as i64
            {
                expected.push(PushRefusal::Drift); // R33: anchor + sum(EXTINF)
            }
        }
        if self.next_sequence == u64::MAX {
            expected.push(PushRefusal::Exhausted); // R22: never wraps
        }

        let (msn, dseq) = (self.pl.media_sequence(), self.pl.discontinuity_sequence());
        let pdt_clock = WallClock::from_unix_millis(pdt_ms);
        let result = if resumed {
            self.pl
                .push_resumed(Duration90k(duration), pdt_clock, discontinuity)
        } else {
            self.pl
                .push(Duration90k(duration), pdt_clock, discontinuity)
        };
        match result {
            Ok(out) => {
                assert!(
                    expected.is_empty(),
                    "playlist_window: accepted a segment of {duration} ticks at {} \
                     (discontinuity {discontinuity}) that the rules refuse: {expected:?}",
                    pdt_clock.to_rfc3339()
                );
                let pushed = Pushed {
                    duration,
                    pdt,
                    discontinuity,
                    resumed,
                };
                // The window before the push is the one the last render showed (every
                // operation is followed by a checked render).
                let window_before = std::mem::take(&mut self.window);
                self.accepted(&out, &window_before, msn, dseq, &pushed);
                self.window = window_before;
            }
            Err(e) => {
                use PlaylistError as E;
                let refusal = match e {
                    E::Ended { .. } => PushRefusal::Ended,
                    E::ZeroDuration { .. } => PushRefusal::ZeroDuration,
                    E::SegmentTooLong { .. } => PushRefusal::TooLong,
                    E::ProgramDateTimeNotAfter { .. } => PushRefusal::NotAfter,
                    E::ProgramDateTimeDrift { .. } => PushRefusal::Drift,
                    E::ProgramDateTimeOverlap { .. } => PushRefusal::Overlap,
                    E::SequenceExhausted => PushRefusal::Exhausted,
                    ref other => panic!("playlist_window: push fails with {other}"),
                };
                assert!(
                    expected.contains(&refusal),
                    "playlist_window: push of {duration} ticks at {} (discontinuity \
                     {discontinuity}) refused with {e}, but the rules call for {expected:?}",
                    pdt_clock.to_rfc3339()
                );
                let error = e.to_string();
                assert!(!error.is_empty());
                // check_render holds the render after it to the render before.
                self.expect = NextRender::Unchanged("a refused push changed the playlist", error);
                assert_eq!(self.pl.next_sequence(), self.next_sequence);
            }
        }
        Some(())
    }

    /// Checks an accepted push against the rules and moves the model along.
    fn accepted(
        &mut self,
        out: &PushOutcome,
        window_before: &[Segment],
        msn: u64,
        dseq: u64,
        pushed: &Pushed,
    ) {
        let &Pushed {
            duration,
            pdt,
            discontinuity,
            resumed,
        } = pushed;
        // Formatted only when an assertion fails: this runs on every accepted push.
        let ctx = PushContext {
            sequence: out.sequence,
            duration,
        };
        assert_eq!(out.sequence, self.next_sequence, "{ctx}: sequence number");
        self.next_sequence += 1;
        assert_eq!(self.pl.next_sequence(), self.next_sequence, "{ctx}");
        let removed = out.removed.len();
        assert_eq!(
            self.pl.media_sequence(),
            msn + removed as u64,
            "{ctx}: R22: media sequence must rise by exactly the {removed} removed segments"
        );
        assert!(
            removed <= window_before.len(),
            "{ctx}: removed the segment just pushed"
        );
        for (i, s) in out.removed.iter().enumerate() {
            assert_eq!(
                s, &window_before[i],
                "{ctx}: R23: segments leave in playlist order"
            );
        }
        let removed_discontinuities = out.removed.iter().filter(|s| s.discontinuity).count();
        assert_eq!(
            self.pl.discontinuity_sequence(),
            dseq + removed_discontinuities as u64,
            "{ctx}: R26: discontinuity sequence rises by the removed EXT-X-DISCONTINUITY tags"
        );

        let window: Vec<Segment> = self.pl.segments().cloned().collect();
        let new_msn = self.pl.media_sequence();
        for (i, s) in window.iter().enumerate() {
            assert_eq!(
                s.sequence,
                new_msn + i as u64,
                "{ctx}: window not consecutive"
            );
        }
        let newest = window.last().expect("the pushed segment is in the window");
        assert_eq!(
            (
                newest.sequence,
                newest.duration,
                epoch_ticks(newest.program_date_time)
            ),
            (out.sequence, Duration90k(duration), pdt),
            "{ctx}: the window's last segment"
        );
        assert_eq!(newest.discontinuity, discontinuity);
        let window_ticks: u64 = window.iter().map(|s| s.duration.as_u64()).sum();
        assert_eq!(self.pl.window_duration().as_u64(), window_ticks, "{ctx}");
        if new_msn > self.cfg.start_sequence {
            assert!(
                window_ticks >= 3 * self.target_ticks,
                "{ctx}: R24: segments were removed but the window lasts {window_ticks} ticks, \
                 under 3 target durations"
            );
        }
        if window.len() > self.cfg.list_size {
            assert!(
                window_ticks - window[0].duration.as_u64() < 3 * self.target_ticks,
                "{ctx}: {} segments in a window of {} although removing the oldest keeps 3 \
                 target durations",
                window.len(),
                self.cfg.list_size
            );
        }

        // R25: a removed file lives its own duration plus the longest playlist that held it.
        self.stream += duration;
        assert_eq!(
            self.pl.stream_time().as_u64(),
            self.stream,
            "{ctx}: stream time"
        );
        // out.sequence is next_sequence (checked above): the next index.
        self.accepted.push(SegmentModel {
            duration,
            ..SegmentModel::default()
        });
        for s in &out.removed {
            let i = self
                .model_index(s.sequence)
                .unwrap_or_else(|| panic!("{ctx}: removes segment {}, never pushed", s.sequence));
            let m = &mut self.accepted[i];
            if m.removed_at.replace(self.stream).is_none() {
                self.removed_count += 1;
            }
            if !m.deleted {
                self.pending.insert(s.sequence);
            }
        }
        for name in &out.delete_now {
            let seq: u64 = name
                .strip_prefix(SEGMENT_NAME)
                .and_then(|n| n.strip_suffix(".ts"))
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{ctx}: deletes a file named {name:?}"));
            let m = self
                .model_index(seq)
                .and_then(|i| self.accepted.get_mut(i))
                .filter(|m| m.removed_at.is_some())
                .unwrap_or_else(|| panic!("{ctx}: deletes {name}, which never left the playlist"));
            let removed_at = m.removed_at.expect("filtered above");
            assert!(!m.deleted, "{ctx}: deletes {name} twice");
            m.deleted = true;
            let grace = m.duration + m.longest;
            self.pending.remove(&seq);
            let since = self.stream - removed_at;
            assert!(
                since >= grace,
                "{ctx}: R25: deletes {name} {since} ticks after its removal, before its grace of {grace}"
            );
            assert!(
                since - duration < grace,
                "{ctx}: {name} was due on an earlier push"
            );
        }
        for s in &window {
            let i = self
                .model_index(s.sequence)
                .expect("the window is consecutive, checked above");
            let l = &mut self.accepted[i].longest;
            *l = (*l).max(window_ticks);
        }
        let reported = || self.pl.pending_deletes().map(|p| p.sequence);
        assert!(
            reported().eq(self.pending.iter().copied()),
            "{ctx}: files awaiting deletion {:?}, expected {:?}",
            reported().collect::<Vec<_>>(),
            self.pending
        );

        if discontinuity || resumed || self.last.is_none() {
            self.anchor = pdt;
            self.since_anchor = 0;
        }
        self.since_anchor += duration;
        self.last = Some((pdt, duration));
        // R36: a range leaves only once it ended before the window's first date.
        let first = epoch_ticks(window[0].program_date_time);
        self.ranges.retain(|r| r.end >= i128::from(first));
    }

    /// Where segment `sequence` sits in [`Self::accepted`] (if it is in range).
    fn model_index(&self, sequence: u64) -> Option<usize> {
        let i = usize::try_from(sequence.checked_sub(self.cfg.start_sequence)?).ok()?;
        (i < self.accepted.len()).then_some(i)
    }

    fn add_range(&mut self, input: &mut Input<'_>, op: u8) -> Option<()> {
        let id = match op & 0x18 {
            PL_ID_REUSE if !self.ids.is_empty() => {
                self.ids[usize::from(input.u8()?) % self.ids.len()].clone()
            }
            PL_ID_RAW => {
                let n = usize::from(input.u8()? % 12);
                String::from_utf8_lossy(input.bytes(n)).into_owned()
            }
            _ => {
                self.next_id += 1;
                format!("ev-{}", self.next_id)
            }
        };
        let offset_ms = i64::from(input.u16()? as i16) * 10;
        let duration = if op & PL_RANGE_LONG != 0 {
            input.varint()?
        } else {
            u64::from(input.u16()?) * TICKS_PER_MS
        };
        let label_len = usize::from(input.u8()? % 32);
        let label = String::from_utf8_lossy(input.bytes(label_len)).into_owned();
        let end_of_stream = match self.last {
            Some((pdt, d)) => pdt + d as i64,
            None => self.anchor,
        };
        let start_ms = end_of_stream.div_euclid(TICKS_PER_MS as i64) + offset_ms;
        let start = start_ms * TICKS_PER_MS as i64;
        let end = i128::from(start) + i128::from(duration);

        let mut expected = Vec::new();
        if self.ended {
            expected.push(RangeRefusal::Ended);
        }
        if id.is_empty() || id.chars().any(|c| c == '"' || breaks_a_line(c)) {
            expected.push(RangeRefusal::InvalidId); // R37
        }
        if self.ranges.iter().any(|r| r.id == id) {
            expected.push(RangeRefusal::DuplicateId); // R36
        }
        if let Some(first) = self.pl.segments().next() {
            if end < i128::from(epoch_ticks(first.program_date_time)) {
                expected.push(RangeRefusal::Expired);
            }
        }
        let start_clock = WallClock::from_unix_millis(start_ms);
        let range = DateRange {
            id: id.clone(),
            start: start_clock,
            duration: Duration90k(duration),
            label: label.clone(),
        };
        match self.pl.add_date_range(range) {
            Ok(()) => {
                assert!(
                    expected.is_empty(),
                    "playlist_window: accepted DATERANGE {id:?} at {} for {duration} ticks that \
                     the rules refuse: {expected:?}",
                    start_clock.to_rfc3339()
                );
                self.ranges.push(ModelRange {
                    id: id.clone(),
                    start,
                    end,
                    start_text: start_clock.to_rfc3339(),
                    duration_ms: ticks_to_ms(duration),
                    label: sanitised(&label),
                });
                // The documented cap: past it, the range that starts first goes.
                if self.ranges.len() > hls::playlist::MAX_DATE_RANGES {
                    let first = (0..self.ranges.len()).min_by_key(|&i| self.ranges[i].start);
                    if let Some(first) = first {
                        self.ranges.remove(first);
                    }
                }
                self.ids.push(id);
            }
            Err(e) => {
                let refusal = match e {
                    PlaylistError::Ended { .. } => RangeRefusal::Ended,
                    PlaylistError::InvalidDateRangeId { .. } => RangeRefusal::InvalidId,
                    PlaylistError::DuplicateDateRangeId { .. } => RangeRefusal::DuplicateId,
                    PlaylistError::DateRangeExpired { .. } => RangeRefusal::Expired,
                    ref other => panic!("playlist_window: add_date_range fails with {other}"),
                };
                assert!(
                    expected.contains(&refusal),
                    "playlist_window: DATERANGE {id:?} refused with {e}, but the rules call for \
                     {expected:?}"
                );
                let error = e.to_string();
                assert!(
                    refusal == RangeRefusal::Ended || error.contains(&format!("{id:?}")),
                    "playlist_window: the error does not name the DATERANGE: {e}"
                );
                // check_render holds the render after it to the render before.
                self.expect =
                    NextRender::Unchanged("a refused DATERANGE changed the playlist", error);
            }
        }
        Some(())
    }

    /// Renders, reads the text strictly and with m3u8-rs, and holds both against the state.
    /// Checks the current render; returns its length.
    fn check_render(&mut self) -> usize {
        // One render per operation, into the reused (dirty) buffer, unless the operation
        // rendered with render() already.
        let expect = std::mem::replace(&mut self.expect, NextRender::Any);
        if !matches!(expect, NextRender::Fresh) {
            self.pl.render_into(&mut self.buf);
        }
        let text = std::mem::take(&mut self.buf);
        let unchanged = self.previous.is_some() && text == self.text;
        match expect {
            NextRender::Unchanged(what, error) if !unchanged => panic!(
                "playlist_window: {what} ({error}):\n{text}\nbefore:\n{}",
                self.text
            ),
            NextRender::Fresh if !unchanged => panic!(
                "playlist_window: render_into differs from render:\n{}\nrender:\n{text}",
                self.text
            ),
            _ => {}
        }
        // The strict reader reads only what changed since the previous render (the same
        // result as check_playlist_text; see check_playlist_text_after). A text equal to the
        // previous one has the previous reading (the reader is a function of the text), kept
        // in self.previous.
        let read = (!unchanged).then(|| {
            let previous = self.previous.as_ref().map(|p| (self.text.as_str(), p));
            let read = check_playlist_text_after(&text, previous);
            #[cfg(test)]
            cross_check_strict_reader(&text, read.as_ref().map(|r| &r.parsed));
            read.unwrap_or_else(|e| panic!("playlist_window: {e}\nin:\n{text}"))
        });
        let parsed = match &read {
            Some(read) => &read.parsed,
            None => {
                &self
                    .previous
                    .as_ref()
                    .expect("unchanged: read before")
                    .parsed
            }
        };
        #[cfg(test)]
        if read.is_none() {
            cross_check_strict_reader(&text, Ok(parsed));
        }
        let fail = |what: String| -> ! { panic!("playlist_window: {what}\nin:\n{text}") };
        if parsed.target_duration != self.cfg.target_duration_secs {
            fail(format!(
                "R14: target duration {} but configured {}",
                parsed.target_duration, self.cfg.target_duration_secs
            ));
        }
        let msn = self.pl.media_sequence();
        let dseq = self.pl.discontinuity_sequence();
        if parsed.media_sequence != msn {
            fail(format!(
                "EXT-X-MEDIA-SEQUENCE {}, state {msn}",
                parsed.media_sequence
            ));
        }
        let written_dseq = parsed.discontinuity_sequence.unwrap_or(0);
        if written_dseq != dseq {
            fail(format!(
                "R26: discontinuity sequence {dseq} but a client reads {written_dseq}"
            ));
        }
        if let Some((prev_msn, prev_dseq)) = self.rendered {
            if msn < prev_msn || dseq < prev_dseq {
                fail(format!(
                    "R22/R26: sequences went back from {prev_msn}/{prev_dseq} to {msn}/{dseq}"
                ));
            }
        }
        self.rendered = Some((msn, dseq));
        if parsed.endlist != self.ended {
            fail(format!(
                "R29: EXT-X-ENDLIST {} after end {}",
                parsed.endlist, self.ended
            ));
        }
        let window: Vec<&Segment> = self.pl.segments().collect();
        if parsed.segments.len() != window.len() {
            fail(format!(
                "{} segments written, {} in the window",
                parsed.segments.len(),
                window.len()
            ));
        }
        let prev_msn = self.previous.as_ref().map(|p| p.parsed.media_sequence);
        for (i, (p, s)) in parsed.segments.iter().zip(&window).enumerate() {
            // The URI and PDT texts are formatted only for segments the previous render did
            // not show with the same lines and the same state: for those, this check ran on
            // the same values.
            let shown_before = prev_msn
                .and_then(|m| s.sequence.checked_sub(m))
                .and_then(|j| usize::try_from(j).ok())
                .is_some_and(|j| {
                    self.window.get(j) == Some(*s)
                        && self
                            .previous
                            .as_ref()
                            .and_then(|r| r.parsed.segments.get(j))
                            == Some(p)
                });
            let ok = s.sequence == msn + i as u64
                && p.extinf_ms == ticks_to_ms(s.duration.as_u64())
                && p.discontinuity == s.discontinuity
                && (shown_before
                    || (p.uri == self.pl.segment_uri(s.sequence)
                        && p.program_date_time == s.program_date_time.to_rfc3339()));
            if !ok {
                fail(format!("segment line {i} {p:?} does not show {s:?}"));
            }
        }

        // R36: exactly the held ranges whose dates overlap the window's, in the order added.
        let span = window.first().zip(window.last()).map(|(f, l)| {
            (
                i128::from(epoch_ticks(f.program_date_time)),
                i128::from(epoch_ticks(l.program_date_time)) + i128::from(l.duration.as_u64()),
            )
        });
        let visible: Vec<&ModelRange> = self
            .ranges
            .iter()
            .filter(|r| span.is_some_and(|(s, e)| i128::from(r.start) < e && r.end >= s))
            .collect();
        let shown: Vec<&str> = parsed.date_ranges.iter().map(|r| r.id.as_str()).collect();
        let want: Vec<&str> = visible.iter().map(|r| r.id.as_str()).collect();
        if shown != want {
            fail(format!(
                "R36: DATERANGEs {shown:?} shown, {want:?} overlap the window"
            ));
        }
        for (r, m) in parsed.date_ranges.iter().zip(&visible) {
            if r.start_date != m.start_text
                || r.duration_ms != m.duration_ms
                || r.label.as_deref() != Some(m.label.as_str())
            {
                fail(format!("DATERANGE {r:?} does not show {m:?}"));
            }
        }
        let held: Vec<&str> = self.pl.date_ranges().map(|r| r.id.as_str()).collect();
        if held != want {
            fail(format!("date_ranges() {held:?}, render {want:?}"));
        }

        let pdts: Vec<WallClock> = window.iter().map(|s| s.program_date_time).collect();
        let last_range_ms = visible.last().map(|r| r.start / TICKS_PER_MS as i64);
        // check_update(p, p) holds for every reading p: an unchanged text needs no check.
        if let Some(previous) = self.previous.as_ref().filter(|_| read.is_some()) {
            if let Err(e) = check_update(&previous.parsed, parsed) {
                fail(e);
            }
        }
        let len = text.len();
        #[cfg(test)]
        note_seen(parsed, false);
        // The independent parse, on a sample of the renders (every render went through
        // the strict reader, the model and check_update above).
        if let Some(pending) = self.m3u8_pending.take() {
            let previous = pending.of(&self.text, self.previous.as_ref());
            // The first segment of the previous render that m3u8-rs has not seen listed.
            let first_unread = self
                .m3u8_through
                .map_or(previous.parsed.media_sequence, |t| {
                    (t + 1).max(previous.parsed.media_sequence)
                });
            let drops_unread = previous
                .last_sequence()
                .is_some_and(|last| first_unread <= last)
                && parsed.media_sequence > first_unread;
            if drops_unread {
                previous.run(&mut self.m3u8_through);
            }
        }
        if self.m3u8_due(parsed) {
            let this = M3u8Check {
                text: &text,
                parsed,
                pdts: &pdts,
                last_range_ms,
            };
            this.run(&mut self.m3u8_through);
        } else {
            self.m3u8_pending = Some(M3u8Pending {
                pdts,
                last_range_ms,
            });
        }
        self.window.clear();
        self.window.extend(window.into_iter().cloned());
        self.buf = std::mem::replace(&mut self.text, text);
        if let Some(read) = read {
            self.previous = Some(read);
        }
        self.renders += 1;
        len
    }

    /// Whether m3u8-rs reads this render now: the first render, every [`PL_M3U8_EVERY`]th,
    /// and every render whose structure differs from the previous one (EXT-X-ENDLIST, the
    /// discontinuity sequence, the DATERANGEs shown, whether the first segment exists and
    /// carries EXT-X-DISCONTINUITY). Besides, [`Self::check_render`] has m3u8-rs read the
    /// previous render when this one drops a segment that no render read so far listed, and
    /// [`Self::finish`] the last render. So m3u8-rs reads every segment's lines (which
    /// `check_update` proves unchanged while listed) and every DATERANGE state at least once.
    fn m3u8_due(&self, now: &RenderedPlaylist) -> bool {
        let Some(prev) = self.previous.as_ref().map(|r| &r.parsed) else {
            return true;
        };
        let first = |p: &RenderedPlaylist| p.segments.first().map(|s| s.discontinuity);
        self.renders % PL_M3U8_EVERY == 0
            || prev.endlist != now.endlist
            || prev.discontinuity_sequence != now.discontinuity_sequence
            || prev.date_ranges != now.date_ranges
            || first(prev) != first(now)
    }

    fn finish(mut self) {
        if !self.ended {
            self.pl.end();
            self.ended = true;
            self.check_render();
        }
        if let Some(pending) = self.m3u8_pending.take() {
            let last = pending.of(&self.text, self.previous.as_ref());
            last.run(&mut self.m3u8_through);
        }
        let removed = self.pl.media_sequence() - self.cfg.start_sequence;
        assert_eq!(
            self.removed_count, removed,
            "playlist_window: removed count"
        );
        for s in self.pl.segments() {
            assert!(
                !self
                    .model_index(s.sequence)
                    .and_then(|i| self.accepted.get(i))
                    .is_some_and(|m| m.deleted),
                "playlist_window: segment {} deleted while listed",
                s.sequence
            );
        }
    }
}

/// In the unit tests, every render's incremental strict reading is held against the full one.
#[cfg(test)]
fn cross_check_strict_reader(text: &str, read: Result<&RenderedPlaylist, &String>) {
    let full = check_playlist_text(text);
    let incremental = read.cloned().map_err(Clone::clone);
    assert_eq!(
        incremental, full,
        "playlist_window: the incremental strict reader differs on:\n{text}"
    );
}

#[cfg(test)]
mod deferred_checks {
    use super::*;
    use std::panic::{catch_unwind, AssertUnwindSafe};

    /// A run with a valid config (list size 5, target 2 s), its first render checked.
    fn started() -> PlaylistRun {
        let data = [0x25u8, 0, 0, 0, 0, 0, 0];
        let mut run = PlaylistRun::new(&mut Input::new(&data)).expect("a valid config");
        run.check_render();
        run
    }

    fn push_behind_the_model(run: &mut PlaylistRun) {
        let pdt = WallClock::from_unix_millis(PL_T0_MS);
        run.pl
            .push(Duration90k(2 * TICKS_PER_SEC), pdt, false)
            .expect("a valid push");
    }

    #[test]
    fn the_render_after_a_refusal_or_render_into_is_held_to_the_one_before() {
        // A refused operation that changed the playlist anyway.
        let mut run = started();
        push_behind_the_model(&mut run);
        run.expect = NextRender::Unchanged("a refused push changed the playlist", String::new());
        let failed = catch_unwind(AssertUnwindSafe(|| run.check_render()));
        assert!(failed.is_err(), "a changed render after a refusal passes");

        // A render() that differs from the render_into of the same (here: not the same) state.
        let mut run = started();
        push_behind_the_model(&mut run);
        run.buf = run.pl.render();
        run.expect = NextRender::Fresh;
        let failed = catch_unwind(AssertUnwindSafe(|| run.check_render()));
        assert!(
            failed.is_err(),
            "render() differing from render_into passes"
        );

        // Both pass when nothing changed.
        let mut run = started();
        run.expect = NextRender::Unchanged("a refused push changed the playlist", String::new());
        run.check_render();
        run.buf = run.pl.render();
        run.expect = NextRender::Fresh;
        run.check_render();
        // render_into replaced the stale text of the buffer at the first render.
        assert!(run.text.starts_with("#EXTM3U\n#EXT-X-VERSION:"));
    }
}
