//! The Merkle tree `verify` compares: keys fall into 256 leaves by the first byte of their
//! SHA-256; a leaf hashes its keys, values and revisions in key order; inner nodes hash their two
//! children. Two trees are compared from the root down, so only differing subtrees are visited
//! and only the keys of differing leaves need to be fetched.

use ring::digest::{digest, Context, SHA256};

pub const LEAVES: usize = 256;
pub type Hash = [u8; 32];

/// The leaf (hash range) a key belongs to.
pub fn leaf_of(key: &str) -> usize {
    digest(&SHA256, key.as_bytes()).as_ref()[0] as usize
}

/// Builds leaf hashes incrementally; feed keys in key order.
pub struct LeafHasher {
    leaves: Vec<Context>,
}

impl Default for LeafHasher {
    fn default() -> Self {
        LeafHasher { leaves: (0..LEAVES).map(|_| Context::new(&SHA256)).collect() }
    }
}

impl LeafHasher {
    pub fn add(&mut self, key: &str, value: &str, revision: u64) {
        let c = &mut self.leaves[leaf_of(key)];
        for part in [key.as_bytes(), value.as_bytes()] {
            c.update(&(part.len() as u64).to_le_bytes());
            c.update(part);
        }
        c.update(&revision.to_le_bytes());
    }

    pub fn finish(self) -> Vec<Hash> {
        self.leaves.into_iter().map(|c| c.finish().as_ref().try_into().expect("SHA-256 is 32 bytes")).collect()
    }
}

/// Every level of the tree, leaves first, root last.
fn levels(leaves: &[Hash]) -> Vec<Vec<Hash>> {
    let mut levels = vec![leaves.to_vec()];
    while levels.last().map_or(0, Vec::len) > 1 {
        let below = levels.last().expect("at least one level");
        let up = below
            .chunks(2)
            .map(|pair| {
                let mut c = Context::new(&SHA256);
                pair.iter().for_each(|h| c.update(h));
                c.finish().as_ref().try_into().expect("SHA-256 is 32 bytes")
            })
            .collect();
        levels.push(up);
    }
    levels
}

pub fn root(leaves: &[Hash]) -> Hash {
    levels(leaves).last().and_then(|l| l.first()).copied().unwrap_or_default()
}

/// Leaves where `a` and `b` differ, found by descending only into differing subtrees.
pub fn differing(a: &[Hash], b: &[Hash]) -> Vec<usize> {
    let (la, lb) = (levels(a), levels(b));
    let mut frontier = vec![0usize];
    for depth in (0..la.len()).rev() {
        let differs: Vec<usize> = frontier.into_iter().filter(|&i| la[depth][i] != lb[depth][i]).collect();
        if depth == 0 {
            return differs;
        }
        frontier = differs.iter().flat_map(|&i| [2 * i, 2 * i + 1]).filter(|&i| i < la[depth - 1].len()).collect();
    }
    vec![]
}

pub fn hex(h: &Hash) -> String {
    h.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// How a leaf's hash range is shown: `3a` covers every key whose SHA-256 starts with 0x3a.
pub fn range_name(leaf: usize) -> String {
    format!("{leaf:02x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(kvs: &[(&str, &str)]) -> Vec<Hash> {
        let mut h = LeafHasher::default();
        let mut sorted = kvs.to_vec();
        sorted.sort();
        for (k, v) in sorted {
            h.add(k, v, 1);
        }
        h.finish()
    }

    #[test]
    fn finds_exactly_the_leaf_that_differs() {
        let a = tree(&[("a", "1"), ("b", "2"), ("k", "v")]);
        let b = tree(&[("a", "1"), ("b", "2"), ("k", "damaged")]);
        assert_eq!(root(&a), root(&tree(&[("k", "v"), ("b", "2"), ("a", "1")])));
        assert_ne!(root(&a), root(&b));
        assert_eq!(differing(&a, &b), vec![leaf_of("k")]);
        assert!(differing(&a, &a).is_empty());
    }
}
