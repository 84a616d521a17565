//! How lifeboat starts the programs it runs — PostgreSQL's tools, pgBackRest, stress-ng, a
//! plan's own commands — so that a crash of lifeboat can never leave one running beside the
//! attempt that replaces it.
//!
//! Every child started through a [`Spawner`]:
//! - leads its own process group, so everything it starts can be signalled at once;
//! - is recorded (pid, process group, start time) by the spawner's [`SpawnRecorder`] *before*
//!   it runs a single instruction of the program: after `fork` the child waits at a gate
//!   until the record is durable, and gives up instead of exec'ing if recording fails or
//!   lifeboat dies first;
//! - receives SIGTERM when lifeboat dies (`PR_SET_PDEATHSIG`). The kernel ties that signal to
//!   the *thread* that forked, so every child is forked by one dedicated thread that lives as
//!   long as the process (a tokio blocking thread that exits when idle would kill its
//!   children with it).
//!
//! The record is what makes the guarantee complete: the death signal reaches only the direct
//! child, and is dropped when a program changes its credentials. Whoever resumes the work
//! reads the record and stops what is left of the group ([`Recorded::stop`]) before it starts
//! the work again. Daemons a tool starts in a session of their own (a postmaster started by
//! `pg_ctl`) are outside the group on purpose: they are the step's effect, not its attempt.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::Duration;

use nix::libc;
use serde::{Deserialize, Serialize};
use tokio::process::{Child, Command};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// A child that was started and is about to exec: what identifies it and its group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    pub pid: u32,
    /// The process group: every process the child starts, unless it leaves the group.
    pub process_group: u32,
    /// Start time in clock ticks since boot (field 22 of `/proc/<pid>/stat`): with the pid,
    /// it tells the child from a later process that got the same pid.
    pub start_ticks: u64,
    /// The program (not its arguments, which may hold secrets).
    pub program: String,
}

/// Keeps a durable record of each child before it is allowed to run.
#[async_trait::async_trait]
pub trait SpawnRecorder: Send + Sync {
    /// Called once per child, while the child waits. An error keeps the child from running.
    async fn record(&self, child: &Recorded) -> Result<(), String>;
}

/// Starts children as described in the module documentation. Cheap to clone.
#[derive(Clone, Default)]
pub struct Spawner {
    recorder: Option<Arc<dyn SpawnRecorder>>,
}

impl std::fmt::Debug for Spawner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spawner").field("recorded", &self.recorder.is_some()).finish()
    }
}

impl Spawner {
    /// Children get their own group and the death signal, but nobody keeps a record: for
    /// commands a person runs by hand (`lifeboat pg restore`), where no resume will follow.
    pub fn unrecorded() -> Spawner {
        Spawner { recorder: None }
    }

    pub fn recorded_by(recorder: Arc<dyn SpawnRecorder>) -> Spawner {
        Spawner { recorder: Some(recorder) }
    }

    /// Starts `command` (as its own process group leader) once it is recorded.
    pub async fn spawn(&self, command: Command) -> io::Result<Child> {
        self.spawn_recorded(command).await.map(|(child, _)| child)
    }

    /// [`Spawner::spawn`], also returning what identifies the child and its group (to stop
    /// what it leaves behind).
    pub async fn spawn_recorded(&self, mut command: Command) -> io::Result<(Child, Recorded)> {
        let program = command.as_std().get_program().to_string_lossy().into_owned();
        let (hello_read, hello_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let (gate_read, gate_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let parent = std::process::id();
        let gate = Gate {
            parent,
            hello: hello_write.as_raw_fd(),
            read: gate_read.as_raw_fd(),
            write: gate_write.as_raw_fd(),
        };
        command.process_group(0);
        // SAFETY: the closure runs between fork and exec and only makes async-signal-safe
        // system calls (signal, prctl, getppid, getpid, close, write, read); it allocates
        // nothing.
        unsafe {
            command.pre_exec(move || gate.wait());
        }
        let mut spawning = fork_on_spawner_thread(command)?;
        let hello = tokio::task::spawn_blocking(move || read_pid(hello_read));
        let pid = tokio::select! {
            pid = hello => pid.unwrap_or(None),
            // The child failed before it reached the gate (e.g. it could not change user).
            spawned = &mut spawning => return Err(spawned.unwrap_or_else(|_| Err(spawner_gone())).err().unwrap_or_else(spawner_gone)),
        };
        // The read end saw the pid or EOF; either way the child no longer needs ours.
        drop(hello_write);
        let Some(pid) = pid else {
            return Err(spawning
                .await
                .unwrap_or_else(|_| Err(spawner_gone()))
                .err()
                .unwrap_or_else(spawner_gone));
        };
        let recorded = Recorded {
            pid,
            process_group: pid,
            start_ticks: start_ticks(pid).unwrap_or(0),
            program,
        };
        let verdict = match &self.recorder {
            Some(recorder) => recorder.record(&recorded).await,
            None => Ok(()),
        };
        if verdict.is_ok() {
            // The child reads this byte and execs; closing without it makes the child give up.
            let _ = nix::unistd::write(&gate_write, &[1]);
        }
        drop(gate_write);
        drop(gate_read);
        let spawned = spawning.await.unwrap_or_else(|_| Err(spawner_gone()));
        match verdict {
            Ok(()) => spawned.map(|child| (child, recorded)),
            Err(why) => Err(io::Error::other(format!(
                "`{}` was not started: recording it failed: {why}",
                recorded.program
            ))),
        }
    }

    /// Runs `command` to its end and collects its output.
    pub async fn output(&self, mut command: Command) -> io::Result<std::process::Output> {
        command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        self.spawn(command).await?.wait_with_output().await
    }
}

/// The pipes between lifeboat and a child waiting to exec.
#[derive(Clone, Copy)]
struct Gate {
    parent: u32,
    /// Where the child announces its pid.
    hello: RawFd,
    /// Where it waits for the byte that lets it exec; EOF means give up.
    read: RawFd,
    /// lifeboat's end: the child closes its inherited copy, or it would never see EOF.
    write: RawFd,
}

impl Gate {
    /// Runs in the child between fork and exec: arrange to die with lifeboat, announce the
    /// pid, and wait until the parent has recorded it.
    fn wait(self) -> io::Result<()> {
        // SAFETY: plain system calls on file descriptors this closure was given.
        unsafe {
            // The child still has lifeboat's signal handlers until it execs: with them, the
            // death signal would be caught instead of ending the child waiting here.
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            libc::close(self.write);
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            // lifeboat died before the death signal was armed: nobody will record or wait.
            if libc::getppid() as u32 != self.parent {
                return Err(io::Error::from_raw_os_error(libc::ECANCELED));
            }
            let pid = (libc::getpid() as u32).to_ne_bytes();
            if libc::write(self.hello, pid.as_ptr().cast(), pid.len()) != pid.len() as isize {
                return Err(io::Error::last_os_error());
            }
            let mut byte = [0u8; 1];
            loop {
                match libc::read(self.read, byte.as_mut_ptr().cast(), 1) {
                    1 => return Ok(()),
                    0 => return Err(io::Error::from_raw_os_error(libc::ECANCELED)),
                    _ if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) => continue,
                    _ => return Err(io::Error::last_os_error()),
                }
            }
        }
    }
}

fn read_pid(fd: OwnedFd) -> Option<u32> {
    let mut bytes = [0u8; 4];
    std::fs::File::from(fd).read_exact(&mut bytes).ok()?;
    Some(u32::from_ne_bytes(bytes))
}

fn spawner_gone() -> io::Error {
    io::Error::other("the process spawner thread is gone")
}

struct Job {
    command: Command,
    runtime: Handle,
    reply: oneshot::Sender<io::Result<Child>>,
}

/// Hands `command` to the spawner thread; the answer arrives once the child has exec'd or
/// failed to.
fn fork_on_spawner_thread(command: Command) -> io::Result<oneshot::Receiver<io::Result<Child>>> {
    static JOBS: OnceLock<Result<mpsc::Sender<Job>, String>> = OnceLock::new();
    let jobs = JOBS.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("lifeboat-spawner".into())
            .spawn(move || {
                for job in rx {
                    let _runtime = job.runtime.enter();
                    let mut command = job.command;
                    let _ = job.reply.send(command.spawn());
                }
            })
            .map(|_| tx)
            .map_err(|e| e.to_string())
    });
    let jobs = jobs
        .as_ref()
        .map_err(|e| io::Error::other(format!("cannot start the process spawner thread: {e}")))?;
    let (reply, answer) = oneshot::channel();
    let job = Job {
        command,
        runtime: Handle::try_current().map_err(io::Error::other)?,
        reply,
    };
    jobs.send(job).map_err(|_| spawner_gone())?;
    Ok(answer)
}

/// Start time of `pid` in clock ticks since boot, if it exists.
pub fn start_ticks(pid: u32) -> Option<u64> {
    stat_fields(pid).map(|(_, _, start)| start)
}

/// (state, process group, start ticks) from `/proc/<pid>/stat`.
fn stat_fields(pid: u32) -> Option<(char, u32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses; what follows the last `)`
    // is well-formed: state is field 3, pgrp field 5, starttime field 22.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let pgrp = fields.get(2)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, pgrp, start))
}

/// Live (not zombie) processes of process group `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| matches!(stat_fields(pid), Some((state, group, _)) if group == pgid && state != 'Z' && state != 'X'))
        .collect()
}

/// How a recorded process group was found and what stopping it took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stopped {
    /// Nothing of the group was left.
    AlreadyGone,
    /// The group ended within the grace period after SIGTERM.
    Terminated { processes: usize },
    /// The group outlived the grace period and was killed.
    Killed { processes: usize },
}

impl Recorded {
    /// The processes still alive in the recorded group. A pid is never reused while a
    /// process group of that number exists, so live members of the group are the child's
    /// own descendants — unless the group is gone and a new process now leads a group of the
    /// same number, which its start time gives away.
    pub fn survivors(&self) -> Vec<u32> {
        match stat_fields(self.process_group) {
            Some((_, _, start)) if self.process_group == self.pid && start != self.start_ticks => Vec::new(),
            _ => group_members(self.process_group),
        }
    }

    /// Stops what is left of the group: SIGTERM, up to `grace` to end, then SIGKILL.
    pub async fn stop(&self, grace: Duration) -> Result<Stopped, String> {
        let survivors = self.survivors();
        if survivors.is_empty() {
            return Ok(Stopped::AlreadyGone);
        }
        let processes = survivors.len();
        self.signal(nix::sys::signal::Signal::SIGTERM)?;
        if self.wait_gone(grace).await {
            return Ok(Stopped::Terminated { processes });
        }
        self.signal(nix::sys::signal::Signal::SIGKILL)?;
        if self.wait_gone(Duration::from_secs(10)).await {
            return Ok(Stopped::Killed { processes });
        }
        Err(format!(
            "process group {} of `{}` survived SIGKILL (processes {:?}: stuck in the kernel?)",
            self.process_group,
            self.program,
            self.survivors()
        ))
    }

    fn signal(&self, signal: nix::sys::signal::Signal) -> Result<(), String> {
        use nix::errno::Errno;
        match nix::sys::signal::killpg(nix::unistd::Pid::from_raw(self.process_group as i32), signal) {
            Ok(()) | Err(Errno::ESRCH) => Ok(()),
            Err(e) => Err(format!(
                "cannot send {signal} to process group {} of `{}`: {e}",
                self.process_group, self.program
            )),
        }
    }

    async fn wait_gone(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if self.survivors().is_empty() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Log(Mutex<Vec<Recorded>>, Result<(), String>);

    #[async_trait::async_trait]
    impl SpawnRecorder for Log {
        async fn record(&self, child: &Recorded) -> Result<(), String> {
            // The child must still be waiting at the gate: alive, and not yet the program.
            let comm = std::fs::read_to_string(format!("/proc/{}/comm", child.pid)).unwrap_or_default();
            assert_ne!(comm.trim(), "sleep", "the child ran before it was recorded");
            self.0.lock().unwrap().push(child.clone());
            self.1.clone()
        }
    }

    #[tokio::test]
    async fn a_child_is_recorded_before_it_runs_and_leads_its_group() {
        let log = Arc::new(Log(Mutex::new(Vec::new()), Ok(())));
        let spawner = Spawner::recorded_by(log.clone());
        let mut command = Command::new("sleep");
        command.arg("30");
        let mut child = spawner.spawn(command).await.unwrap();
        let recorded = log.0.lock().unwrap()[0].clone();
        assert_eq!(Some(recorded.pid), child.id());
        assert_eq!(recorded.process_group, recorded.pid);
        assert_eq!(start_ticks(recorded.pid), Some(recorded.start_ticks));
        assert_eq!(recorded.survivors(), vec![recorded.pid]);
        let stopped = recorded.stop(Duration::from_secs(5)).await.unwrap();
        assert_eq!(stopped, Stopped::Terminated { processes: 1 });
        let status = child.wait().await.unwrap();
        assert!(!status.success());
        assert_eq!(recorded.stop(Duration::from_secs(1)).await.unwrap(), Stopped::AlreadyGone);
    }

    #[tokio::test]
    async fn a_child_whose_record_fails_never_runs() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let log = Arc::new(Log(Mutex::new(Vec::new()), Err("journal is down".into())));
        let mut command = Command::new("touch");
        command.arg(&marker);
        let error = Spawner::recorded_by(log.clone()).spawn(command).await.unwrap_err();
        assert!(error.to_string().contains("journal is down"), "{error}");
        assert_eq!(log.0.lock().unwrap().len(), 1);
        assert!(!marker.exists(), "the program ran although its record failed");
    }

    #[tokio::test]
    async fn a_missing_program_is_an_error_not_a_hang() {
        let error = Spawner::unrecorded()
            .spawn(Command::new("/nonexistent/lifeboat-test"))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn stopping_reaches_the_grandchildren_and_kills_what_ignores_sigterm() {
        let mut command = Command::new("sh");
        // The grandchild ignores SIGTERM; the shell waits on it.
        command.args(["-c", "trap '' TERM; sleep 30 & wait"]);
        let log = Arc::new(Log(Mutex::new(Vec::new()), Ok(())));
        let mut child = Spawner::recorded_by(log.clone()).spawn(command).await.unwrap();
        let recorded = log.0.lock().unwrap()[0].clone();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while recorded.survivors().len() < 2 {
            assert!(tokio::time::Instant::now() < deadline, "the grandchild never started");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let reaper = tokio::spawn(async move { child.wait().await });
        let stopped = recorded.stop(Duration::from_millis(300)).await.unwrap();
        assert_eq!(stopped, Stopped::Killed { processes: 2 });
        assert!(recorded.survivors().is_empty());
        reaper.await.unwrap().unwrap();
    }

    #[test]
    fn a_recycled_group_number_is_not_ours() {
        let me = std::process::id();
        let impostor = Recorded {
            pid: me,
            process_group: me,
            start_ticks: start_ticks(me).unwrap() + 1,
            program: "gone".into(),
        };
        assert!(impostor.survivors().is_empty());
    }
}
