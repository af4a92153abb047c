//! The cluster file (`--cluster FILE`): where the nodes are and which certificate to present.
//!
//! ```toml
//! ca = "certs/ca.pem"
//! cert = "certs/client.pem"
//! key = "certs/client.key"
//! [[nodes]]
//! id = "n1"
//! addr = "10.0.0.1:7000"
//! supervisor = "10.0.0.1:7100"   # optional: where `dsh node --supervisor` listens
//! ```
//! Relative paths are taken from the file's own directory.

use crate::error::{Error, Result};
use crate::net::CertPaths;
use crate::proto::{parse_node, NodeId};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterFile {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub nodes: Vec<NodeEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeEntry {
    pub id: String,
    pub addr: String,
    /// The node's supervisor, which takes crash/restart/pause/resume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervisor: Option<String>,
}

impl NodeEntry {
    pub fn node_id(&self) -> Result<NodeId> {
        parse_node(&self.id)
    }
}

impl ClusterFile {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::usage(format!("cannot read cluster file {}: {e}", path.display())))?;
        let mut file: ClusterFile =
            toml::from_str(&text).map_err(|e| Error::usage(format!("cluster file {}: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [&mut file.ca, &mut file.cert, &mut file.key] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if file.nodes.is_empty() {
            return Err(Error::usage(format!("cluster file {} names no nodes", path.display())));
        }
        for n in &file.nodes {
            n.node_id()?;
        }
        Ok(file)
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let text = toml::to_string_pretty(self).map_err(|e| Error::internal(e.to_string()))?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }

    pub fn cert_paths(&self) -> CertPaths {
        CertPaths { ca: self.ca.clone(), cert: self.cert.clone(), key: self.key.clone() }
    }
}
