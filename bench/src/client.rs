//! The load generator: a closed loop of workers, each with its own
//! keep-alive HTTP/1.1 connection and its own cookie (its own session).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::sync::Barrier;

use crate::Scenario;

/// Phases of a cell, as the coordinator announces them.
pub const WARMUP: u8 = 0;
pub const MEASURE: u8 = 1;
pub const STOP: u8 = 2;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What one worker saw while the coordinator said `MEASURE`.
#[derive(Debug, Default)]
pub struct WorkerResult {
    /// Latency of each request completed in the window, in nanoseconds.
    pub latencies: Vec<u64>,
    /// Every request answered, set-up and warm-up included.
    pub total: u64,
    /// Requests that failed (status other than 200, connection errors).
    pub errors: u64,
    /// Answers with the wrong counter value: the session was not kept.
    pub wrong: u64,
    /// The first problem, for the report.
    pub first_problem: Option<String>,
}

impl WorkerResult {
    fn problem(&mut self, what: String) {
        if self.first_problem.is_none() {
            self.first_problem = Some(what);
        }
    }
}

struct Connection {
    sender: SendRequest<Empty<Bytes>>,
    host: HeaderValue,
}

impl Connection {
    async fn open(addr: SocketAddr) -> Result<Self, BoxError> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // Ends when the worker drops its sender or the server goes away.
            let _ = connection.await;
        });
        Ok(Self {
            sender,
            host: HeaderValue::from_str(&addr.to_string())?,
        })
    }

    /// One GET: the status, the body, and the `name=value` of the last
    /// `Set-Cookie`, if any.
    async fn get(
        &mut self,
        path: &'static str,
        cookie: Option<&HeaderValue>,
    ) -> Result<(StatusCode, Bytes, Option<HeaderValue>), BoxError> {
        let mut request = Request::get(path).header(header::HOST, self.host.clone());
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie.clone());
        }
        let request = request.body(Empty::new())?;
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let set_cookie = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .next_back()
            .map(|value| {
                let bytes = value.as_bytes();
                let end = bytes.iter().position(|&b| b == b';').unwrap_or(bytes.len());
                HeaderValue::from_bytes(&bytes[..end])
            })
            .transpose()?;
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body, set_cookie))
    }
}

/// Runs one worker: opens its connection, sets up its session, waits at
/// `start` for the others, then loops until the phase is `STOP`.
pub async fn worker(
    addr: SocketAddr,
    scenario: Scenario,
    verify: bool,
    phase: Arc<AtomicU8>,
    start: Arc<Barrier>,
    expected_len: usize,
) -> WorkerResult {
    let mut result = WorkerResult {
        latencies: Vec::with_capacity(expected_len),
        ..WorkerResult::default()
    };
    let setup = setup(addr, scenario).await;
    // Everyone reaches the barrier, so a failed setup cannot hang the cell.
    start.wait().await;
    let (mut connection, mut cookie, mut counter) = match setup {
        Ok(ready) => ready,
        Err(error) => {
            result.errors += 1;
            result.problem(format!("setup failed: {error}"));
            return result;
        }
    };
    let path = scenario.path();
    loop {
        if phase.load(Ordering::Acquire) == STOP {
            break;
        }
        let sent_cookie = if scenario == Scenario::New {
            None
        } else {
            cookie.as_ref()
        };
        let began = Instant::now();
        let answer = connection.get(path, sent_cookie).await;
        let latency = began.elapsed();
        let in_window = phase.load(Ordering::Acquire) == MEASURE;
        result.total += 1;
        let (status, body, set_cookie) = match answer {
            Ok(answer) => answer,
            Err(error) => {
                result.errors += 1;
                result.problem(format!("request failed: {error}"));
                // The connection is probably gone; one more try on a new one.
                match Connection::open(addr).await {
                    Ok(fresh) => connection = fresh,
                    Err(_) => break,
                }
                continue;
            }
        };
        if status != StatusCode::OK {
            result.errors += 1;
            result.problem(format!(
                "status {status}: {}",
                String::from_utf8_lossy(&body)
            ));
            continue;
        }
        if scenario != Scenario::New
            && let Some(value) = set_cookie
        {
            cookie = Some(value);
        }
        if verify {
            let expect = match scenario {
                Scenario::New => 1,
                _ if scenario.increments() => counter + 1,
                _ => counter,
            };
            if body.as_ref() == expect.to_string().as_bytes() {
                if scenario.increments() {
                    counter = expect;
                }
            } else {
                result.wrong += 1;
                result.problem(format!(
                    "expected {expect}, got {:?}",
                    String::from_utf8_lossy(&body)
                ));
                if let Ok(got) = std::str::from_utf8(&body).unwrap_or("").parse() {
                    counter = got;
                }
            }
        }
        if in_window {
            result
                .latencies
                .push(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
        }
    }
    if verify && let Some(path) = scenario.check_path() {
        match connection.get(path, cookie.as_ref()).await {
            Ok((StatusCode::OK, body, _)) if body.as_ref() == b"ok" => {}
            Ok((status, body, _)) => {
                result.wrong += 1;
                result.problem(format!(
                    "{path}: status {status}: {}",
                    String::from_utf8_lossy(&body)
                ));
            }
            Err(error) => {
                result.errors += 1;
                result.problem(format!("{path} failed: {error}"));
            }
        }
    }
    result
}

/// Opens the worker's connection and makes its session: the cookie and the
/// counter it holds now.
async fn setup(
    addr: SocketAddr,
    scenario: Scenario,
) -> Result<(Connection, Option<HeaderValue>, u64), BoxError> {
    let mut connection = Connection::open(addr).await?;
    let Some(path) = scenario.init_path() else {
        return Ok((connection, None, 0));
    };
    let (status, body, cookie) = connection.get(path, None).await?;
    if status != StatusCode::OK {
        return Err(format!("setup {path}: status {status}").into());
    }
    let counter = std::str::from_utf8(&body)?.parse()?;
    Ok((connection, cookie, counter))
}

/// Sleeps until `deadline`.
pub async fn until(deadline: Instant) {
    tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await;
}

/// A duration from fractional seconds.
pub fn secs(seconds: f64) -> Duration {
    Duration::from_secs_f64(seconds.max(0.0))
}
