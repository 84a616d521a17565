//! The built-in TCP proxy: listen → upstream, with an upstream that can be switched
//! atomically and links that carry [`toxic`]s.
//!
//! Each accepted connection gets two pumps (client → upstream, upstream → client). A
//! pump reads the current toxic list (a `watch` channel, so a change reaches idle
//! connections too) and applies the toxics of its direction that were drawn for this
//! connection. With no toxics a chunk costs one read and one write.

mod splice;
pub mod toxic;

use rand::Rng;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use toxic::{Stream, Toxic, ToxicKind};

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("a toxic named `{0}` already exists on this proxy")]
    ToxicExists(String),
    #[error("no toxic named `{0}` on this proxy")]
    NoSuchToxic(String),
    #[error("invalid upstream `{0}`: use host:port")]
    InvalidUpstream(String),
}

impl ProxyError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, ProxyError::Listen { .. })
    }
}

/// Counters of a proxy, for evidence and the API.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ProxyStats {
    pub connections_total: u64,
    pub connections_active: u64,
    pub upstream_failures: u64,
    pub bytes_upstream: u64,
    pub bytes_downstream: u64,
    /// Connections each toxic was drawn for.
    pub toxic_connections: HashMap<String, u64>,
}

#[derive(Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    listen: SocketAddr,
    upstream: Mutex<String>,
    enabled: AtomicBool,
    toxics: watch::Sender<Arc<Vec<Toxic>>>,
    /// Cancelled to close every open connection (upstream switch, disable, stop).
    connections: Mutex<CancellationToken>,
    /// The accept loop while the proxy is enabled (disable and stop end it).
    accepting: Mutex<Option<Accepting>>,
    stats: Mutex<ProxyStats>,
    bytes_upstream: AtomicU64,
    bytes_downstream: AtomicU64,
    stopped: CancellationToken,
}

struct Accepting {
    stop: CancellationToken,
    /// Owns the listener: once it has ended, the port refuses connections.
    task: tokio::task::JoinHandle<()>,
}

const BUFFER: usize = 128 * 1024;
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl Proxy {
    /// Binds `listen` (port 0 picks a free port) and starts accepting.
    pub async fn start(name: &str, listen: &str, upstream: &str) -> Result<Proxy, ProxyError> {
        check_upstream(upstream)?;
        let listener = TcpListener::bind(listen).await.map_err(|source| ProxyError::Listen {
            addr: listen.to_owned(),
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| ProxyError::Listen {
            addr: listen.to_owned(),
            source,
        })?;
        let (toxics, _) = watch::channel(Arc::new(Vec::new()));
        let proxy = Proxy {
            inner: Arc::new(Inner {
                name: name.to_owned(),
                listen: addr,
                upstream: Mutex::new(upstream.to_owned()),
                enabled: AtomicBool::new(true),
                toxics,
                connections: Mutex::new(CancellationToken::new()),
                accepting: Mutex::new(None),
                stats: Mutex::new(ProxyStats::default()),
                bytes_upstream: AtomicU64::new(0),
                bytes_downstream: AtomicU64::new(0),
                stopped: CancellationToken::new(),
            }),
        };
        proxy.spawn_accept(listener);
        tracing::info!(proxy = name, listen = %addr, upstream, "proxy listening");
        Ok(proxy)
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.inner.listen
    }

    pub fn upstream(&self) -> String {
        lock(&self.inner.upstream).clone()
    }

    pub fn enabled(&self) -> bool {
        self.inner.enabled.load(Ordering::SeqCst)
    }

    pub fn stats(&self) -> ProxyStats {
        let mut stats = lock(&self.inner.stats).clone();
        stats.bytes_upstream = self.inner.bytes_upstream.load(Ordering::Relaxed);
        stats.bytes_downstream = self.inner.bytes_downstream.load(Ordering::Relaxed);
        stats
    }

    pub fn toxics(&self) -> Vec<Toxic> {
        self.inner.toxics.borrow().as_ref().clone()
    }

    /// Points new connections at `upstream` and closes the open ones, so that no client
    /// keeps talking to the old server.
    pub fn set_upstream(&self, upstream: &str) -> Result<(), ProxyError> {
        check_upstream(upstream)?;
        *lock(&self.inner.upstream) = upstream.to_owned();
        self.close_connections();
        tracing::info!(proxy = %self.inner.name, upstream, "proxy upstream switched");
        Ok(())
    }

    /// Disabled, the proxy neither accepts nor keeps connections: the service is down.
    pub async fn set_enabled(&self, enabled: bool) -> Result<(), ProxyError> {
        if self.inner.enabled.swap(enabled, Ordering::SeqCst) == enabled {
            return Ok(());
        }
        if enabled {
            let listener = TcpListener::bind(self.inner.listen).await.map_err(|source| {
                self.inner.enabled.store(false, Ordering::SeqCst);
                ProxyError::Listen {
                    addr: self.inner.listen.to_string(),
                    source,
                }
            })?;
            self.spawn_accept(listener);
        } else {
            let accepting = lock(&self.inner.accepting).take();
            if let Some(Accepting { stop, task }) = accepting {
                stop.cancel();
                // Down means down when this returns: the listener is closed, so a client
                // connecting now is refused rather than served by a loop about to end.
                let _ = task.await;
            }
            self.close_connections();
        }
        Ok(())
    }

    pub fn add_toxic(&self, toxic: Toxic) -> Result<(), ProxyError> {
        let mut result = Ok(());
        self.inner.toxics.send_modify(|list| {
            if list.iter().any(|t| t.name == toxic.name) {
                result = Err(ProxyError::ToxicExists(toxic.name.clone()));
            } else {
                Arc::make_mut(list).push(toxic.clone());
            }
        });
        result
    }

    pub fn update_toxic(&self, toxic: Toxic) -> Result<(), ProxyError> {
        let mut result = Err(ProxyError::NoSuchToxic(toxic.name.clone()));
        self.inner.toxics.send_modify(|list| {
            if let Some(slot) = Arc::make_mut(list).iter_mut().find(|t| t.name == toxic.name) {
                *slot = toxic.clone();
                result = Ok(());
            }
        });
        result
    }

    pub fn remove_toxic(&self, name: &str) -> Result<(), ProxyError> {
        let mut result = Err(ProxyError::NoSuchToxic(name.to_owned()));
        self.inner.toxics.send_modify(|list| {
            let before = list.len();
            Arc::make_mut(list).retain(|t| t.name != name);
            if list.len() < before {
                result = Ok(());
            }
        });
        result
    }

    /// Removes every toxic and enables the proxy.
    pub async fn reset(&self) -> Result<(), ProxyError> {
        self.inner.toxics.send_replace(Arc::new(Vec::new()));
        self.set_enabled(true).await
    }

    /// Stops accepting and closes every connection.
    pub fn stop(&self) {
        self.inner.stopped.cancel();
        if let Some(Accepting { stop, task }) = lock(&self.inner.accepting).take() {
            stop.cancel();
            task.abort();
        }
        self.close_connections();
    }

    fn close_connections(&self) {
        let old = std::mem::take(&mut *lock(&self.inner.connections));
        old.cancel();
    }

    fn spawn_accept(&self, listener: TcpListener) {
        let accepting = CancellationToken::new();
        let inner = self.inner.clone();
        let stop = accepting.clone();
        let task = tokio::spawn(async move {
            loop {
                let (client, _) = tokio::select! {
                    // Cancellation first: a connection waiting in the backlog when the proxy
                    // goes down must not be served.
                    biased;
                    _ = accepting.cancelled() => return,
                    _ = inner.stopped.cancelled() => return,
                    r = listener.accept() => match r {
                        Ok(c) => c,
                        Err(e) => {
                            tracing::warn!(proxy = %inner.name, error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                };
                tokio::spawn(serve(inner.clone(), client));
            }
        });
        *lock(&self.inner.accepting) = Some(Accepting { stop, task });
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn check_upstream(upstream: &str) -> Result<(), ProxyError> {
    match upstream.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(()),
        _ => Err(ProxyError::InvalidUpstream(upstream.to_owned())),
    }
}

async fn serve(inner: Arc<Inner>, client: TcpStream) {
    let closed = lock(&inner.connections).child_token();
    let upstream_addr = lock(&inner.upstream).clone();
    {
        let mut s = lock(&inner.stats);
        s.connections_total += 1;
        s.connections_active += 1;
    }
    let server = tokio::select! {
        r = tokio::time::timeout(UPSTREAM_CONNECT_TIMEOUT, TcpStream::connect(&upstream_addr)) => match r {
            Ok(Ok(s)) => Some(s),
            Ok(Err(e)) => { tracing::debug!(proxy = %inner.name, upstream = %upstream_addr, error = %e, "upstream connect failed"); None }
            Err(_) => None,
        },
        _ = closed.cancelled() => None,
    };
    if let Some(server) = server {
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let (client_read, client_write) = client.into_split();
        let (server_read, server_write) = server.into_split();
        // Both pumps stop when either side is reset or the connection is closed.
        let conn = closed.child_token();
        let up = pump(inner.clone(), Stream::Upstream, client_read, server_write, conn.clone());
        let down = pump(inner.clone(), Stream::Downstream, server_read, client_write, conn.clone());
        tokio::join!(up, down);
    } else {
        lock(&inner.stats).upstream_failures += 1;
    }
    lock(&inner.stats).connections_active -= 1;
}

/// Whether a toxic applies to this connection, drawn once per toxic name.
struct Draws(HashMap<String, bool>);

impl Draws {
    fn applies(&mut self, inner: &Inner, toxic: &Toxic) -> bool {
        if let Some(&d) = self.0.get(&toxic.name) {
            return d;
        }
        let d = toxic.toxicity >= 1.0 || rand::rng().random::<f64>() < toxic.toxicity;
        self.0.insert(toxic.name.clone(), d);
        if d {
            *lock(&inner.stats).toxic_connections.entry(toxic.name.clone()).or_default() += 1;
        }
        d
    }
}

enum After {
    Forward,
    Drop,
    Close,
    Reset,
}

async fn pump(
    inner: Arc<Inner>,
    direction: Stream,
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    conn: CancellationToken,
) {
    let mut toxics_rx = inner.toxics.subscribe();
    let mut draws = Draws(HashMap::new());
    let mut buf = vec![0u8; BUFFER];
    let mut forwarded: u64 = 0;
    // When a timeout/reset toxic first applied: its timer runs from there.
    let mut armed: HashMap<String, tokio::time::Instant> = HashMap::new();
    let mut ending = Ending::Close;
    let pipe = splice::Pipe::new();
    let mut active: Vec<Toxic> = Vec::new();
    let mut deadline = None;
    let mut first = true;
    loop {
        // The toxic set is re-read only when it changed: the no-toxic path stays a plain copy.
        if first || toxics_rx.has_changed().unwrap_or(false) {
            first = false;
            active = toxics_rx
                .borrow_and_update()
                .iter()
                .filter(|t| t.stream == direction)
                .filter(|t| draws.applies(&inner, t))
                .cloned()
                .collect();
            armed.retain(|name, _| active.iter().any(|t| &t.name == name));
            deadline = active
                .iter()
                .filter_map(|t| match t.kind {
                    ToxicKind::Timeout { timeout } if !timeout.is_zero() => {
                        Some(*armed.entry(t.name.clone()).or_insert_with(|| tokio::time::Instant::now() + timeout))
                    }
                    ToxicKind::ResetPeer { timeout } => {
                        Some(*armed.entry(t.name.clone()).or_insert_with(|| tokio::time::Instant::now() + timeout))
                    }
                    _ => None,
                })
                .min();
        }
        if active.is_empty()
            && let Some(pipe) = &pipe
        {
            let mut moved = |n: u64| {
                match direction {
                    Stream::Upstream => inner.bytes_upstream.fetch_add(n, Ordering::Relaxed),
                    Stream::Downstream => inner.bytes_downstream.fetch_add(n, Ordering::Relaxed),
                };
            };
            let interrupt = async {
                tokio::select! {
                    _ = toxics_rx.changed() => {}
                    _ = conn.cancelled() => {}
                }
            };
            match splice::relay(from.as_ref(), to.as_ref(), pipe, interrupt, &mut moved).await {
                splice::Spliced::Eof => {
                    ending = Ending::HalfClose;
                    break;
                }
                splice::Spliced::Failed => break,
                splice::Spliced::Interrupted if conn.is_cancelled() => {
                    ending = Ending::Dropped;
                    break;
                }
                splice::Spliced::Interrupted => {
                    first = true;
                    continue;
                }
            }
        }
        let read = tokio::select! {
            r = from.read(&mut buf) => r,
            _ = toxics_rx.changed() => {
                first = true;
                continue;
            }
            _ = conn.cancelled() => {
                ending = Ending::Dropped;
                break;
            }
            _ = sleep_until_opt(deadline) => {
                let now = tokio::time::Instant::now();
                if active.iter().any(|t| matches!(t.kind, ToxicKind::ResetPeer { .. }) && armed.get(&t.name).is_some_and(|at| *at <= now)) {
                    ending = Ending::Reset;
                }
                break;
            }
        };
        let n = match read {
            Err(_) => break,
            Ok(0) => {
                ending = Ending::HalfClose;
                if let Some(delay) = active.iter().find_map(|t| match t.kind {
                    ToxicKind::SlowClose { delay } => Some(delay),
                    _ => None,
                }) {
                    tokio::time::sleep(delay).await;
                }
                break;
            }
            Ok(n) => n,
        };
        let mut after = After::Forward;
        let mut len = n;
        for t in &active {
            match t.kind {
                ToxicKind::Latency { latency, jitter } => {
                    let j = if jitter.is_zero() {
                        0.0
                    } else {
                        rand::rng().random_range(-1.0..=1.0) * jitter.as_secs_f64()
                    };
                    let wait = (latency.as_secs_f64() + j).max(0.0);
                    tokio::time::sleep(Duration::from_secs_f64(wait)).await;
                }
                ToxicKind::Bandwidth { rate_kb } if rate_kb > 0 => {
                    tokio::time::sleep(Duration::from_secs_f64(n as f64 / (rate_kb as f64 * 1000.0))).await;
                }
                ToxicKind::Bandwidth { .. } => after = After::Drop,
                ToxicKind::Timeout { .. } => after = After::Drop,
                ToxicKind::LimitData { bytes } if forwarded + n as u64 >= bytes => {
                    len = bytes.saturating_sub(forwarded) as usize;
                    after = After::Close;
                }
                ToxicKind::ResetPeer { timeout } if timeout.is_zero() => after = After::Reset,
                _ => {}
            }
        }
        if matches!(after, After::Reset) {
            ending = Ending::Reset;
            break;
        }
        if matches!(after, After::Drop) {
            continue;
        }
        if to.write_all(&buf[..len]).await.is_err() {
            break;
        }
        forwarded += len as u64;
        match direction {
            Stream::Upstream => inner.bytes_upstream.fetch_add(len as u64, Ordering::Relaxed),
            Stream::Downstream => inner.bytes_downstream.fetch_add(len as u64, Ordering::Relaxed),
        };
        if matches!(after, After::Close) {
            break;
        }
    }
    match ending {
        Ending::HalfClose => {
            // The other direction may still carry an answer (TCP half-close).
            let _ = to.shutdown().await;
        }
        Ending::Reset => {
            // SO_LINGER 0 turns the close into a TCP RST, towards both peers.
            #[allow(deprecated)]
            {
                let _ = from.as_ref().set_linger(Some(Duration::ZERO));
                let _ = to.as_ref().set_linger(Some(Duration::ZERO));
            }
            conn.cancel();
            // Dropping a write half would send a FIN before the reset.
            to.forget();
        }
        Ending::Close => {
            let _ = to.shutdown().await;
            conn.cancel();
        }
        // The other direction ended the connection; dropping the halves closes the
        // sockets the way it chose (a reset stays a reset, no FIN first).
        Ending::Dropped => to.forget(),
    }
}

enum Ending {
    HalfClose,
    Close,
    Reset,
    Dropped,
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
