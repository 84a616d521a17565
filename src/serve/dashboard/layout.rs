//! The page shell every dashboard page shares: navigation, the signed-in viewer, the
//! emergency stop's banner and button, and the embedded stylesheet and script.

use super::session::Viewer;
use crate::journal::switches::SwitchState;
use crate::serve::config::Scope;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

pub const CSS: &str = include_str!("assets/dashboard.css");
pub const JS: &str = include_str!("assets/dashboard.js");

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Runs,
    Drills,
    Plans,
    Schedules,
    Audit,
}

/// What a page needs besides its body.
pub struct Frame<'a> {
    pub viewer: &'a Viewer,
    pub title: &'a str,
    pub nav: Nav,
    pub stop: Option<&'a SwitchState>,
    /// A message after an action, shown above the page.
    pub notice: Option<&'a str>,
}

pub fn page(frame: Frame<'_>, body: Markup) -> Markup {
    let v = frame.viewer;
    let link = |nav: Nav, href: &str, label: &str| {
        html! { a href=(href) class=[(frame.nav == nav).then_some("active")] { (label) } }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (frame.title) " · lifeboat" }
                link rel="stylesheet" href="/ui/assets/dashboard.css";
                script src="/ui/assets/dashboard.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/ui/runs" { "lifeboat" }
                    (link(Nav::Runs, "/ui/runs", "Runs"))
                    (link(Nav::Drills, "/ui/drills", "Drills"))
                    (link(Nav::Plans, "/ui/plans", "Plans"))
                    (link(Nav::Schedules, "/ui/schedules", "Schedules"))
                    (link(Nav::Audit, "/ui/audit", "Audit"))
                    span.who {
                        "signed in as " b { (v.caller.name) }
                        " "
                        form method="post" action="/ui/sign-out" {
                            (csrf_field(v))
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                @if let Some(stop) = frame.stop {
                    div.banner.stop id="emergency-banner" {
                        "EMERGENCY STOP engaged by " (stop.changed_by) " at " (time(stop.changed_at))
                        @if let Some(n) = &stop.note { ": " (n) }
                        " — drills are aborted and schedules held. "
                        @if v.caller.may(Scope::Admin) {
                            form.inline method="post" action="/ui/emergency-stop/release" {
                                (csrf_field(v))
                                input type="text" name="note" placeholder="why it is safe again" maxlength="1000";
                                button type="submit" id="release-stop" { "Release" }
                            }
                        }
                    }
                } @else if v.caller.may(Scope::Run) {
                    div.banner.notice {
                        form.inline method="post" action="/ui/emergency-stop" {
                            (csrf_field(v))
                            input type="text" name="note" placeholder="reason" maxlength="1000";
                            button.danger type="submit" id="emergency-stop"
                                title="Abort every running drill, revert its faults, hold every schedule" { "Emergency stop" }
                        }
                        span.muted { "aborts every running drill (reverting its faults) and holds every schedule until released" }
                    }
                }
                @if let Some(n) = frame.notice {
                    div.banner.notice id="notice" { (n) }
                }
                main { (body) }
            }
        }
    }
}

pub fn csrf_field(v: &Viewer) -> Markup {
    html! { input type="hidden" name="csrf" value=(v.csrf); }
}

pub fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

pub fn badge(status: &str) -> Markup {
    html! { span class={"badge " (status)} { (status.replace('_', " ")) } }
}

/// An error page for a browser: what went wrong and the way back.
pub fn error_page(status: StatusCode, message: &str) -> Response {
    let body = html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "Error · lifeboat" } link rel="stylesheet" href="/ui/assets/dashboard.css"; }
            body { main {
                h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
                div.banner.error id="error" { (message) }
                p { a href="/ui/runs" { "Back to the runs" } }
            } }
        }
    };
    (status, body).into_response()
}

/// Inline markup that is already HTML (the drill report's sections).
pub fn raw(html: String) -> PreEscaped<String> {
    PreEscaped(html)
}
