//! The `lifeboat` command line. Exit codes: 0 success, 1 the run failed, 2 invalid
//! input, 3 lock held.

/// `println!` for command output. A reader that went away (`lifeboat runs | head`) must not
/// panic the command or cut a run short: output that cannot be written is dropped and the
/// command finishes its work and exits with its own status.
macro_rules! outln {
    () => {
        $crate::cli::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` for command output; see [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_out(format_args!($($arg)*))
    };
}

mod bench;
mod bench_proxy;
mod bench_serve;
mod drill_cmd;
mod import_cmd;
mod operator_cmd;
mod pg_cmd;
mod pg_wal;
mod plan_cmd;
mod proxy_cmd;
mod run_cmd;
mod runbook_cmd;
mod runs_cmd;
mod serve_cmd;
mod view;

use crate::engine::runner::EngineError;
use crate::journal::JournalError;
use clap::{Parser, Subcommand, ValueEnum};
use std::process::ExitCode;

/// Writes command output to stdout, dropping it when nobody reads it any more.
pub fn write_out(args: std::fmt::Arguments) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_fmt(args);
}

/// Exit statuses, documented in the README and `lifeboat --help`.
pub mod exit {
    pub const SUCCESS: u8 = 0;
    pub const RUN_FAILED: u8 = 1;
    pub const INVALID_INPUT: u8 = 2;
    pub const LOCK_HELD: u8 = 3;
}

/// An error that carries its exit status. Anything else exits with 1.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

pub fn invalid(message: impl Into<String>) -> anyhow::Error {
    Exit {
        code: exit::INVALID_INPUT,
        message: message.into(),
    }
    .into()
}

const DEFAULT_STATE: &str = ".lifeboat/state.db";

#[derive(Parser, Debug)]
#[command(
    name = "lifeboat",
    version,
    about = "Disaster-recovery automation: recovery plans as durable DAGs, drills with measured RTO/RPO"
)]
#[command(after_help = "Exit status: 0 success, 1 the run failed, 2 invalid input, 3 lock held.")]
pub struct Cli {
    /// The journal: a SQLite file path or URL (default .lifeboat/state.db), or postgres://…
    #[arg(long, global = true, env = "LIFEBOAT_STATE", default_value = DEFAULT_STATE, hide_env_values = true)]
    state: String,
    /// Log format on stderr (levels via RUST_LOG, e.g. RUST_LOG=lifeboat=debug).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check, draw and describe plans.
    #[command(subcommand)]
    Plan(plan_cmd::PlanCommand),
    /// Run a plan.
    Run(run_cmd::RunArgs),
    /// Run a plan as a drill: measure RTO, RPO and rows lost against its objectives,
    /// write reports, exit 0 only when every objective is met.
    Drill(drill_cmd::DrillArgs),
    /// List runs, or show one.
    Runs(runs_cmd::RunsArgs),
    /// Continue an interrupted run (completed steps are not run again).
    Resume(run_cmd::ResumeArgs),
    /// Stop a run: cancel running steps, then run `finally` (and compensations with --rollback).
    Abort(run_cmd::AbortArgs),
    /// Approve a step waiting for approval.
    Approve(run_cmd::DecisionArgs),
    /// Reject a step waiting for approval, or say a manual step could not be done (it fails).
    Reject(run_cmd::DecisionArgs),
    /// Say a manual step is done.
    Done(run_cmd::DecisionArgs),
    /// PostgreSQL backups, WAL archive and point-in-time restore through object storage.
    #[command(subcommand)]
    Pg(pg_cmd::PgCommand),
    /// TCP fault proxies behind a Toxiproxy-compatible REST API.
    #[command(subcommand)]
    Proxy(proxy_cmd::ProxyCommand),
    /// Check, render and run runbooks.
    #[command(subcommand)]
    Runbook(runbook_cmd::RunbookCommand),
    /// Convert another tool's experiment into a lifeboat plan.
    #[command(subcommand)]
    Import(import_cmd::ImportCommand),
    /// Benchmarks of the engine.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Run the service: scheduled drills, incident webhooks, the HTTP API and metrics.
    Serve(serve_cmd::ServeArgs),
    /// Run on Kubernetes: RecoveryPlan, DrillSchedule and Run resources (or print their CRDs).
    #[command(subcommand)]
    Operator(operator_cmd::OperatorCommand),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // A service logs what it does; a command logs only errors unless asked.
    init_tracing(
        cli.log_format,
        if matches!(
            cli.command,
            Command::Serve(_) | Command::Operator(operator_cmd::OperatorCommand::Run(_))
        ) {
            "lifeboat=info"
        } else {
            "error"
        },
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::RUN_FAILED);
        }
    };
    let result = runtime.block_on(dispatch(cli));
    // Steps may leave blocking readers behind (e.g. a cancelled child's pipes); do not
    // let them hold the process open after the run has been journaled.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = e.downcast_ref::<Exit>().map_or(exit::RUN_FAILED, |x| x.code);
            let code = match e.downcast_ref::<EngineError>() {
                Some(EngineError::LockHeld { .. }) => exit::LOCK_HELD,
                Some(EngineError::NotResumable(_) | EngineError::PlanChanged { .. } | EngineError::LeftoversNotStopped { .. }) => {
                    exit::INVALID_INPUT
                }
                Some(EngineError::Journal(JournalError::NoSuchRun(_))) => exit::INVALID_INPUT,
                _ => match e.downcast_ref::<JournalError>() {
                    Some(JournalError::NoSuchRun(_)) => exit::INVALID_INPUT,
                    _ => code,
                },
            };
            // Lower layers' messages may already start with "error:"; say it once.
            let message = format!("{e:#}");
            eprintln!("error: {}", message.trim_start_matches("error: "));
            ExitCode::from(code)
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Plan(cmd) => plan_cmd::run(cmd),
        Command::Run(args) => run_cmd::run(&cli.state, args).await,
        Command::Drill(args) => drill_cmd::run(&cli.state, args).await,
        Command::Runs(args) => runs_cmd::run(&cli.state, args).await,
        Command::Resume(args) => run_cmd::resume(&cli.state, args).await,
        Command::Abort(args) => run_cmd::abort(&cli.state, args).await,
        Command::Approve(args) => run_cmd::decide(&cli.state, args, crate::journal::DecisionKind::Approve, "approve").await,
        Command::Reject(args) => run_cmd::decide(&cli.state, args, crate::journal::DecisionKind::Reject, "reject").await,
        Command::Done(args) => run_cmd::decide(&cli.state, args, crate::journal::DecisionKind::Approve, "done").await,
        Command::Pg(cmd) => pg_cmd::run(cmd).await,
        Command::Proxy(cmd) => proxy_cmd::run(cmd).await,
        Command::Runbook(cmd) => runbook_cmd::run(&cli.state, cmd).await,
        Command::Import(cmd) => import_cmd::run(cmd),
        Command::Bench(cmd) => bench::run(&cli.state, cmd).await,
        Command::Serve(args) => serve_cmd::run(&cli.state, args).await,
        Command::Operator(cmd) => operator_cmd::run(&cli.state, cmd).await,
    }
}

fn init_tracing(format: LogFormat, default_filter: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // Every log line passes the masking writer: a run's secrets never reach the logs,
    // whatever code logged them.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| crate::secrets::MaskingWriter(std::io::stderr()));
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

async fn open_journal(state: &str) -> anyhow::Result<crate::journal::Journal> {
    Ok(crate::journal::Journal::open(state).await?)
}

/// Who is acting, for approvals and aborts: `--by`, else the login name.
fn actor(by: Option<String>) -> String {
    by.or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("LOGNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}
