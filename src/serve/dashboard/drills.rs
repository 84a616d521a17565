//! `/ui/drills`: per plan, RTO, RPO and rows lost over time against the objective (p50,
//! p95, max, pass rate), the last passing drill and its age, and each drill's report.

use super::layout::{self, Frame, Nav, badge, time};
use super::page_stop;
use super::session::Viewer;
use crate::drill::measure::format_ms;
use crate::serve::api::control::load_trend;
use crate::serve::api::{ApiError, AppState};
use crate::serve::trends::{PlanTrend, TrendPoint};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

/// Drills per plan the overview summarises; a plan's own page shows more.
const OVERVIEW_RUNS: i64 = 30;
const PLAN_RUNS: i64 = 200;

fn ms(v: Option<i64>) -> String {
    v.map(format_ms).unwrap_or_else(|| "—".into())
}

fn age(seconds: Option<i64>) -> String {
    match seconds {
        None => "never".into(),
        Some(s) if s < 3600 => format!("{} min ago", s / 60),
        Some(s) if s < 172_800 => format!("{} h ago", s / 3600),
        Some(s) => format!("{} days ago", s / 86_400),
    }
}

fn summary(t: &PlanTrend) -> Markup {
    html! {
        dl.kv {
            dt { "drills" } dd { (t.points.len()) " · pass rate " b { (t.pass_rate.map(|r| format!("{:.0} %", r * 100.0)).unwrap_or_else(|| "—".into())) } }
            dt { "RTO" } dd { "p50 " (ms(t.summary.rto_p50_ms)) " · p95 " (ms(t.summary.rto_p95_ms)) " · max " (ms(t.summary.rto_max_ms))
                @if let Some(o) = t.rto_objective_ms { span.muted { " (objective " (format_ms(o)) ")" } } }
            dt { "RPO" } dd { "p50 " (ms(t.summary.rpo_p50_ms)) " · p95 " (ms(t.summary.rpo_p95_ms)) " · max " (ms(t.summary.rpo_max_ms))
                @if let Some(o) = t.rpo_objective_ms { span.muted { " (objective " (format_ms(o)) ")" } } }
            dt { "rows lost" } dd { "max " (t.rows_lost_max.map(|r| r.to_string()).unwrap_or_else(|| "—".into()))
                @if let Some(o) = t.rows_lost_objective { span.muted { " (objective " (o) ")" } } }
            dt { "last passing drill" } dd {
                @match &t.last_pass {
                    Some(p) => { a href={"/ui/runs/" (p.run_id)} { (age(t.last_pass_age_s)) } }
                    None => { span.fail { "never" } }
                }
            }
        }
    }
}

pub async fn list(State(app): State<AppState>, viewer: Viewer) -> Response {
    let stop = match page_stop(&app).await {
        Ok(s) => s,
        Err(e) => return ApiError::journal(e).page(),
    };
    let mut trends = Vec::new();
    for name in app.catalog.current().plans.keys() {
        match load_trend(&app, name, OVERVIEW_RUNS).await {
            Ok(t) => trends.push(t),
            Err(e) => return e.page(),
        }
    }
    let body = html! {
        h1 { "Drills" }
        p.muted { "The last " (OVERVIEW_RUNS) " finished runs of each plan against its objectives." }
        div.cards {
            @for t in &trends {
                div.card data-plan=(t.plan) {
                    h3 { a href={"/ui/drills/" (t.plan)} { (t.plan) } }
                    (summary(t))
                    (chart("RTO", &t.points, |p| p.rto_ms, t.rto_objective_ms))
                }
            }
        }
    };
    layout::page(
        Frame {
            viewer: &viewer,
            title: "Drills",
            nav: Nav::Drills,
            stop: stop.as_ref(),
            notice: None,
        },
        body,
    )
    .into_response()
}

pub async fn show(State(app): State<AppState>, viewer: Viewer, Path(plan): Path<String>) -> Response {
    let (trend, stop) = match tokio::try_join!(load_trend(&app, &plan, PLAN_RUNS), async {
        page_stop(&app).await.map_err(ApiError::journal)
    }) {
        Ok(found) => found,
        Err(e) => return e.page(),
    };
    let t = &trend;
    let body = html! {
        h1 { "Drills of " code { (plan) } }
        p { a href={"/ui/plans/" (plan)} { "the plan" } " · " a href={"/ui/runs?plan=" (plan)} { "all its runs" }  span.muted { " · API: " code { "GET /api/v1/plans/" (plan) "/trend" } } }
        (summary(t))
        h2 { "RTO" } (chart("RTO", &t.points, |p| p.rto_ms, t.rto_objective_ms))
        h2 { "RPO" } (chart("RPO", &t.points, |p| p.rpo_ms, t.rpo_objective_ms))
        h2 { "Rows lost" } (chart("rows lost", &t.points, |p| p.rows_lost.map(|r| r as i64), t.rows_lost_objective.map(|r| r as i64)))
        h2 { "Drills" }
        table id="drills" {
            thead { tr { th { "run" } th { "finished" } th { "status" } th { "RTO" } th { "RPO" } th { "rows lost" } th { "verdict" } th { "report" } } }
            tbody {
                @for p in t.points.iter().rev() {
                    tr {
                        td { a href={"/ui/runs/" (p.run_id)} { code { (p.run_id) } } }
                        td { @if let Some(f) = p.finished_at { (time(f)) } }
                        td { (badge(&p.status)) }
                        td { (ms(p.rto_ms)) } td { (ms(p.rpo_ms)) }
                        td { (p.rows_lost.map(|r| r.to_string()).unwrap_or_default()) }
                        td { (badge(if p.passed { "passed" } else { "failed" })) }
                        td { a href={"/ui/runs/" (p.run_id) "/report"} { "HTML" } }
                    }
                }
            }
        }
    };
    layout::page(
        Frame {
            viewer: &viewer,
            title: &format!("Drills of {plan}"),
            nav: Nav::Drills,
            stop: stop.as_ref(),
            notice: None,
        },
        body,
    )
    .into_response()
}

/// A small line chart of one measure per drill, oldest left, with the objective dashed.
fn chart(label: &str, points: &[TrendPoint], value: fn(&TrendPoint) -> Option<i64>, objective: Option<i64>) -> Markup {
    let measured: Vec<(usize, i64, &TrendPoint)> = points.iter().enumerate().filter_map(|(i, p)| Some((i, value(p)?, p))).collect();
    if measured.is_empty() {
        return html! { p.muted { "No " (label) " measured yet." } };
    }
    let (w, h, pad) = (600.0_f64, 160.0_f64, 28.0_f64);
    let top = measured.iter().map(|m| m.1).chain(objective).max().unwrap_or(1).max(1) as f64 * 1.1;
    let n = points.len().max(2) as f64 - 1.0;
    let x = |i: usize| pad + (w - 2.0 * pad) * i as f64 / n;
    let y = |v: i64| h - pad - (h - 2.0 * pad) * v as f64 / top;
    let line: Vec<String> = measured.iter().map(|(i, v, _)| format!("{:.1},{:.1}", x(*i), y(*v))).collect();
    let units = |v: i64| if label == "rows lost" { v.to_string() } else { format_ms(v) };
    html! {
        svg.chart viewBox={"0 0 " (w) " " (h)} role="img" aria-label={(label) " per drill"} {
            line x1=(pad) y1=(h - pad) x2=(w - pad) y2=(h - pad) stroke="#d1d9e0" {}
            text x="2" y=(pad - 8.0) { (units(top as i64)) }
            @if let Some(o) = objective {
                line.objective x1=(pad) y1=(y(o)) x2=(w - pad) y2=(y(o)) {}
                text x=(w - pad - 120.0) y=(y(o) - 4.0) { "objective " (units(o)) }
            }
            polyline.line points=(line.join(" ")) {}
            @for (i, v, p) in &measured {
                circle class={"dot " (if p.passed { "pass" } else { "fail" })} cx=(format!("{:.1}", x(*i))) cy=(format!("{:.1}", y(*v))) r="4" {
                    title { (p.run_id) ": " (units(*v)) }
                }
            }
        }
    }
}
