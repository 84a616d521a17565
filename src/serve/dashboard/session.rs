//! Signing in to the dashboard with an API token, and the CSRF token of every form.
//!
//! The session cookie holds the token's name, an expiry and an HMAC of both keyed by the
//! token's own secret: no secret is stored in the browser or in memory on the server,
//! every replica can check a cookie another issued, and removing or rotating a token ends
//! its sessions. A form's CSRF token is another HMAC of the session under the same key,
//! checked on every POST together with the `Origin` header; the cookie is `HttpOnly` and
//! `SameSite=Strict`.

use crate::serve::api::{AppState, Caller, constant_time_eq, find_token};
use crate::serve::config::{Scope, Token};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const COOKIE: &str = "lifeboat_session";
/// How long a sign-in lasts.
pub const LIFETIME_S: i64 = 12 * 3600;

/// A signed-in person: their token's identity and scopes, and the CSRF token their forms carry.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub caller: Caller,
    pub csrf: String,
}

fn mac(token: &Token, purpose: &str, name: &str, expires: i64) -> String {
    // A key of any length is accepted by HMAC; the error case cannot happen.
    let mut mac = Hmac::<Sha256>::new_from_slice(token.secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("lifeboat-dashboard|{purpose}|{name}|{expires}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The cookie value for a fresh sign-in with `token`.
pub fn issue(token: &Token) -> (String, i64) {
    let expires = Utc::now().timestamp() + LIFETIME_S;
    (
        format!("{}.{expires}.{}", token.name, mac(token, "session", &token.name, expires)),
        expires,
    )
}

/// The `Set-Cookie` header value for a session (empty value and max-age 0 to sign out).
pub fn set_cookie(value: &str, max_age_s: i64, secure: bool) -> String {
    cookie::Cookie::build((COOKIE, value.to_owned()))
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(cookie::SameSite::Strict)
        .max_age(cookie::time::Duration::seconds(max_age_s))
        .build()
        .to_string()
}

/// Whether the browser reached the service over HTTPS (through a terminating proxy).
pub fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// The viewer a request's session cookie proves, if any.
pub fn viewer(tokens: &[Token], headers: &HeaderMap) -> Option<Viewer> {
    let value = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE)?
        .value()
        .to_owned();
    // From the right: a token's name may itself contain dots.
    let mut parts = value.rsplitn(3, '.');
    let (signature, expires, name) = (parts.next()?, parts.next()?.parse::<i64>().ok()?, parts.next()?);
    if expires < Utc::now().timestamp() {
        return None;
    }
    let token = tokens.iter().find(|t| t.name == name)?;
    if !constant_time_eq(mac(token, "session", name, expires).as_bytes(), signature.as_bytes()) {
        return None;
    }
    Some(Viewer {
        caller: Caller::of(token),
        csrf: mac(token, "csrf", name, expires),
    })
}

/// Checks a sign-in: the token presented in the form.
pub fn sign_in<'a>(app: &'a AppState, presented: &str) -> Option<&'a Token> {
    find_token(&app.tokens, presented.trim())
}

impl Viewer {
    /// Refuses a form post whose CSRF token is not this session's, or that comes from
    /// another origin.
    pub fn check_form(&self, headers: &HeaderMap, csrf: &str) -> Result<(), StaleForm> {
        // Behind a proxy that rewrites Host, the browser's host is in X-Forwarded-Host.
        let host = headers.get("x-forwarded-host").or_else(|| headers.get(header::HOST));
        let same_origin = match (headers.get(header::ORIGIN), host) {
            (Some(origin), Some(host)) => origin
                .to_str()
                .ok()
                .and_then(|o| o.split_once("://"))
                .is_some_and(|(_, rest)| host.to_str().is_ok_and(|h| rest == h)),
            // Browsers send Origin on POST; its absence is an older client, and the token decides.
            _ => true,
        };
        if same_origin && constant_time_eq(self.csrf.as_bytes(), csrf.as_bytes()) {
            Ok(())
        } else {
            tracing::warn!(viewer = %self.caller.name, "dashboard form refused: CSRF token or origin mismatch");
            Err(StaleForm)
        }
    }
}

/// A form refused for its CSRF token or origin.
#[derive(Debug)]
pub struct StaleForm;

impl IntoResponse for StaleForm {
    fn into_response(self) -> Response {
        (
            StatusCode::FORBIDDEN,
            "this form is stale or came from another site; reload the page and try again",
        )
            .into_response()
    }
}

/// Pages need a signed-in viewer; without one the browser is sent to sign in and back.
impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Self::Rejection> {
        match viewer(&app.tokens, &parts.headers) {
            Some(v) if v.caller.may(Scope::Read) => Ok(v),
            Some(v) => Err((
                StatusCode::FORBIDDEN,
                format!("token `{}` lacks the `read` scope the dashboard needs", v.caller.name),
            )
                .into_response()),
            None if parts.method == axum::http::Method::GET => {
                let back = parts.uri.path_and_query().map_or("/ui/runs", |p| p.as_str());
                let next: String = url::form_urlencoded::byte_serialize(back.as_bytes()).collect();
                Err(Redirect::to(&format!("/ui/sign-in?next={next}")).into_response())
            }
            None => Err((StatusCode::UNAUTHORIZED, "sign in first: /ui/sign-in").into_response()),
        }
    }
}

/// Where to go after signing in: only a path of this service, never another site.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/ui/") && !n.starts_with("//") && !n.contains("://") => n.to_owned(),
        _ => "/ui/runs".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn tokens() -> Vec<Token> {
        vec![
            Token {
                name: "alice".into(),
                secret: "alice-secret-0123456789".into(),
                scopes: vec![Scope::Read, Scope::Approve],
            },
            Token {
                name: "ops.bot".into(),
                secret: "bot-secret-0123456789".into(),
                scopes: vec![Scope::Read],
            },
        ]
    }

    fn with_cookie(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("other=1; {COOKIE}={value}")).unwrap(),
        );
        h
    }

    #[test]
    fn a_session_proves_its_token_and_scopes_without_holding_the_secret() {
        let tokens = tokens();
        for t in &tokens {
            let (value, _) = issue(t);
            assert!(!value.contains(&t.secret));
            let v = viewer(&tokens, &with_cookie(&value)).expect("a fresh session is valid");
            assert_eq!(v.caller.name, t.name);
            assert_eq!(v.caller.may(Scope::Approve), t.scopes.contains(&Scope::Approve));
            assert_eq!(v.csrf.len(), 64);
        }
    }

    #[test]
    fn forged_renamed_expired_or_revoked_sessions_are_refused() {
        let tokens = tokens();
        let (value, expires) = issue(&tokens[1]);
        let signature = value.rsplit('.').next().unwrap();
        // Claiming another name with the same signature.
        assert!(viewer(&tokens, &with_cookie(&format!("alice.{expires}.{signature}"))).is_none());
        // Extending the expiry.
        assert!(viewer(&tokens, &with_cookie(&format!("ops.bot.{}.{signature}", expires + 3600))).is_none());
        // Signed with a guessed key.
        let guessed = Token {
            secret: "guess".into(),
            ..tokens[1].clone()
        };
        assert!(viewer(&tokens, &with_cookie(&issue(&guessed).0)).is_none());
        // Expired, even when correctly signed.
        let past = Utc::now().timestamp() - 1;
        let old = format!("ops.bot.{past}.{}", mac(&tokens[1], "session", "ops.bot", past));
        assert!(viewer(&tokens, &with_cookie(&old)).is_none());
        // The token was removed from the configuration.
        assert!(viewer(&tokens[..1], &with_cookie(&value)).is_none());
        assert!(viewer(&tokens, &with_cookie("garbage")).is_none());
        assert!(viewer(&tokens, &HeaderMap::new()).is_none());
    }

    #[test]
    fn forms_need_the_sessions_csrf_token_and_the_same_origin() {
        let tokens = tokens();
        let v = viewer(&tokens, &with_cookie(&issue(&tokens[0]).0)).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(v.check_form(&headers, &v.csrf).is_ok());
        assert!(v.check_form(&headers, "0000").is_err());
        headers.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:8080"));
        assert!(v.check_form(&headers, &v.csrf).is_ok());
        headers.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(v.check_form(&headers, &v.csrf).is_err());
    }

    #[test]
    fn after_sign_in_only_this_services_pages_are_followed() {
        assert_eq!(safe_next(Some("/ui/runs/abc?x=1")), "/ui/runs/abc?x=1");
        for evil in [
            "https://evil.example/ui/",
            "//evil.example/ui/",
            "/api/v1/runs",
            "/ui/x?u=https://e",
            "",
        ] {
            assert_eq!(safe_next(Some(evil)), "/ui/runs", "{evil}");
        }
        assert_eq!(safe_next(None), "/ui/runs");
    }
}
