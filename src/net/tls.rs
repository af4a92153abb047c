//! rustls configurations for both ends of a connection. Both sides present a certificate and
//! both check the other's against the cluster CA: there is no anonymous access to a node.

use super::CertPaths;
use crate::error::{Context, Error, Result};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;

/// Loaded PEM material for one holder.
pub struct TlsFiles {
    roots: Arc<rustls::RootCertStore>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsFiles {
    pub fn load(paths: &CertPaths) -> Result<Self> {
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|e| Error::usage(format!("cannot read {}: {e}", p.display())))
        };
        let mut roots = rustls::RootCertStore::empty();
        for ca in rustls_pemfile::certs(&mut read(&paths.ca)?.as_slice()) {
            roots.add(ca.context("parse CA")?).context("add CA")?;
        }
        let chain = rustls_pemfile::certs(&mut read(&paths.cert)?.as_slice())
            .collect::<Result<Vec<_>, _>>()
            .context("parse certificate")?;
        let key = rustls_pemfile::private_key(&mut read(&paths.key)?.as_slice())
            .context("parse key")?
            .ok_or_else(|| Error::usage(format!("no private key in {}", paths.key.display())))?;
        Ok(TlsFiles { roots: Arc::new(roots), chain, key })
    }

    pub fn server_config(&self, alpns: &[&[u8]]) -> Result<rustls::ServerConfig> {
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(self.roots.clone(), provider())
            .build()
            .context("client verifier")?;
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .context("TLS versions")?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .context("server certificate")?;
        cfg.alpn_protocols = alpns.iter().map(|a| a.to_vec()).collect();
        Ok(cfg)
    }

    pub fn client_config(&self, alpn: &[u8]) -> Result<rustls::ClientConfig> {
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .context("TLS versions")?
            .with_root_certificates(self.roots.clone())
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())
            .context("client certificate")?;
        cfg.alpn_protocols = vec![alpn.to_vec()];
        Ok(cfg)
    }
}
