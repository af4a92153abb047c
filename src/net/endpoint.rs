//! QUIC endpoints and request/response over streams. One request is one bidirectional stream:
//! the caller writes a frame and finishes its side, the callee answers with one frame. Streams are
//! cheap, so concurrency needs no multiplexing protocol of our own and a slow request never
//! blocks another.

use super::TlsFiles;
use crate::error::{Error, Result};
use crate::proto::{self, FRAME_HEADER};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use serde::{de::DeserializeOwned, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Peer-to-peer Raft traffic and node-internal forwarding.
pub const ALPN_RAFT: &[u8] = b"dsh-raft/1";
/// Clients: shells, scripts, load generators.
pub const ALPN_CLIENT: &[u8] = b"dsh-client/1";
/// A node's supervisor: crash, restart, pause and resume the node process.
pub const ALPN_ADMIN: &[u8] = b"dsh-admin/1";

fn transport() -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.max_concurrent_bidi_streams(4096u32.into())
        .max_concurrent_uni_streams(0u32.into())
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
    /// answer. A hint: with no live connection it is dropped rather than dialled.
    pub async fn hint(&self, frame: &[u8]) -> Result<()> {
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

/// One request/reply exchange on a new stream of `conn`.
pub async fn call<Q: Serialize, A: DeserializeOwned>(conn: &quinn::Connection, request: &Q) -> Result<A> {
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

/// As `read_frame`, also returning the frame's size in bytes.
pub async fn read_frame_sized<T: DeserializeOwned>(recv: &mut quinn::RecvStream) -> Result<(T, usize)> {
    let mut header = [0u8; FRAME_HEADER];
    recv.read_exact(&mut header).await.map_err(|e| Error::unreachable(format!("read: {e}")))?;
    let len = proto::frame_len(header)?;
    let mut body = vec![0u8; len];
    recv.read_exact(&mut body).await.map_err(|e| Error::unreachable(format!("read: {e}")))?;
    Ok((proto::decode(&body)?, FRAME_HEADER + len))
}
