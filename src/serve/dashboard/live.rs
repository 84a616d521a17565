//! `/ui/runs/{id}/events`: a run page's live updates as server-sent events.
//!
//! Each event is a snapshot of the run's steps (not a delta), with the journal sequence
//! number as its id: a browser that reconnects sends `Last-Event-ID` and gets the next
//! snapshot only if the run moved since, and a missed event can never leave a stale step.
//! The stream polls the journal's newest sequence number (one indexed row) and replays
//! the run only when it moved, so an idle page costs one small query per poll.

use super::dag::status_class;
use super::session::Viewer;
use crate::engine::runner;
use crate::engine::state::{RunState, UnitStatus};
use crate::journal::RunStatus;
use crate::plan::compiled::Role;
use crate::serve::api::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::convert::Infallible;
use std::time::Duration;

/// How often a stream looks for new events: the bulk of the delay from a journal event
/// to the browser.
pub const POLL: Duration = Duration::from_millis(50);
/// A stream ends after this long; the browser reconnects with `Last-Event-ID`.
const MAX_STREAM: Duration = Duration::from_secs(3600);

/// One step as a live view shows it.
#[derive(Debug, Clone, Serialize)]
pub struct StepSnapshot {
    pub id: String,
    pub status: String,
    /// The DAG node's CSS class for the status.
    pub class: String,
    pub attempts: u32,
    #[serde(skip)]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub duration_ms: Option<i64>,
    #[serde(skip)]
    pub detail: Option<String>,
    /// An `approval` step waiting for a decision: the page reloads to offer its buttons.
    pub awaiting_approval: bool,
}

impl StepSnapshot {
    pub fn pending(id: &str) -> StepSnapshot {
        StepSnapshot {
            id: id.to_owned(),
            status: "pending".into(),
            class: status_class("pending"),
            attempts: 0,
            started_at: None,
            duration_ms: None,
            detail: None,
            awaiting_approval: false,
        }
    }
}

/// The steps of a replayed run: main and finally steps, and compensations once attempted.
pub fn steps_of(state: &RunState) -> Vec<StepSnapshot> {
    state
        .plan
        .units
        .iter()
        .zip(&state.units)
        .filter(|(u, s)| !matches!(u.role, Role::Compensation { .. }) || s.attempts > 0)
        .map(|(u, s)| {
            let detail = match &s.status {
                UnitStatus::Succeeded { outputs, .. } if !outputs.is_empty() => serde_json::to_string_pretty(outputs).ok(),
                UnitStatus::Failed { error, .. } => Some(error.clone()),
                UnitStatus::Backoff { error, until, .. } => Some(format!("{error} (next attempt at {})", until.format("%H:%M:%S"))),
                UnitStatus::Skipped { reason } => Some(reason.clone()),
                _ => None,
            };
            let label = s.status.label();
            StepSnapshot {
                id: u.id.clone(),
                status: label.to_owned(),
                class: status_class(label),
                attempts: s.attempts,
                started_at: s.started_at,
                duration_ms: s.started_at.zip(s.finished_at).map(|(a, b)| (b - a).num_milliseconds()),
                detail,
                awaiting_approval: u.kind == "approval" && matches!(s.status, UnitStatus::Running { .. }),
            }
        })
        .collect()
}

#[derive(Serialize)]
struct Snapshot {
    seq: i64,
    /// When the newest event was journaled (ms since the epoch): the browser measures its delay from it.
    at_ms: i64,
    status: String,
    started: bool,
    finished: bool,
    steps: Vec<StepSnapshot>,
}

struct Cursor {
    app: AppState,
    id: String,
    /// The newest sequence number sent (or the browser's `Last-Event-ID`).
    sent_seq: Option<i64>,
    sent_request_state: Option<String>,
    checked_finished: bool,
    done: bool,
    deadline: tokio::time::Instant,
}

pub async fn events(State(app): State<AppState>, _viewer: Viewer, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let resumed = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|&seq| seq > 0);
    // 204 tells EventSource to stop reconnecting: nothing more will come.
    match nothing_more(&app, &id, resumed).await {
        Ok(true) => return StatusCode::NO_CONTENT.into_response(),
        Ok(false) => {}
        Err(e) => return crate::serve::api::ApiError::journal(e).into_response(),
    }
    let cursor = Cursor {
        app,
        id,
        sent_seq: resumed,
        sent_request_state: None,
        checked_finished: false,
        done: false,
        deadline: tokio::time::Instant::now() + MAX_STREAM,
    };
    let stream = futures::stream::unfold(cursor, |mut c| async move {
        loop {
            if c.done || c.app.stop.is_cancelled() || tokio::time::Instant::now() >= c.deadline {
                return None;
            }
            match next_event(&mut c).await {
                Some(event) => return Some((Ok::<_, Infallible>(event), c)),
                None => {
                    tokio::select! {
                        _ = c.app.stop.cancelled() => return None,
                        _ = tokio::time::sleep(POLL) => {}
                    }
                }
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

/// No such run or request, or a finished run whose last event the browser has.
async fn nothing_more(app: &AppState, id: &str, resumed: Option<i64>) -> Result<bool, crate::journal::JournalError> {
    match app.journal.last_event(id).await? {
        Some((seq, _)) if resumed == Some(seq) => Ok(app.journal.run(id).await.is_ok_and(|r| r.status != RunStatus::Running)),
        Some(_) => Ok(false),
        None => Ok(app.journal.request(id).await?.is_none()),
    }
}

/// The next snapshot to send, if the run (or its request) moved.
async fn next_event(c: &mut Cursor) -> Option<Event> {
    let journal = &c.app.journal;
    match journal.last_event(&c.id).await {
        Ok(Some((seq, at))) => {
            if c.sent_seq == Some(seq) {
                // A browser resuming at a finished run's last event has nothing more to get.
                if !c.checked_finished {
                    c.checked_finished = true;
                    c.done = journal.run(&c.id).await.is_ok_and(|r| r.status != RunStatus::Running);
                }
                return None;
            }
            let (state, _, row) = match runner::load(journal, &c.id).await {
                Ok(loaded) => loaded,
                Err(e) => {
                    tracing::warn!(run = %c.id, error = %e, "live view cannot replay the run");
                    return None;
                }
            };
            c.sent_seq = Some(seq);
            let finished = row.status != RunStatus::Running;
            c.done = finished;
            let snapshot = Snapshot {
                seq,
                at_ms: at.timestamp_millis(),
                status: row.display_status().to_owned(),
                started: true,
                finished,
                steps: steps_of(&state),
            };
            Some(
                Event::default()
                    .event("state")
                    .id(seq.to_string())
                    .data(serde_json::to_string(&snapshot).ok()?),
            )
        }
        Ok(None) => {
            let request = match journal.request(&c.id).await {
                Ok(Some(r)) => r,
                Ok(None) => {
                    c.done = true;
                    return None;
                }
                Err(e) => {
                    tracing::warn!(run = %c.id, error = %e, "live view cannot read the journal; retrying");
                    return None;
                }
            };
            let state = request.state.as_str().to_owned();
            if c.sent_request_state.as_deref() == Some(state.as_str()) {
                return None;
            }
            c.sent_request_state = Some(state.clone());
            let finished = matches!(state.as_str(), "rejected" | "cancelled" | "failed");
            c.done = finished;
            let snapshot = Snapshot {
                seq: 0,
                at_ms: 0,
                status: state,
                started: false,
                finished,
                steps: Vec::new(),
            };
            Some(Event::default().event("state").id("0").data(serde_json::to_string(&snapshot).ok()?))
        }
        Err(e) => {
            tracing::warn!(run = %c.id, error = %e, "live view cannot read the journal; retrying");
            None
        }
    }
}
