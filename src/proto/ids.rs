//! Node identities: `n1`, `n2`, … for people, plain integers for openraft.

use crate::error::{Error, Result};

pub type NodeId = u64;

pub fn node_name(id: NodeId) -> String {
    format!("n{id}")
}

/// Accepts `n3`, `N3` or `3`.
pub fn parse_node(s: &str) -> Result<NodeId> {
    let digits = s.strip_prefix(['n', 'N']).unwrap_or(s);
    match digits.parse::<NodeId>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(Error::usage(format!("`{s}` is not a node name (expected n1, n2, …)"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(parse_node("n12").unwrap(), 12);
        assert_eq!(parse_node("3").unwrap(), 3);
        assert_eq!(node_name(parse_node("n7").unwrap()), "n7");
        assert!(parse_node("n0").is_err());
        assert!(parse_node("x1").is_err());
        assert!(parse_node("").is_err());
    }
}
