//! `lifeboat bench proxy`: what the TCP fault proxy (with no toxics) adds over direct
//! loopback — per-request latency of small request/response round trips, and bulk
//! throughput. Direct and proxied rounds alternate so machine noise hits both.

use lifeboat_failover::proxy::Proxy;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MESSAGE: usize = 64;

async fn echo_server() -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// Reads everything, then answers with the byte count.
async fn sink_server() -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 256 * 1024];
                let mut total: u64 = 0;
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    total += n as u64;
                }
                let _ = s.write_all(&total.to_le_bytes()).await;
            });
        }
    });
    Ok(addr)
}

async fn round_trips(addr: &str, count: usize, out: &mut Vec<Duration>) -> std::io::Result<()> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let msg = [7u8; MESSAGE];
    let mut back = [0u8; MESSAGE];
    for _ in 0..count {
        let t = Instant::now();
        s.write_all(&msg).await?;
        s.read_exact(&mut back).await?;
        out.push(t.elapsed());
    }
    Ok(())
}

async fn bulk(addr: &str, bytes: u64) -> std::io::Result<f64> {
    let mut s = TcpStream::connect(addr).await?;
    let chunk = vec![1u8; 256 * 1024];
    let t = Instant::now();
    let mut sent = 0;
    while sent < bytes {
        s.write_all(&chunk).await?;
        sent += chunk.len() as u64;
    }
    s.shutdown().await?;
    let mut count = [0u8; 8];
    s.read_exact(&mut count).await?;
    let secs = t.elapsed().as_secs_f64();
    Ok(u64::from_le_bytes(count) as f64 / (1024.0 * 1024.0) / secs)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

pub async fn run(requests: usize, rounds: usize, bulk_mib: u64) -> anyhow::Result<String> {
    let echo = echo_server().await?;
    let sink = sink_server().await?;
    let echo_proxy = Proxy::start("bench-echo", "127.0.0.1:0", &echo).await?;
    let sink_proxy = Proxy::start("bench-sink", "127.0.0.1:0", &sink).await?;
    let via_echo = echo_proxy.listen_addr().to_string();
    let via_sink = sink_proxy.listen_addr().to_string();
    // Warm-up: connections, page cache, CPU frequency.
    let mut scratch = Vec::new();
    round_trips(&echo, 2000, &mut scratch).await?;
    round_trips(&via_echo, 2000, &mut scratch).await?;
    let (mut direct, mut proxied) = (Vec::new(), Vec::new());
    let per_round = requests.div_ceil(rounds.max(1));
    for _ in 0..rounds.max(1) {
        round_trips(&echo, per_round, &mut direct).await?;
        round_trips(&via_echo, per_round, &mut proxied).await?;
    }
    direct.sort();
    proxied.sort();
    let bytes = bulk_mib * 1024 * 1024;
    let (mut direct_bulk, mut proxied_bulk) = (Vec::new(), Vec::new());
    for _ in 0..rounds.max(1) {
        direct_bulk.push(bulk(&sink, bytes).await?);
        proxied_bulk.push(bulk(&via_sink, bytes).await?);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (db, pb) = (median(&mut direct_bulk), median(&mut proxied_bulk));
    echo_proxy.stop();
    sink_proxy.stop();
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
         bulk transfer of {bulk_mib} MiB (median of {rounds})\n  direct   {db:>8.0} MiB/s\n  proxied  {pb:>8.0} MiB/s  ({:.0}% of direct)\n",
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
        pb / db * 100.0
    ))
}
