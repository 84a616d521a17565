//! Catch-up after downtime: of the occurrences that fell due while no scheduler ran, fire only the
//! latest one, and only if it is still within the catch-up window; report every other one as missed,
//! with the reason.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::duration::duration_text;
use super::{Timing, format_duration};

/// What to do with occurrences missed while no scheduler ran: the latest of them still fires if it
/// was due less than `window` ago. A zero window (the default) never catches up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatchUp {
    /// How late an occurrence may still fire, e.g. `90m` (serialized as `parse_duration` text).
    #[serde(with = "duration_text")]
    pub window: Duration,
}

impl CatchUp {
    /// Never catch up: every missed occurrence is recorded as missed.
    pub const NEVER: CatchUp = CatchUp { window: Duration::ZERO };

    /// `catch_up` with this window.
    pub fn decide(&self, timing: &Timing, last_considered: DateTime<Utc>, now: DateTime<Utc>, limit: usize) -> CatchUpDecision {
        catch_up(timing, last_considered, now, self.window, limit)
    }
}

/// The outcome of `catch_up`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatchUpDecision {
    /// The occurrence to fire now, if the latest one is within the window.
    pub fire: Option<DateTime<Utc>>,
    /// Every other occurrence in `(last_considered, now]`, oldest first, each with why it is not fired;
    /// at most `limit` of them.
    pub missed: Vec<(DateTime<Utc>, String)>,
    /// Whether more missed occurrences exist than were listed; call again with `last_considered` set
    /// to the last listed one to get the next page (`fire` is the same on every page).
    pub truncated: bool,
}

/// Splits the occurrences in `(last_considered, now]` into the one to fire — the LATEST occurrence, if
/// it is less than `window` before `now` (so a zero window fires nothing) — and the missed ones:
/// those at least `window` old, and those superseded by the one that fires. Blackouts are not applied
/// here: check `Timing::blackout_at` on `fire` as on any occurrence.
pub fn catch_up(timing: &Timing, last_considered: DateTime<Utc>, now: DateTime<Utc>, window: Duration, limit: usize) -> CatchUpDecision {
    let latest = timing.latest_between(last_considered, now);
    let fire = latest.filter(|&t| age(t, now) < window);
    let now_text = instant(now);
    let window_text = format_duration(window);
    let mut pending = timing
        .upcoming(last_considered)
        .take_while(|&t| t <= now)
        .filter(|&t| Some(t) != fire);
    let missed = pending
        .by_ref()
        .take(limit)
        .map(|t| {
            let reason = match fire {
                Some(fired) if age(t, now) < window => format!(
                    "superseded: the later occurrence at {} fires instead (catch-up fires only the latest occurrence \
                     within the {window_text} window)",
                    instant(fired)
                ),
                _ if window.is_zero() => {
                    format!(
                        "missed: no scheduler was running at {}, and catch-up is off (window 0s); now is {now_text}",
                        instant(t)
                    )
                }
                _ => format!(
                    "missed: no scheduler was running at {}; by {now_text} it was {} late, beyond the catch-up window of \
                     {window_text}",
                    instant(t),
                    format_duration(age(t, now))
                ),
            };
            (t, reason)
        })
        .collect();
    let truncated = pending.next().is_some();
    CatchUpDecision { fire, missed, truncated }
}

/// How long before `now` the occurrence `t` was due (zero if it is not before `now`).
fn age(t: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    now.signed_duration_since(t).to_std().unwrap_or(Duration::ZERO)
}

fn instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}
