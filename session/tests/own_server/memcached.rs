//! A memcached process of a test's own. Needs the `memcached` binary
//! (scripts/test.sh installs it); when run as root, memcached drops to the
//! `memcache` user.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A memcached child process, killed when dropped.
pub struct Memcached {
    child: Option<Child>,
    pub port: u16,
}

impl Memcached {
    /// Starts memcached on a spare port.
    pub async fn start_spare() -> Self {
        Self::start(super::spare_port(false)).await
    }

    /// Starts memcached on `port` (again, after [`Memcached::kill`]) and
    /// waits until it accepts connections.
    pub async fn start(port: u16) -> Self {
        let child = Command::new("memcached")
            .args(["-u", "memcache", "-l", "127.0.0.1", "-U", "0", "-m", "16"])
            .arg("-p")
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the memcached binary (scripts/test.sh installs it)");
        let server = Self {
            child: Some(child),
            port,
        };
        super::wait_until(
            &format!("memcached on port {port} did not start"),
            Duration::from_secs(10),
            || async {
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
            },
        )
        .await;
        // Ours, not some other process that took the port first.
        let ours = server.child.as_ref().map(Child::id);
        assert_eq!(
            memcached_pid(port).await,
            ours,
            "port {port} is answered by another memcached"
        );
        server
    }

    pub fn url(&self) -> String {
        format!("memcache://127.0.0.1:{}", self.port)
    }

    /// Freezes the process (SIGSTOP) until [`Memcached::thaw`].
    pub fn freeze(&self) {
        super::freeze(self.child.as_ref());
    }

    /// Resumes a frozen process (SIGCONT).
    pub fn thaw(&self) {
        super::signal(self.child.as_ref(), "-CONT");
    }

    /// SIGKILL, and wait until the process is gone.
    pub fn kill(&mut self) {
        super::kill(&mut self.child);
    }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The pid of the memcached answering on `port` (`stats`).
async fn memcached_pid(port: u16) -> Option<u32> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    stream.write_all(b"stats\r\n").await.ok()?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    while !reply.ends_with(b"END\r\n") {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        reply.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&reply)
        .lines()
        .find_map(|line| line.strip_prefix("STAT pid "))
        .and_then(|pid| pid.trim().parse().ok())
}
