//! `/ui/schedules`: next fires in each schedule's time zone, pause/resume with a note,
//! trigger now, blackout windows, and the recent occurrences with their outcomes.

use super::layout::{self, Frame, Nav, badge, csrf_field, time};
use super::page_stop;
use super::session::Viewer;
use crate::serve::api::schedules::items;
use crate::serve::api::{ApiError, AppState};
use crate::serve::config::Scope;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct PageQuery {
    notice: Option<String>,
}

/// A blackout window in the words of the configuration.
fn blackout(b: &crate::serve::schedule::blackout::Blackout) -> Markup {
    let doc = serde_json::to_value(b).unwrap_or_default();
    let text = |k: &str| doc.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    html! {
        li {
            @if let (Some(start), Some(end)) = (text("start"), text("end")) { (start) " → " (end) }
            @else { "every " code { (text("cron").unwrap_or_default()) } " for " (text("duration").unwrap_or_default()) }
            @if let Some(r) = text("reason") { span.muted { " (" (r) ")" } }
        }
    }
}

pub async fn list(State(app): State<AppState>, viewer: Viewer, Query(q): Query<PageQuery>) -> Response {
    let (schedules, stop) = match tokio::try_join!(items(&app, 5), async { page_stop(&app).await.map_err(ApiError::journal) }) {
        Ok(found) => found,
        Err(e) => return e.page(),
    };
    let admin = viewer.caller.may(Scope::Admin);
    let configured = app.schedules.current();
    let body = html! {
        h1 { "Schedules" }
        @if schedules.is_empty() { p.muted { "No schedules in this service's configuration." } }
        div.cards.wide {
            @for s in &schedules {
                @let config = configured.iter().find(|c| c.spec.name == s.name);
                @let tz = config.map(|c| c.timing.tz);
                div.card data-schedule=(s.name) {
                    h3 { (s.name) " " @if s.paused { (badge("paused")) } @else if stop.is_some() { (badge("paused")) span.muted { " by the emergency stop" } } }
                    dl.kv {
                        dt { "plan" } dd { a href={"/ui/drills/" (s.plan)} { (s.plan) } }
                        dt { "cron" } dd { code { (s.cron) } span.muted { " (" (s.cron_normalized) ")" } }
                        dt { "time zone" } dd { (s.timezone) }
                        dt { "next" } dd.next {
                            @match (s.next_at, tz) {
                                (Some(at), Some(tz)) => { (at.with_timezone(&tz).format("%a %Y-%m-%d %H:%M:%S %Z")) span.muted { " · " (time(at)) } }
                                (Some(at), None) => { (time(at)) }
                                _ => { "—" }
                            }
                        }
                        dt { "overlap" } dd { (format!("{:?}", s.overlap).to_lowercase()) }
                        @if s.paused {
                            dt { "paused" } dd { "by " (s.paused_by.as_deref().unwrap_or("?")) @if let Some(at) = s.paused_at { " at " (time(at)) }
                                @if let Some(n) = &s.pause_note { ": " (n) } }
                        }
                        @if let Some(c) = config { @if !c.spec.blackouts.is_empty() {
                            dt { "blackouts" } dd { ul { @for b in &c.spec.blackouts { (blackout(b)) } } }
                        } }
                    }
                    div.actions {
                        @if admin {
                            @if s.paused {
                                form.inline method="post" action={"/ui/schedules/" (s.name) "/resume"} {
                                    (csrf_field(&viewer)) input type="text" name="note" placeholder="note" maxlength="1000";
                                    button.primary type="submit" id={"resume-" (s.name)} { "Resume" }
                                }
                            } @else {
                                form.inline method="post" action={"/ui/schedules/" (s.name) "/pause"} {
                                    (csrf_field(&viewer)) input type="text" name="note" placeholder="why" maxlength="1000";
                                    button type="submit" id={"pause-" (s.name)} { "Pause" }
                                }
                            }
                        }
                        @if viewer.caller.may(Scope::Run) {
                            form.inline method="post" action={"/ui/schedules/" (s.name) "/trigger"} {
                                (csrf_field(&viewer)) button type="submit" id={"trigger-" (s.name)} { "Run now" }
                            }
                        }
                    }
                    @if !s.recent.is_empty() {
                        table { tbody { @for o in &s.recent {
                            tr {
                                td { (o.scheduled_at.format("%Y-%m-%d %H:%M:%S")) }
                                td { (badge(&format!("{:?}", o.outcome).to_lowercase())) }
                                td { @if let Some(r) = &o.run_id { a href={"/ui/runs/" (r)} { code { (r) } } } }
                                td.muted { (o.reason.as_deref().unwrap_or("")) }
                            }
                        } } }
                    }
                }
            }
        }
    };
    let notice = q.notice.as_deref().and_then(super::forms::notice_text);
    layout::page(
        Frame {
            viewer: &viewer,
            title: "Schedules",
            nav: Nav::Schedules,
            stop: stop.as_ref(),
            notice,
        },
        body,
    )
    .into_response()
}
