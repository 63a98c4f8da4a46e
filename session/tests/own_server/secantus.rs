//! A SecantusDB (MongoDB wire protocol) process of a test's own, on a spare
//! port, for tests that stop, freeze or restart the server, or need a replica
//! set. Never touches the shared server on 27017.
//!
//! Uses the venv that `scripts/test-servers.sh` creates (`$TS_VENV`, default
//! `$HOME/.cache/test-servers-venv`) and panics, with what to do, when it is
//! missing. The server exits when the test process does (it watches its
//! stdin), when the `OwnServer` is dropped, or when it is stopped.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Started through SecantusDB's Python API, as `scripts/test-servers.sh`
/// does (its CLI ignores `ttl_sweep_seconds`).
const SCRIPT: &str = r#"
import os, signal, sys, threading
from secantus.server import SecantusDBServer
s = SecantusDBServer(host="127.0.0.1", port=int(sys.argv[1]), storage_path=sys.argv[2],
                     replica_set_name=sys.argv[3] or None, enable_test_commands=False,
                     ttl_sweep_seconds=1.0, cache_size="64M")
def stop(*_):
    s.stop()
    os._exit(0)
signal.signal(signal.SIGTERM, stop)
def watch_parent():
    sys.stdin.read()  # EOF: the test process is gone, however it ended
    try:
        os.remove(sys.argv[4])  # nobody is left to read the log
    finally:
        os.kill(os.getpid(), signal.SIGTERM)
threading.Thread(target=watch_parent, daemon=True).start()
s.start()
s.wait()
"#;

/// Where the server keeps its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// In memory: lost when the process stops.
    Memory,
    /// In a fresh temporary directory, kept across [`OwnServer::restart`].
    Disk,
}

pub struct OwnServer {
    pub port: u16,
    storage: String,
    dir: Option<PathBuf>,
    replica_set: String,
    log: PathBuf,
    child: Option<Child>,
}

fn python() -> PathBuf {
    let venv = std::env::var_os("TS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                .join(".cache/test-servers-venv")
        });
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "{} not found: run `bash scripts/test-servers.sh` to create the SecantusDB venv",
        python.display()
    );
    python
}

impl OwnServer {
    /// Starts a server on a spare port and waits until it accepts
    /// connections. `replica_set`: `Some(name)` for a single-node replica
    /// set (transactions), `None` for standalone.
    pub fn start(storage: Storage, replica_set: Option<&str>) -> Self {
        let port = super::spare_port(false);
        let tag = format!("typed-sessions-secantus-{}-{port}", std::process::id());
        let dir = (storage == Storage::Disk).then(|| {
            let dir = std::env::temp_dir().join(&tag);
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            dir
        });
        let mut server = Self {
            port,
            storage: dir
                .as_ref()
                .map_or_else(|| ":memory:".to_owned(), |d| d.display().to_string()),
            dir,
            replica_set: replica_set.unwrap_or_default().to_owned(),
            log: std::env::temp_dir().join(format!("{tag}.log")),
            child: None,
        };
        server.spawn();
        server
    }

    /// A URI with short timeouts, so calls to a stopped server fail fast.
    pub fn url(&self) -> String {
        format!(
            "mongodb://127.0.0.1:{}/?serverSelectionTimeoutMS=1000&connectTimeoutMS=1000",
            self.port
        )
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "server already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(python())
            .args([
                "-c",
                SCRIPT,
                &self.port.to_string(),
                &self.storage,
                &self.replica_set,
            ])
            .arg(&self.log)
            .stdin(Stdio::piped())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start SecantusDB");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let address = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "SecantusDB exited ({status}); log:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "SecantusDB not listening on {address} after 30 s; log: {}",
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal(&self, signal: &str) {
        super::signal(self.child.as_ref(), signal);
    }

    /// Stops the server cleanly (SIGTERM) and waits for it to exit.
    pub fn stop(&mut self) {
        self.signal("-TERM");
        let mut child = self.child.take().unwrap();
        child.wait().unwrap();
        // The port is closed once the process is gone.
    }

    /// Kills the server (SIGKILL): no shutdown, nothing flushed that was
    /// not already on disk. Waits for it to exit.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("server running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Starts it again on the same port with the same storage.
    pub fn restart(&mut self) {
        self.spawn();
    }

    /// Freezes the process (SIGSTOP): connections are accepted by the kernel
    /// but nothing answers.
    pub fn freeze(&self) {
        super::freeze(self.child.as_ref());
    }

    /// Resumes a frozen process (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL ends a frozen process too
            let _ = child.wait();
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}
