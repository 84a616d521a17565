//! `/ui/plans`: the plans this service may run, and a start form generated from each
//! plan's params.

use super::layout::{self, Frame, Nav, csrf_field};
use super::page_stop;
use super::session::Viewer;
use crate::plan::model::ParamType;
use crate::serve::api::{ApiError, AppState};
use crate::serve::config::Scope;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use maud::html;

pub async fn list(State(app): State<AppState>, viewer: Viewer) -> Response {
    let stop = match page_stop(&app).await {
        Ok(s) => s,
        Err(e) => return ApiError::journal(e).page(),
    };
    let body = html! {
        h1 { "Plans" }
        table id="plans" {
            thead { tr { th { "plan" } th { "description" } th { "steps" } th { "objectives" } th {} } }
            tbody {
                @for (name, entry) in &app.catalog.current().plans {
                    @let p = &entry.plan;
                    tr {
                        td { a href={"/ui/plans/" (name)} { code { (name) } } }
                        td { (p.description.as_deref().unwrap_or("")) }
                        td { (p.units.len()) }
                        td { (objectives(p)) }
                        td {
                            a href={"/ui/drills/" (name)} { "trend" }
                            @if viewer.caller.may(Scope::Run) { " · " a href={"/ui/plans/" (name)} { "start…" } }
                        }
                    }
                }
            }
        }
    };
    layout::page(
        Frame {
            viewer: &viewer,
            title: "Plans",
            nav: Nav::Plans,
            stop: stop.as_ref(),
            notice: None,
        },
        body,
    )
    .into_response()
}

pub fn objectives(p: &crate::plan::compiled::CompiledPlan) -> String {
    let mut parts = Vec::new();
    if let Some(rto) = p.rto {
        parts.push(format!("RTO ≤ {}", crate::drill::measure::format_ms(rto.as_millis() as i64)));
    }
    if let Some(rpo) = p.rpo {
        parts.push(format!("RPO ≤ {}", crate::drill::measure::format_ms(rpo.as_millis() as i64)));
    }
    if let Some(rows) = p.max_rows_lost {
        parts.push(format!("rows lost ≤ {rows}"));
    }
    parts.join(", ")
}

/// The plan, its DAG, and (for the `run` scope) a form with one field per param.
pub async fn start_form(State(app): State<AppState>, viewer: Viewer, Path(name): Path<String>) -> Response {
    let catalog = app.catalog.current();
    let entry = match catalog.get(&name) {
        Ok(e) => e,
        Err(e) => return ApiError::not_found(e).page(),
    };
    let stop = match page_stop(&app).await {
        Ok(s) => s,
        Err(e) => return ApiError::journal(e).page(),
    };
    let plan = &entry.plan;
    let dag = super::runs::draw_pending(plan);
    let body = html! {
        h1 { "Plan " code { (name) } }
        @if let Some(d) = &plan.description { p { (d) } }
        p.muted { (objectives(plan)) }
        div.dag-wrap { (layout::raw(dag)) }
        @if viewer.caller.may(Scope::Run) {
            h2 { "Start a run" }
            form id="start" method="post" action={"/ui/plans/" (name)} {
                (csrf_field(&viewer))
                table { tbody {
                    @for (param, decl) in &plan.params {
                        tr {
                            td { label for={"param-" (param)} { code { (param) } @if decl.required { " *" } } }
                            td {
                                @let default = decl.default.as_ref().map(crate::plan::template::value_as_text);
                                @match decl.kind {
                                    ParamType::Boolean => {
                                        select id={"param-" (param)} name={"param." (param)} {
                                            option value="" { "default" @if let Some(d) = &default { " (" (d) ")" } }
                                            option value="true" { "true" }
                                            option value="false" { "false" }
                                        }
                                    }
                                    ParamType::Integer | ParamType::Number => {
                                        input type="number" step="any" id={"param-" (param)} name={"param." (param)}
                                            placeholder=[default.as_deref()] required[decl.required];
                                    }
                                    _ => {
                                        input type="text" id={"param-" (param)} name={"param." (param)}
                                            placeholder=[default.as_deref()] required[decl.required];
                                    }
                                }
                            }
                            td.muted { (decl.description.as_deref().unwrap_or("")) " " span { (format!("{:?}", decl.kind).to_lowercase()) } }
                        }
                    }
                } }
                label { input type="checkbox" name="require_approval" value="true"; " hold for approval" }
                " "
                button.primary.big type="submit" id="start-run" { "Start run" }
            }
        } @else {
            p.muted { "Your token lacks the run scope: you can read this plan but not start it." }
        }
    };
    layout::page(
        Frame {
            viewer: &viewer,
            title: &format!("Plan {name}"),
            nav: Nav::Plans,
            stop: stop.as_ref(),
            notice: None,
        },
        body,
    )
    .into_response()
}
