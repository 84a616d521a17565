//! `lifeboat bench proxy`: what the TCP fault proxy (with no toxics) adds over direct
//! loopback — per-request latency of small request/response round trips, and bulk
//! throughput. Direct and proxied rounds alternate so machine noise hits both.
//!
//! The client and the servers stand for the application: they run on their own OS threads
//! with blocking sockets, the way iperf-like tools measure loopback, and the proxy runs in
//! lifeboat's runtime as it does in a drill. Sharing the runtime's workers with the
//! application would measure tokio's scheduling of three parties, not the proxy.

use lifeboat_failover::proxy::Proxy;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

const MESSAGE: usize = 64;
const BULK_CHUNK: usize = 256 * 1024;

/// Serves each accepted connection on its own thread until the listener fails.
fn serve(handle: fn(TcpStream)) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || handle(stream));
        }
    });
    Ok(addr)
}

fn echo(mut s: TcpStream) {
    let _ = s.set_nodelay(true);
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 || s.write_all(&buf[..n]).is_err() {
            break;
        }
    }
}

/// Reads everything, then answers with the byte count.
fn sink(mut s: TcpStream) {
    let mut buf = vec![0u8; BULK_CHUNK];
    let mut total: u64 = 0;
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    let _ = s.write_all(&total.to_le_bytes());
}

fn round_trips(addr: SocketAddr, count: usize, out: &mut Vec<Duration>) -> std::io::Result<()> {
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    let msg = [7u8; MESSAGE];
    let mut back = [0u8; MESSAGE];
    for _ in 0..count {
        let t = Instant::now();
        s.write_all(&msg)?;
        s.read_exact(&mut back)?;
        out.push(t.elapsed());
    }
    Ok(())
}

/// MiB/s of one transfer of `bytes`, counted by the receiving end.
fn bulk(addr: SocketAddr, bytes: u64) -> std::io::Result<f64> {
    let mut s = TcpStream::connect(addr)?;
    let chunk = vec![1u8; BULK_CHUNK];
    let t = Instant::now();
    let mut sent = 0;
    while sent < bytes {
        s.write_all(&chunk)?;
        sent += chunk.len() as u64;
    }
    s.shutdown(Shutdown::Write)?;
    let mut count = [0u8; 8];
    s.read_exact(&mut count)?;
    let secs = t.elapsed().as_secs_f64();
    Ok(u64::from_le_bytes(count) as f64 / (1024.0 * 1024.0) / secs)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

struct Measured {
    direct: Vec<Duration>,
    proxied: Vec<Duration>,
    direct_bulk: Vec<f64>,
    proxied_bulk: Vec<f64>,
}

fn measure(paths: [SocketAddr; 4], requests: usize, rounds: usize, bulk_mib: u64) -> std::io::Result<Measured> {
    let [echo, via_echo, sink, via_sink] = paths;
    // Warm-up: connections, page cache, CPU frequency.
    let mut scratch = Vec::new();
    round_trips(echo, 2000, &mut scratch)?;
    round_trips(via_echo, 2000, &mut scratch)?;
    let mut m = Measured {
        direct: Vec::new(),
        proxied: Vec::new(),
        direct_bulk: Vec::new(),
        proxied_bulk: Vec::new(),
    };
    let per_round = requests.div_ceil(rounds);
    for _ in 0..rounds {
        round_trips(echo, per_round, &mut m.direct)?;
        round_trips(via_echo, per_round, &mut m.proxied)?;
    }
    m.direct.sort();
    m.proxied.sort();
    let bytes = bulk_mib * 1024 * 1024;
    for _ in 0..rounds {
        m.direct_bulk.push(bulk(sink, bytes)?);
        m.proxied_bulk.push(bulk(via_sink, bytes)?);
    }
    Ok(m)
}

pub async fn run(requests: usize, rounds: usize, bulk_mib: u64) -> anyhow::Result<String> {
    anyhow::ensure!(
        requests > 0 && rounds > 0 && bulk_mib > 0,
        "--requests, --rounds and --bulk-mib must be at least 1"
    );
    let echo = serve(echo)?;
    let sink = serve(sink)?;
    let echo_proxy = Proxy::start("bench-echo", "127.0.0.1:0", &echo.to_string()).await?;
    let sink_proxy = Proxy::start("bench-sink", "127.0.0.1:0", &sink.to_string()).await?;
    let paths = [echo, echo_proxy.listen_addr(), sink, sink_proxy.listen_addr()];
    let measured = tokio::task::spawn_blocking(move || measure(paths, requests, rounds, bulk_mib)).await?;
    echo_proxy.stop();
    sink_proxy.stop();
    let Measured {
        direct,
        proxied,
        mut direct_bulk,
        mut proxied_bulk,
    } = measured?;
    // Each proxied round is compared with the direct round just before it, so that slow
    // drifts of the machine (a VM's neighbours) cancel out of the ratio.
    let mut ratios: Vec<f64> = direct_bulk.iter().zip(&proxied_bulk).map(|(d, p)| p / d).collect();
    let ratio = median(&mut ratios);
    let (db, pb) = (median(&mut direct_bulk), median(&mut proxied_bulk));
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let (d50, d99, p50, p99) = (
        percentile(&direct, 50.0),
        percentile(&direct, 99.0),
        percentile(&proxied, 50.0),
        percentile(&proxied, 99.0),
    );
    Ok(format!(
        "round trips of {MESSAGE} B, {} per path, {rounds} alternating rounds\n\
         {:<10} {:>10} {:>10}\n{:<10} {:>9.1}µs {:>9.1}µs\n{:<10} {:>9.1}µs {:>9.1}µs\n{:<10} {:>9.1}µs {:>9.1}µs\n\n\
         bulk transfer of {bulk_mib} MiB, {rounds} alternating rounds\n  direct   {db:>8.0} MiB/s (median)\n  proxied  {pb:>8.0} MiB/s (median)\n  \
         proxied/direct {:>5.0}% (median of the paired rounds)\n",
        direct.len(),
        "",
        "p50",
        "p99",
        "direct",
        us(d50),
        us(d99),
        "proxied",
        us(p50),
        us(p99),
        "added",
        us(p50) - us(d50),
        us(p99) - us(d99),
        ratio * 100.0
    ))
}
