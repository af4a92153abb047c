//! The cluster CA and the certificates it issues, as PEM files in one directory:
//! `ca.pem`/`ca.key`, then `NAME.pem`/`NAME.key` per node, client or admin. Every certificate
//! carries its role in its subject's OrganizationalUnit (read back by `role`) and expires.
//! Whoever holds `ca.key` can admit members, so it is written with owner-only permissions and
//! never sent anywhere.

use super::role::Role;
use crate::error::{Context, Error, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How long a certificate is valid unless told otherwise (`dsh cert issue --days`).
pub const DEFAULT_DAYS: u32 = 365;
/// The CA outlives the certificates it issues.
const CA_DAYS: u64 = 3650;

/// What a certificate is for.
#[derive(Debug, Clone)]
pub enum Identity {
    /// A node; `hosts` are the DNS names or IP addresses peers and clients dial.
    Node {
        name: String,
        hosts: Vec<String>,
    },
    Client {
        name: String,
    },
    /// A client that may also set faults, damage and repair, join nodes and act on processes.
    Admin {
        name: String,
    },
}

impl Identity {
    pub fn role(&self) -> Role {
        match self {
            Identity::Node { .. } => Role::Node,
            Identity::Client { .. } => Role::Client,
            Identity::Admin { .. } => Role::Admin,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Identity::Node { name, .. } | Identity::Client { name } | Identity::Admin { name } => name,
        }
    }
}

/// When a certificate starts and stops being valid.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl Validity {
    /// From a minute ago (clocks of nearby machines differ a little) for `days` days.
    pub fn days(days: u32) -> Self {
        let now = SystemTime::now();
        Validity {
            not_before: now - Duration::from_secs(60),
            not_after: now + Duration::from_secs(u64::from(days) * 86_400),
        }
    }
}

/// Where a holder's certificate, key and the CA live.
#[derive(Debug, Clone)]
pub struct CertPaths {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl CertPaths {
    pub fn in_dir(dir: &Path, name: &str) -> Self {
        CertPaths {
            ca: dir.join("ca.pem"),
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}.key")),
        }
    }
}

fn ca_params() -> Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new()).context("CA parameters")?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "dsh cluster CA");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let now = SystemTime::now();
    params.not_before = (now - Duration::from_secs(60)).into();
    params.not_after = (now + Duration::from_secs(CA_DAYS * 86_400)).into();
    Ok(params)
}

/// Creates a new CA in `dir`. Refuses to overwrite an existing one.
pub fn init_ca(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).context(format!("create {}", dir.display()))?;
    let (cert_path, key_path) = (dir.join("ca.pem"), dir.join("ca.key"));
    if cert_path.exists() {
        return Err(Error::usage(format!("{} already holds a CA", dir.display())));
    }
    let key = KeyPair::generate().context("generate CA key")?;
    let cert = ca_params()?.self_signed(&key).context("self-sign CA")?;
    write_private(&key_path, &key.serialize_pem())?;
    std::fs::write(&cert_path, cert.pem()).context(format!("write {}", cert_path.display()))
}

/// Issues a certificate for `who`, valid for `DEFAULT_DAYS`, signed by the CA in `dir` and
/// written next to it.
pub fn issue(dir: &Path, who: &Identity) -> Result<CertPaths> {
    issue_for(dir, who, Validity::days(DEFAULT_DAYS))
}

/// As `issue`, valid for `validity`.
pub fn issue_for(dir: &Path, who: &Identity, validity: Validity) -> Result<CertPaths> {
    let ca_key_pem = std::fs::read_to_string(dir.join("ca.key"))
        .map_err(|e| Error::usage(format!("no CA in {} ({e}); run `dsh cert init` first", dir.display())))?;
    let ca_key = KeyPair::from_pem(&ca_key_pem).context("read CA key")?;
    let issuer = Issuer::new(ca_params()?, ca_key);

    let (name, sans, usages) = match who {
        Identity::Node { name, hosts } => {
            (name, hosts.clone(), vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth])
        }
        Identity::Client { name } | Identity::Admin { name } => {
            (name, vec![], vec![ExtendedKeyUsagePurpose::ClientAuth])
        }
    };
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') || name == "ca" {
        return Err(Error::usage(format!("`{name}` cannot name a certificate (it names the files NAME.pem/NAME.key)")));
    }
    let mut params = CertificateParams::new(Vec::<String>::new()).context("certificate parameters")?;
    params.subject_alt_names = sans
        .iter()
        .map(|h| match h.parse() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => h.clone().try_into().map(SanType::DnsName).context(format!("host {h}")),
        })
        .collect::<Result<_>>()?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name.as_str());
    dn.push(DnType::OrganizationalUnitName, who.role().as_str());
    params.distinguished_name = dn;
    params.not_before = validity.not_before.into();
    params.not_after = validity.not_after.into();
    params.extended_key_usages = usages;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];

    let key = KeyPair::generate().context("generate key")?;
    let cert = params.signed_by(&key, &issuer).context("sign certificate")?;
    let paths = CertPaths::in_dir(dir, name);
    write_private(&paths.key, &key.serialize_pem())?;
    std::fs::write(&paths.cert, cert.pem()).context(format!("write {}", paths.cert.display()))?;
    Ok(paths)
}

fn write_private(path: &Path, pem: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .context(format!("write {}", path.display()))?;
    f.write_all(pem.as_bytes()).context(format!("write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_certificate_carries_its_role_and_expiry() {
        let dir = tempfile::tempdir().unwrap();
        init_ca(dir.path()).unwrap();
        for (who, role) in [
            (Identity::Node { name: "n1".into(), hosts: vec!["127.0.0.1".into()] }, Role::Node),
            (Identity::Client { name: "alice".into() }, Role::Client),
            (Identity::Admin { name: "root".into() }, Role::Admin),
        ] {
            let paths = issue_for(dir.path(), &who, Validity::days(7)).unwrap();
            let info = super::super::role::read_cert_file(&paths.cert).unwrap();
            assert_eq!((info.principal.role, info.principal.name.as_str()), (role, who.name()));
            let left = info.not_after.duration_since(SystemTime::now()).unwrap();
            assert!(left > Duration::from_secs(6 * 86_400) && left <= Duration::from_secs(7 * 86_400), "{left:?}");
        }
    }

    #[test]
    fn a_name_that_would_overwrite_the_ca_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        init_ca(dir.path()).unwrap();
        for name in ["ca", "../x", ""] {
            let e = issue(dir.path(), &Identity::Client { name: name.into() }).unwrap_err();
            assert_eq!(e.kind, crate::error::ErrorKind::Usage, "{name}");
        }
    }
}
