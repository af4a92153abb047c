//! QUIC endpoints and request/response over streams. One request is one bidirectional stream:
//! the caller writes a frame and finishes its side, the callee answers with one frame. Streams are
//! cheap, so concurrency needs no multiplexing protocol of our own and a slow request never
//! blocks another.
//!
//! What one peer can make this process hold is bounded here: streams per connection, unread
//! bytes per connection (QUIC flow control), a frame buffer that grows only with the bytes that
//! arrived, a deadline on the rest of a frame once it has begun, and a process-wide budget for
//! large frames still arriving. Nothing here waits on a peer without a bound once it has started
//! sending.

use super::TlsFiles;
use crate::error::{Error, Result};
use crate::proto::{self, FRAME_HEADER};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use serde::{de::DeserializeOwned, Serialize};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Peer-to-peer Raft traffic and node-internal forwarding.
pub const ALPN_RAFT: &[u8] = b"dsh-raft/1";
/// Clients: shells, scripts, load generators.
pub const ALPN_CLIENT: &[u8] = b"dsh-client/1";
/// A node's supervisor: crash, restart, pause and resume the node process.
pub const ALPN_ADMIN: &[u8] = b"dsh-admin/1";

/// Requests one connection may have open at once: room for `load --concurrency 64` with a
/// watchdog ping each, and for a follower forwarding many clients' writes, yet a peer that opens
/// more simply waits for credit.
pub const MAX_STREAMS: u32 = 256;
/// Bytes a peer may send on one connection ahead of what this side has read.
const CONNECTION_WINDOW: u32 = 32 << 20;
/// Once a frame has begun, no read may wait longer than this for its next bytes…
const STALL: Duration = Duration::from_secs(3);
/// …and the whole frame must be in within this (16 MiB at about half a MiB a second).
const FRAME_DEADLINE: Duration = Duration::from_secs(30);
/// A frame buffer starts at most this large and then grows with what arrives; frames no larger
/// are never refused for memory, so small requests get through whatever else is arriving.
const SMALL_FRAME: usize = 64 << 10;
/// Buffer space of larger frames still arriving, across the process: past it, another large
/// frame is refused (`busy`) rather than buffered.
const LARGE_FRAMES_BUDGET: usize = 128 << 20;

/// The largest hint sent (`Peer::hint`).
const MAX_HINT: usize = 256 << 10;

static LARGE_FRAMES_HELD: AtomicUsize = AtomicUsize::new(0);

fn transport() -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.max_concurrent_bidi_streams(MAX_STREAMS.into())
        .max_concurrent_uni_streams(0u32.into())
        .receive_window(CONNECTION_WINDOW.into())
        // A peer that restarts on the same address never answers the old connection (its
        // stateless resets carry a new key); a short idle timeout lets us notice and redial.
        .keep_alive_interval(Some(Duration::from_millis(200)))
        .max_idle_timeout(Some(Duration::from_millis(1500).try_into().expect("idle timeout fits")))
        // Loopback and LAN demos: start from a realistic RTT rather than the 333 ms default,
        // so a lost packet early in a connection is retransmitted quickly.
        .initial_rtt(Duration::from_millis(10));
    Arc::new(t)
}

/// A QUIC endpoint: one UDP socket that may accept connections and dial others.
#[derive(Clone)]
pub struct Endpoint {
    inner: quinn::Endpoint,
    raft: quinn::ClientConfig,
    client: quinn::ClientConfig,
    admin: quinn::ClientConfig,
}

impl Endpoint {
    /// A node's endpoint: accepts peers and clients on `addr` and can dial other nodes.
    pub fn server(addr: SocketAddr, tls: &TlsFiles) -> Result<Self> {
        Self::serving(addr, tls, &[ALPN_RAFT, ALPN_CLIENT])
    }

    /// An endpoint accepting these ALPNs on `addr`.
    pub fn serving(addr: SocketAddr, tls: &TlsFiles, alpns: &[&[u8]]) -> Result<Self> {
        let crypto = QuicServerConfig::try_from(tls.server_config(alpns)?)
            .map_err(|e| Error::internal(format!("QUIC server config: {e}")))?;
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        server.transport_config(transport());
        let inner =
            quinn::Endpoint::server(server, addr).map_err(|e| Error::usage(format!("cannot listen on {addr}: {e}")))?;
        Self::with(inner, tls)
    }

    /// A dial-only endpoint on an ephemeral port.
    pub fn client(tls: &TlsFiles) -> Result<Self> {
        let inner = quinn::Endpoint::client((std::net::Ipv4Addr::UNSPECIFIED, 0).into())
            .map_err(|e| Error::internal(format!("bind UDP socket: {e}")))?;
        Self::with(inner, tls)
    }

    fn with(inner: quinn::Endpoint, tls: &TlsFiles) -> Result<Self> {
        let config = |alpn| -> Result<quinn::ClientConfig> {
            let crypto = QuicClientConfig::try_from(tls.client_config(alpn)?)
                .map_err(|e| Error::internal(format!("QUIC client config: {e}")))?;
            let mut c = quinn::ClientConfig::new(Arc::new(crypto));
            c.transport_config(transport());
            Ok(c)
        };
        Ok(Endpoint { raft: config(ALPN_RAFT)?, client: config(ALPN_CLIENT)?, admin: config(ALPN_ADMIN)?, inner })
    }

    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.inner.local_addr()?)
    }

    pub async fn accept(&self) -> Option<quinn::Incoming> {
        self.inner.accept().await
    }

    pub fn close(&self) {
        self.inner.close(0u32.into(), b"shutdown");
    }

    async fn connect(&self, addr: SocketAddr, server_name: &str, alpn: &[u8]) -> Result<quinn::Connection> {
        let config = match alpn {
            ALPN_RAFT => &self.raft,
            ALPN_ADMIN => &self.admin,
            _ => &self.client,
        };
        let connecting = self
            .inner
            .connect_with(config.clone(), addr, server_name)
            .map_err(|e| Error::unreachable(format!("{addr}: {e}")))?;
        connecting.await.map_err(|e| Error::unreachable(format!("{addr}: {e}")))
    }
}

/// A remote node reached over one cached connection, re-dialled when it breaks.
pub struct Peer {
    endpoint: Endpoint,
    addr: String,
    alpn: &'static [u8],
    conn: tokio::sync::Mutex<Link>,
}

#[derive(Default)]
struct Link {
    conn: Option<quinn::Connection>,
    /// A handshake under way. It runs in its own task so that a caller giving up (a 50 ms
    /// AppendEntries timeout) does not abort it: on a loaded machine a handshake can take longer
    /// than any one RPC's budget, and aborting each one meant never connecting at all.
    dial: Option<tokio::task::JoinHandle<Result<quinn::Connection>>>,
}

impl Peer {
    pub fn new(endpoint: Endpoint, addr: impl Into<String>, alpn: &'static [u8]) -> Self {
        Peer { endpoint, addr: addr.into(), alpn, conn: tokio::sync::Mutex::default() }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The live connection, dialling if there is none. Concurrent callers share one dial.
    pub async fn connection(&self) -> Result<quinn::Connection> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.conn.as_ref() {
            if c.close_reason().is_none() {
                return Ok(c.clone());
            }
        }
        if guard.dial.is_none() {
            let (host, _) = self
                .addr
                .rsplit_once(':')
                .ok_or_else(|| Error::usage(format!("address `{}` has no port", self.addr)))?;
            let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
            let sock = tokio::net::lookup_host(&self.addr)
                .await
                .map_err(|e| Error::unreachable(format!("resolve {}: {e}", self.addr)))?
                .next()
                .ok_or_else(|| Error::unreachable(format!("{} resolves to nothing", self.addr)))?;
            let (endpoint, alpn) = (self.endpoint.clone(), self.alpn);
            guard.dial = Some(tokio::spawn(async move { endpoint.connect(sock, &host, alpn).await }));
        }
        // Awaited by reference: if this caller is cancelled, the handshake goes on for the next.
        let dialled = guard.dial.as_mut().expect("dial just ensured").await;
        guard.dial = None;
        let c = dialled.map_err(|e| Error::unreachable(format!("{}: {e}", self.addr)))??;
        guard.conn = Some(c.clone());
        Ok(c)
    }

    /// Forgets the connection, so the next call dials afresh.
    /// A handshake under way is left to finish: it is not the connection that stopped answering,
    /// and aborting it is what kept a slow machine from ever connecting.
    pub async fn reset(&self) {
        if let Some(c) = self.conn.lock().await.conn.take() {
            c.close(0u32.into(), b"reset");
        }
    }

    /// Sends an encoded frame on a new stream of the live connection without waiting for any
    /// answer. A hint: with no live connection it is dropped rather than dialled, and a large
    /// one is dropped too, since it would only send the same bytes twice over a busy link.
    pub async fn hint(&self, frame: &[u8]) -> Result<()> {
        if frame.len() > MAX_HINT {
            return Ok(());
        }
        let conn = match self.conn.try_lock() {
            Ok(guard) => guard.conn.as_ref().filter(|c| c.close_reason().is_none()).cloned(),
            Err(_) => None,
        };
        let Some(conn) = conn else { return Ok(()) };
        let lost = |e: &dyn std::fmt::Display| Error::unreachable(format!("{}: {e}", conn.remote_address()));
        let (mut send, _) = conn.open_bi().await.map_err(|e| lost(&e))?;
        send.write_all(frame).await.map_err(|e| lost(&e))?;
        send.finish().map_err(|e| lost(&e))
    }

    /// Sends one request and waits for its one reply.
    pub async fn call<Q: Serialize, A: DeserializeOwned>(&self, request: &Q) -> Result<A> {
        let conn = self.connection().await?;
        call(&conn, request).await
    }
}

/// One request/reply exchange on a new stream of `conn`. When the peer closed the connection
/// to refuse this certificate, the refusal is the answer rather than the lost stream.
pub async fn call<Q: Serialize, A: DeserializeOwned>(conn: &quinn::Connection, request: &Q) -> Result<A> {
    exchange(conn, request).await.map_err(|e| super::role::refusal(conn).unwrap_or(e))
}

async fn exchange<Q: Serialize, A: DeserializeOwned>(conn: &quinn::Connection, request: &Q) -> Result<A> {
    let lost = |e: &dyn std::fmt::Display| Error::unreachable(format!("{}: {e}", conn.remote_address()));
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| lost(&e))?;
    write_frame(&mut send, request).await?;
    send.finish().map_err(|e| lost(&e))?;
    read_frame(&mut recv).await
}

/// Writes one frame; returns its size in bytes.
pub async fn write_frame<T: Serialize>(send: &mut quinn::SendStream, value: &T) -> Result<usize> {
    let frame = proto::encode(value)?;
    send.write_all(&frame).await.map_err(|e| Error::unreachable(format!("write: {e}")))?;
    Ok(frame.len())
}

/// Reads one frame; an oversized length is refused before its body is read.
pub async fn read_frame<T: DeserializeOwned>(recv: &mut quinn::RecvStream) -> Result<T> {
    read_frame_sized(recv).await.map(|(v, _)| v)
}

/// As `read_frame`, also returning the frame's size in bytes. The first byte may take as long
/// as the other side's work (a reply to a long poll); from then on the frame must keep coming
/// (`Patience`), so a peer that announces a frame and sends no more is cut off.
pub async fn read_frame_sized<T: DeserializeOwned>(recv: &mut quinn::RecvStream) -> Result<(T, usize)> {
    let lost = |e: quinn::ReadError| Error::unreachable(format!("read: {e}"));
    let ended = |got: usize| Error::unreachable(format!("stream ended {got} bytes into a frame"));
    let mut header = [0u8; FRAME_HEADER];
    let mut got = recv.read(&mut header).await.map_err(lost)?.ok_or_else(|| ended(0))?;
    let mut patience = Patience::new();
    while got < FRAME_HEADER {
        let n = patience.wait(got, async { recv.read(&mut header[got..]).await.map_err(lost) }).await?;
        got += n.ok_or_else(|| ended(got))?;
    }
    let len = proto::frame_len(header)?;
    let mut body = Vec::with_capacity(len.min(SMALL_FRAME));
    let mut held = Held(0);
    // Several of quinn's chunks (about one packet each) per wake-up.
    let mut chunks: [_; 32] = std::array::from_fn(|_| Default::default());
    while body.len() < len {
        let n = patience.wait(FRAME_HEADER + body.len(), async { recv.read_chunks(&mut chunks).await.map_err(lost) });
        let n = n.await?.ok_or_else(|| ended(FRAME_HEADER + body.len()))?;
        for chunk in &chunks[..n] {
            // Bytes past the frame belong to nothing: one frame per stream.
            let chunk = &chunk[..chunk.len().min(len - body.len())];
            if body.len() + chunk.len() > body.capacity() {
                let want = (body.capacity() * 2).max(body.len() + chunk.len()).min(len);
                held.grow_to(want)?;
                body.reserve_exact(want - body.len());
            }
            body.extend_from_slice(chunk);
        }
    }
    Ok((proto::decode(&body)?, FRAME_HEADER + len))
}

/// How long the rest of a frame that has begun may take: `STALL` without a byte, and
/// `FRAME_DEADLINE` in all. One timer per frame, armed only when a read has to wait.
struct Patience {
    until: Instant,
    stall: std::pin::Pin<Box<tokio::time::Sleep>>,
    armed_at: Instant,
}

impl Patience {
    fn new() -> Self {
        let now = Instant::now();
        Patience { until: now + FRAME_DEADLINE, stall: Box::pin(tokio::time::sleep(STALL)), armed_at: now }
    }

    /// Runs one read of a frame `got` bytes in, refusing to wait past the limits.
    async fn wait<T>(&mut self, got: usize, read: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        let r = tokio::select! {
            biased;
            r = read => r,
            _ = &mut self.stall => {
                return Err(Error::timeout(format!("a frame stalled {got} bytes in: its sender is too slow")))
            }
        };
        // Moving the timer costs something, so only every tenth of a second of progress.
        let now = Instant::now();
        if now.duration_since(self.armed_at) > Duration::from_millis(100) {
            self.stall.as_mut().reset((now + STALL).min(self.until).into());
            self.armed_at = now;
        }
        r
    }
}

/// The share of `LARGE_FRAMES_BUDGET` one frame's buffer holds (what it has beyond
/// `SMALL_FRAME`); given back when dropped.
struct Held(usize);

impl Held {
    /// Accounts for a buffer of `size` bytes, refusing if large frames already hold the budget.
    fn grow_to(&mut self, size: usize) -> Result<()> {
        let more = size.saturating_sub(SMALL_FRAME).saturating_sub(self.0);
        if more == 0 {
            return Ok(());
        }
        let before = LARGE_FRAMES_HELD.fetch_add(more, Ordering::Relaxed);
        if before + more > LARGE_FRAMES_BUDGET {
            LARGE_FRAMES_HELD.fetch_sub(more, Ordering::Relaxed);
            return Err(Error::new(
                crate::error::ErrorKind::Busy,
                format!("{} MiB of large frames are already arriving; try again", before >> 20),
            ));
        }
        self.0 += more;
        Ok(())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        LARGE_FRAMES_HELD.fetch_sub(self.0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_frames_share_one_budget_and_give_it_back() {
        let mut a = Held(0);
        a.grow_to(SMALL_FRAME).unwrap();
        assert_eq!(a.0, 0, "small frames are not counted");
        a.grow_to(LARGE_FRAMES_BUDGET / 2).unwrap();
        a.grow_to(LARGE_FRAMES_BUDGET - (1 << 20)).unwrap();
        let mut b = Held(0);
        let e = b.grow_to(4 << 20).unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::Busy, "{e}");
        drop(a);
        b.grow_to(4 << 20).unwrap();
        drop(b);
        assert_eq!(LARGE_FRAMES_HELD.load(Ordering::Relaxed), 0);
    }
}
