//! A local multi-region topology for tests: each region is a network namespace joined to
//! a bridge in the host's namespace by a veth pair, so the regions reach each other and the
//! host, and taking a region's bridge port down cuts it off from everything. Removed when
//! dropped, even when the test fails. Needs root.

use std::process::Command;

pub fn sh(args: &[&str]) -> bool {
    Command::new(args[0]).args(&args[1..]).status().is_ok_and(|s| s.success())
}

pub struct Region {
    /// The namespace's name.
    pub ns: String,
    /// The host end of the region's veth pair (taking it down cuts the region off).
    pub outer: String,
    /// The region's address.
    pub ip: String,
}

pub struct Topology {
    pub bridge: String,
    /// The host's address on the bridge.
    pub host_ip: String,
    /// Covers the host and every region.
    pub network: String,
    pub regions: Vec<Region>,
}

impl Topology {
    /// `None` when not root (the caller skips); under CI a failure to create it fails.
    pub fn create(names: &[&str]) -> Option<Topology> {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: network namespaces need root");
            return None;
        }
        let tag = format!("{:04x}", rand::random::<u16>());
        let octet = 10 + (rand::random::<u8>() % 200);
        let bridge = format!("lbb{tag}");
        if !sh(&["ip", "link", "add", &bridge, "type", "bridge"]) {
            assert!(
                std::env::var("CI").is_err(),
                "CI runs as root and must be able to create bridges and network namespaces"
            );
            eprintln!("skipped: cannot create a bridge here");
            return None;
        }
        let mut topology = Topology {
            bridge,
            host_ip: format!("10.77.{octet}.1"),
            network: format!("10.77.{octet}.0/24"),
            regions: Vec::new(),
        };
        let host_cidr = format!("{}/24", topology.host_ip);
        for cmd in [
            vec!["ip", "addr", "add", &host_cidr, "dev", &topology.bridge],
            vec!["ip", "link", "set", &topology.bridge, "up"],
        ] {
            assert!(sh(&cmd), "{cmd:?}");
        }
        for (i, name) in names.iter().enumerate() {
            let region = Region {
                ns: format!("lb-{name}-{tag}"),
                outer: format!("lb{i}{tag}o"),
                ip: format!("10.77.{octet}.{}", i + 2),
            };
            let inner = format!("lb{i}{tag}i");
            let (ns, outer) = (region.ns.clone(), region.outer.clone());
            let cidr = format!("{}/24", region.ip);
            assert!(sh(&["ip", "netns", "add", &ns]), "ip netns add {ns}");
            topology.regions.push(region);
            for cmd in [
                vec!["ip", "link", "add", &outer, "type", "veth", "peer", "name", &inner],
                vec!["ip", "link", "set", &inner, "netns", &ns],
                vec!["ip", "link", "set", &outer, "master", &topology.bridge],
                vec!["ip", "link", "set", &outer, "up"],
                vec!["ip", "-n", &ns, "addr", "add", &cidr, "dev", &inner],
                vec!["ip", "-n", &ns, "link", "set", &inner, "up"],
                vec!["ip", "-n", &ns, "link", "set", "lo", "up"],
            ] {
                assert!(sh(&cmd), "{cmd:?}");
            }
        }
        Some(topology)
    }
}

impl Region {
    /// A TCP listener inside the region, on its address: a thread enters the namespace
    /// (`setns`) and answers every connection with `greeting`.
    pub fn greeter(&self, greeting: &'static str) -> std::net::SocketAddr {
        let path = format!("/var/run/netns/{}", self.ns);
        let ip: std::net::IpAddr = self.ip.parse().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).unwrap();
            nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let listener = std::net::TcpListener::bind((ip, 0)).unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            super::serve_greeting(listener, greeting);
        });
        rx.recv().unwrap()
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        // A veth pair goes at once with either end; with its namespace only when the kernel
        // gets round to destroying that.
        for region in &self.regions {
            sh(&["ip", "link", "del", &region.outer]);
            sh(&["ip", "netns", "del", &region.ns]);
        }
        sh(&["ip", "link", "del", &self.bridge]);
    }
}
