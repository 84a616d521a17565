//! `/ui/sign-in` and `/ui/sign-out`.

use super::session::{self, Viewer};
use crate::serve::api::AppState;
use crate::serve::config::Scope;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct Next {
    next: Option<String>,
}

fn sign_in_page(next: &str, error: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "Sign in · lifeboat" }
                link rel="stylesheet" href="/ui/assets/dashboard.css";
            }
            body {
                main.signin {
                    h1 { "lifeboat" }
                    p.muted { "Sign in with one of the service's API tokens. What you may do is what the token's scopes allow." }
                    @if let Some(e) = error { div.banner.error id="error" { (e) } }
                    form method="post" action="/ui/sign-in" {
                        input type="hidden" name="next" value=(next);
                        label for="token" { "API token" }
                        input type="password" id="token" name="token" autocomplete="current-password" required autofocus;
                        button.primary type="submit" id="sign-in" { "Sign in" }
                    }
                }
            }
        }
    }
}

pub async fn form(Query(q): Query<Next>) -> Markup {
    sign_in_page(&session::safe_next(q.next.as_deref()), None)
}

#[derive(Deserialize)]
pub struct SignIn {
    token: String,
    next: Option<String>,
}

pub async fn submit(State(app): State<AppState>, headers: HeaderMap, Form(form): Form<SignIn>) -> Response {
    let next = session::safe_next(form.next.as_deref());
    let Some(token) = session::sign_in(&app, &form.token) else {
        tracing::warn!("dashboard sign-in with an unknown token refused");
        return (
            StatusCode::UNAUTHORIZED,
            sign_in_page(&next, Some("That is not one of the service's tokens.")),
        )
            .into_response();
    };
    if !token.scopes.contains(&Scope::Read) {
        return (
            StatusCode::FORBIDDEN,
            sign_in_page(&next, Some("This token lacks the read scope the dashboard needs.")),
        )
            .into_response();
    }
    let (value, _) = session::issue(token);
    tracing::info!(viewer = %token.name, "signed in to the dashboard");
    (
        [(
            header::SET_COOKIE,
            session::set_cookie(&value, session::LIFETIME_S, session::over_https(&headers)),
        )],
        Redirect::to(&next),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct Csrf {
    csrf: String,
}

pub async fn sign_out(viewer: Viewer, headers: HeaderMap, Form(form): Form<Csrf>) -> Response {
    if let Err(refused) = viewer.check_form(&headers, &form.csrf) {
        return refused.into_response();
    }
    (
        [(header::SET_COOKIE, session::set_cookie("", 0, session::over_https(&headers)))],
        Redirect::to("/ui/sign-in"),
    )
        .into_response()
}
