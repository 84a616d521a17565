//! `lifeboat serve`'s configuration file: where it listens, which plans it may run, its
//! schedules, webhook receivers and API tokens. Loaded and checked once at start; every
//! problem is reported with `file:line:column` and nothing starts until the file is sound.

use super::schedule::{Blackout, CronSpec, Timing, parse_duration, parse_tz};
use super::webhook::{Credentials, Route, SignatureScheme};
use crate::plan::yaml::{self, PathSegment};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeFile {
    /// Address of the HTTP API, webhooks and metrics (default `127.0.0.1:8480`).
    #[serde(default)]
    pub listen: Option<String>,
    /// Plan files or folders of them, relative to this file: what schedules, routes and the
    /// API may run, by plan name. Required by `serve`; refused by `operator`, whose plans
    /// are RecoveryPlan resources.
    #[serde(default)]
    pub plans: Vec<String>,
    /// How long running attempts get to finish when the service stops (default 30s).
    #[serde(default)]
    pub handoff_grace: Option<String>,
    #[serde(default)]
    pub tokens: Vec<TokenSpec>,
    #[serde(default)]
    pub schedules: Vec<ScheduleSpec>,
    #[serde(default)]
    pub webhooks: Vec<WebhookSpec>,
    /// The largest webhook body accepted (bytes, default 1 MiB).
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
}

/// An API token: who it is, and what it may do.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    pub name: String,
    /// The environment variable that holds the token (tokens are never in the file).
    pub token_env: String,
    pub scopes: Vec<Scope>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// See plans, runs, schedules, triggers, reports.
    Read,
    /// Start and abort runs, trigger schedules.
    Run,
    /// Approve or reject runs and approval steps.
    Approve,
    /// Pause and resume schedules.
    Admin,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    pub name: String,
    /// A plan name from `plans`.
    pub plan: String,
    pub cron: String,
    #[serde(default = "utc")]
    pub timezone: String,
    #[serde(default)]
    pub params: BTreeMap<String, Value>,
    #[serde(default)]
    pub overlap: Overlap,
    /// Occurrences missed while no scheduler ran are fired if they are at most this old
    /// (only the latest one); older ones are recorded as missed. Default: 0 (none).
    #[serde(default)]
    pub catch_up: Option<String>,
    #[serde(default)]
    pub jitter: Option<String>,
    #[serde(default)]
    pub blackouts: Vec<Blackout>,
}

fn utc() -> String {
    "UTC".into()
}

/// What an occurrence does while the schedule's previous run is still active.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, utoipa::ToSchema, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// Record it as skipped.
    #[default]
    Skip,
    /// Keep it waiting until the previous run ends; a further one is skipped.
    BufferOne,
    /// Start it beside the previous run.
    Allow,
    /// Abort the previous run, then start it.
    CancelOther,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSpec {
    /// Part of the receiver's path: `/webhooks/<name>`.
    pub name: String,
    pub kind: WebhookKind,
    /// Alertmanager: `Authorization: Bearer <token>` (the token's environment variable).
    #[serde(default)]
    pub bearer_env: Option<String>,
    /// Alertmanager: basic auth (the password's environment variable).
    #[serde(default)]
    pub basic: Option<BasicSpec>,
    /// Signed webhooks: the HMAC secret's environment variable.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// Signed webhooks: the oldest signed timestamp accepted (default 5m).
    #[serde(default)]
    pub max_age: Option<String>,
    pub routes: Vec<Route>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicSpec {
    pub username: String,
    pub password_env: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookKind {
    Alertmanager,
    Grafana,
    Pagerduty,
    Hub,
}

/// A checked configuration, ready to serve.
#[derive(Debug, Default)]
pub struct ServeConfig {
    pub file: PathBuf,
    pub listen: String,
    pub plan_paths: Vec<PathBuf>,
    pub handoff_grace: Duration,
    pub tokens: Vec<Token>,
    pub schedules: Vec<Schedule>,
    pub webhooks: Vec<Webhook>,
    pub max_body_bytes: usize,
}

#[derive(Clone)]
pub struct Token {
    pub name: String,
    pub secret: String,
    pub scopes: Vec<Scope>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// The defaults of what the file may leave out.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8480";
pub const DEFAULT_HANDOFF_GRACE: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

#[derive(Debug, Clone)]
pub struct Schedule {
    /// `file:line:col` of its `plan:`, for problems found once the plans are compiled.
    pub location: String,
    pub spec: ScheduleSpec,
    pub timing: Timing,
    pub catch_up: Duration,
}

pub struct Webhook {
    pub name: String,
    pub auth: WebhookAuth,
    pub routes: Vec<Route>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook").field("name", &self.name).finish_non_exhaustive()
    }
}

pub enum WebhookAuth {
    Credentials(Credentials),
    Signed {
        scheme: SignatureScheme,
        secret: Vec<u8>,
        max_age: Duration,
    },
}

/// Reads and checks a configuration file; the error lists every problem.
pub fn load(file: &Path) -> Result<ServeConfig, String> {
    let display = file.display().to_string();
    let source = std::fs::read_to_string(file).map_err(|e| format!("error: {display}: cannot read the configuration: {e}"))?;
    let tree = yaml::parse(&source).map_err(|e| format!("error: {display}:{}:{}: {}", e.pos.line, e.pos.col, e.message))?;
    let at = |path: &[PathSegment]| {
        let pos = tree.pos_at(path);
        format!("{display}:{}:{}", pos.line, pos.col)
    };
    let spec: ServeFile = serde_path_to_error::deserialize(tree.to_json()).map_err(|e| {
        let path = json_path(e.path());
        format!("error: {}: {}", at(&path), e.inner())
    })?;
    let base = file.parent().unwrap_or(Path::new("."));
    let mut errors = Vec::new();
    let duration = |text: &Option<String>, default: Duration, path: Vec<PathSegment>, errors: &mut Vec<String>| match text {
        None => default,
        Some(t) => parse_duration(t).unwrap_or_else(|e| {
            errors.push(format!("error: {}: {e}", at(&path)));
            default
        }),
    };
    let handoff_grace = duration(
        &spec.handoff_grace,
        DEFAULT_HANDOFF_GRACE,
        vec![PathSegment::Key("handoff_grace".into())],
        &mut errors,
    );
    let mut tokens = Vec::new();
    for (i, t) in spec.tokens.iter().enumerate() {
        match std::env::var(&t.token_env) {
            Ok(secret) if secret.len() >= 16 => tokens.push(Token {
                name: t.name.clone(),
                secret,
                scopes: t.scopes.clone(),
            }),
            Ok(_) => errors.push(format!(
                "error: {}: token `{}`: ${} is shorter than 16 characters; use a long random token (e.g. `openssl rand -hex 32`)",
                at(&[PathSegment::Key("tokens".into()), PathSegment::Index(i)]),
                t.name,
                t.token_env
            )),
            Err(_) => errors.push(format!(
                "error: {}: token `{}`: the environment variable ${} is not set; export it before `lifeboat serve`",
                at(&[PathSegment::Key("tokens".into()), PathSegment::Index(i)]),
                t.name,
                t.token_env
            )),
        }
    }
    let mut schedules = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for (i, s) in spec.schedules.iter().enumerate() {
        let here = |key: &str| {
            at(&[
                PathSegment::Key("schedules".into()),
                PathSegment::Index(i),
                PathSegment::Key(key.into()),
            ])
        };
        if !names.insert(s.name.clone()) {
            errors.push(format!(
                "error: {}: a second schedule named `{}`; names must be unique",
                here("name"),
                s.name
            ));
        }
        if !valid_name(&s.name) {
            errors.push(format!(
                "error: {}: schedule name `{}` may hold only letters, digits, `-` and `_` (it becomes part of run ids)",
                here("name"),
                s.name
            ));
        }
        match Schedule::build(s.clone(), here("plan")) {
            Ok(schedule) => schedules.push(schedule),
            Err(problems) => errors.extend(problems.into_iter().map(|(field, e)| format!("error: {}: {e}", here(field)))),
        }
    }
    let mut webhooks = Vec::new();
    for (i, w) in spec.webhooks.into_iter().enumerate() {
        let here = |key: &str| {
            at(&[
                PathSegment::Key("webhooks".into()),
                PathSegment::Index(i),
                PathSegment::Key(key.into()),
            ])
        };
        let env = |name: &str, what: &str, errors: &mut Vec<String>| {
            std::env::var(name).ok().filter(|v| !v.is_empty()).or_else(|| {
                errors.push(format!(
                    "error: {}: webhook `{}`: {what} ${name} is not set; export it before `lifeboat serve`",
                    here("name"),
                    w.name
                ));
                None
            })
        };
        for (r, route) in w.routes.iter().enumerate() {
            if let Err(e) = route.check_templates() {
                errors.push(format!(
                    "error: {}: {e}",
                    at(&[
                        PathSegment::Key("webhooks".into()),
                        PathSegment::Index(i),
                        PathSegment::Key("routes".into()),
                        PathSegment::Index(r)
                    ])
                ));
            }
        }
        let auth = match w.kind {
            WebhookKind::Alertmanager => match (&w.bearer_env, &w.basic) {
                (Some(b), None) => env(b, "the bearer token", &mut errors).map(|t| WebhookAuth::Credentials(Credentials::Bearer(t))),
                (None, Some(basic)) => env(&basic.password_env, "the password", &mut errors).map(|password| {
                    WebhookAuth::Credentials(Credentials::Basic {
                        username: basic.username.clone(),
                        password,
                    })
                }),
                _ => {
                    errors.push(format!(
                        "error: {}: webhook `{}`: an Alertmanager receiver needs exactly one of `bearer_env` or `basic` (no unauthenticated writes)",
                        here("kind"),
                        w.name
                    ));
                    None
                }
            },
            kind => {
                let scheme = match kind {
                    WebhookKind::Grafana => SignatureScheme::Grafana,
                    WebhookKind::Pagerduty => SignatureScheme::PagerDuty,
                    _ => SignatureScheme::HubSignature256,
                };
                let max_age = duration(
                    &w.max_age,
                    Duration::from_secs(300),
                    vec![
                        PathSegment::Key("webhooks".into()),
                        PathSegment::Index(i),
                        PathSegment::Key("max_age".into()),
                    ],
                    &mut errors,
                );
                match &w.secret_env {
                    Some(name) => env(name, "the signing secret", &mut errors).map(|s| WebhookAuth::Signed {
                        scheme,
                        secret: s.into_bytes(),
                        max_age,
                    }),
                    None => {
                        errors.push(format!(
                            "error: {}: webhook `{}`: a signed webhook needs `secret_env`",
                            here("kind"),
                            w.name
                        ));
                        None
                    }
                }
            }
        };
        if let Some(auth) = auth {
            webhooks.push(Webhook {
                name: w.name,
                auth,
                routes: w.routes,
            });
        }
    }
    if !errors.is_empty() {
        return Err(errors.join("\n"));
    }
    Ok(ServeConfig {
        file: file.to_owned(),
        listen: spec.listen.unwrap_or_else(|| DEFAULT_LISTEN.into()),
        plan_paths: spec.plans.iter().map(|p| base.join(p)).collect(),
        handoff_grace,
        tokens,
        schedules,
        webhooks,
        max_body_bytes: spec.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES),
    })
}

impl Schedule {
    /// A schedule from its spec, or every problem with the field (as the file names it) it is
    /// in. `location` says where it was declared, for problems found later.
    pub fn build(spec: ScheduleSpec, location: String) -> Result<Schedule, Vec<(&'static str, String)>> {
        let mut problems = Vec::new();
        let cron = CronSpec::parse(&spec.cron).map_err(|e| problems.push(("cron", e.to_string()))).ok();
        let tz = parse_tz(&spec.timezone)
            .map_err(|e| problems.push(("timezone", e.to_string())))
            .ok();
        let mut duration = |field: &'static str, text: &Option<String>| match text {
            None => Duration::ZERO,
            Some(t) => parse_duration(t).unwrap_or_else(|e| {
                problems.push((field, e.to_string()));
                Duration::ZERO
            }),
        };
        let jitter = duration("jitter", &spec.jitter);
        let catch_up = duration("catch_up", &spec.catch_up);
        if let (Some(cron), Some(tz)) = (cron, tz) {
            match Timing::new(cron, tz, spec.blackouts.clone(), jitter) {
                Ok(timing) if problems.is_empty() => {
                    return Ok(Schedule {
                        location,
                        spec,
                        timing,
                        catch_up,
                    });
                }
                Ok(_) => {}
                Err(e) => problems.push(("blackouts", e.to_string())),
            }
        }
        Err(problems)
    }
}

/// Letters, digits, `-`, `_`: safe in run ids, URLs and metric labels.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 63 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn json_path(path: &serde_path_to_error::Path) -> Vec<PathSegment> {
    path.iter()
        .filter_map(|s| match s {
            serde_path_to_error::Segment::Map { key } => Some(PathSegment::Key(key.clone())),
            serde_path_to_error::Segment::Seq { index } => Some(PathSegment::Index(*index)),
            _ => None,
        })
        .collect()
}
