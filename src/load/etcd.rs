//! A minimal etcd v3 client, only so the load runner can drive etcd with the same workers it
//! uses for dsh. It speaks etcd's gRPC-gateway JSON API over plain HTTP/1.1 keep-alive
//! connections (a hand-written client: no TLS, no gRPC, no extra crates) and sends every
//! request to the current leader, the way dsh's client does, so both systems pay the same hops.
//! It must stay a measuring tool: no retries that would hide a failed operation from the
//! caller, no features beyond put, get and leader discovery.

use crate::error::{Error, Result};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// etcd's own client gives up on a request after a few seconds; 2 s keeps a stuck member from
/// stalling a worker for long while staying far above normal latencies.
const OP_TIMEOUT: Duration = Duration::from_secs(2);
const STATUS_TIMEOUT: Duration = Duration::from_millis(500);
/// Bounds on what a (possibly misbehaving) server can make us buffer.
const MAX_HEADER_LINE: u64 = 8 * 1024;
const MAX_BODY: usize = 16 * 1024 * 1024;

pub struct Etcd {
    shared: Arc<Shared>,
}

struct Shared {
    endpoints: Vec<String>,
    /// Endpoint index of the leader, as last discovered; cleared by a connection that failed on it.
    leader: Mutex<Option<usize>>,
    /// Serialises discovery so that many workers failing at once ask the cluster only once.
    /// Holds when the last discovery failed, letting waiters reuse that answer.
    discovery: tokio::sync::Mutex<Option<Instant>>,
}

impl Etcd {
    /// endpoints: "host:port" of etcd client URLs (http, no TLS).
    pub fn new(endpoints: Vec<String>) -> Result<Self> {
        if endpoints.is_empty() {
            return Err(Error::usage("etcd: give at least one endpoint"));
        }
        let leader = Mutex::new(None);
        let discovery = tokio::sync::Mutex::new(None);
        Ok(Etcd { shared: Arc::new(Shared { endpoints, leader, discovery }) })
    }

    /// A connection for one worker; every worker talks to the leader, so `worker` only names it.
    pub fn connection(&self, worker: usize) -> EtcdConn {
        EtcdConn { shared: self.shared.clone(), worker, stream: None }
    }

    /// Index into `endpoints` of the member that is leader now.
    pub async fn leader(&self) -> Result<usize> {
        let i = tokio::time::timeout(OP_TIMEOUT, discover(&self.shared.endpoints))
            .await
            .map_err(|_| Error::timeout("etcd: leader discovery timed out"))??;
        *lock(&self.shared.leader) = Some(i);
        Ok(i)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    async fn leader(&self) -> Result<usize> {
        if let Some(i) = *lock(&self.leader) {
            return Ok(i);
        }
        let asked = Instant::now();
        let mut failed_at = self.discovery.lock().await;
        if let Some(i) = *lock(&self.leader) {
            return Ok(i);
        }
        if failed_at.is_some_and(|t| t >= asked) {
            return Err(Error::no_quorum("etcd: no leader (just checked)"));
        }
        match discover(&self.endpoints).await {
            Ok(i) => {
                *lock(&self.leader) = Some(i);
                Ok(i)
            }
            Err(e) => {
                *failed_at = Some(Instant::now());
                drop(failed_at);
                // While an election runs every operation would fail at once: a short pause keeps
                // workers from spinning through thousands of doomed requests.
                tokio::time::sleep(Duration::from_millis(10)).await;
                Err(e)
            }
        }
    }

    fn forget_leader(&self, failed: usize) {
        let mut leader = lock(&self.leader);
        if *leader == Some(failed) {
            *leader = None;
        }
    }
}

/// Asks every member for its status and picks the leader named in the newest term.
async fn discover(endpoints: &[String]) -> Result<usize> {
    let asks = endpoints.iter().map(|ep| async move {
        let ask = async {
            let mut s = connect(ep).await?;
            call(&mut s, ep, "/v3/maintenance/status", &json!({})).await
        };
        // A hung member must not use up the whole operation's time while the others answered.
        tokio::time::timeout(STATUS_TIMEOUT, ask)
            .await
            .unwrap_or_else(|_| Err(Error::timeout(format!("etcd {ep}: no status within {STATUS_TIMEOUT:?}"))))
    });
    let statuses: Vec<Result<Value>> = futures::future::join_all(asks).await;
    if let Some(Err(e)) = statuses.iter().find(|s| s.is_ok()).or(statuses.first()) {
        return Err(e.clone()); // no member answered: say why (refused, timed out), not "no leader"
    }
    let id = |v: &Value, ptr: &str| v.pointer(ptr).and_then(as_u64).filter(|&id| id != 0);
    let term = |v: &Value| v.get("raftTerm").and_then(as_u64).unwrap_or(0);
    let leader = statuses
        .iter()
        .filter_map(|s| s.as_ref().ok())
        .filter_map(|v| id(v, "/leader").map(|l| (term(v), l)))
        .max()
        .map(|(_, l)| l)
        .ok_or_else(|| Error::no_quorum("etcd: no member reports a leader"))?;
    statuses
        .iter()
        .position(|s| s.as_ref().ok().and_then(|v| id(v, "/header/member_id")) == Some(leader))
        .ok_or_else(|| Error::no_quorum(format!("etcd: leader {leader:x} is not reachable")))
}

/// The gateway renders 64-bit integers as JSON strings.
fn as_u64(v: &Value) -> Option<u64> {
    v.as_str().and_then(|s| s.parse().ok()).or_else(|| v.as_u64())
}

pub struct EtcdConn {
    shared: Arc<Shared>,
    worker: usize,
    /// The open connection and the endpoint it goes to.
    stream: Option<(usize, BufReader<TcpStream>)>,
}

impl EtcdConn {
    pub async fn put(&mut self, key: &str, value: &str) -> Result<()> {
        let body = json!({ "key": b64_encode(key.as_bytes()), "value": b64_encode(value.as_bytes()) });
        self.request("/v3/kv/put", body).await.map(|_| ())
    }

    pub async fn get(&mut self, key: &str) -> Result<Option<String>> {
        let v = self.request("/v3/kv/range", json!({ "key": b64_encode(key.as_bytes()) })).await?;
        let Some(kv) = v.get("kvs").and_then(|kvs| kvs.get(0)) else {
            return Ok(None);
        };
        // The gateway leaves out empty fields, so a missing value is an empty one.
        let encoded = kv.get("value").and_then(Value::as_str).unwrap_or("");
        let bytes = b64_decode(encoded).ok_or_else(|| Error::internal("etcd: value is not base64"))?;
        String::from_utf8(bytes).map(Some).map_err(|_| Error::internal("etcd: value is not UTF-8"))
    }

    async fn request(&mut self, path: &str, body: Value) -> Result<Value> {
        let outcome = tokio::time::timeout(OP_TIMEOUT, self.request_once(path, &body)).await;
        let res = outcome.unwrap_or_else(|_| Err(Error::timeout(format!("etcd: {path} took over {OP_TIMEOUT:?}"))));
        if let Err(e) = &res {
            // Whatever failed, the next operation starts from a fresh connection to a leader
            // found again: that is how a killed or deposed leader is survived.
            if let Some((i, _)) = self.stream.take() {
                self.shared.forget_leader(i);
            }
            return Err(Error::new(e.kind, format!("{} (worker {})", e.message, self.worker)));
        }
        res
    }

    async fn request_once(&mut self, path: &str, body: &Value) -> Result<Value> {
        let (i, stream) = match &mut self.stream {
            Some((i, s)) => (*i, s),
            None => {
                let i = self.shared.leader().await?;
                let s = connect(&self.shared.endpoints[i]).await?;
                let (_, s) = self.stream.insert((i, s));
                (i, s)
            }
        };
        call(stream, &self.shared.endpoints[i], path, body).await
    }
}

async fn connect(endpoint: &str) -> Result<BufReader<TcpStream>> {
    let s = TcpStream::connect(endpoint).await.map_err(|e| io_error(endpoint, e))?;
    // Requests are single small writes; Nagle would hold them back waiting for an ACK.
    s.set_nodelay(true).map_err(|e| io_error(endpoint, e))?;
    Ok(BufReader::new(s))
}

/// One request/response exchange on an open connection; the response must be a 200 with JSON.
async fn call(stream: &mut BufReader<TcpStream>, endpoint: &str, path: &str, body: &Value) -> Result<Value> {
    let body = body.to_string();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {endpoint}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.get_mut().write_all(req.as_bytes()).await.map_err(|e| io_error(endpoint, e))?;
    let (status, body) = read_response(stream).await.map_err(|e| io_error(endpoint, e))?;
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| Error::internal(format!("etcd {endpoint}: bad JSON in HTTP {status} response: {e}")))?;
    if status == 200 && v.get("error").is_none() {
        return Ok(v);
    }
    let msg = v.get("error").or_else(|| v.get("message")).and_then(Value::as_str).unwrap_or("no message");
    let msg = format!("etcd {endpoint}: HTTP {status}: {msg}");
    let leaderless = ["no leader", "leader changed", "not leader", "timed out"];
    Err(if leaderless.iter().any(|s| msg.contains(s)) { Error::no_quorum(msg) } else { Error::internal(msg) })
}

fn io_error(endpoint: &str, e: std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::TimedOut => Error::timeout(format!("etcd {endpoint}: {e}")),
        std::io::ErrorKind::InvalidData => Error::internal(format!("etcd {endpoint}: malformed response: {e}")),
        _ => Error::unreachable(format!("etcd {endpoint}: {e}")),
    }
}

fn bad(what: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.into())
}

/// Reads one HTTP/1.1 response: status code and body (Content-Length or chunked).
async fn read_response<R: AsyncBufRead + Unpin>(r: &mut R) -> std::io::Result<(u16, Vec<u8>)> {
    let status_line = read_line(r).await?;
    let status = match status_line.split(' ').collect::<Vec<_>>()[..] {
        [version, code, ..] if version.starts_with("HTTP/1.") => code.parse().map_err(|_| bad("bad status code"))?,
        _ => return Err(bad(format!("bad status line {status_line:?}"))),
    };
    let (mut length, mut chunked) = (None, false);
    loop {
        let line = read_line(r).await?;
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(bad("bad header line"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().map_err(|_| bad("bad Content-Length"))?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let size_line = read_line(r).await?;
            let hex = size_line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(hex, 16).map_err(|_| bad("bad chunk size"))?;
            if size == 0 {
                while !read_line(r).await?.is_empty() {} // trailers
                break;
            }
            read_exact_into(r, &mut body, size).await?;
            if !read_line(r).await?.is_empty() {
                return Err(bad("chunk not followed by CRLF"));
            }
        }
    } else {
        // Every etcd response has a body; without a length it would run to connection close,
        // which a keep-alive client cannot wait for.
        let len = length.ok_or_else(|| bad("response has neither Content-Length nor chunks"))?;
        read_exact_into(r, &mut body, len).await?;
    }
    Ok((status, body))
}

async fn read_exact_into<R: AsyncBufRead + Unpin>(r: &mut R, body: &mut Vec<u8>, n: usize) -> std::io::Result<()> {
    if body.len() + n > MAX_BODY {
        return Err(bad("response body too large"));
    }
    let start = body.len();
    body.resize(start + n, 0);
    r.read_exact(&mut body[start..]).await.map(|_| ())
}

/// One CRLF-terminated line without its terminator; EOF before it means the peer went away.
async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R) -> std::io::Result<String> {
    let mut line = String::new();
    let n = r.take(MAX_HEADER_LINE).read_line(&mut line).await?;
    if n == 0 || !line.ends_with('\n') {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed mid-response"));
    }
    line.truncate(line.trim_end_matches(['\r', '\n']).len());
    Ok(line)
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            let c = if i <= chunk.len() { B64[(n >> (18 - 6 * i)) as usize & 63] } else { b'=' };
            out.push(c as char);
        }
    }
    out
}

/// Standard alphabet, padding optional; `None` on anything else.
fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for &c in s {
        let v = B64.iter().position(|&b| b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    // A lone leftover character carries less than a byte: the input was cut short.
    (bits < 6).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for (plain, encoded) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("load:17", "bG9hZDoxNw==")]
        {
            assert_eq!(b64_encode(plain.as_bytes()), encoded);
            assert_eq!(b64_decode(encoded).as_deref(), Some(plain.as_bytes()));
        }
        assert_eq!(b64_decode("Zg"), Some(b"f".to_vec()));
        assert_eq!(b64_decode("Z"), None);
        assert_eq!(b64_decode("Zm9v!"), None);
    }

    #[tokio::test]
    async fn parses_length_and_chunked_responses() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 7\r\n\r\n{\"a\":1}next";
        let mut r = &plain[..];
        assert_eq!(read_response(&mut r).await.ok(), Some((200, b"{\"a\":1}".to_vec())));
        assert_eq!(r, b"next");

        // etcd's gateway sends error bodies this way, with a gRPC trailer after the last chunk.
        let chunked = b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3;x=y\r\n:1}\r\n0\r\nGrpc-Trailer-Content-Type: application/grpc\r\n\r\n";
        assert_eq!(read_response(&mut &chunked[..]).await.ok(), Some((503, b"{\"a\":1}".to_vec())));

        let cut = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}";
        assert!(read_response(&mut &cut[..]).await.is_err());
        assert!(read_response(&mut &b"SSH-2.0\r\n\r\n"[..]).await.is_err());
    }
}
