//! The TCP fault proxy against a real echo server over real loopback sockets: each toxic
//! changes what the client observes, and removing it restores plain forwarding.

use lifeboat_failover::proxy::Proxy;
use lifeboat_failover::proxy::toxic::{Toxic, ToxicJson};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn echo_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
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
    addr
}

fn toxic(json: serde_json::Value) -> Toxic {
    Toxic::try_from(serde_json::from_value::<ToxicJson>(json).unwrap()).unwrap()
}

async fn round_trip(addr: &str, payload: &[u8]) -> std::io::Result<(Vec<u8>, Duration)> {
    let mut s = TcpStream::connect(addr).await?;
    let t = Instant::now();
    s.write_all(payload).await?;
    let mut back = vec![0u8; payload.len()];
    s.read_exact(&mut back).await?;
    Ok((back, t.elapsed()))
}

async fn setup() -> Proxy {
    let echo = echo_server().await;
    Proxy::start("test", "127.0.0.1:0", &echo).await.unwrap()
}

#[tokio::test]
async fn forwards_both_ways_without_toxics() {
    let p = setup().await;
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let (back, _) = round_trip(&p.listen_addr().to_string(), &payload).await.unwrap();
    assert_eq!(back, payload);
    let stats = p.stats();
    assert_eq!(stats.bytes_upstream, payload.len() as u64);
    assert_eq!(stats.bytes_downstream, payload.len() as u64);
}

#[tokio::test]
async fn latency_delays_and_removal_restores() {
    let p = setup().await;
    let addr = p.listen_addr().to_string();
    let (_, fast) = round_trip(&addr, b"ping").await.unwrap();
    p.add_toxic(toxic(
        serde_json::json!({"type": "latency", "stream": "downstream", "attributes": {"latency": 300}}),
    ))
    .unwrap();
    let (back, slow) = round_trip(&addr, b"ping").await.unwrap();
    assert_eq!(back, b"ping");
    assert!(slow >= Duration::from_millis(300), "latency toxic gave {slow:?}");
    p.remove_toxic("latency_downstream").unwrap();
    let (_, again) = round_trip(&addr, b"ping").await.unwrap();
    assert!(
        again < Duration::from_millis(250),
        "after removal {again:?} (before the toxic: {fast:?})"
    );
}

#[tokio::test]
async fn an_existing_connection_feels_a_toxic_added_later() {
    let p = setup().await;
    let mut s = TcpStream::connect(p.listen_addr()).await.unwrap();
    s.write_all(b"a").await.unwrap();
    let mut one = [0u8; 1];
    s.read_exact(&mut one).await.unwrap();
    p.add_toxic(toxic(
        serde_json::json!({"type": "timeout", "stream": "upstream", "attributes": {"timeout": 0}}),
    ))
    .unwrap();
    s.write_all(b"b").await.unwrap();
    let blackholed = tokio::time::timeout(Duration::from_millis(500), s.read_exact(&mut one)).await;
    assert!(blackholed.is_err(), "data went through a blackhole");
    p.remove_toxic("timeout_upstream").unwrap();
    s.write_all(b"c").await.unwrap();
    s.read_exact(&mut one).await.unwrap();
    assert_eq!(&one, b"c", "dropped data must not arrive late; later data flows again");
}

#[tokio::test]
async fn timeout_closes_and_reset_peer_resets() {
    let p = setup().await;
    let addr = p.listen_addr().to_string();
    p.add_toxic(toxic(
        serde_json::json!({"name": "cut", "type": "timeout", "attributes": {"timeout": 200}}),
    ))
    .unwrap();
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"x").await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 8];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "the connection should close without data");
    assert!(started.elapsed() >= Duration::from_millis(150));
    p.remove_toxic("cut").unwrap();

    p.add_toxic(toxic(
        serde_json::json!({"type": "reset_peer", "stream": "upstream", "attributes": {"timeout": 0}}),
    ))
    .unwrap();
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"x").await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await.unwrap();
    assert_eq!(r.map_err(|e| e.kind()).err(), Some(std::io::ErrorKind::ConnectionReset));
}

#[tokio::test]
async fn down_refuses_and_cuts_then_comes_back() {
    let p = setup().await;
    let addr = p.listen_addr().to_string();
    let mut open = TcpStream::connect(&addr).await.unwrap();
    round_trip(&addr, b"up").await.unwrap();
    p.set_enabled(false).await.unwrap();
    assert!(TcpStream::connect(&addr).await.is_err(), "a disabled proxy accepted a connection");
    let mut buf = [0u8; 4];
    let cut = tokio::time::timeout(Duration::from_secs(2), open.read(&mut buf)).await.unwrap();
    assert!(matches!(cut, Ok(0) | Err(_)), "an open connection survived the proxy going down");
    p.set_enabled(true).await.unwrap();
    let (back, _) = round_trip(&addr, b"back").await.unwrap();
    assert_eq!(back, b"back");
}

#[tokio::test]
async fn bandwidth_and_limit_data() {
    let p = setup().await;
    let addr = p.listen_addr().to_string();
    p.add_toxic(toxic(serde_json::json!({"type": "bandwidth", "attributes": {"rate": 100}})))
        .unwrap();
    let (back, took) = round_trip(&addr, &[5u8; 50_000]).await.unwrap();
    assert_eq!(back.len(), 50_000);
    assert!(took >= Duration::from_millis(400), "50 kB at 100 KB/s took {took:?}");
    p.remove_toxic("bandwidth_downstream").unwrap();

    p.add_toxic(toxic(serde_json::json!({"type": "limit_data", "attributes": {"bytes": 1000}})))
        .unwrap();
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(&[1u8; 5000]).await.unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut got)).await.unwrap();
    assert_eq!(got.len(), 1000, "limit_data lets exactly its bytes through");
}

#[tokio::test]
async fn toxicity_zero_spares_every_connection_and_upstream_switch_moves_traffic() {
    let p = setup().await;
    let addr = p.listen_addr().to_string();
    p.add_toxic(toxic(
        serde_json::json!({"type": "latency", "toxicity": 0.0, "attributes": {"latency": 1000}}),
    ))
    .unwrap();
    for _ in 0..5 {
        let (_, took) = round_trip(&addr, b"z").await.unwrap();
        assert!(took < Duration::from_millis(500));
    }
    // A second upstream that answers differently shows where traffic goes.
    let other = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other_addr = other.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = other.accept().await {
            tokio::spawn(async move {
                let mut b = [0u8; 1];
                if s.read_exact(&mut b).await.is_ok() {
                    let _ = s.write_all(b"B").await;
                }
            });
        }
    });
    let mut before = TcpStream::connect(&addr).await.unwrap();
    before.write_all(b"q").await.unwrap();
    let mut one = [0u8; 1];
    before.read_exact(&mut one).await.unwrap();
    p.set_upstream(&other_addr).unwrap();
    let (back, _) = round_trip(&addr, b"q").await.unwrap();
    assert_eq!(back, b"B");
    let closed = tokio::time::timeout(Duration::from_secs(2), before.read(&mut one)).await.unwrap();
    assert!(matches!(closed, Ok(0) | Err(_)), "a connection to the old upstream stayed open");
}
