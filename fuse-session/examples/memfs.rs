//! memfs: a read-write file system in memory, served by a session.
//!
//! Usage, as root: `memfs MNT [dev|uring|auto]`. It mounts at MNT with `allow_other` and
//! `default_permissions` (the kernel checks mode bits; every user may use the mount) and
//! serves until unmounted or SIGINT/SIGTERM. Everything is lost when it ends.
//!
//! The whole file system is one `Mutex<Tree>`: plain, not fast. What the kernel does itself
//! with `default_permissions` (permission checks, sticky directories, clearing setuid on
//! write and chown) is not repeated here; what a file system must do itself is: link counts,
//! timestamps, setgid directories, name lengths, empty-directory checks.
use std::collections::{BTreeMap, HashMap};
use std::ffi::CStr;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuse_session::{Handler, Reply, Session, Transport};
use fuse_wire::{DirentBuf, DirentPlusBuf, Errno, InitConfig, OpenOut, Operation, Request};
use fuse_wire::{FallocateFlags, FileType, RenameFlags, SetattrValid, XattrFlags};
use fuse_wire::{reply, sys};

const ROOT: u64 = 1;
const NAME_MAX: usize = 255;
/// Entries may be cached briefly; attributes are always asked for (the kernel's copy of
/// timestamps would otherwise lag behind what another name of the same inode changed).
const ENTRY_TTL: Duration = Duration::from_secs(1);
const ATTR_TTL: Duration = Duration::ZERO;

#[derive(Debug)]
enum Content {
    File(Vec<u8>),
    /// Name to inode number, and the parent (for `..`).
    Dir(BTreeMap<Vec<u8>, u64>, u64),
    Symlink(Vec<u8>),
    /// FIFOs, sockets, device nodes: only attributes.
    Special,
}

#[derive(Debug)]
struct Node {
    attr: sys::fuse_attr,
    content: Content,
    xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Lookups the kernel holds (it FORGETs them); the node goes when this and nlink are 0.
    lookups: u64,
}

#[derive(Debug)]
struct Tree {
    nodes: HashMap<u64, Node>,
    next_ino: u64,
}

/// The file system: the handler a session calls.
#[derive(Debug)]
pub struct MemFs {
    tree: Mutex<Tree>,
}

fn now() -> (u64, u32) {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (t.as_secs(), t.subsec_nanos())
}

/// Which timestamps an operation changes.
const ATIME: u8 = 1;
const MTIME: u8 = 2;
const CTIME: u8 = 4;

fn touch(attr: &mut sys::fuse_attr, which: u8) {
    let (s, ns) = now();
    if which & ATIME != 0 {
        (attr.atime, attr.atimensec) = (s, ns);
    }
    if which & MTIME != 0 {
        (attr.mtime, attr.mtimensec) = (s, ns);
    }
    if which & CTIME != 0 {
        (attr.ctime, attr.ctimensec) = (s, ns);
    }
}

fn checked_name(name: &CStr) -> Result<&[u8], Errno> {
    let name = name.to_bytes();
    if name.len() > NAME_MAX {
        return Err(Errno::NAMETOOLONG);
    }
    Ok(name)
}

impl Tree {
    fn node(&self, ino: u64) -> Result<&Node, Errno> {
        self.nodes.get(&ino).ok_or(Errno::NOENT)
    }

    fn node_mut(&mut self, ino: u64) -> Result<&mut Node, Errno> {
        self.nodes.get_mut(&ino).ok_or(Errno::NOENT)
    }

    fn children(&self, dir: u64) -> Result<&BTreeMap<Vec<u8>, u64>, Errno> {
        match &self.node(dir)?.content {
            Content::Dir(children, _) => Ok(children),
            _ => Err(Errno::NOTDIR),
        }
    }

    fn children_mut(&mut self, dir: u64) -> Result<&mut BTreeMap<Vec<u8>, u64>, Errno> {
        match &mut self.node_mut(dir)?.content {
            Content::Dir(children, _) => Ok(children),
            _ => Err(Errno::NOTDIR),
        }
    }

    fn child(&self, dir: u64, name: &[u8]) -> Result<u64, Errno> {
        self.children(dir)?.get(name).copied().ok_or(Errno::NOENT)
    }

    /// The entry of `ino`, counting one more lookup by the kernel.
    fn entry(&mut self, ino: u64) -> Result<sys::fuse_entry_out, Errno> {
        let node = self.node_mut(ino)?;
        node.lookups += 1;
        Ok(reply::entry_out(ino, 0, node.attr, ENTRY_TTL, ATTR_TTL))
    }

    fn adjust_nlink(&mut self, ino: u64, up: bool) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.attr.nlink = if up {
                node.attr.nlink + 1
            } else {
                node.attr.nlink.saturating_sub(1)
            };
            touch(&mut node.attr, CTIME);
        }
    }

    /// Drops `ino` once no name and no kernel lookup is left.
    fn drop_if_unused(&mut self, ino: u64) {
        if ino != ROOT
            && self
                .nodes
                .get(&ino)
                .is_some_and(|n| n.attr.nlink == 0 && n.lookups == 0)
        {
            self.nodes.remove(&ino);
        }
    }

    /// Makes a node named `name` in `parent`, owned by the caller (the group of a setgid
    /// parent, which directories also inherit the setgid bit of).
    fn make(
        &mut self,
        request: &Request<'_>,
        parent: u64,
        name: &CStr,
        mut mode: u32,
        rdev: u32,
        content: Content,
    ) -> Result<sys::fuse_entry_out, Errno> {
        let name = checked_name(name)?;
        if self.children(parent)?.contains_key(name) {
            return Err(Errno::EXIST);
        }
        let dir = matches!(content, Content::Dir(..));
        let parent_attr = self.node(parent)?.attr;
        let mut gid = request.header().gid;
        if parent_attr.mode & libc::S_ISGID != 0 {
            gid = parent_attr.gid;
            if dir {
                mode |= libc::S_ISGID;
            }
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        let size = match &content {
            Content::Symlink(target) => target.len() as u64,
            _ => 0,
        };
        let mut attr = sys::fuse_attr {
            ino,
            mode,
            size,
            nlink: if dir { 2 } else { 1 },
            uid: request.header().uid,
            gid,
            rdev,
            blksize: 4096,
            ..Default::default()
        };
        touch(&mut attr, ATIME | MTIME | CTIME);
        let xattrs = BTreeMap::new();
        self.nodes.insert(
            ino,
            Node {
                attr,
                content,
                xattrs,
                lookups: 0,
            },
        );
        self.children_mut(parent)?.insert(name.to_vec(), ino);
        let parent_node = self.node_mut(parent)?;
        touch(&mut parent_node.attr, MTIME | CTIME);
        if dir {
            parent_node.attr.nlink += 1;
        }
        self.entry(ino)
    }

    fn link(&mut self, ino: u64, parent: u64, name: &CStr) -> Result<sys::fuse_entry_out, Errno> {
        let name = checked_name(name)?;
        if self.children(parent)?.contains_key(name) {
            return Err(Errno::EXIST);
        }
        self.node(ino)?;
        self.children_mut(parent)?.insert(name.to_vec(), ino);
        touch(&mut self.node_mut(parent)?.attr, MTIME | CTIME);
        self.adjust_nlink(ino, true);
        self.entry(ino)
    }

    /// UNLINK and RMDIR (the kernel has checked which of the two fits the entry).
    fn remove(&mut self, parent: u64, name: &CStr) -> Result<(), Errno> {
        let name = checked_name(name)?;
        let ino = self.child(parent, name)?;
        let dir = match &self.node(ino)?.content {
            Content::Dir(children, _) if !children.is_empty() => return Err(Errno::NOTEMPTY),
            content => matches!(content, Content::Dir(..)),
        };
        if dir {
            // Its own `.` goes with it, and its `..` from the parent.
            self.node_mut(ino)?.attr.nlink = 1;
            self.adjust_nlink(parent, false);
        }
        self.children_mut(parent)?.remove(name);
        touch(&mut self.node_mut(parent)?.attr, MTIME | CTIME);
        self.adjust_nlink(ino, false);
        self.drop_if_unused(ino);
        Ok(())
    }

    /// RENAME and RENAME2 (`RENAME_NOREPLACE`, `RENAME_EXCHANGE`).
    fn rename(
        &mut self,
        from: (u64, &CStr),
        to: (u64, &CStr),
        flags: RenameFlags,
    ) -> Result<(), Errno> {
        if !(RenameFlags::NOREPLACE | RenameFlags::EXCHANGE).contains(flags) {
            return Err(Errno::INVAL);
        }
        let (old_parent, old_name) = (from.0, checked_name(from.1)?);
        let (new_parent, new_name) = (to.0, checked_name(to.1)?);
        let moved = self.child(old_parent, old_name)?;
        let replaced = self.children(new_parent)?.get(new_name).copied();
        if flags.contains(RenameFlags::EXCHANGE) {
            let other = replaced.ok_or(Errno::NOENT)?;
            self.children_mut(old_parent)?
                .insert(old_name.to_vec(), other);
            self.children_mut(new_parent)?
                .insert(new_name.to_vec(), moved);
            self.reparent(other, new_parent, old_parent);
            self.reparent(moved, old_parent, new_parent);
            for ino in [old_parent, new_parent] {
                touch(&mut self.node_mut(ino)?.attr, MTIME | CTIME);
            }
            for ino in [moved, other] {
                touch(&mut self.node_mut(ino)?.attr, CTIME);
            }
            return Ok(());
        }
        if let Some(replaced) = replaced {
            if flags.contains(RenameFlags::NOREPLACE) {
                return Err(Errno::EXIST);
            }
            if replaced == moved {
                return Ok(());
            }
            self.remove(new_parent, to.1)?;
        }
        self.children_mut(old_parent)?.remove(old_name);
        self.children_mut(new_parent)?
            .insert(new_name.to_vec(), moved);
        self.reparent(moved, old_parent, new_parent);
        for ino in [old_parent, new_parent] {
            touch(&mut self.node_mut(ino)?.attr, MTIME | CTIME);
        }
        touch(&mut self.node_mut(moved)?.attr, CTIME);
        Ok(())
    }

    /// A directory moved from `old` to `new`: its `..` and both link counts follow.
    fn reparent(&mut self, ino: u64, old: u64, new: u64) {
        if old == new {
            return;
        }
        if let Some(Node {
            content: Content::Dir(_, parent),
            ..
        }) = self.nodes.get_mut(&ino)
        {
            *parent = new;
            self.adjust_nlink(old, false);
            self.adjust_nlink(new, true);
        }
    }

    fn setattr(
        &mut self,
        ino: u64,
        arg: &sys::fuse_setattr_in,
        valid: SetattrValid,
    ) -> Result<sys::fuse_attr, Errno> {
        let node = self.node_mut(ino)?;
        let attr = &mut node.attr;
        if valid.contains(SetattrValid::MODE) {
            attr.mode = (attr.mode & libc::S_IFMT) | (arg.mode & 0o7777);
        }
        if valid.contains(SetattrValid::UID) {
            attr.uid = arg.uid;
        }
        if valid.contains(SetattrValid::GID) {
            attr.gid = arg.gid;
        }
        if valid.contains(SetattrValid::SIZE) {
            let Content::File(data) = &mut node.content else {
                return Err(Errno::ISDIR);
            };
            if data.len() as u64 != arg.size {
                data.resize(usize::try_from(arg.size).map_err(|_| Errno::FBIG)?, 0);
                attr.size = arg.size;
                touch(attr, MTIME);
            }
        }
        if valid.contains(SetattrValid::ATIME_NOW) {
            touch(attr, ATIME);
        } else if valid.contains(SetattrValid::ATIME) {
            (attr.atime, attr.atimensec) = (arg.atime, arg.atimensec);
        }
        if valid.contains(SetattrValid::MTIME_NOW) {
            touch(attr, MTIME);
        } else if valid.contains(SetattrValid::MTIME) {
            (attr.mtime, attr.mtimensec) = (arg.mtime, arg.mtimensec);
        }
        if valid.contains(SetattrValid::CTIME) {
            (attr.ctime, attr.ctimensec) = (arg.ctime, arg.ctimensec);
        } else {
            touch(attr, CTIME);
        }
        Ok(*attr)
    }

    fn file_mut(&mut self, ino: u64) -> Result<(&mut Vec<u8>, &mut sys::fuse_attr), Errno> {
        let node = self.node_mut(ino)?;
        match &mut node.content {
            Content::File(data) => Ok((data, &mut node.attr)),
            Content::Dir(..) => Err(Errno::ISDIR),
            _ => Err(Errno::INVAL),
        }
    }

    fn write(&mut self, ino: u64, offset: u64, bytes: &[u8]) -> Result<u32, Errno> {
        let (data, attr) = self.file_mut(ino)?;
        let start = usize::try_from(offset).map_err(|_| Errno::FBIG)?;
        let end = start.checked_add(bytes.len()).ok_or(Errno::FBIG)?;
        if end > data.len() {
            data.resize(end, 0);
        }
        data[start..end].copy_from_slice(bytes);
        attr.size = data.len() as u64;
        touch(attr, MTIME | CTIME);
        Ok(bytes.len() as u32)
    }

    fn fallocate(
        &mut self,
        ino: u64,
        arg: &sys::fuse_fallocate_in,
        mode: FallocateFlags,
    ) -> Result<(), Errno> {
        let (data, attr) = self.file_mut(ino)?;
        let start = usize::try_from(arg.offset).map_err(|_| Errno::FBIG)?;
        let end = start.checked_add(usize::try_from(arg.length).map_err(|_| Errno::FBIG)?);
        let end = end.ok_or(Errno::FBIG)?;
        let keep_size = mode.contains(FallocateFlags::KEEP_SIZE);
        let zeroes = FallocateFlags::PUNCH_HOLE | FallocateFlags::ZERO_RANGE;
        let what = mode - FallocateFlags::KEEP_SIZE;
        // Reserving (no flag) has nothing to reserve in memory; it grows the file unless
        // KEEP_SIZE. A hole may only be punched with KEEP_SIZE.
        let known = what.is_empty()
            || what == FallocateFlags::ZERO_RANGE
            || (what == FallocateFlags::PUNCH_HOLE && keep_size);
        if !known {
            return Err(Errno::OPNOTSUPP);
        }
        if what.intersects(zeroes) {
            let zero_end = end.min(data.len());
            if start < zero_end {
                data[start..zero_end].fill(0);
            }
        }
        if !keep_size && end > data.len() {
            data.resize(end, 0);
            attr.size = end as u64;
        }
        touch(attr, MTIME | CTIME);
        Ok(())
    }

    fn set_xattr(
        &mut self,
        ino: u64,
        name: &CStr,
        value: &[u8],
        flags: XattrFlags,
    ) -> Result<(), Errno> {
        let node = self.node_mut(ino)?;
        let exists = node.xattrs.contains_key(name.to_bytes());
        if flags.contains(XattrFlags::CREATE) && exists {
            return Err(Errno::EXIST);
        }
        if flags.contains(XattrFlags::REPLACE) && !exists {
            return Err(Errno::NODATA);
        }
        node.xattrs.insert(name.to_bytes().to_vec(), value.to_vec());
        touch(&mut node.attr, CTIME);
        Ok(())
    }

    fn remove_xattr(&mut self, ino: u64, name: &CStr) -> Result<(), Errno> {
        let node = self.node_mut(ino)?;
        node.xattrs.remove(name.to_bytes()).ok_or(Errno::NODATA)?;
        touch(&mut node.attr, CTIME);
        Ok(())
    }

    /// `.`, `..` and the names of `dir`, from position `offset` on: (position after it,
    /// inode, `DT_*` type, name).
    fn listing(&self, dir: u64, offset: u64) -> Result<Vec<Listed>, Errno> {
        let Content::Dir(children, parent) = &self.node(dir)?.content else {
            return Err(Errno::NOTDIR);
        };
        let dots = [(dir, b".".to_vec()), (*parent, b"..".to_vec())];
        let names = children.iter().map(|(name, ino)| (*ino, name.clone()));
        let all = dots
            .into_iter()
            .chain(names)
            .enumerate()
            .skip(offset as usize);
        Ok(all
            .map(|(i, (ino, name))| {
                let kind = self
                    .nodes
                    .get(&ino)
                    .map_or(FileType::Unknown, |n| FileType::from_raw_mode(n.attr.mode));
                Listed {
                    next: i as u64 + 1,
                    ino,
                    kind,
                    name,
                }
            })
            .collect())
    }
}

/// One directory entry as READDIR lists it.
struct Listed {
    /// The position after this entry: where the next READDIR goes on.
    next: u64,
    ino: u64,
    kind: FileType,
    name: Vec<u8>,
}

/// The reply of `result`: `ok` with its value, or the error.
fn send<T>(reply: Reply<'_>, result: Result<T, Errno>, ok: impl FnOnce(Reply<'_>, T)) {
    match result {
        Ok(value) => ok(reply, value),
        Err(errno) => reply.error(errno),
    }
}

/// An xattr value or name list: its size when asked with size 0, else the bytes.
fn send_sized(reply: Reply<'_>, bytes: Result<Vec<u8>, Errno>, size: u32) {
    send(reply, bytes, |reply, bytes| match size {
        0 => reply.xattr_size(bytes.len() as u32),
        size if (size as usize) < bytes.len() => reply.error(Errno::RANGE),
        _ => reply.data(&bytes),
    });
}

impl Handler for MemFs {
    fn handle(&self, request: &Request<'_>, reply: Reply<'_>) {
        let mut tree = self
            .tree
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let ino = request.nodeid();
        let attr = |tree: &Tree| tree.node(ino).map(|n| reply::attr_out(n.attr, ATTR_TTL));
        match *request.operation() {
            Operation::Lookup { name } => {
                let child = checked_name(name).and_then(|name| tree.child(ino, name));
                send(reply, child.and_then(|child| tree.entry(child)), |r, e| {
                    r.entry(&e)
                });
            }
            Operation::Getattr(_) => send(reply, attr(&tree), |r, a| r.attr(&a)),
            Operation::Setattr(arg) => {
                let valid = SetattrValid::from_bits_retain(arg.valid);
                let result = tree
                    .setattr(ino, &arg, valid)
                    .map(|a| reply::attr_out(a, ATTR_TTL));
                send(reply, result, |r, a| r.attr(&a));
            }
            Operation::Readlink => match &tree.node(ino).map(|n| &n.content) {
                Ok(Content::Symlink(target)) => reply.data(target),
                Ok(_) => reply.error(Errno::INVAL),
                Err(e) => reply.error(*e),
            },
            Operation::Mknod { arg, name } => {
                let made = tree.make(request, ino, name, arg.mode, arg.rdev, Content::Special);
                send(reply, made, |r, e| r.entry(&e));
            }
            Operation::Mkdir { arg, name } => {
                let mode = libc::S_IFDIR | (arg.mode & 0o7777);
                let made = tree.make(
                    request,
                    ino,
                    name,
                    mode,
                    0,
                    Content::Dir(BTreeMap::new(), ino),
                );
                send(reply, made, |r, e| r.entry(&e));
            }
            Operation::Symlink { name, target } => {
                let content = Content::Symlink(target.to_bytes().to_vec());
                let made = tree.make(request, ino, name, libc::S_IFLNK | 0o777, 0, content);
                send(reply, made, |r, e| r.entry(&e));
            }
            Operation::Create { arg, name } => {
                let mode = libc::S_IFREG | (arg.mode & 0o7777);
                let made = tree.make(request, ino, name, mode, 0, Content::File(Vec::new()));
                send(reply, made, |r, e| r.create(&e, &OpenOut::new(0)));
            }
            Operation::Link { arg, name } => {
                send(reply, tree.link(arg.oldnodeid, ino, name), |r, e| {
                    r.entry(&e)
                });
            }
            Operation::Unlink { name } | Operation::Rmdir { name } => {
                send(reply, tree.remove(ino, name), |r, ()| r.ok());
            }
            Operation::Rename {
                arg,
                name,
                new_name,
            } => {
                let result = tree.rename((ino, name), (arg.newdir, new_name), RenameFlags::empty());
                send(reply, result, |r, ()| r.ok());
            }
            Operation::Rename2 {
                arg,
                name,
                new_name,
            } => {
                let result = tree.rename(
                    (ino, name),
                    (arg.newdir, new_name),
                    RenameFlags::from_bits_retain(arg.flags),
                );
                send(reply, result, |r, ()| r.ok());
            }
            Operation::Open(_) | Operation::Opendir(_) => {
                send(reply, tree.node(ino).map(|_| ()), |r, ()| {
                    r.open(&OpenOut::new(0))
                });
            }
            Operation::Read(read) => match tree.node(ino).map(|n| &n.content) {
                Ok(Content::File(data)) => {
                    let rest = data.get(read.offset as usize..).unwrap_or_default();
                    reply.data(&rest[..rest.len().min(read.size as usize)]);
                }
                Ok(_) => reply.error(Errno::INVAL),
                Err(e) => reply.error(e),
            },
            Operation::Write { arg, data } => {
                send(reply, tree.write(ino, arg.offset, data), |r, n| r.write(n));
            }
            Operation::Fallocate(arg) => {
                let mode = FallocateFlags::from_bits_retain(arg.mode);
                send(reply, tree.fallocate(ino, &arg, mode), |r, ()| r.ok());
            }
            Operation::Readdir(read) => {
                send(reply, tree.listing(ino, read.offset), |reply, list| {
                    reply.with_buffer(read.size as usize, |out| {
                        let mut dir = DirentBuf::new(out);
                        for item in &list {
                            if dir
                                .push(
                                    item.ino,
                                    item.next,
                                    fuse_wire::dirent_type(item.kind),
                                    &item.name,
                                )
                                .is_err()
                            {
                                break;
                            }
                        }
                        Ok(dir.len())
                    })
                });
            }
            Operation::Readdirplus(read) => {
                let list = tree.listing(ino, read.offset);
                send(reply, list, |reply, list| {
                    reply.with_buffer(read.size as usize, |out| {
                        let mut dir = DirentPlusBuf::new(out);
                        for item in &list {
                            if !dir.has_room(item.name.len()) {
                                break;
                            }
                            // `.` and `..` are listed without a lookup (node id 0).
                            let entry = if item.name == b"." || item.name == b".." {
                                let attr = sys::fuse_attr {
                                    ino: item.ino,
                                    ..Default::default()
                                };
                                reply::entry_out(0, 0, attr, Duration::ZERO, Duration::ZERO)
                            } else {
                                tree.entry(item.ino)?
                            };
                            dir.push(
                                &entry,
                                item.next,
                                fuse_wire::dirent_type(item.kind),
                                &item.name,
                            )
                            .map_err(|_| Errno::IO)?;
                        }
                        Ok(dir.len())
                    })
                });
            }
            Operation::Setxattr { arg, name, value } => {
                send(
                    reply,
                    tree.set_xattr(ino, name, value, XattrFlags::from_bits_retain(arg.flags)),
                    |r, ()| r.ok(),
                );
            }
            Operation::Getxattr { arg, name } => {
                let value = tree
                    .node(ino)
                    .and_then(|n| n.xattrs.get(name.to_bytes()).cloned().ok_or(Errno::NODATA));
                send_sized(reply, value, arg.size);
            }
            Operation::Listxattr(arg) => {
                let names = tree.node(ino).map(|n| {
                    n.xattrs
                        .keys()
                        .flat_map(|k| k.iter().copied().chain([0]))
                        .collect()
                });
                send_sized(reply, names, arg.size);
            }
            Operation::Removexattr { name } => {
                send(reply, tree.remove_xattr(ino, name), |r, ()| r.ok());
            }
            Operation::Statfs => {
                let files = tree.nodes.len() as u64;
                let st = sys::fuse_kstatfs {
                    blocks: 1 << 24,
                    bfree: 1 << 23,
                    bavail: 1 << 23,
                    files: files + (1 << 20),
                    ffree: 1 << 20,
                    bsize: 4096,
                    frsize: 4096,
                    namelen: NAME_MAX as u32,
                    ..Default::default()
                };
                reply.statfs(&st);
            }
            Operation::Release(_)
            | Operation::Releasedir(_)
            | Operation::Flush(_)
            | Operation::Fsync(_)
            | Operation::Fsyncdir(_) => reply.ok(),
            _ => reply.error(Errno::NOSYS),
        }
    }

    fn forget(&self, ino: u64, nlookup: u64) {
        let mut tree = self
            .tree
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(node) = tree.nodes.get_mut(&ino) {
            node.lookups = node.lookups.saturating_sub(nlookup);
        }
        tree.drop_if_unused(ino);
    }
}

impl MemFs {
    /// An empty file system: the root directory, `0755`, owned by root.
    pub fn new() -> MemFs {
        let mut attr = sys::fuse_attr {
            ino: ROOT,
            mode: libc::S_IFDIR | 0o755,
            nlink: 2,
            blksize: 4096,
            ..Default::default()
        };
        touch(&mut attr, ATIME | MTIME | CTIME);
        let root = Node {
            attr,
            content: Content::Dir(BTreeMap::new(), ROOT),
            xattrs: BTreeMap::new(),
            lookups: 1,
        };
        MemFs {
            tree: Mutex::new(Tree {
                nodes: HashMap::from([(ROOT, root)]),
                next_ino: ROOT + 1,
            }),
        }
    }
}

/// Mounts a fresh memfs at `mount_point` and serves it until unmounted.
pub fn run(
    mount_point: &Path,
    transport: Transport,
) -> Result<fuse_session::Report, fuse_session::Error> {
    let options = fuse_dev::MountOptions::new()
        .subtype("memfs")
        .allow_other(true)
        .default_permissions(true);
    let mut init = InitConfig::default();
    init.want |= fuse_wire::init_flags::DO_READDIRPLUS;
    Session::mount(mount_point, &options)?
        .transport(transport)
        .init(init)
        .stop_on_signals(true)
        .serve(MemFs::new())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mount_point = std::env::args_os()
        .nth(1)
        .ok_or("usage: memfs MNT [dev|uring|auto]")?;
    let transport = match std::env::args().nth(2).as_deref() {
        Some("dev") => Transport::Dev,
        Some("uring") => Transport::Uring,
        _ => Transport::Auto,
    };
    run(Path::new(&mount_point), transport)?;
    Ok(())
}

impl Default for MemFs {
    fn default() -> MemFs {
        MemFs::new()
    }
}
