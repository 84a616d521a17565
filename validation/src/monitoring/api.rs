//! The HTTP JSON plumbing the monitoring clients share: one base URL (with any path prefix a
//! proxy adds), optional credentials, and errors that say whether trying again can help.

use crate::ValidationError;
use crate::probe::http::without_url;
use serde_json::Value;
use std::time::Duration;

/// Credentials for a monitoring API. Never logged and never part of evidence.
#[derive(Clone)]
pub enum Auth {
    Bearer(String),
    Basic { username: String, password: Option<String> },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Bearer(_) => f.write_str("Bearer(***)"),
            Auth::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
        }
    }
}

/// A JSON API at `base`; `service` names it in messages ("Prometheus", "Alertmanager").
#[derive(Debug, Clone)]
pub struct Api {
    service: &'static str,
    base: String,
    auth: Option<Auth>,
    client: reqwest::Client,
}

impl Api {
    pub fn new(service: &'static str, base: &str, auth: Option<Auth>, timeout: Duration) -> Result<Api, ValidationError> {
        let parsed = reqwest::Url::parse(base).map_err(|e| ValidationError::Invalid(format!("invalid {service} URL `{base}`: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ValidationError::Invalid(format!(
                "invalid {service} URL `{base}`: use http:// or https://"
            )));
        }
        let client = crate::probe::http::client(timeout)?;
        Ok(Api {
            service,
            base: base.trim_end_matches('/').to_owned(),
            auth,
            client,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.client.request(method, format!("{}{path}", self.base));
        match &self.auth {
            Some(Auth::Bearer(token)) => request.bearer_auth(token),
            Some(Auth::Basic { username, password }) => request.basic_auth(username, password.as_ref()),
            None => request,
        }
    }

    /// Sends `request` and reads a JSON answer. 5xx and transport failures are retryable;
    /// other refusals are not, and carry the server's own message.
    pub async fn json(&self, request: reqwest::RequestBuilder, what: &str) -> Result<Value, ValidationError> {
        let body = self.text(request, what).await?.unwrap_or_default();
        serde_json::from_str(&body).map_err(|_| {
            ValidationError::Invalid(format!(
                "{} at {} answered {what} with something that is not JSON (starts {:?}); is the URL the API's root?",
                self.service,
                self.base,
                body.chars().take(80).collect::<String>()
            ))
        })
    }

    /// [`Api::json`], with `None` for a 404 (the object does not exist).
    pub async fn json_if_found(&self, request: reqwest::RequestBuilder, what: &str) -> Result<Option<Value>, ValidationError> {
        match self.send(request, what).await? {
            Answer::Missing => Ok(None),
            Answer::Body(body) => serde_json::from_str(&body).map(Some).map_err(|_| {
                ValidationError::Invalid(format!(
                    "{} at {} answered {what} with something that is not JSON",
                    self.service, self.base
                ))
            }),
        }
    }

    /// Sends `request`; the body of a success (`None` for a 404 is an error here).
    pub async fn text(&self, request: reqwest::RequestBuilder, what: &str) -> Result<Option<String>, ValidationError> {
        match self.send(request, what).await? {
            Answer::Body(body) => Ok(Some(body)),
            Answer::Missing => Err(ValidationError::Invalid(format!(
                "{} at {} refused {what}: 404 Not Found (is the URL the API's root?)",
                self.service, self.base
            ))),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder, what: &str) -> Result<Answer, ValidationError> {
        let response = request.send().await.map_err(|e| {
            ValidationError::Unreachable(format!(
                "{} at {} is unreachable ({what}): {}",
                self.service,
                self.base,
                without_url(&e)
            ))
        })?;
        let status = response.status();
        let body = response.text().await.map_err(|e| {
            ValidationError::Unreachable(format!(
                "{} at {}: reading the answer to {what}: {}",
                self.service,
                self.base,
                without_url(&e)
            ))
        })?;
        if status.is_success() {
            return Ok(Answer::Body(body));
        }
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(Answer::Missing);
        }
        let parsed: Option<Value> = serde_json::from_str(&body).ok();
        let message = parsed
            .as_ref()
            .and_then(|v| v.get("error").and_then(Value::as_str).or(v.as_str()).map(str::to_owned))
            .unwrap_or_else(|| body.trim().chars().take(300).collect());
        let text = format!("{} at {} refused {what}: {status}: {message}", self.service, self.base);
        Err(match status.as_u16() {
            401 | 403 => ValidationError::Invalid(format!("{text} (check the credentials in `auth`)")),
            429 | 500.. => ValidationError::Unreachable(text),
            _ => ValidationError::Invalid(text),
        })
    }
}

enum Answer {
    Body(String),
    Missing,
}
