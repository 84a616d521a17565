//! A "region" in its own network namespace, reached from the host through a veth pair;
//! removed (with the pair) when dropped, even when the test fails. Needs root.

use std::process::Command;

pub fn sh(args: &[&str]) -> bool {
    Command::new(args[0]).args(&args[1..]).status().is_ok_and(|s| s.success())
}

pub struct Region {
    /// The namespace's name.
    pub ns: String,
    /// The host end of the veth pair (taking it down cuts the region off).
    pub outer: String,
    pub inner: String,
    /// The host's address on the pair.
    pub host_ip: String,
    /// The region's address on the pair.
    pub region_ip: String,
}

impl Region {
    /// `None` when not root (the caller skips); under CI a failure to create it fails.
    pub fn create() -> Option<Region> {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: network namespaces need root");
            return None;
        }
        let tag = format!("{:04x}", rand::random::<u16>());
        let octet = 10 + (rand::random::<u8>() % 200);
        let region = Region {
            ns: format!("lb-region-{tag}"),
            outer: format!("lbo{tag}"),
            inner: format!("lbi{tag}"),
            host_ip: format!("10.77.{octet}.1"),
            region_ip: format!("10.77.{octet}.2"),
        };
        if !sh(&["ip", "netns", "add", &region.ns]) {
            assert!(
                std::env::var("CI").is_err(),
                "CI runs as root and must be able to create network namespaces"
            );
            eprintln!("skipped: cannot create a network namespace here");
            return None;
        }
        let (ns, outer, inner) = (region.ns.as_str(), region.outer.as_str(), region.inner.as_str());
        let host_cidr = format!("{}/24", region.host_ip);
        let region_cidr = format!("{}/24", region.region_ip);
        for cmd in [
            vec!["ip", "link", "add", outer, "type", "veth", "peer", "name", inner],
            vec!["ip", "link", "set", inner, "netns", ns],
            vec!["ip", "addr", "add", &host_cidr, "dev", outer],
            vec!["ip", "link", "set", outer, "up"],
            vec!["ip", "-n", ns, "addr", "add", &region_cidr, "dev", inner],
            vec!["ip", "-n", ns, "link", "set", inner, "up"],
            vec!["ip", "-n", ns, "link", "set", "lo", "up"],
        ] {
            assert!(sh(&cmd), "{cmd:?}");
        }
        Some(region)
    }

    /// A TCP listener inside the region, on its address: a thread enters the namespace
    /// (`setns`) and answers every connection with `greeting`.
    pub fn greeter(&self, greeting: &'static str) -> std::net::SocketAddr {
        let path = format!("/var/run/netns/{}", self.ns);
        let ip: std::net::IpAddr = self.region_ip.parse().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).unwrap();
            nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let listener = std::net::TcpListener::bind((ip, 0)).unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            // The serving thread is spawned from here, so it is in the namespace too.
            super::serve_greeting(listener, greeting);
        });
        rx.recv().unwrap()
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        sh(&["ip", "netns", "del", &self.ns]);
    }
}
