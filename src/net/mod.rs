//! Transport: QUIC endpoints (quinn) with mutually authenticated TLS 1.3 (rustls on ring), the
//! cluster CA (rcgen) and the roles its certificates carry, and frame I/O over bidirectional
//! streams. It knows nothing of Raft or of what the frames mean; `node` and `client` build on it.

mod certs;
mod endpoint;
mod fault;
mod role;
mod tls;

pub use certs::{init_ca, issue, issue_for, CertPaths, Identity, Validity, DEFAULT_DAYS};
pub use endpoint::{
    call, read_frame, read_frame_sized, write_frame, Endpoint, Peer, ALPN_ADMIN, ALPN_CLIENT, ALPN_RAFT,
};
pub use fault::{FaultFilter, Verdict};
pub use role::{
    authorize, peer_principal, read_cert, read_cert_file, refusal, required_role, CertInfo, Principal, Role,
    CLOSE_DENIED,
};
pub use tls::TlsFiles;
