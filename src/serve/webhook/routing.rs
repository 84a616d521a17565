//! Routes from alerts to recovery plans: Alertmanager-syntax label matchers, first-match routing,
//! and the templates that turn an alert into a plan's params.
//!
//! A matcher is written as in Alertmanager's `matchers`: `severity="critical"`, `env!="dev"`,
//! `service=~"db-.*"`, `team!~"x|y"`. Regexes are anchored (`^(?:regex)$`, as Alertmanager anchors
//! them), so `service=~"db"` matches `db` but not `db-main`. A label the alert does not carry counts
//! as the empty string, as in Alertmanager: `env!="dev"` matches an alert without `env`. The value
//! may be double-quoted (with `\"`, `\\` and `\n` escapes) or bare.
//!
//! A param template is text with `{{ variable }}` in it; the variables are `labels.NAME`,
//! `annotations.NAME`, `fingerprint` (see [`super::fingerprint`]), `startsAt` (RFC 3339, UTC),
//! `status` and `generatorURL`. Rendered values come from the alert's sender and are data: a plan
//! must not splice them into a shell command or a query unquoted.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use regex::Regex;
use serde::{Deserialize, Deserializer};

use super::WebhookError;
use super::alertmanager::Alert;
use super::dedupe::{fingerprint, rfc3339_utc};

/// A route: alerts whose labels all its matchers match start `plan` with `params`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// The route's name, for logs and errors.
    pub name: String,
    /// All must match; an empty list matches every alert (a catch-all).
    pub matchers: Vec<Matcher>,
    /// The plan to start.
    pub plan: String,
    /// The plan's params, each a template rendered by [`render_params`].
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Whether a person must approve before the plan runs.
    #[serde(default)]
    pub require_approval: bool,
}

impl Route {
    /// Whether every matcher matches `labels`.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matchers.iter().all(|m| m.matches(labels))
    }

    /// Checks that every param template is of the template syntax and names only known variables,
    /// so a bad route is refused when the configuration loads rather than when an alert arrives.
    /// Whether an alert carries the labels named is known only at [`render_params`].
    pub fn check_templates(&self) -> Result<(), WebhookError> {
        for (param, template) in &self.params {
            parse_template(template).map_err(|reason| self.bad_template(param, reason))?;
        }
        Ok(())
    }

    fn bad_template(&self, param: &str, reason: String) -> WebhookError {
        WebhookError::BadTemplate {
            route: self.name.clone(),
            param: param.to_owned(),
            reason,
        }
    }
}

/// The first route whose matchers all match `labels`, if any.
pub fn route<'a>(routes: &'a [Route], labels: &BTreeMap<String, String>) -> Option<&'a Route> {
    routes.iter().find(|r| r.matches(labels))
}

/// Renders the route's param templates for `alert`. A label or annotation the alert lacks is an
/// error naming it (the caller refuses the alert with 422 and logs the message).
pub fn render_params(route: &Route, alert: &Alert) -> Result<BTreeMap<String, String>, WebhookError> {
    let mut rendered = BTreeMap::new();
    for (param, template) in &route.params {
        let segments = parse_template(template).map_err(|reason| route.bad_template(param, reason))?;
        let mut out = String::with_capacity(template.len());
        for segment in segments {
            match segment {
                Segment::Text(text) => out.push_str(text),
                Segment::Var(var) => {
                    let missing = |kind: &'static str, name: &str| WebhookError::MissingTemplateValue {
                        route: route.name.clone(),
                        param: param.clone(),
                        kind,
                        name: name.to_owned(),
                        fingerprint: fingerprint(alert),
                    };
                    match var {
                        Var::Label(name) => out.push_str(alert.labels.get(name).ok_or_else(|| missing("label", name))?),
                        Var::Annotation(name) => out.push_str(alert.annotations.get(name).ok_or_else(|| missing("annotation", name))?),
                        Var::Fingerprint => out.push_str(&fingerprint(alert)),
                        Var::StartsAt => out.push_str(&rfc3339_utc(&alert.starts_at)),
                        Var::Status => out.push_str(alert.status.as_str()),
                        Var::GeneratorUrl => out.push_str(&alert.generator_url),
                    }
                }
            }
        }
        rendered.insert(param.clone(), out);
    }
    Ok(rendered)
}

enum Segment<'a> {
    Text(&'a str),
    Var(Var<'a>),
}

#[derive(Clone, Copy)]
enum Var<'a> {
    Label(&'a str),
    Annotation(&'a str),
    Fingerprint,
    StartsAt,
    Status,
    GeneratorUrl,
}

fn parse_template(template: &str) -> Result<Vec<Segment<'_>>, String> {
    let mut segments = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            segments.push(Segment::Text(&rest[..open]));
        }
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| format!("a {{{{ at byte {} is never closed by }}}}", template.len() - rest.len() + open))?;
        segments.push(Segment::Var(parse_var(after[..close].trim())?));
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        segments.push(Segment::Text(rest));
    }
    Ok(segments)
}

fn parse_var(expr: &str) -> Result<Var<'_>, String> {
    let valid_name = |name: &str| !name.is_empty() && !name.contains(|c: char| c.is_whitespace() || c == '{' || c == '}');
    if let Some(name) = expr.strip_prefix("labels.") {
        return valid_name(name)
            .then_some(Var::Label(name))
            .ok_or_else(|| format!("{expr:?} names no label"));
    }
    if let Some(name) = expr.strip_prefix("annotations.") {
        return valid_name(name)
            .then_some(Var::Annotation(name))
            .ok_or_else(|| format!("{expr:?} names no annotation"));
    }
    match expr {
        "fingerprint" => Ok(Var::Fingerprint),
        "startsAt" => Ok(Var::StartsAt),
        "status" => Ok(Var::Status),
        "generatorURL" => Ok(Var::GeneratorUrl),
        "" => Err("{{ }} is empty".to_owned()),
        other => Err(format!("{other:?} is not a known variable")),
    }
}

/// How a matcher compares a label's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`, anchored
    Regex,
    /// `!~`, anchored
    NotRegex,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// One label matcher in Alertmanager's syntax; see the module's doc.
#[derive(Debug, Clone)]
pub struct Matcher {
    name: String,
    op: MatchOp,
    value: String,
    /// The anchored regex, for `=~` and `!~`.
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        (&self.name, self.op, &self.value) == (&other.name, other.op, &other.value)
    }
}

impl Eq for Matcher {}

impl Matcher {
    /// Builds a matcher from its parts; the regex of `=~` and `!~` is compiled anchored.
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Self, WebhookError> {
        let text = format!("{name}{}{value:?}", op.as_str());
        if !is_label_name(name) {
            return Err(WebhookError::InvalidMatcher {
                text,
                reason: "the label name is not [a-zA-Z_:][a-zA-Z0-9_:]*".into(),
            });
        }
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => {
                Some(Regex::new(&format!("^(?:{value})$")).map_err(|err| WebhookError::InvalidMatcher {
                    text,
                    reason: format!("the regex does not compile: {err}"),
                })?)
            }
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(Matcher {
            name: name.to_owned(),
            op,
            value: value.to_owned(),
            regex,
        })
    }

    /// Parses `name<op>"value"`; errors quote the text and give the syntax.
    pub fn parse(text: &str) -> Result<Self, WebhookError> {
        let invalid = |reason: &str| WebhookError::InvalidMatcher {
            text: text.to_owned(),
            reason: reason.to_owned(),
        };
        let trimmed = text.trim();
        let name_len = trimmed
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(trimmed.len());
        let name = &trimmed[..name_len];
        if name.is_empty() || !is_label_name(name) {
            return Err(invalid("it does not start with a label name ([a-zA-Z_:][a-zA-Z0-9_:]*)"));
        }
        let after_name = trimmed[name_len..].trim_start();
        // `=~` before `=`, or the `~` would be read as the value's first character.
        let (op, raw_value) = [MatchOp::Regex, MatchOp::NotRegex, MatchOp::NotEqual, MatchOp::Equal]
            .into_iter()
            .find_map(|op| after_name.strip_prefix(op.as_str()).map(|rest| (op, rest.trim())))
            .ok_or_else(|| invalid("no operator (=, !=, =~ or !~) follows the label name"))?;
        let value = unquote(raw_value).map_err(invalid)?;
        Matcher::new(name, op, &value).map_err(|err| match err {
            WebhookError::InvalidMatcher { reason, .. } => invalid(&reason),
            other => other,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn op(&self) -> MatchOp {
        self.op
    }

    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether the label set satisfies this matcher (a missing label is the empty string).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let actual = labels.get(&self.name).map(String::as_str).unwrap_or("");
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => actual == self.value,
            (MatchOp::NotEqual, _) => actual != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(actual),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(actual),
            (MatchOp::Regex | MatchOp::NotRegex, None) => unreachable!("regex matchers are built with their regex"),
        }
    }
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// The value of a matcher: double-quoted with `\"`, `\\`, `\n` escapes (any other `\x` is kept as
/// written, so regex escapes such as `\d` need no doubling), or bare without any `"`.
fn unquote(raw: &str) -> Result<String, &'static str> {
    let Some(quoted) = raw.strip_prefix('"') else {
        if raw.contains('"') {
            return Err("a bare value contains a double quote; quote the whole value and write \\\" inside");
        }
        return Ok(raw.to_owned());
    };
    let mut value = String::with_capacity(quoted.len());
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => value.push('\n'),
                Some(c @ ('"' | '\\')) => value.push(c),
                Some(other) => {
                    value.push('\\');
                    value.push(other);
                }
                None => return Err("the value's closing double quote is missing"),
            },
            '"' if chars.as_str().is_empty() => return Ok(value),
            '"' => return Err("text follows the value's closing double quote; write \\\" for a quote inside the value"),
            c => value.push(c),
        }
    }
    Err("the value's closing double quote is missing")
}

impl FromStr for Matcher {
    type Err = WebhookError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Matcher::parse(text)
    }
}

impl fmt::Display for Matcher {
    /// The matcher's text, which [`Matcher::parse`] reads back to an equal matcher.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}\"", self.name, self.op.as_str())?;
        for c in self.value.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}

impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Matcher::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::super::alertmanager::AlertStatus;
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn m(text: &str) -> Matcher {
        Matcher::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn equal_and_not_equal() {
        let db = labels(&[("severity", "critical"), ("env", "prod")]);
        assert!(m(r#"severity="critical""#).matches(&db));
        assert!(!m(r#"severity="warning""#).matches(&db));
        assert!(m(r#"env!="dev""#).matches(&db));
        assert!(!m(r#"env!="prod""#).matches(&db));
        // A missing label is "", as in Alertmanager.
        assert!(m(r#"team!="x""#).matches(&db));
        assert!(m(r#"team="""#).matches(&db));
        assert!(!m(r#"team="x""#).matches(&db));
    }

    #[test]
    fn regex_and_not_regex_are_anchored() {
        let main = labels(&[("service", "db-main"), ("team", "storage")]);
        assert!(m(r#"service=~"db-.*""#).matches(&main));
        assert!(!m(r#"service=~"db""#).matches(&main), "=~\"db\" must not match db-main");
        assert!(!m(r#"service=~"main""#).matches(&main), "nor a suffix");
        assert!(m(r#"service=~"db""#).matches(&labels(&[("service", "db")])));
        assert!(m(r#"team!~"x|y""#).matches(&main));
        assert!(!m(r#"team!~"storage|y""#).matches(&main));
        // The alternation is grouped before anchoring: "x|y" is ^(?:x|y)$, not ^x|y$.
        assert!(!m(r#"team=~"x|stor""#).matches(&main));
        assert!(m(r#"service=~"db-\d+""#).matches(&labels(&[("service", "db-42")])));
    }

    #[test]
    fn parsing_is_tolerant_like_alertmanager() {
        let spaced = m(r#"  severity = "critical"  "#);
        assert_eq!(
            (spaced.name(), spaced.op(), spaced.value()),
            ("severity", MatchOp::Equal, "critical")
        );
        let bare = m("severity=critical");
        assert_eq!(bare.value(), "critical");
        let escaped = m(r#"summary="say \"hi\"\\now\n""#);
        assert_eq!(escaped.value(), "say \"hi\"\\now\n");
        assert_eq!(m(r#"a!~"b""#).op(), MatchOp::NotRegex);
        assert_eq!(m(r#"a=~"b""#).op(), MatchOp::Regex);
        assert_eq!(m(r#"a!="b""#).op(), MatchOp::NotEqual);
    }

    #[test]
    fn display_round_trips() {
        for text in [r#"severity="critical""#, r#"team!~"x|y""#, r#"s=~"db-\\d+""#, r#"q="a \"b\"""#] {
            let parsed = m(text);
            assert_eq!(m(&parsed.to_string()), parsed, "{text} -> {parsed}");
        }
        assert_eq!(m(r#"service=~"db-.*""#).to_string(), r#"service=~"db-.*""#);
    }

    #[test]
    fn parse_errors_quote_the_text_and_give_the_syntax() {
        for bad in [
            r#"="x""#,
            r#"9lives="x""#,
            r#"severity"#,
            r#"severity=="x""#,
            r#"severity="x"#,
            r#"a="b"c""#,
            r#"a=~"(""#,
        ] {
            let err = Matcher::parse(bad).unwrap_err();
            assert!(matches!(err, WebhookError::InvalidMatcher { .. }), "{bad}: {err:?}");
            let text = err.to_string();
            assert!(text.contains(&format!("{bad:?}")), "the text is quoted: {text}");
            assert!(text.contains(r#"name=~"regex""#), "the syntax is given: {text}");
        }
        assert!(
            Matcher::parse(r#"a=~"(""#)
                .unwrap_err()
                .to_string()
                .contains("regex does not compile")
        );
    }

    fn routes() -> Vec<Route> {
        serde_json::from_str(
            r#"[
              {"name": "db-primary", "matchers": ["severity=\"critical\"", "service=~\"db-.*\""], "plan": "pg-failover",
               "params": {"service": "{{ labels.service }}", "why": "{{ annotations.summary }} ({{ fingerprint }})",
                          "since": "{{startsAt}}"},
               "require_approval": true},
              {"name": "db-any", "matchers": ["service=~\"db-.*\""], "plan": "pg-check"},
              {"name": "catch-all", "matchers": [], "plan": "notify"}
            ]"#,
        )
        .unwrap()
    }

    #[test]
    fn routes_deserialize_and_first_match_wins() {
        let routes = routes();
        assert!(routes[0].require_approval && !routes[1].require_approval);
        assert!(routes[1].params.is_empty());
        let critical = labels(&[("severity", "critical"), ("service", "db-main")]);
        assert_eq!(route(&routes, &critical).map(|r| r.name.as_str()), Some("db-primary"));
        let warning = labels(&[("severity", "warning"), ("service", "db-main")]);
        assert_eq!(route(&routes, &warning).map(|r| r.name.as_str()), Some("db-any"));
        assert_eq!(
            route(&routes, &labels(&[("service", "web")])).map(|r| r.name.as_str()),
            Some("catch-all")
        );
        assert!(route(&routes[..2], &labels(&[("service", "web")])).is_none());
        assert!(routes.iter().all(|r| r.check_templates().is_ok()));
    }

    #[test]
    fn a_bad_matcher_or_unknown_field_fails_route_loading() {
        let err = serde_json::from_str::<Vec<Route>>(r#"[{"name":"r","matchers":["sev==\"x\""],"plan":"p"}]"#).unwrap_err();
        assert!(err.to_string().contains(r#"invalid matcher "sev==\"x\"""#), "{err}");
        let err = serde_json::from_str::<Route>(r#"{"name":"r","matchers":[],"plan":"p","require_aproval":true}"#).unwrap_err();
        assert!(
            err.to_string().contains("require_aproval"),
            "a misspelt field is not silently dropped: {err}"
        );
    }

    fn alert() -> Alert {
        Alert {
            status: AlertStatus::Firing,
            labels: labels(&[("severity", "critical"), ("service", "db-main")]),
            annotations: labels(&[("summary", "primary down")]),
            starts_at: Utc.with_ymd_and_hms(2024, 5, 1, 8, 15, 30).unwrap(),
            ends_at: None,
            generator_url: "http://prom/graph".into(),
            fingerprint: "1a30ba71cca2921f".into(),
        }
    }

    #[test]
    fn render_params_with_labels_annotations_fingerprint_and_starts_at() {
        let routes = routes();
        let params = render_params(&routes[0], &alert()).unwrap();
        assert_eq!(params["service"], "db-main");
        assert_eq!(params["why"], "primary down (1a30ba71cca2921f)");
        assert_eq!(params["since"], "2024-05-01T08:15:30Z");
        assert_eq!(params.len(), 3);
        assert!(render_params(&routes[1], &alert()).unwrap().is_empty());
    }

    #[test]
    fn render_params_unknown_label_is_a_422_naming_it() {
        let mut route = routes().remove(0);
        route.params.insert("region".into(), "{{ labels.region }}".into());
        let err = render_params(&route, &alert()).unwrap_err();
        assert!(
            matches!(&err, WebhookError::MissingTemplateValue { kind: "label", name, .. } if name == "region"),
            "{err:?}"
        );
        assert_eq!(err.status(), 422);
        let text = err.to_string();
        assert!(
            text.contains("no label \"region\"") && text.contains("\"db-primary\"") && text.contains("{{ labels.region }}"),
            "{text}"
        );

        let mut route = routes().remove(0);
        route.params.insert("runbook".into(), "{{ annotations.runbook_url }}".into());
        let err = render_params(&route, &alert()).unwrap_err();
        assert!(err.to_string().contains("no annotation \"runbook_url\""), "{err}");
    }

    #[test]
    fn bad_templates_are_422_and_caught_by_check_templates() {
        for (template, reason) in [
            ("{{ labels.service", "never closed"),
            ("{{ }}", "empty"),
            ("{{ hostname }}", "not a known variable"),
            ("{{ labels. }}", "names no label"),
        ] {
            let mut route = routes().remove(1);
            route.params.insert("p".into(), template.into());
            let err = route.check_templates().unwrap_err();
            assert!(err.to_string().contains(reason), "{template}: {err}");
            let err = render_params(&route, &alert()).unwrap_err();
            assert!(matches!(err, WebhookError::BadTemplate { .. }));
            assert_eq!(err.status(), 422);
        }
        // A lone `}}` or `{` is text.
        let mut route = routes().remove(1);
        route.params.insert("p".into(), "a }} b { c {{status}}".into());
        assert_eq!(render_params(&route, &alert()).unwrap()["p"], "a }} b { c firing");
    }
}
