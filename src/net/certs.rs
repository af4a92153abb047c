//! The cluster CA and the certificates it issues, as PEM files in one directory:
//! `ca.pem`/`ca.key`, then `NAME.pem`/`NAME.key` per node or client. Whoever holds `ca.key` can
//! admit members, so it is written with owner-only permissions and never sent anywhere.

use crate::error::{Context, Error, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use std::path::{Path, PathBuf};

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

/// Issues a certificate for `who`, signed by the CA in `dir`, written next to it.
pub fn issue(dir: &Path, who: &Identity) -> Result<CertPaths> {
    let ca_key_pem = std::fs::read_to_string(dir.join("ca.key"))
        .map_err(|e| Error::usage(format!("no CA in {} ({e}); run `dsh cert init` first", dir.display())))?;
    let ca_key = KeyPair::from_pem(&ca_key_pem).context("read CA key")?;
    let issuer = Issuer::new(ca_params()?, ca_key);

    let (name, sans, usages) = match who {
        Identity::Node { name, hosts } => {
            (name, hosts.clone(), vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth])
        }
        Identity::Client { name } => (name, vec![], vec![ExtendedKeyUsagePurpose::ClientAuth]),
    };
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
    params.distinguished_name = dn;
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
