//! Certificate roles: what the holder of a certificate may ask for. A certificate carries its
//! role in its subject's OrganizationalUnit (`node`, `client` or `admin`), signed by the
//! cluster CA like the rest of it; the handshake has already proved the holder owns it, so the
//! role read back here is as trustworthy as the CA. This module only reads roles and says what
//! a request needs; refusing is the serving side's job.

use crate::error::{Error, Result};
use crate::proto::{ProcessAction, Request};
use rustls::pki_types::CertificateDer;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Ordered by what each may do: an admin may do all a client may, and a node all an admin may
/// (nodes join, record and forward on each other's behalf). Only a node speaks Raft.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Client,
    Admin,
    Node,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Admin => "admin",
            Role::Node => "node",
        }
    }

    fn parse(s: &str) -> Option<Role> {
        match s {
            "client" => Some(Role::Client),
            "admin" => Some(Role::Admin),
            "node" => Some(Role::Node),
            _ => None,
        }
    }

    /// What a refusal tells the caller it would need.
    pub fn certificate(self) -> &'static str {
        match self {
            Role::Client => "a certificate of the cluster CA",
            Role::Admin => "an admin (or node) certificate",
            Role::Node => "a node certificate",
        }
    }

    /// Whether a holder of this role may do what needs `needed`.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who is on the other end of a connection, as its certificate says.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    pub role: Role,
    /// The certificate's CommonName (`n2`, `alice`).
    pub name: String,
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the {} certificate of `{}`", self.role, self.name)
    }
}

/// A certificate as dsh reads it: who holds it and until when it is valid.
#[derive(Debug, Clone)]
pub struct CertInfo {
    pub principal: Principal,
    pub not_after: SystemTime,
}

/// Reads role, name and expiry from a DER certificate. A certificate of the cluster CA issued
/// before roles existed carries none and counts as a client's: the least it could be.
pub fn read_cert(der: &[u8]) -> Result<CertInfo> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| Error::denied(format!("unreadable certificate: {e}")))?;
    let subject = cert.subject();
    let text = |a: &x509_parser::x509::AttributeTypeAndValue| a.as_str().ok().map(str::to_string);
    let name = subject.iter_common_name().find_map(text).unwrap_or_default();
    let role = subject.iter_organizational_unit().find_map(|a| a.as_str().ok().and_then(Role::parse));
    let secs = cert.validity().not_after.timestamp().max(0) as u64;
    Ok(CertInfo {
        principal: Principal { role: role.unwrap_or(Role::Client), name },
        not_after: UNIX_EPOCH + Duration::from_secs(secs),
    })
}

/// Reads the first certificate of a PEM file.
pub fn read_cert_file(path: &std::path::Path) -> Result<CertInfo> {
    let pem = std::fs::read(path).map_err(|e| Error::usage(format!("cannot read {}: {e}", path.display())))?;
    let der = rustls_pemfile::certs(&mut pem.as_slice())
        .next()
        .ok_or_else(|| Error::usage(format!("no certificate in {}", path.display())))?
        .map_err(|e| Error::usage(format!("{}: {e}", path.display())))?;
    read_cert(&der)
}

/// The holder of an established connection's peer certificate (verified by the handshake).
pub fn peer_principal(conn: &quinn::Connection) -> Result<Principal> {
    let certs = conn
        .peer_identity()
        .and_then(|id| id.downcast::<Vec<CertificateDer<'static>>>().ok())
        .ok_or_else(|| Error::denied("the peer presented no certificate"))?;
    let leaf = certs.first().ok_or_else(|| Error::denied("the peer presented no certificate"))?;
    Ok(read_cert(leaf)?.principal)
}

/// The QUIC application close code of a connection a node refuses after the handshake (too
/// many connections for one certificate).
pub const CLOSE_DENIED: u32 = 0x403;

/// Why the peer closed `conn`, when it was a refusal: a TLS alert at the handshake (TLS 1.3
/// finishes the client's side before the server has checked its certificate, so a refused
/// client learns it only from the close) or the node's own `CLOSE_DENIED`.
pub fn refusal(conn: &quinn::Connection) -> Option<Error> {
    let at = conn.remote_address();
    let alert = match conn.close_reason()? {
        quinn::ConnectionError::ApplicationClosed(a) if a.error_code == CLOSE_DENIED.into() => {
            return Some(Error::denied(format!("{at}: {}", String::from_utf8_lossy(&a.reason))));
        }
        quinn::ConnectionError::ConnectionClosed(c) => {
            let code = u64::from(c.error_code);
            (0x100..0x200).contains(&code).then_some(code as u8)?
        }
        _ => return None,
    };
    let what = match alert {
        42 => "bad certificate",
        43 => "unsupported certificate",
        45 => "certificate expired",
        46 => "certificate unknown",
        48 => "certificate of an unknown CA",
        49 => "access denied",
        // Every dsh CA has the same name, so another cluster's certificate is found to have a
        // signature the CA of this one did not make.
        51 => "signature not made by this cluster's CA",
        116 => "certificate required",
        _ => "TLS alert",
    };
    Some(Error::denied(format!("{at} refused this certificate at the handshake: {what} (alert {alert})")))
}

/// The least role that may make `request`. Anything that changes a node other than through
/// the log (faults, damage, repair, membership, the event record) or acts on its process needs
/// an admin; everything else is a client's.
pub fn required_role(request: &Request) -> Role {
    match request {
        Request::SetFaults(_)
        | Request::Corrupt { .. }
        | Request::Repair { .. }
        | Request::Join { .. }
        | Request::Record { .. } => Role::Admin,
        Request::Process(ProcessAction::State) => Role::Client,
        Request::Process(_) => Role::Admin,
        _ => Role::Client,
    }
}

/// `Ok` when `holder` may make `request`, else the `denied` error that says what it needs.
pub fn authorize(holder: &Principal, request: &Request) -> Result<()> {
    let needed = required_role(request);
    if holder.role.allows(needed) {
        return Ok(());
    }
    Err(Error::denied(format!("{} needs {}; this is {holder}", request_name(request), needed.certificate())))
}

/// The wire name of a request (its variant), for refusals and events.
pub fn request_name(request: &Request) -> &'static str {
    match request {
        Request::SetFaults(_) => "setting faults",
        Request::Corrupt { .. } => "corrupt",
        Request::Repair { .. } => "repair",
        Request::Join { .. } => "join",
        Request::Record { .. } => "record",
        Request::Process(ProcessAction::Crash) => "crash",
        Request::Process(ProcessAction::Restart) => "restart",
        Request::Process(ProcessAction::Pause) => "pause",
        Request::Process(ProcessAction::Resume) => "resume",
        _ => "this request",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_by_what_they_may_do() {
        assert!(Role::Node.allows(Role::Admin) && Role::Admin.allows(Role::Client));
        assert!(!Role::Client.allows(Role::Admin) && !Role::Admin.allows(Role::Node));
    }

    #[test]
    fn admin_requests_are_refused_to_clients_with_the_role_they_need() {
        let client = Principal { role: Role::Client, name: "alice".into() };
        let admin = Principal { role: Role::Admin, name: "root".into() };
        for req in [
            Request::Corrupt { key: "k".into() },
            Request::Repair { set: vec![], remove: vec![], revision: 0 },
            Request::Join { id: 4, addr: "x:1".into() },
            Request::Record { kind: "k".into(), text: "t".into() },
            Request::Process(ProcessAction::Crash),
        ] {
            let e = authorize(&client, &req).unwrap_err();
            assert_eq!(e.kind, crate::error::ErrorKind::Denied);
            assert!(e.message.contains("admin"), "{e}");
            authorize(&admin, &req).unwrap();
        }
        authorize(&client, &Request::Process(ProcessAction::State)).unwrap();
        authorize(&client, &Request::Put { key: "k".into(), value: "v".into() }).unwrap();
    }
}
