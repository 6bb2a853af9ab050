// Keeping to the live target (pure: no DOM, no player; static/js/main.js feeds it).
//
// The page follows the live edge until the user moves away from it: a pause, or a seek of their
// own (the seek bar, a marker, the keyboard) that lands more than FOLLOW_BAND from the target.
// "Go live", or a seek that lands near the target, follows again. Seeks the player makes by
// itself (its start position, gap jumps, stall nudges) never change that: only the page's own
// controls call `userSeek` / `userPause`.
//
// While following, the latency measured from the picture's program date time (now minus the
// wall clock of the frame on screen: the truth, whatever the player's own estimate says) is
// steered to the target (PART-HOLD-BACK with low latency, else the player's target):
//   - behind by more than JUMP_BEYOND: jump to the target (faster playback would take too long),
//   - behind by more than DEADBAND: play faster, in proportion (1 + behind, at most MAX_RATE),
//   - ahead by more than DEADBAND (too close to the edge, a stall is coming): play at SLOW_RATE,
//   - otherwise: 1x.

/** Seconds of latency error that are left alone. */
export const DEADBAND = 0.08;
/** Fastest catch-up: 1.5x removes a second of lag in two seconds and looks like it. */
export const MAX_RATE = 1.5;
/** Playing slower when too close to the live edge. */
export const SLOW_RATE = 0.9;
/** Further behind than this (seconds) a jump is quicker than faster playback. */
export const JUMP_BEYOND = 4;
/** A user's seek that lands within this of the target (seconds) means "live". */
export const FOLLOW_BAND = 1.5;

export class LiveKeeper {
  constructor() {
    /** The page keeps to the live target (false after the user paused or seeked away). */
    this.following = true;
  }

  /** The user paused. */
  userPause() {
    this.following = false;
  }

  /**
   * The user seeked to a point whose latency will be `latencyAfter` (seconds; null when not
   * known) against `target`: follow again only if that is near the target.
   */
  userSeek(latencyAfter, target) {
    this.following = latencyAfter !== null && Number.isFinite(latencyAfter)
      && Math.abs(latencyAfter - target) <= FOLLOW_BAND;
  }

  /** "Go live". */
  goLive() {
    this.following = true;
  }

  /**
   * What to do now. `latency`: seconds from capture to screen of the frame shown (null when not
   * known); `target`: the live target (seconds); `playing`: the video plays; `ended`: the stream
   * ended (nothing to follow). Returns {rate, jumpBy}: the playback rate to set, and seconds to
   * seek forward (0: none).
   */
  step({ latency, target, playing, ended }) {
    if (!this.following || ended || !playing || latency === null || !Number.isFinite(latency)
        || !Number.isFinite(target)) {
      return { rate: 1, jumpBy: 0 };
    }
    const behind = latency - target;
    if (behind > JUMP_BEYOND) return { rate: 1, jumpBy: behind };
    if (behind > DEADBAND) return { rate: Math.min(MAX_RATE, 1 + behind), jumpBy: 0 };
    if (behind < -DEADBAND) return { rate: SLOW_RATE, jumpBy: 0 };
    return { rate: 1, jumpBy: 0 };
  }
}
