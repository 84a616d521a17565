//! The Alertmanager v2 API: silences (create, read, expire) and the alerts it holds, with
//! whether a silence suppresses them.

use super::api::{Api, Auth};
use crate::ValidationError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A label matcher as Prometheus and amtool write it: `alertname="DbDown"`,
/// `severity=~"page|critical"`, `env!="prod"`, `job!~"batch.*"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matcher {
    pub name: String,
    pub value: String,
    #[serde(rename = "isRegex")]
    pub is_regex: bool,
    #[serde(rename = "isEqual", default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

pub const MATCHER_SYNTAX: &str = r#"name="value", name!="value", name=~"regex" or name!~"regex""#;

impl FromStr for Matcher {
    type Err = String;

    fn from_str(text: &str) -> Result<Matcher, String> {
        let invalid = |why: &str| format!("invalid matcher `{text}`: {why}; write {MATCHER_SYNTAX}");
        let at = text.find(['=', '!']).ok_or_else(|| invalid("no operator"))?;
        let name = text[..at].trim();
        let valid_name = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            return Err(invalid("a label name is letters, digits and `_`, not starting with a digit"));
        }
        let rest = &text[at..];
        let (is_equal, is_regex, value) = [("=~", true, true), ("!~", false, true), ("!=", false, false), ("=", true, false)]
            .iter()
            .find_map(|(op, eq, re)| rest.strip_prefix(op).map(|v| (*eq, *re, v.trim())))
            .ok_or_else(|| invalid("the operator is one of = != =~ !~"))?;
        let value = match value.strip_prefix('"') {
            Some(quoted) => quoted
                .strip_suffix('"')
                .ok_or_else(|| invalid("the value's closing quote is missing"))?
                .replace("\\\"", "\""),
            None => value.to_owned(),
        };
        if is_regex && let Err(e) = regex::Regex::new(&format!("^(?:{value})$")) {
            let reason = e.to_string();
            return Err(invalid(&format!("bad regex: {}", reason.lines().last().unwrap_or_default().trim())));
        }
        Ok(Matcher {
            name: name.to_owned(),
            value,
            is_regex,
            is_equal,
        })
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match (self.is_equal, self.is_regex) {
            (true, false) => "=",
            (false, false) => "!=",
            (true, true) => "=~",
            (false, true) => "!~",
        };
        write!(f, "{}{op}{:?}", self.name, self.value)
    }
}

/// A silence as Alertmanager reports it.
#[derive(Debug, Clone, Serialize)]
pub struct Silence {
    pub id: String,
    /// `active`, `pending` or `expired`.
    pub state: String,
    pub comment: String,
    pub created_by: String,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub matchers: Vec<Matcher>,
}

impl Silence {
    pub fn is_expired(&self) -> bool {
        self.state == "expired"
    }
}

/// An alert Alertmanager holds.
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    pub fingerprint: String,
    pub labels: BTreeMap<String, String>,
    pub starts_at: Option<DateTime<Utc>>,
    /// `active` (it notifies), `suppressed` (silenced or inhibited) or `unprocessed`.
    pub state: String,
    pub silenced_by: Vec<String>,
    pub inhibited_by: Vec<String>,
}

/// What a new silence says.
#[derive(Debug, Clone)]
pub struct NewSilence {
    pub matchers: Vec<Matcher>,
    pub ends_at: DateTime<Utc>,
    pub created_by: String,
    pub comment: String,
}

#[derive(Debug, Clone)]
pub struct Alertmanager {
    api: Api,
}

impl Alertmanager {
    pub fn new(url: &str, auth: Option<Auth>, timeout: Duration) -> Result<Alertmanager, ValidationError> {
        Ok(Alertmanager {
            api: Api::new("Alertmanager", url, auth, timeout)?,
        })
    }

    pub fn url(&self) -> &str {
        self.api.base()
    }

    /// Creates a silence starting now; returns its id.
    pub async fn create_silence(&self, silence: &NewSilence) -> Result<String, ValidationError> {
        if silence.matchers.is_empty() {
            return Err(ValidationError::Invalid("a silence needs at least one matcher".into()));
        }
        let body = json!({
            "matchers": silence.matchers,
            "startsAt": Utc::now().to_rfc3339(),
            "endsAt": silence.ends_at.to_rfc3339(),
            "createdBy": silence.created_by,
            "comment": silence.comment,
        });
        let request = self.api.request(reqwest::Method::POST, "/api/v2/silences").json(&body);
        let answer = self.api.json(request, "creating a silence").await?;
        answer
            .get("silenceID")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ValidationError::Invalid(format!("Alertmanager answered a new silence without its id: {answer}")))
    }

    /// The silence `id`, or `None` when Alertmanager does not know it (garbage-collected).
    pub async fn silence(&self, id: &str) -> Result<Option<Silence>, ValidationError> {
        let request = self.api.request(reqwest::Method::GET, &format!("/api/v2/silence/{id}"));
        Ok(self
            .api
            .json_if_found(request, &format!("reading silence {id}"))
            .await?
            .map(|v| silence_from(&v)))
    }

    /// Every silence Alertmanager holds (active, pending and recently expired).
    pub async fn silences(&self) -> Result<Vec<Silence>, ValidationError> {
        let request = self.api.request(reqwest::Method::GET, "/api/v2/silences");
        let answer = self.api.json(request, "listing silences").await?;
        Ok(answer.as_array().map(|a| a.iter().map(silence_from).collect()).unwrap_or_default())
    }

    /// Expires the silence now. Expiring one that already ended is not an error.
    pub async fn expire(&self, id: &str) -> Result<(), ValidationError> {
        let request = self.api.request(reqwest::Method::DELETE, &format!("/api/v2/silence/{id}"));
        match self.api.text(request, &format!("expiring silence {id}")).await {
            Ok(_) => Ok(()),
            Err(e) => match self.silence(id).await {
                Ok(None) => Ok(()),
                Ok(Some(s)) if s.is_expired() => Ok(()),
                _ => Err(e),
            },
        }
    }

    /// The alerts matching every matcher, whatever their state.
    pub async fn alerts(&self, matchers: &[Matcher]) -> Result<Vec<Alert>, ValidationError> {
        let mut query: Vec<(&str, String)> = matchers.iter().map(|m| ("filter", m.to_string())).collect();
        for flag in ["active", "silenced", "inhibited", "unprocessed"] {
            query.push((flag, "true".into()));
        }
        let request = self.api.request(reqwest::Method::GET, "/api/v2/alerts").query(&query);
        let answer = self.api.json(request, "listing alerts").await?;
        Ok(answer.as_array().map(|a| a.iter().map(alert_from).collect()).unwrap_or_default())
    }
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn time(v: &Value, key: &str) -> Option<DateTime<Utc>> {
    v.get(key)
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

fn silence_from(v: &Value) -> Silence {
    Silence {
        id: text(v, "id"),
        state: text(&v["status"], "state"),
        comment: text(v, "comment"),
        created_by: text(v, "createdBy"),
        starts_at: time(v, "startsAt"),
        ends_at: time(v, "endsAt"),
        matchers: serde_json::from_value(v["matchers"].clone()).unwrap_or_default(),
    }
}

fn alert_from(v: &Value) -> Alert {
    Alert {
        fingerprint: text(v, "fingerprint"),
        labels: v["labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            })
            .unwrap_or_default(),
        starts_at: time(v, "startsAt"),
        state: text(&v["status"], "state"),
        silenced_by: strings(&v["status"]["silencedBy"]),
        inhibited_by: strings(&v["status"]["inhibitedBy"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_as_amtool_writes_them() {
        let m: Matcher = r#"alertname="DbDown""#.parse().unwrap();
        assert_eq!(
            (m.name.as_str(), m.value.as_str(), m.is_equal, m.is_regex),
            ("alertname", "DbDown", true, false)
        );
        let m: Matcher = r#"severity=~"page|critical""#.parse().unwrap();
        assert!(m.is_regex && m.is_equal);
        let m: Matcher = "env!=prod".parse().unwrap();
        assert!(!m.is_equal && !m.is_regex && m.value == "prod");
        let m: Matcher = r#"job !~ "batch.*""#.parse().unwrap();
        assert!(!m.is_equal && m.is_regex);
        assert_eq!(m.to_string(), r#"job!~"batch.*""#);
    }

    #[test]
    fn bad_matchers_say_how_to_write_one() {
        for bad in ["alertname", r#"1x="a""#, r#"a=~"(""#, r#"a="open"#, r#"="x""#] {
            let e = bad.parse::<Matcher>().unwrap_err();
            assert!(e.contains(MATCHER_SYNTAX), "{bad}: {e}");
        }
    }
}
