//! One stream's supervisor: runs its pipeline on a thread of its own, and when the pipeline fails
//! (an error, or a panic on any of its threads) logs why and starts it again after a back-off,
//! so that one stream's bad day never reaches another. A stream whose input cannot even be opened
//! (a missing file, a bad Y4M header) is not retried: a restart would fail the same way; it is
//! marked failed until a reload. A stream whose input ended, or that was told to stop, has ended.
//!
//! Each run gets a fresh [`Shared`]: the server is handed it through the stream's
//! [`LiveStream`], so a restarted stream is served from its new run at once. A restart resumes
//! the stream on disk (never `--fresh`): the media sequence goes on after a discontinuity, and
//! markers, clock and ids are the stream's own across runs.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tracing::{error, info, warn};

use super::{prepare, Summary};
use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::state::{InputParams, LiveStream, RunState, Shared, StreamParams};

/// The pauses between failed runs: `first`, doubling up to `max`; a run that lasted `healthy`
/// resets the count.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
    pub healthy: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            first: Duration::from_secs(1),
            max: Duration::from_secs(30),
            healthy: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The pause after the `attempt`-th failure in a row (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(16);
        self.first.saturating_mul(1 << doublings).min(self.max)
    }
}

/// Tells a supervised stream to stop: its running pipeline ends its segment and writes
/// `EXT-X-ENDLIST`; a pending restart is called off.
#[derive(Debug, Default)]
struct StopSwitch {
    state: Mutex<SwitchState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct SwitchState {
    requested: bool,
    /// The running pipeline's stop flag.
    run: Option<Arc<AtomicBool>>,
}

impl StopSwitch {
    fn request(&self) {
        let mut s = self.state.lock().expect("stop lock poisoned");
        s.requested = true;
        if let Some(run) = &s.run {
            run.store(true, Ordering::SeqCst);
        }
        self.changed.notify_all();
    }

    /// A stop flag for the next run, or `None` if the stream was told to stop.
    fn next_run(&self) -> Option<Arc<AtomicBool>> {
        let mut s = self.state.lock().expect("stop lock poisoned");
        if s.requested {
            return None;
        }
        let run = Arc::new(AtomicBool::new(false));
        s.run = Some(run.clone());
        Some(run)
    }

    fn requested(&self) -> bool {
        self.state.lock().expect("stop lock poisoned").requested
    }

    /// Waits `pause`, or less if a stop is requested meanwhile; whether one was.
    fn wait(&self, pause: Duration) -> bool {
        let s = self.state.lock().expect("stop lock poisoned");
        let (s, _) = self
            .changed
            .wait_timeout_while(s, pause, |s| !s.requested)
            .expect("stop lock poisoned");
        s.requested
    }
}

/// A stream under supervision.
pub struct Supervisor {
    name: String,
    switch: Arc<StopSwitch>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Supervisor {
    /// Runs the stream `cfg` describes, serving through `live`, until it ends or is stopped;
    /// `on_end` runs on its thread when it has (after its last run, however that ended).
    /// With `recordings`, the stream records into that index (the output directory's).
    pub fn start(
        cfg: Config,
        live: Arc<LiveStream>,
        backoff: Backoff,
        recordings: Option<crate::recording::Recordings>,
        on_end: impl FnOnce() + Send + 'static,
    ) -> Result<Supervisor> {
        let mut cfg = cfg;
        let camera = matches!(cfg.stream.input(), crate::input::Input::Rtsp(_));
        Supervisor::with_runner(
            cfg.stream.name().to_string(),
            live,
            backoff,
            camera,
            move |shared, stop, restart| {
                if restart {
                    // A restart continues the stream on disk.
                    cfg.stream.fresh = false;
                }
                let mut prepared = prepare(&cfg)?;
                if let Some(r) = &recordings {
                    prepared = prepared.with_recording(r.clone());
                }
                if let Some(plan) = prepared.plan() {
                    // A Y4M header's size and rate, known only now: what the server says.
                    let params = StreamParams {
                        frame_rate: plan.rate(),
                        target_duration_secs: plan.target_duration_secs(),
                        segment_lifetime_secs: plan.segment_lifetime().as_secs_ceil(),
                    };
                    shared.update_status(|s| s.params = InputParams::Known(params));
                }
                prepared.start(shared, stop, || {})?.join()
            },
            on_end,
        )
    }

    /// [`Supervisor::start`] with the run given: `run(shared, stop, is_restart)` runs the
    /// stream once, until it ends (`Ok`) or fails (`Err` or a panic). For tests of the policy.
    /// `camera`: the input is a camera, whose failures are always worth a restart (it may come
    /// back as it was, or changed: a new picture size, a new codec setting).
    pub fn with_runner(
        name: String,
        live: Arc<LiveStream>,
        backoff: Backoff,
        camera: bool,
        mut run: impl FnMut(Arc<Shared>, Arc<AtomicBool>, bool) -> Result<Summary> + Send + 'static,
        on_end: impl FnOnce() + Send + 'static,
    ) -> Result<Supervisor> {
        let switch = Arc::new(StopSwitch::default());
        let thread = {
            let switch = switch.clone();
            let name = name.clone();
            thread::Builder::new()
                .name(format!("stream-{name}"))
                .spawn(move || {
                    // Every log line of the stream's threads names it.
                    let _span = tracing::info_span!("stream", name = %name).entered();
                    supervise(&name, &live, backoff, camera, &switch, &mut run);
                    on_end();
                })
                .map_err(|e| Error::io("starting a stream's supervisor thread", e))?
        };
        Ok(Supervisor {
            name,
            switch,
            thread: Some(thread),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Tells the stream to stop (see [`Supervisor::join`] to wait for it).
    pub fn stop(&self) {
        self.switch.request();
    }

    /// Lets the stream's thread go without waiting for it (a stream still opening its input at
    /// the process's exit: it has written nothing).
    pub fn abandon(mut self) {
        self.switch.request();
        drop(self.thread.take());
    }

    /// Waits for the stream to end.
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            // The thread catches the pipeline's panics; its own code does not panic.
            let _ = t.join();
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.switch.request();
            let _ = t.join();
        }
    }
}

/// The supervision loop of stream `name`.
fn supervise(
    name: &str,
    live: &LiveStream,
    backoff: Backoff,
    camera: bool,
    switch: &StopSwitch,
    run: &mut impl FnMut(Arc<Shared>, Arc<AtomicBool>, bool) -> Result<Summary>,
) {
    let mut failures = 0u32;
    let mut runs = 0u32;
    while let Some(stop) = switch.next_run() {
        let shared = if runs == 0 {
            live.shared()
        } else {
            let fresh = Arc::new(Shared::default());
            live.replace_shared(fresh.clone());
            fresh
        };
        live.set_run_state(RunState::Running);
        let started = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| run(shared, stop, runs > 0)));
        runs += 1;
        let error = match outcome {
            Ok(Ok(summary)) => match summary.input_error {
                None => {
                    info!(stream = name, segments = summary.segments, "stream ended");
                    live.set_run_state(RunState::Ended);
                    return;
                }
                // The stream ended cleanly (last segment, EXT-X-ENDLIST), but not because its
                // input did.
                Some(why) => Error::new(ErrorKind::Unavailable, why),
            },
            Ok(Err(e)) => e,
            Err(panic) => Error::new(
                ErrorKind::Internal,
                format!("the stream's thread panicked: {}", panic_message(&*panic)),
            ),
        };
        if switch.requested() {
            warn!(stream = name, error = %error, "stream stopped with an error");
            live.set_run_state(RunState::Ended);
            return;
        }
        let unreadable = error.kind() == ErrorKind::InvalidArgument && runs == 1
            || error.kind() == ErrorKind::Unavailable;
        if unreadable && !camera {
            // A file or a pipe that cannot be read as configured (or broke midway): a restart
            // would fail the same way, or replay a file from its start.
            error!(
                stream = name,
                "stream failed; not restarted until a reload: {error:#}"
            );
            live.set_run_state(RunState::Failed {
                error: public_reason(&error),
            });
            return;
        }
        if started.elapsed() >= backoff.healthy {
            failures = 0;
        }
        failures += 1;
        let pause = backoff.delay(failures);
        error!(
            stream = name,
            attempt = failures,
            restart_in_secs = pause.as_secs_f64(),
            "stream failed; restarting: {error:#}"
        );
        live.set_run_state(RunState::Restarting {
            error: public_reason(&error),
            attempt: failures,
            at: Instant::now() + pause,
        });
        if switch.wait(pause) {
            live.set_run_state(RunState::Ended);
            return;
        }
    }
    live.set_run_state(RunState::Ended);
}

/// Why a stream failed, as clients may read it (`/healthz`, `/streams`): what a user can act
/// on; an I/O error's or a bug's details (paths, the system's words) stay in the log.
fn public_reason(e: &Error) -> String {
    match e.kind() {
        ErrorKind::Io => "a read or write failed (the server's log says which)".to_owned(),
        ErrorKind::Internal => "an internal error (the server's log says which)".to_owned(),
        _ => e.message().to_owned(),
    }
}

/// The text of a panic's payload (`panic!("...")` gives a `&str` or a `String`).
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn quick() -> Backoff {
        Backoff {
            first: Duration::from_millis(20),
            max: Duration::from_millis(80),
            healthy: Duration::from_secs(60),
        }
    }

    #[test]
    fn the_pause_doubles_up_to_its_cap() {
        let b = Backoff::default();
        let secs: Vec<u64> = (1..=7).map(|a| b.delay(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(30));
    }

    /// A run that panics, then one that fails, then one that ends: restarted twice with growing
    /// pauses, a new `Shared` each time, the state said at each step, ended at last.
    #[test]
    fn a_panic_and_an_error_are_restarted_and_an_end_is_final() {
        let first = Arc::new(Shared::default());
        let live = Arc::new(LiveStream::new(first.clone()));
        let (tx, rx) = mpsc::channel();
        let (ended_tx, ended_rx) = mpsc::channel();
        let mut calls = 0;
        let watched = live.clone();
        let sup = Supervisor::with_runner(
            "cam".into(),
            live.clone(),
            quick(),
            false,
            move |shared, _stop, restart| {
                calls += 1;
                tx.send((
                    calls,
                    Arc::as_ptr(&shared) as usize,
                    restart,
                    Instant::now(),
                ))
                .unwrap();
                match calls {
                    1 => panic!("boom"),
                    2 => {
                        assert!(matches!(watched.run_state(), RunState::Running));
                        Err(Error::new(ErrorKind::Io, "disk went away"))
                    }
                    _ => Ok(Summary::default()),
                }
            },
            move || ended_tx.send(()).unwrap(),
        )
        .unwrap();
        ended_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        sup.join();
        let runs: Vec<_> = rx.try_iter().collect();
        assert_eq!(runs.len(), 3);
        assert_eq!(
            runs[0].1,
            Arc::as_ptr(&first) as usize,
            "the first run serves the server's Shared"
        );
        assert!(
            !runs[0].2 && runs[1].2 && runs[2].2,
            "later runs are restarts"
        );
        assert_ne!(runs[1].1, runs[0].1, "a restart gets a new Shared");
        assert_ne!(runs[2].1, runs[1].1);
        assert_eq!(
            Arc::as_ptr(&live.shared()) as usize,
            runs[2].1,
            "the server sees the newest run"
        );
        let pause1 = runs[1].3 - runs[0].3;
        let pause2 = runs[2].3 - runs[1].3;
        assert!(pause1 >= Duration::from_millis(20), "{pause1:?}");
        assert!(
            pause2 >= Duration::from_millis(40),
            "the pause doubles: {pause2:?}"
        );
        assert_eq!(live.run_state(), RunState::Ended);
    }

    /// Told to stop during a back-off: no further run, ended at once.
    #[test]
    fn a_stop_during_the_back_off_calls_the_restart_off() {
        let live = Arc::new(LiveStream::new(Arc::new(Shared::default())));
        let (tx, rx) = mpsc::channel();
        let sup = Supervisor::with_runner(
            "cam".into(),
            live.clone(),
            Backoff {
                first: Duration::from_secs(600),
                ..quick()
            },
            false,
            move |_, _, _| {
                tx.send(()).unwrap();
                Err(Error::new(ErrorKind::Io, "camera thread died"))
            },
            || {},
        )
        .unwrap();
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        // Restarting, with the reason and the pause.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !matches!(live.run_state(), RunState::Restarting { .. }) {
            assert!(Instant::now() < deadline, "never said it was restarting");
            thread::sleep(Duration::from_millis(5));
        }
        match live.run_state() {
            RunState::Restarting { error, attempt, .. } => {
                assert!(error.contains("read or write failed"), "{error}");
                assert!(
                    !error.contains("camera thread died"),
                    "the details stay in the log"
                );
                assert_eq!(attempt, 1);
            }
            other => panic!("{other:?}"),
        }
        let t = Instant::now();
        sup.stop();
        sup.join();
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the pause was cut short"
        );
        assert_eq!(live.run_state(), RunState::Ended);
        assert!(rx.try_recv().is_err(), "no run after the stop");
    }

    /// An input that cannot be opened is not retried; its error is kept for `/healthz`.
    #[test]
    fn an_input_that_cannot_be_opened_fails_without_restarts() {
        let live = Arc::new(LiveStream::new(Arc::new(Shared::default())));
        let runs = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counted = runs.clone();
        let sup = Supervisor::with_runner(
            "cam".into(),
            live.clone(),
            quick(),
            false,
            move |_, _, _| {
                counted.fetch_add(1, Ordering::SeqCst);
                Err(Error::new(
                    ErrorKind::InvalidArgument,
                    "--input missing.y4m: no such file",
                ))
            },
            || {},
        )
        .unwrap();
        sup.join();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        match live.run_state() {
            RunState::Failed { error } => assert!(error.contains("missing.y4m"), "{error}"),
            other => panic!("{other:?}"),
        }
    }

    /// A stop reaches the running pipeline through its stop flag.
    #[test]
    fn a_stop_reaches_the_running_pipeline() {
        let live = Arc::new(LiveStream::new(Arc::new(Shared::default())));
        let (tx, rx) = mpsc::channel();
        let sup = Supervisor::with_runner(
            "cam".into(),
            live.clone(),
            quick(),
            false,
            move |_, stop, _| {
                tx.send(()).unwrap();
                while !stop.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(2));
                }
                Ok(Summary::default())
            },
            || {},
        )
        .unwrap();
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        sup.stop();
        sup.join();
        assert_eq!(live.run_state(), RunState::Ended);
    }

    /// A camera's refusal is restarted (it may come back, or come back changed); a file or a
    /// pipe that broke midway is not (a restart would replay the file or fail the same way).
    #[test]
    fn a_camera_is_always_restarted_a_broken_file_is_not() {
        let live = Arc::new(LiveStream::new(Arc::new(Shared::default())));
        let (tx, rx) = mpsc::channel();
        let sup = Supervisor::with_runner(
            "cam".into(),
            live.clone(),
            quick(),
            true,
            move |_, _, _| {
                tx.send(()).unwrap();
                Err(Error::new(
                    ErrorKind::InvalidArgument,
                    "B-frames: not supported",
                ))
            },
            || {},
        )
        .unwrap();
        for _ in 0..3 {
            rx.recv_timeout(Duration::from_secs(10)).expect("restarted");
        }
        sup.stop();
        sup.join();

        let live = Arc::new(LiveStream::new(Arc::new(Shared::default())));
        let runs = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counted = runs.clone();
        let sup = Supervisor::with_runner(
            "clip".into(),
            live.clone(),
            quick(),
            false,
            move |_, _, _| {
                counted.fetch_add(1, Ordering::SeqCst);
                Ok(Summary {
                    input_error: Some("--input clip.y4m: frame 31 is cut short".into()),
                    ..Summary::default()
                })
            },
            || {},
        )
        .unwrap();
        sup.join();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        match live.run_state() {
            RunState::Failed { error } => assert!(error.contains("cut short"), "{error}"),
            other => panic!("{other:?}"),
        }
    }
}
