//! A small in-memory, read-only file system: the request handler of the kernel tests.

use std::collections::BTreeMap;

use fuse_kernel_sys as sys;

use crate::{Handler, Reply, Request, bytes_of};

/// One node of a [`MemFs`].
#[derive(Debug, Clone)]
pub enum Node {
    /// A directory: name -> node id.
    Dir(BTreeMap<String, u64>),
    /// A regular file with these bytes. With `backing_ids`, OPEN answers `FOPEN_PASSTHROUGH`
    /// with them in turn (the first open the first id, the second open the second...) and
    /// `size` is reported instead of `data.len()`.
    File {
        data: Vec<u8>,
        backing_ids: Vec<i32>,
        size: Option<u64>,
    },
}

/// An in-memory read-only tree; node 1 is the root directory.
#[derive(Debug, Clone)]
pub struct MemFs {
    nodes: BTreeMap<u64, Node>,
    /// OPENs answered so far, per node.
    opens: BTreeMap<u64, usize>,
    /// Attribute and entry timeout in seconds (0: the kernel asks every time).
    pub timeout: u64,
}

impl Default for MemFs {
    fn default() -> Self {
        Self::new()
    }
}

impl MemFs {
    /// An empty root directory.
    pub fn new() -> MemFs {
        let mut nodes = BTreeMap::new();
        nodes.insert(sys::FUSE_ROOT_ID, Node::Dir(BTreeMap::new()));
        MemFs {
            nodes,
            opens: BTreeMap::new(),
            timeout: 0,
        }
    }

    fn add(&mut self, parent: u64, name: &str, node: Node) -> u64 {
        let id = self.nodes.keys().next_back().copied().unwrap_or(1) + 1;
        self.nodes.insert(id, node);
        if let Some(Node::Dir(entries)) = self.nodes.get_mut(&parent) {
            entries.insert(name.to_owned(), id);
        }
        id
    }

    /// Adds a regular file under `parent`; returns its node id.
    pub fn add_file(&mut self, parent: u64, name: &str, data: Vec<u8>) -> u64 {
        self.add(
            parent,
            name,
            Node::File {
                data,
                backing_ids: Vec::new(),
                size: None,
            },
        )
    }

    /// Adds a file whose OPEN answers `FOPEN_PASSTHROUGH` with `backing_id`; `size` is its
    /// attribute size (the backing file's).
    pub fn add_passthrough_file(
        &mut self,
        parent: u64,
        name: &str,
        backing_id: i32,
        size: u64,
    ) -> u64 {
        self.add_passthrough_file_ids(parent, name, &[backing_id], size)
    }

    /// Adds a file whose OPENs answer `FOPEN_PASSTHROUGH` with `backing_ids` in turn (to show
    /// what the kernel does with two backing files for one inode).
    pub fn add_passthrough_file_ids(
        &mut self,
        parent: u64,
        name: &str,
        backing_ids: &[i32],
        size: u64,
    ) -> u64 {
        self.add(
            parent,
            name,
            Node::File {
                data: Vec::new(),
                backing_ids: backing_ids.to_vec(),
                size: Some(size),
            },
        )
    }

    /// Adds a directory under `parent`; returns its node id.
    pub fn add_dir(&mut self, parent: u64, name: &str) -> u64 {
        self.add(parent, name, Node::Dir(BTreeMap::new()))
    }

    /// The attributes of node `id`.
    pub fn attr(&self, id: u64) -> Option<sys::fuse_attr> {
        let node = self.nodes.get(&id)?;
        let (mode, size, nlink) = match node {
            Node::Dir(_) => (libc::S_IFDIR | 0o755, 4096, 2),
            Node::File { data, size, .. } => {
                (libc::S_IFREG | 0o644, size.unwrap_or(data.len() as u64), 1)
            }
        };
        Some(sys::fuse_attr {
            ino: id,
            size,
            blocks: size.div_ceil(512),
            mode,
            nlink,
            blksize: 4096,
            ..Default::default()
        })
    }

    fn entry(&self, id: u64) -> Option<sys::fuse_entry_out> {
        Some(sys::fuse_entry_out {
            nodeid: id,
            generation: 1,
            entry_valid: self.timeout,
            attr_valid: self.timeout,
            attr: self.attr(id)?,
            ..Default::default()
        })
    }

    fn lookup(&self, parent: u64, body: &[u8]) -> Reply {
        let name = body.split(|&b| b == 0).next().unwrap_or(&[]);
        let Ok(name) = std::str::from_utf8(name) else {
            return Reply::Error(libc::ENOENT);
        };
        match self.nodes.get(&parent) {
            Some(Node::Dir(entries)) => match entries.get(name).and_then(|&id| self.entry(id)) {
                Some(entry) => Reply::Data(bytes_of(&entry).to_vec()),
                None => Reply::Error(libc::ENOENT),
            },
            Some(_) => Reply::Error(libc::ENOTDIR),
            None => Reply::Error(libc::ENOENT),
        }
    }

    fn read(&self, id: u64, request: &Request) -> Reply {
        let Some(read) = request.arg::<sys::fuse_read_in>() else {
            return Reply::Error(libc::EINVAL);
        };
        match self.nodes.get(&id) {
            Some(Node::File { data, .. }) => {
                let start = usize::try_from(read.offset)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                let end = start.saturating_add(read.size as usize).min(data.len());
                Reply::Data(data[start..end].to_vec())
            }
            Some(Node::Dir(_)) => Reply::Error(libc::EISDIR),
            None => Reply::Error(libc::ENOENT),
        }
    }

    fn readdir(&self, id: u64, request: &Request) -> Reply {
        let Some(read) = request.arg::<sys::fuse_read_in>() else {
            return Reply::Error(libc::EINVAL);
        };
        let Some(Node::Dir(entries)) = self.nodes.get(&id) else {
            return Reply::Error(libc::ENOTDIR);
        };
        let all = [(".".to_owned(), id), ("..".to_owned(), 1)]
            .into_iter()
            .chain(entries.iter().map(|(n, &i)| (n.clone(), i)));
        let mut out = Vec::new();
        for (index, (name, child)) in all.enumerate().skip(read.offset as usize) {
            let size = sys::fuse_dirent_size(name.len());
            if out.len() + size > read.size as usize {
                break;
            }
            let kind = match self.nodes.get(&child) {
                Some(Node::Dir(_)) => libc::DT_DIR,
                _ => libc::DT_REG,
            };
            // struct fuse_dirent { ino, off, namelen, type, name[] }, native endian.
            let start = out.len();
            out.extend_from_slice(&child.to_ne_bytes());
            out.extend_from_slice(&(index as u64 + 1).to_ne_bytes());
            out.extend_from_slice(&(name.len() as u32).to_ne_bytes());
            out.extend_from_slice(&u32::from(kind).to_ne_bytes());
            debug_assert_eq!(out.len() - start, sys::FUSE_NAME_OFFSET);
            out.extend_from_slice(name.as_bytes());
            out.resize(start + size, 0);
        }
        Reply::Data(out)
    }
}

impl Handler for MemFs {
    fn handle(&mut self, request: &Request) -> Reply {
        let id = request.header.nodeid;
        match request.opcode() {
            sys::FUSE_LOOKUP => self.lookup(id, &request.body),
            sys::FUSE_GETATTR => match self.attr(id) {
                Some(attr) => Reply::Data(
                    bytes_of(&sys::fuse_attr_out {
                        attr_valid: self.timeout,
                        attr,
                        ..Default::default()
                    })
                    .to_vec(),
                ),
                None => Reply::Error(libc::ENOENT),
            },
            sys::FUSE_OPEN => match self.nodes.get(&id) {
                Some(Node::File { backing_ids, .. }) => {
                    let opens = self.opens.entry(id).or_default();
                    let backing_id =
                        (!backing_ids.is_empty()).then(|| backing_ids[*opens % backing_ids.len()]);
                    *opens += 1;
                    let out = sys::fuse_open_out {
                        fh: id,
                        open_flags: if backing_id.is_some() {
                            sys::FOPEN_PASSTHROUGH
                        } else {
                            0
                        },
                        backing_id: backing_id.unwrap_or(0),
                    };
                    Reply::Data(bytes_of(&out).to_vec())
                }
                Some(Node::Dir(_)) => Reply::Error(libc::EISDIR),
                None => Reply::Error(libc::ENOENT),
            },
            sys::FUSE_OPENDIR => Reply::Data(bytes_of(&sys::fuse_open_out::default()).to_vec()),
            sys::FUSE_READ => self.read(id, request),
            sys::FUSE_READDIR => self.readdir(id, request),
            sys::FUSE_RELEASE | sys::FUSE_RELEASEDIR | sys::FUSE_FLUSH | sys::FUSE_ACCESS => {
                Reply::Data(Vec::new())
            }
            sys::FUSE_STATFS => Reply::Data(
                bytes_of(&sys::fuse_statfs_out {
                    st: sys::fuse_kstatfs {
                        bsize: 4096,
                        frsize: 4096,
                        namelen: 255,
                        files: self.nodes.len() as u64,
                        ..Default::default()
                    },
                })
                .to_vec(),
            ),
            sys::FUSE_FORGET | sys::FUSE_BATCH_FORGET | sys::FUSE_INTERRUPT => Reply::None,
            sys::FUSE_DESTROY => Reply::Data(Vec::new()),
            _ => Reply::Error(libc::ENOSYS),
        }
    }
}
