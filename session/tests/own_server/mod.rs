//! For tests that run server processes of their own on loopback ports.
// Each test crate that includes this uses only part of it.
#![allow(dead_code)]

use std::net::TcpListener;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A loopback port nothing listens on right now, and never handed out
/// before in this process: tests run in parallel, and two of them starting
/// a server on one port would talk to each other's.
pub fn spare_port() -> u16 {
    static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut handed_out = HANDED_OUT.lock().unwrap();
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
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
