//! Trees: directory listings, stored as blobs.
//!
//! A tree is canonical JSON of its nodes sorted by name, so identical
//! directories produce identical blobs and deduplicate. A file node lists its
//! content as chunk ids; when a file has more than [`LIST_FANOUT`] chunks the
//! ids are grouped into list blobs (and lists of lists), so a terabyte stream
//! never makes one giant tree. Each file node records its length and a keyed
//! BLAKE3 digest of its whole content, which restore checks at the end.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::BlobId;

/// Most ids in one list blob (and in a node before lists are used).
pub const LIST_FANOUT: usize = 8192;

/// Kind of filesystem entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// Regular file or stream.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
}

/// One entry of a directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// File name (lossy UTF-8; see `name_bytes`).
    pub name: String,
    /// Exact name as hex when it is not valid UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_bytes: Option<String>,
    /// Entry kind.
    #[serde(rename = "type")]
    pub kind: NodeKind,
    /// Permission bits (and setuid/setgid/sticky).
    pub mode: u32,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// Status change time, nanoseconds (used to detect unchanged files).
    #[serde(default)]
    pub ctime_ns: i64,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Inode number (used to detect unchanged files).
    #[serde(default)]
    pub inode: u64,
    /// Length of the content in bytes.
    #[serde(default)]
    pub size: u64,
    /// Chunk ids (depth 0) or list blob ids (depth > 0).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<BlobId>,
    /// How many levels of list blobs stand between `content` and the chunks.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub content_depth: u8,
    /// Keyed BLAKE3 of the whole content (hex), for files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The directory's tree blob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtree: Option<BlobId>,
    /// Link target (lossy UTF-8; exact bytes in `target_bytes` when needed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Exact link target as hex when it is not valid UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_bytes: Option<String>,
}

fn is_zero(v: &u8) -> bool {
    *v == 0
}

/// Lossy text plus exact hex bytes when the text would lose information.
pub(crate) fn encode_os(s: &OsStr) -> (String, Option<String>) {
    match s.to_str() {
        Some(t) => (t.to_owned(), None),
        None => (
            s.to_string_lossy().into_owned(),
            Some(hex::encode(s.as_bytes())),
        ),
    }
}

fn decode_os(text: &str, bytes: Option<&str>) -> Vec<u8> {
    bytes
        .and_then(|h| hex::decode(h).ok())
        .unwrap_or_else(|| text.as_bytes().to_vec())
}

impl Node {
    /// A node with the given name and kind and zeroed metadata.
    pub fn new(name: &OsStr, kind: NodeKind) -> Node {
        let (name, name_bytes) = encode_os(name);
        Node {
            name,
            name_bytes,
            kind,
            mode: 0,
            mtime_ns: 0,
            ctime_ns: 0,
            uid: 0,
            gid: 0,
            inode: 0,
            size: 0,
            content: Vec::new(),
            content_depth: 0,
            digest: None,
            subtree: None,
            target: None,
            target_bytes: None,
        }
    }

    /// The exact file name bytes.
    pub fn name_os(&self) -> std::ffi::OsString {
        OsStr::from_bytes(&decode_os(&self.name, self.name_bytes.as_deref())).to_owned()
    }

    /// The exact link target bytes.
    pub fn target_os(&self) -> Option<std::ffi::OsString> {
        let t = self.target.as_deref()?;
        Some(OsStr::from_bytes(&decode_os(t, self.target_bytes.as_deref())).to_owned())
    }
}

/// A directory listing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    /// Entries sorted by exact name bytes.
    pub nodes: Vec<Node>,
}

impl Tree {
    /// Canonical encoding: nodes sorted by name.
    pub fn encode(mut self) -> Vec<u8> {
        self.nodes.sort_by_key(|a| a.name_os());
        serde_json::to_vec(&self).expect("trees serialize")
    }

    /// Decodes a tree blob's plaintext.
    pub fn decode(id: &BlobId, b: &[u8]) -> Result<Tree> {
        serde_json::from_slice(b)
            .map_err(|e| Error::corrupt(format!("tree {}", id.to_hex()), e.to_string()))
    }

    /// The entry named `name`.
    pub fn find(&self, name: &OsStr) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name_os() == name)
    }
}

/// Encodes a list blob: concatenated ids.
pub fn encode_list(ids: &[BlobId]) -> Vec<u8> {
    ids.iter().flat_map(|i| i.0).collect()
}

/// Decodes a list blob.
pub fn decode_list(id: &BlobId, b: &[u8]) -> Result<Vec<BlobId>> {
    if !b.len().is_multiple_of(32) || b.len() / 32 > LIST_FANOUT {
        return Err(Error::corrupt(
            format!("list {}", id.to_hex()),
            format!("bad length {}", b.len()),
        ));
    }
    Ok(b.chunks_exact(32)
        .map(|c| BlobId::from_slice(c).expect("32 bytes"))
        .collect())
}

/// Builds a node's content incrementally, spilling full levels into list
/// blobs through `save` so memory stays bounded for any stream length.
pub struct ContentBuilder {
    levels: Vec<Vec<BlobId>>,
}

impl Default for ContentBuilder {
    fn default() -> Self {
        ContentBuilder {
            levels: vec![Vec::new()],
        }
    }
}

impl ContentBuilder {
    /// Appends the next chunk id.
    pub fn push(
        &mut self,
        id: BlobId,
        save: &mut impl FnMut(Vec<u8>) -> Result<BlobId>,
    ) -> Result<()> {
        self.push_at(0, id, save)
    }

    fn push_at(
        &mut self,
        level: usize,
        id: BlobId,
        save: &mut impl FnMut(Vec<u8>) -> Result<BlobId>,
    ) -> Result<()> {
        if self.levels.len() <= level {
            self.levels.push(Vec::new());
        }
        self.levels[level].push(id);
        if self.levels[level].len() == LIST_FANOUT && self.levels.len() > level + 1 {
            self.spill(level, save)?;
        } else if self.levels[level].len() > LIST_FANOUT {
            // The first overflow of the top level: it becomes a list level.
            let last = self.levels[level].pop().expect("non-empty");
            self.spill(level, save)?;
            self.levels[level].push(last);
        }
        Ok(())
    }

    fn spill(
        &mut self,
        level: usize,
        save: &mut impl FnMut(Vec<u8>) -> Result<BlobId>,
    ) -> Result<()> {
        let full = std::mem::take(&mut self.levels[level]);
        let list = save(encode_list(&full))?;
        self.push_at(level + 1, list, save)
    }

    /// The node's `content` and `content_depth`.
    pub fn finish(
        mut self,
        save: &mut impl FnMut(Vec<u8>) -> Result<BlobId>,
    ) -> Result<(Vec<BlobId>, u8)> {
        let mut level = 0;
        while level + 1 < self.levels.len() {
            if !self.levels[level].is_empty() {
                let part = std::mem::take(&mut self.levels[level]);
                let list = save(encode_list(&part))?;
                self.push_at(level + 1, list, save)?;
            }
            level += 1;
        }
        let depth = (self.levels.len() - 1) as u8;
        Ok((self.levels.pop().unwrap_or_default(), depth))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn expand(store: &HashMap<BlobId, Vec<u8>>, ids: &[BlobId], depth: u8) -> Vec<BlobId> {
        if depth == 0 {
            return ids.to_vec();
        }
        ids.iter()
            .flat_map(|l| expand(store, &decode_list(l, &store[l]).unwrap(), depth - 1))
            .collect()
    }

    #[test]
    fn content_lists_round_trip_at_every_size() {
        for n in [
            0,
            1,
            LIST_FANOUT - 1,
            LIST_FANOUT,
            LIST_FANOUT + 1,
            3 * LIST_FANOUT + 5,
        ] {
            let mut store = HashMap::new();
            let mut save = |b: Vec<u8>| {
                let id = BlobId(*blake3::hash(&b).as_bytes());
                store.insert(id, b);
                Ok(id)
            };
            let ids: Vec<BlobId> = (0..n as u32)
                .map(|i| BlobId(*blake3::hash(&i.to_le_bytes()).as_bytes()))
                .collect();
            let mut builder = ContentBuilder::default();
            for id in &ids {
                builder.push(*id, &mut save).unwrap();
            }
            let (top, depth) = builder.finish(&mut save).unwrap();
            assert!(top.len() <= LIST_FANOUT);
            assert_eq!(depth, u8::from(n > LIST_FANOUT), "n = {n}");
            assert_eq!(expand(&store, &top, depth), ids, "n = {n}");
        }
    }

    #[test]
    fn tree_encoding_is_canonical_and_keeps_raw_names() {
        let raw = OsStr::from_bytes(b"caf\xe9");
        let a = Node::new(OsStr::new("b"), NodeKind::File);
        let b = Node::new(raw, NodeKind::Dir);
        let t1 = Tree {
            nodes: vec![a.clone(), b.clone()],
        }
        .encode();
        let t2 = Tree { nodes: vec![b, a] }.encode();
        assert_eq!(t1, t2);
        let back = Tree::decode(&BlobId([0; 32]), &t1).unwrap();
        assert_eq!(back.find(raw).unwrap().name_os(), raw);
        assert!(Tree::decode(&BlobId([0; 32]), b"{\"nodes\": 5}").is_err());
    }
}
