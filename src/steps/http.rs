//! `http`: send a request and check the answer. Outputs: `status`, `body`, `json`.

use super::{Outputs, StepContext, StepError, Text};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::OnceLock;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// GET, POST, PUT, PATCH, DELETE or HEAD (default GET).
    #[serde(default)]
    pub method: Option<String>,
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, Text>,
    /// A text body.
    #[serde(default)]
    pub body: Option<String>,
    /// A JSON body (sets `content-type: application/json`).
    #[serde(default)]
    pub json: Option<Value>,
    #[serde(default)]
    pub expect: Expect,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Accepted status codes (default: any 2xx).
    #[serde(default)]
    pub status: Option<StatusCodes>,
    /// A regular expression the body must match.
    #[serde(default)]
    pub body_regex: Option<String>,
    /// JSON pointers into the response and the values they must hold, e.g. `/status: ok`.
    #[serde(default)]
    pub json: BTreeMap<String, Value>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum StatusCodes {
    One(u16),
    Many(Vec<u16>),
}

const BODY_LIMIT: usize = 64 * 1024;

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .user_agent(concat!("lifeboat/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("http client builds")
    })
}

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let method_text = options.method.as_deref().unwrap_or("GET").to_ascii_uppercase();
    let method = reqwest::Method::from_bytes(method_text.as_bytes())
        .map_err(|_| StepError::terminal(format!("`{method_text}` is not an HTTP method")))?;
    let body_regex = options
        .expect
        .body_regex
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .map_err(|e| StepError::terminal(format!("expect.body_regex: {e}")))?;
    let mut request = client()
        .request(method, &options.url)
        .header("Idempotency-Key", &cx.idempotency_key);
    for (name, value) in &options.headers {
        request = request.header(name.as_str(), value.0.as_str());
    }
    if let Some(json) = &options.json {
        request = request.json(json);
    } else if let Some(body) = options.body {
        request = request.body(body);
    }
    let response = tokio::select! {
        r = request.send() => r.map_err(|e| request_error(&options.url, e))?,
        _ = cx.cancel.cancelled() => return Err(StepError::retryable("cancelled")),
    };
    let status = response.status().as_u16();
    let bytes = tokio::select! {
        b = response.bytes() => b.map_err(|e| StepError::retryable(format!("reading the response of {}: {e}", options.url)))?,
        _ = cx.cancel.cancelled() => return Err(StepError::retryable("cancelled")),
    };
    let body = String::from_utf8_lossy(&bytes[..bytes.len().min(BODY_LIMIT)]).into_owned();
    let json: Option<Value> = serde_json::from_slice(&bytes).ok();
    let mut outputs = Outputs::new();
    outputs.insert("status".into(), status.into());
    outputs.insert("body".into(), body.clone().into());
    outputs.insert("json".into(), json.clone().unwrap_or(Value::Null));

    let status_ok = match &options.expect.status {
        None => (200..300).contains(&status),
        Some(StatusCodes::One(c)) => *c == status,
        Some(StatusCodes::Many(cs)) => cs.contains(&status),
    };
    if !status_ok {
        // A client error will not fix itself; server errors, timeouts and rate limits may.
        let retryable = !(400..500).contains(&status) || status == 408 || status == 429;
        let snippet: String = body.chars().take(200).collect();
        return Err(StepError {
            message: format!("{} answered {status}: {snippet}", options.url),
            retryable,
        });
    }
    if let Some(re) = &body_regex
        && !re.is_match(&body)
    {
        return Err(StepError::retryable(format!(
            "the body of {} does not match `{}`",
            options.url,
            re.as_str()
        )));
    }
    for (pointer, expected) in &options.expect.json {
        let actual = json.as_ref().and_then(|j| j.pointer(pointer));
        if actual != Some(expected) {
            let shown = actual.map_or("nothing".to_owned(), Value::to_string);
            return Err(StepError::retryable(format!(
                "{}: JSON at `{pointer}` is {shown}, expected {expected}",
                options.url
            )));
        }
    }
    Ok(outputs)
}

fn request_error(url: &str, e: reqwest::Error) -> StepError {
    if e.is_builder() {
        return StepError::terminal(format!("invalid request to `{url}`: {e}"));
    }
    let mut message = format!("request to {url} failed: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(&format!(": {s}"));
        source = s.source();
    }
    StepError::retryable(message)
}
