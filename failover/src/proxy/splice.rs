//! The no-toxic fast path: bytes move socket → pipe → socket with `splice(2)`, never
//! through user space, which keeps the proxy's bulk throughput close to direct loopback.
//! It hands back to the buffered path as soon as the toxic set changes.

use nix::fcntl::{OFlag, SpliceFFlags, splice};
use std::os::fd::OwnedFd;
use tokio::io::Interest;
use tokio::net::TcpStream;

pub enum Spliced {
    /// The source closed its side.
    Eof,
    /// The toxic set (or the connection's fate) changed; nothing is left in flight.
    Interrupted,
    Failed,
}

const CHUNK: usize = 1 << 20;

pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl Pipe {
    pub fn new() -> Option<Pipe> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).ok()?;
        // A larger pipe moves more per splice call (the default holds 64 KiB); refused
        // above the system limit, which leaves the default.
        let _ = nix::fcntl::fcntl(&write, nix::fcntl::FcntlArg::F_SETPIPE_SZ(CHUNK as i32));
        Some(Pipe { read, write })
    }
}

/// Moves data from `from` to `to` until EOF, an error, or `interrupt` completes; returns
/// the bytes moved through `moved`.
pub async fn relay<F: std::future::Future<Output = ()>>(
    from: &TcpStream,
    to: &TcpStream,
    pipe: &Pipe,
    interrupt: F,
    moved: &mut (dyn FnMut(u64) + Send),
) -> Spliced {
    let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
    tokio::pin!(interrupt);
    loop {
        // Only wait for new data (never mid-transfer) on the interrupt, so nothing that
        // was read is lost when the buffered path takes over.
        tokio::select! {
            r = from.readable() => if r.is_err() { return Spliced::Failed },
            _ = &mut interrupt => return Spliced::Interrupted,
        }
        let filled = match from.try_io(Interest::READABLE, || {
            splice(from, None, &pipe.write, None, CHUNK, flags).map_err(std::io::Error::from)
        }) {
            Ok(0) => return Spliced::Eof,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return Spliced::Failed,
        };
        let mut left = filled;
        while left > 0 {
            if to.writable().await.is_err() {
                return Spliced::Failed;
            }
            match to.try_io(Interest::WRITABLE, || {
                splice(&pipe.read, None, to, None, left, flags).map_err(std::io::Error::from)
            }) {
                Ok(n) => left -= n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(_) => return Spliced::Failed,
            }
        }
        moved(filled as u64);
    }
}
