//! Server processes of a test's own, on spare loopback ports: for tests that
//! kill, freeze, restart or reconfigure a server, which must never happen to
//! the shared ones. One launcher per kind of server (`redis-server` plain,
//! cluster and TLS; memcached; SecantusDB), all picking ports here.
//!
//! Only std and tokio: both the store tests (`session/tests/`) and the HTTP
//! tests (`tests/tests/`, through `#[path]`) include this module.
// Each test crate that includes this uses only part of it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod memcached;
pub mod redis;
pub mod secantus;

use std::net::TcpListener;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A loopback port nothing listens on right now, and never handed out
/// before in this process: tests run in parallel, and two of them starting
/// a server on one port would talk to each other's. With `bus_too`, also
/// one whose cluster bus port (+10000) is free.
pub fn spare_port(bus_too: bool) -> u16 {
    static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    for _ in 0..1000 {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let bus_free = || {
            port.checked_add(10000)
                .is_some_and(|bus| TcpListener::bind(("127.0.0.1", bus)).is_ok())
        };
        if bus_too && !bus_free() {
            continue;
        }
        let mut handed_out = HANDED_OUT.lock().unwrap();
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
    panic!("no spare port found");
}

/// Polls `ready` until it holds: a freshly started server process gives no
/// other signal of readiness. Fails after `limit`, saying `what`.
pub async fn wait_until<F, Fut>(what: &str, limit: Duration, mut ready: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !ready().await {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until process `pid` is stopped (after a SIGSTOP: `kill` returns
/// before the process has stopped, and it may still answer a request).
pub fn wait_until_stopped(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap()
        .rsplit(')')
        .next()
        .is_some_and(|rest| rest.trim_start().starts_with('T'))
    {
        assert!(Instant::now() < deadline, "process {pid} did not stop");
        std::thread::yield_now();
    }
}

/// SIGKILL, then reap: the port is closed once this returns.
pub fn kill(child: &mut Option<std::process::Child>) {
    if let Some(mut child) = child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Sends `signal` (such as `-STOP`) to the running `child` with kill(1).
pub fn signal(child: Option<&std::process::Child>, signal: &str) {
    let pid = child.expect("server running").id();
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

/// Freezes `child` (SIGSTOP) and waits until it is stopped: connections are
/// still accepted by the kernel but nothing answers.
pub fn freeze(child: Option<&std::process::Child>) {
    signal(child, "-STOP");
    wait_until_stopped(child.expect("server running").id());
}
