//! HTTP probe: status in the expected set, body matching a regex, a JSON pointer equal
//! to an expected value.

use crate::ValidationError;
use regex::Regex;
use serde_json::Value;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct HttpProbe {
    pub url: String,
    pub method: reqwest::Method,
    /// Accepted statuses; empty means any 2xx.
    pub expect_status: Vec<u16>,
    pub body_regex: Option<Regex>,
    /// `(pointer, expected)`: the response is JSON and the value at the pointer equals.
    pub json: Option<(String, Value)>,
    pub request_timeout: Duration,
    client: reqwest::Client,
}

impl HttpProbe {
    pub fn new(
        url: String,
        method: &str,
        expect_status: Vec<u16>,
        body_regex: Option<&str>,
        json: Option<(String, Value)>,
        request_timeout: Duration,
    ) -> Result<HttpProbe, ValidationError> {
        let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| ValidationError::Invalid(format!("invalid HTTP method `{method}`")))?;
        reqwest::Url::parse(&url).map_err(|e| ValidationError::Invalid(format!("invalid URL `{url}`: {e}")))?;
        let body_regex = body_regex
            .map(|r| Regex::new(r).map_err(|e| ValidationError::Invalid(format!("invalid body regex `{r}`: {e}"))))
            .transpose()?;
        if let Some((pointer, _)) = &json
            && !pointer.is_empty()
            && !pointer.starts_with('/')
        {
            return Err(ValidationError::Invalid(format!(
                "invalid JSON pointer `{pointer}`: it must start with `/`, e.g. /status"
            )));
        }
        let client = client(request_timeout)?;
        Ok(HttpProbe {
            url,
            method,
            expect_status,
            body_regex,
            json,
            request_timeout,
            client,
        })
    }

    pub async fn check(&self) -> Result<String, ValidationError> {
        let response = self
            .client
            .request(self.method.clone(), &self.url)
            .send()
            .await
            .map_err(|e| ValidationError::NotPassing(format!("{} {}: {}", self.method, self.url, without_url(&e))))?;
        let status = response.status().as_u16();
        let status_ok = if self.expect_status.is_empty() {
            (200..300).contains(&status)
        } else {
            self.expect_status.contains(&status)
        };
        let body = response
            .text()
            .await
            .map_err(|e| ValidationError::NotPassing(format!("reading the body of {}: {}", self.url, without_url(&e))))?;
        if !status_ok {
            return Err(ValidationError::NotPassing(format!(
                "{} answered {status}, expected {}",
                self.url,
                if self.expect_status.is_empty() {
                    "2xx".to_owned()
                } else {
                    format!("{:?}", self.expect_status)
                }
            )));
        }
        if let Some(re) = &self.body_regex
            && !re.is_match(&body)
        {
            return Err(ValidationError::NotPassing(format!(
                "the body of {} does not match /{re}/ (starts {:?})",
                self.url,
                body.chars().take(120).collect::<String>()
            )));
        }
        if let Some((pointer, expected)) = &self.json {
            let doc: Value = serde_json::from_str(&body)
                .map_err(|e| ValidationError::NotPassing(format!("the body of {} is not JSON: {e}", self.url)))?;
            let found = doc.pointer(pointer);
            if found != Some(expected) {
                return Err(ValidationError::NotPassing(format!(
                    "{} at {pointer} is {}, expected {expected}",
                    self.url,
                    found.map_or("missing".into(), Value::to_string)
                )));
            }
        }
        Ok(format!("status {status}"))
    }
}

/// An HTTP client whose every request gives up after `timeout`.
pub(crate) fn client(timeout: Duration) -> Result<reqwest::Client, ValidationError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| ValidationError::Invalid(format!("HTTP client: {e}")))
}

/// The error with its causes (reqwest's own message hides why a connection failed), without
/// the URL the message already names.
pub(crate) fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(&format!(" ({url})"), "");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
