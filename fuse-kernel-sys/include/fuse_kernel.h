/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR BSD-2-Clause */
/*
 * fuse_kernel.h - the FUSE kernel <-> userspace protocol, version 7.46
 * (as spoken by Linux 7.3), written for the fuse-kernel-sys crate.
 *
 * This header is this project's own text. The names, C types, field order
 * and values are the kernel's ABI and must not be changed; every comment is
 * ours. It was written from the project's ABI fact sheet (compiler-evaluated
 * layouts of the upstream 7.45 header and observations on a 6.18 kernel)
 * and, for 7.46, from the facts of the official Linux 7.3 uapi header
 * (Debian's linux-libc-dev 7.3~rc7), which abi-tests checks item by item.
 *
 * Older kernels: every item here carries the minor that introduced it. A
 * server must not use an item newer than the minor the kernel sends in
 * FUSE_INIT. The one 7.46 change of an existing layout is the io_uring
 * command area: struct fuse_uring_cmd_req grew from 24 to 40 bytes; kernels
 * before 7.46 read only its first 24 bytes (flags, commit_id, qid, padding),
 * so a command whose union part is all zero means the same to both.
 *
 * It is self-contained: it includes <stdint.h> for the fixed-width types, <stddef.h> for offsetof(), and
 * <linux/ioctl.h> so that the _IO/_IOR/_IOW macros expand when the header is
 * compiled on its own. bindgen (through build-support) and the ABI probes in
 * abi-tests read this file; no number in the Rust bindings is typed by hand.
 *
 * Everything here is mainline. The unmerged fuse-iomap extension lives in
 * fuse_iomap.h next to this file and never changes anything declared here.
 */
#ifndef FUSE_KERNEL_SYS_FUSE_KERNEL_H
#define FUSE_KERNEL_SYS_FUSE_KERNEL_H

#include <stddef.h>
#include <stdint.h>
#include <linux/ioctl.h>

/* ------------------------------------------------------------------------
 * Protocol version
 * ------------------------------------------------------------------------ */

/* Major version: a different major is a different protocol. */
#define FUSE_KERNEL_VERSION 7

/* Minor version spoken by Linux 7.3 (45 was Linux 6.18). Features newer
 * than the minor the other side reports must not be used. */
#define FUSE_KERNEL_MINOR_VERSION 46

/* Node id of the mount's root directory. */
#define FUSE_ROOT_ID 1

/* ------------------------------------------------------------------------
 * Attribute records
 * ------------------------------------------------------------------------ */

/* Inode attributes as returned by LOOKUP, GETATTR, READDIRPLUS and friends.
 * Times are seconds plus nanoseconds since the epoch. */
struct fuse_attr {
	uint64_t ino;
	uint64_t size;
	uint64_t blocks;	/* in 512-byte units */
	uint64_t atime;
	uint64_t mtime;
	uint64_t ctime;
	uint32_t atimensec;
	uint32_t mtimensec;
	uint32_t ctimensec;
	uint32_t mode;		/* file type and permission bits, as st_mode */
	uint32_t nlink;
	uint32_t uid;
	uint32_t gid;
	uint32_t rdev;
	uint32_t blksize;	/* preferred I/O size */
	uint32_t flags;		/* FUSE_ATTR_* */
};

/* A timestamp inside struct fuse_statx (mirrors struct statx_timestamp). */
struct fuse_sx_time {
	int64_t tv_sec;
	uint32_t tv_nsec;
	int32_t __reserved;
};

/* Reply record of FUSE_STATX: mirrors the kernel's struct statx. */
struct fuse_statx {
	uint32_t mask;		/* which STATX_* fields are filled in */
	uint32_t blksize;
	uint64_t attributes;
	uint32_t nlink;
	uint32_t uid;
	uint32_t gid;
	uint16_t mode;
	uint16_t __spare0[1];
	uint64_t ino;
	uint64_t size;
	uint64_t blocks;
	uint64_t attributes_mask;
	struct fuse_sx_time atime;
	struct fuse_sx_time btime;
	struct fuse_sx_time ctime;
	struct fuse_sx_time mtime;
	uint32_t rdev_major;
	uint32_t rdev_minor;
	uint32_t dev_major;
	uint32_t dev_minor;
	uint64_t __spare2[14];	/* reserved, zero */
};

/* File system statistics (the statfs(2) record). */
struct fuse_kstatfs {
	uint64_t blocks;
	uint64_t bfree;
	uint64_t bavail;
	uint64_t files;
	uint64_t ffree;
	uint32_t bsize;
	uint32_t namelen;
	uint32_t frsize;
	uint32_t padding;
	uint32_t spare[6];
};

/* A POSIX lock range, used by GETLK/SETLK/SETLKW. */
struct fuse_file_lock {
	uint64_t start;
	uint64_t end;
	uint32_t type;		/* F_RDLCK, F_WRLCK or F_UNLCK */
	uint32_t pid;		/* tgid of the lock holder */
};

/* ------------------------------------------------------------------------
 * Flag values
 * ------------------------------------------------------------------------ */

/* Which fields of struct fuse_setattr_in are valid (its 'valid' field). */
#define FATTR_MODE		(1 << 0)
#define FATTR_UID		(1 << 1)
#define FATTR_GID		(1 << 2)
#define FATTR_SIZE		(1 << 3)
#define FATTR_ATIME		(1 << 4)
#define FATTR_MTIME		(1 << 5)
#define FATTR_FH		(1 << 6)
#define FATTR_ATIME_NOW		(1 << 7)
#define FATTR_MTIME_NOW		(1 << 8)
#define FATTR_LOCKOWNER		(1 << 9)
#define FATTR_CTIME		(1 << 10)
#define FATTR_KILL_SUIDGID	(1 << 11)

/* Flags a server returns in fuse_open_out.open_flags. */
#define FOPEN_DIRECT_IO			(1 << 0)	/* bypass the page cache */
#define FOPEN_KEEP_CACHE		(1 << 1)	/* keep cached data on open */
#define FOPEN_NONSEEKABLE		(1 << 2)	/* the file cannot seek */
#define FOPEN_CACHE_DIR			(1 << 3)	/* cache directory contents */
#define FOPEN_STREAM			(1 << 4)	/* a stream: no file position */
#define FOPEN_NOFLUSH			(1 << 5)	/* no FLUSH on close */
#define FOPEN_PARALLEL_DIRECT_WRITES	(1 << 6)	/* concurrent direct writes */
#define FOPEN_PASSTHROUGH		(1 << 7)	/* I/O goes to backing_id (7.40) */
/* 7.46: READ and WRITE of this open file may hand the client's pages to the
 * server (io_uring zero-copy). Only takes effect on a queue added with
 * FUSE_URING_ZERO_COPY and for requests that carry pages; otherwise the
 * data is copied as usual. */
#define FOPEN_IO_URING_ZERO_COPY	(1 << 8)

/*
 * INIT flags. Bits 0-31 travel in the 'flags' field of fuse_init_in and
 * fuse_init_out; bits 32-63 travel in 'flags2' (shifted right by 32), which
 * is only looked at when FUSE_INIT_EXT is set in 'flags'.
 */
#define FUSE_ASYNC_READ		(1 << 0)
#define FUSE_POSIX_LOCKS	(1 << 1)
#define FUSE_FILE_OPS		(1 << 2)
#define FUSE_ATOMIC_O_TRUNC	(1 << 3)
#define FUSE_EXPORT_SUPPORT	(1 << 4)
#define FUSE_BIG_WRITES		(1 << 5)
#define FUSE_DONT_MASK		(1 << 6)
#define FUSE_SPLICE_WRITE	(1 << 7)
#define FUSE_SPLICE_MOVE	(1 << 8)
#define FUSE_SPLICE_READ	(1 << 9)
#define FUSE_FLOCK_LOCKS	(1 << 10)
#define FUSE_HAS_IOCTL_DIR	(1 << 11)
#define FUSE_AUTO_INVAL_DATA	(1 << 12)
#define FUSE_DO_READDIRPLUS	(1 << 13)
#define FUSE_READDIRPLUS_AUTO	(1 << 14)
#define FUSE_ASYNC_DIO		(1 << 15)
#define FUSE_WRITEBACK_CACHE	(1 << 16)
#define FUSE_NO_OPEN_SUPPORT	(1 << 17)
#define FUSE_PARALLEL_DIROPS	(1 << 18)
#define FUSE_HANDLE_KILLPRIV	(1 << 19)
#define FUSE_POSIX_ACL		(1 << 20)
#define FUSE_ABORT_ERROR	(1 << 21)
#define FUSE_MAX_PAGES		(1 << 22)
#define FUSE_CACHE_SYMLINKS	(1 << 23)
#define FUSE_NO_OPENDIR_SUPPORT	(1 << 24)
#define FUSE_EXPLICIT_INVAL_DATA (1 << 25)
#define FUSE_MAP_ALIGNMENT	(1 << 26)
#define FUSE_SUBMOUNTS		(1 << 27)
#define FUSE_HANDLE_KILLPRIV_V2	(1 << 28)
#define FUSE_SETXATTR_EXT	(1 << 29)
#define FUSE_INIT_EXT		(1 << 30)	/* flags2 is meaningful */
#define FUSE_INIT_RESERVED	(1 << 31)
/* The following bits live in flags2. */
#define FUSE_SECURITY_CTX	(1ULL << 32)
#define FUSE_HAS_INODE_DAX	(1ULL << 33)
#define FUSE_CREATE_SUPP_GROUP	(1ULL << 34)
#define FUSE_HAS_EXPIRE_ONLY	(1ULL << 35)
#define FUSE_DIRECT_IO_ALLOW_MMAP (1ULL << 36)
/* 7.40 (Linux 6.9): passthrough backing files. A server that accepts it may
 * register an open file with FUSE_DEV_IOC_BACKING_OPEN and answer OPEN with
 * FOPEN_PASSTHROUGH and that backing id; the kernel then does read, write,
 * splice and mmap of the open file on the backing file without asking the
 * server. Needs CAP_SYS_ADMIN and max_stack_depth in the INIT reply; goes
 * in flags2 (bit 37 of the 64-bit flags). */
#define FUSE_PASSTHROUGH	(1ULL << 37)
#define FUSE_NO_EXPORT_SUPPORT	(1ULL << 38)
#define FUSE_HAS_RESEND		(1ULL << 39)	/* 7.40: FUSE_NOTIFY_RESEND */
/* Older spelling of FUSE_DIRECT_IO_ALLOW_MMAP, kept for source compatibility. */
#define FUSE_DIRECT_IO_RELAX	FUSE_DIRECT_IO_ALLOW_MMAP
#define FUSE_ALLOW_IDMAP	(1ULL << 40)	/* 7.41: idmapped mounts */
#define FUSE_OVER_IO_URING	(1ULL << 41)	/* 7.42: FUSE-over-io_uring */
#define FUSE_REQUEST_TIMEOUT	(1ULL << 42)	/* 7.43: request_timeout valid */
/* 7.46: the kernel understands the io_uring commands ADD_QUEUE and
 * ADD_BUFPOOL (a payload buffer pool per queue, and zero-copy). Offered by
 * the kernel together with FUSE_OVER_IO_URING. NB: the unmerged fuse-iomap
 * series uses this same bit for its own flag (see fuse_iomap.h). */
#define FUSE_HAS_IO_URING_BUFPOOL	(1ULL << 43)

/* CUSE INIT flags. */
#define CUSE_UNRESTRICTED_IOCTL	(1 << 0)

/* fuse_release_in.release_flags */
#define FUSE_RELEASE_FLUSH	(1 << 0)
#define FUSE_RELEASE_FLOCK_UNLOCK (1 << 1)

/* fuse_getattr_in.getattr_flags: 'fh' is valid. */
#define FUSE_GETATTR_FH		(1 << 0)

/* fuse_lk_in.lk_flags: a BSD flock() rather than a POSIX lock. */
#define FUSE_LK_FLOCK		(1 << 0)

/* fuse_write_in.write_flags */
#define FUSE_WRITE_CACHE	(1 << 0)	/* delayed write from the page cache */
#define FUSE_WRITE_LOCKOWNER	(1 << 1)	/* lock_owner is valid */
#define FUSE_WRITE_KILL_SUIDGID	(1 << 2)	/* clear suid/sgid */
/* Older spelling of FUSE_WRITE_KILL_SUIDGID. */
#define FUSE_WRITE_KILL_PRIV	FUSE_WRITE_KILL_SUIDGID

/* fuse_read_in.read_flags: lock_owner is valid. */
#define FUSE_READ_LOCKOWNER	(1 << 1)

/* fuse_ioctl_in.flags and fuse_ioctl_out.flags */
#define FUSE_IOCTL_COMPAT	(1 << 0)	/* 32-bit compat ioctl */
#define FUSE_IOCTL_UNRESTRICTED	(1 << 1)	/* not restricted to well-formed ioctls */
#define FUSE_IOCTL_RETRY	(1 << 2)	/* retry with the iovecs given */
#define FUSE_IOCTL_32BIT	(1 << 3)	/* 32-bit ioctl */
#define FUSE_IOCTL_DIR		(1 << 4)	/* issued on a directory */
#define FUSE_IOCTL_COMPAT_X32	(1 << 5)	/* x32 compat ioctl */

/* Most iovecs an unrestricted ioctl may ask for. */
#define FUSE_IOCTL_MAX_IOV	256

/* fuse_poll_in.flags: the caller wants a poll wakeup notification. */
#define FUSE_POLL_SCHEDULE_NOTIFY (1 << 0)

/* fuse_fsync_in.fsync_flags: only data needs to reach storage. */
#define FUSE_FSYNC_FDATASYNC	(1 << 0)

/* fuse_attr.flags */
#define FUSE_ATTR_SUBMOUNT	(1 << 0)	/* the object is a submount root */
#define FUSE_ATTR_DAX		(1 << 1)	/* DAX for this file (virtiofs) */

/* fuse_open_in.open_flags and fuse_create_in.open_flags */
#define FUSE_OPEN_KILL_SUIDGID	(1 << 0)

/* fuse_setxattr_in.setxattr_flags */
#define FUSE_SETXATTR_ACL_KILL_SGID (1 << 0)

/* fuse_notify_inval_entry_out.flags: only expire the entry, keep it. */
#define FUSE_EXPIRE_ONLY	(1 << 0)

/* ------------------------------------------------------------------------
 * Request extensions (appended after a request's arguments; their length
 * in 8-byte units is fuse_in_header.total_extlen)
 * ------------------------------------------------------------------------ */

enum fuse_ext_type {
	/* Types 0..31 carry security contexts. */
	FUSE_MAX_NR_SECCTX	= 31,
	/* Supplementary groups of the caller (struct fuse_supp_groups). */
	FUSE_EXT_GROUPS		= 32,
};

/* ------------------------------------------------------------------------
 * Opcodes and notification codes
 * ------------------------------------------------------------------------ */

enum fuse_opcode {
	FUSE_LOOKUP		= 1,
	FUSE_FORGET		= 2,	/* no reply */
	FUSE_GETATTR		= 3,
	FUSE_SETATTR		= 4,
	FUSE_READLINK		= 5,
	FUSE_SYMLINK		= 6,
	FUSE_MKNOD		= 8,
	FUSE_MKDIR		= 9,
	FUSE_UNLINK		= 10,
	FUSE_RMDIR		= 11,
	FUSE_RENAME		= 12,
	FUSE_LINK		= 13,
	FUSE_OPEN		= 14,
	FUSE_READ		= 15,
	FUSE_WRITE		= 16,
	FUSE_STATFS		= 17,
	FUSE_RELEASE		= 18,
	FUSE_FSYNC		= 20,
	FUSE_SETXATTR		= 21,
	FUSE_GETXATTR		= 22,
	FUSE_LISTXATTR		= 23,
	FUSE_REMOVEXATTR	= 24,
	FUSE_FLUSH		= 25,
	FUSE_INIT		= 26,
	FUSE_OPENDIR		= 27,
	FUSE_READDIR		= 28,
	FUSE_RELEASEDIR		= 29,
	FUSE_FSYNCDIR		= 30,
	FUSE_GETLK		= 31,
	FUSE_SETLK		= 32,
	FUSE_SETLKW		= 33,
	FUSE_ACCESS		= 34,
	FUSE_CREATE		= 35,
	FUSE_INTERRUPT		= 36,
	FUSE_BMAP		= 37,
	FUSE_DESTROY		= 38,
	FUSE_IOCTL		= 39,
	FUSE_POLL		= 40,
	FUSE_NOTIFY_REPLY	= 41,
	FUSE_BATCH_FORGET	= 42,	/* no reply */
	FUSE_FALLOCATE		= 43,
	FUSE_READDIRPLUS	= 44,
	FUSE_RENAME2		= 45,
	FUSE_LSEEK		= 46,
	FUSE_COPY_FILE_RANGE	= 47,
	FUSE_SETUPMAPPING	= 48,
	FUSE_REMOVEMAPPING	= 49,
	FUSE_SYNCFS		= 50,
	FUSE_TMPFILE		= 51,
	FUSE_STATX		= 52,	/* 7.39 */
	FUSE_COPY_FILE_RANGE_64	= 53,	/* 7.45: 64-bit byte count in the reply */

	/* CUSE (character devices in userspace) */
	CUSE_INIT		= 4096,

	/* Byte-swapped INIT opcodes, reserved so that an endianness
	 * mismatch can be recognised. */
	CUSE_INIT_BSWAP_RESERVED	= 1048576,	/* CUSE_INIT << 8 */
	FUSE_INIT_BSWAP_RESERVED	= 436207616,	/* FUSE_INIT << 24 */
};

/* Codes of server-to-kernel notifications (written with unique == 0;
 * the code travels in fuse_out_header.error). */
enum fuse_notify_code {
	FUSE_NOTIFY_POLL	= 1,
	FUSE_NOTIFY_INVAL_INODE	= 2,
	FUSE_NOTIFY_INVAL_ENTRY	= 3,
	FUSE_NOTIFY_STORE	= 4,
	FUSE_NOTIFY_RETRIEVE	= 5,
	FUSE_NOTIFY_DELETE	= 6,
	FUSE_NOTIFY_RESEND	= 7,	/* 7.40 */
	FUSE_NOTIFY_INC_EPOCH	= 8,	/* 7.44 */
	FUSE_NOTIFY_PRUNE	= 9,	/* 7.45 */
};

/* The smallest read buffer the kernel accepts on /dev/fuse. */
#define FUSE_MIN_READ_BUFFER 8192

/* Reply sizes spoken by servers older than 7.9. */
#define FUSE_COMPAT_ENTRY_OUT_SIZE 120

/* ------------------------------------------------------------------------
 * Per-opcode argument records
 * ------------------------------------------------------------------------ */

/* Reply of LOOKUP, MKNOD, MKDIR, SYMLINK, LINK (and CREATE, first part). */
struct fuse_entry_out {
	uint64_t nodeid;	/* node id of the entry */
	uint64_t generation;	/* (nodeid, generation) is unique for the fs life */
	uint64_t entry_valid;	/* name cache timeout, seconds */
	uint64_t attr_valid;	/* attribute cache timeout, seconds */
	uint32_t entry_valid_nsec;
	uint32_t attr_valid_nsec;
	struct fuse_attr attr;
};

/* FORGET: drop nlookup references to the request's nodeid. */
struct fuse_forget_in {
	uint64_t nlookup;
};

/* One item of a BATCH_FORGET. */
struct fuse_forget_one {
	uint64_t nodeid;
	uint64_t nlookup;
};

/* BATCH_FORGET: followed by 'count' struct fuse_forget_one. */
struct fuse_batch_forget_in {
	uint32_t count;
	uint32_t dummy;
};

/* GETATTR */
struct fuse_getattr_in {
	uint32_t getattr_flags;	/* FUSE_GETATTR_* */
	uint32_t dummy;
	uint64_t fh;
};

#define FUSE_COMPAT_ATTR_OUT_SIZE 96

/* Reply of GETATTR and SETATTR. */
struct fuse_attr_out {
	uint64_t attr_valid;	/* cache timeout, seconds */
	uint32_t attr_valid_nsec;
	uint32_t dummy;
	struct fuse_attr attr;
};

/* STATX (7.39) */
struct fuse_statx_in {
	uint32_t getattr_flags;
	uint32_t reserved;
	uint64_t fh;
	uint32_t sx_flags;	/* AT_STATX_* sync flags */
	uint32_t sx_mask;	/* STATX_* fields wanted */
};

/* Reply of STATX (7.39). */
struct fuse_statx_out {
	uint64_t attr_valid;
	uint32_t attr_valid_nsec;
	uint32_t flags;
	uint64_t spare[2];
	struct fuse_statx stat;
};

#define FUSE_COMPAT_MKNOD_IN_SIZE 8

/* MKNOD: followed by the name. */
struct fuse_mknod_in {
	uint32_t mode;
	uint32_t rdev;
	uint32_t umask;
	uint32_t padding;
};

/* MKDIR: followed by the name. */
struct fuse_mkdir_in {
	uint32_t mode;
	uint32_t umask;
};

/* RENAME: followed by the old and the new name. */
struct fuse_rename_in {
	uint64_t newdir;
};

/* RENAME2: RENAME with renameat2() flags. */
struct fuse_rename2_in {
	uint64_t newdir;
	uint32_t flags;		/* RENAME_* */
	uint32_t padding;
};

/* LINK: followed by the new name. */
struct fuse_link_in {
	uint64_t oldnodeid;
};

/* SETATTR: 'valid' (FATTR_*) says which fields to apply. */
struct fuse_setattr_in {
	uint32_t valid;
	uint32_t padding;
	uint64_t fh;
	uint64_t size;
	uint64_t lock_owner;
	uint64_t atime;
	uint64_t mtime;
	uint64_t ctime;
	uint32_t atimensec;
	uint32_t mtimensec;
	uint32_t ctimensec;
	uint32_t mode;
	uint32_t unused4;
	uint32_t uid;
	uint32_t gid;
	uint32_t unused5;
};

/* OPEN and OPENDIR */
struct fuse_open_in {
	uint32_t flags;		/* open(2) flags */
	uint32_t open_flags;	/* FUSE_OPEN_* */
};

/* CREATE: followed by the name. */
struct fuse_create_in {
	uint32_t flags;
	uint32_t mode;
	uint32_t umask;
	uint32_t open_flags;	/* FUSE_OPEN_* */
};

/* Reply of OPEN, OPENDIR and CREATE (second part). */
struct fuse_open_out {
	uint64_t fh;		/* server's file handle */
	uint32_t open_flags;	/* FOPEN_* */
	int32_t backing_id;	/* with FOPEN_PASSTHROUGH: id from BACKING_OPEN (7.40) */
};

/* RELEASE and RELEASEDIR */
struct fuse_release_in {
	uint64_t fh;
	uint32_t flags;
	uint32_t release_flags;	/* FUSE_RELEASE_* */
	uint64_t lock_owner;
};

/* FLUSH */
struct fuse_flush_in {
	uint64_t fh;
	uint32_t unused;
	uint32_t padding;
	uint64_t lock_owner;
};

/* READ, READDIR and READDIRPLUS */
struct fuse_read_in {
	uint64_t fh;
	uint64_t offset;
	uint32_t size;		/* most bytes the reply may carry */
	uint32_t read_flags;	/* FUSE_READ_* */
	uint64_t lock_owner;
	uint32_t flags;		/* open(2) flags of the file */
	uint32_t padding;
};

#define FUSE_COMPAT_WRITE_IN_SIZE 24

/* WRITE: followed by 'size' bytes of data. */
struct fuse_write_in {
	uint64_t fh;
	uint64_t offset;
	uint32_t size;
	uint32_t write_flags;	/* FUSE_WRITE_* */
	uint64_t lock_owner;
	uint32_t flags;
	uint32_t padding;
};

/* Reply of WRITE and COPY_FILE_RANGE. */
struct fuse_write_out {
	uint32_t size;
	uint32_t padding;
};

#define FUSE_COMPAT_STATFS_SIZE 48

/* Reply of STATFS. */
struct fuse_statfs_out {
	struct fuse_kstatfs st;
};

/* FSYNC and FSYNCDIR */
struct fuse_fsync_in {
	uint64_t fh;
	uint32_t fsync_flags;	/* FUSE_FSYNC_* */
	uint32_t padding;
};

#define FUSE_COMPAT_SETXATTR_IN_SIZE 8

/* SETXATTR: followed by the name and the value. */
struct fuse_setxattr_in {
	uint32_t size;
	uint32_t flags;
	uint32_t setxattr_flags;	/* FUSE_SETXATTR_*, with FUSE_SETXATTR_EXT */
	uint32_t padding;
};

/* GETXATTR (followed by the name) and LISTXATTR. */
struct fuse_getxattr_in {
	uint32_t size;		/* 0: only ask for the size */
	uint32_t padding;
};

/* Reply of GETXATTR/LISTXATTR when the request's size was 0. */
struct fuse_getxattr_out {
	uint32_t size;
	uint32_t padding;
};

/* GETLK, SETLK and SETLKW */
struct fuse_lk_in {
	uint64_t fh;
	uint64_t owner;
	struct fuse_file_lock lk;
	uint32_t lk_flags;	/* FUSE_LK_* */
	uint32_t padding;
};

/* Reply of GETLK. */
struct fuse_lk_out {
	struct fuse_file_lock lk;
};

/* ACCESS */
struct fuse_access_in {
	uint32_t mask;		/* R_OK, W_OK, X_OK */
	uint32_t padding;
};

/* INIT request: the kernel's version and the features it offers. */
struct fuse_init_in {
	uint32_t major;
	uint32_t minor;
	uint32_t max_readahead;
	uint32_t flags;		/* INIT flags, bits 0-31 */
	uint32_t flags2;	/* INIT flags, bits 32-63 */
	uint32_t unused[11];
};

#define FUSE_COMPAT_INIT_OUT_SIZE 8
#define FUSE_COMPAT_22_INIT_OUT_SIZE 24

/* INIT reply: the server's version, the features it accepts and its limits.
 * The kernel reads only the bytes its minor knows; older minors send a
 * shorter reply (FUSE_COMPAT_22_INIT_OUT_SIZE and friends). */
struct fuse_init_out {
	uint32_t major;			/* FUSE_KERNEL_VERSION; another major fails the mount */
	uint32_t minor;			/* min(our minor, the kernel's): the protocol spoken */
	uint32_t max_readahead;		/* at most the kernel's offer in fuse_init_in */
	uint32_t flags;			/* INIT flags, bits 0-31, a subset of the offer */
	uint16_t max_background;	/* background requests in flight before throttling */
	uint16_t congestion_threshold;	/* background requests that mark the fs congested */
	uint32_t max_write;		/* largest WRITE payload */
	uint32_t time_gran;		/* timestamp granularity, ns */
	uint16_t max_pages;		/* with FUSE_MAX_PAGES */
	uint16_t map_alignment;		/* with FUSE_MAP_ALIGNMENT (DAX) */
	uint32_t flags2;		/* INIT flags, bits 32-63 */
	uint32_t max_stack_depth;	/* with FUSE_PASSTHROUGH (7.40) */
	uint16_t request_timeout;	/* seconds, with FUSE_REQUEST_TIMEOUT (7.43) */
	uint16_t unused[11];
};

/* Longest device info string of CUSE_INIT. */
#define CUSE_INIT_INFO_MAX 4096

/* CUSE_INIT request. */
struct cuse_init_in {
	uint32_t major;
	uint32_t minor;
	uint32_t unused;
	uint32_t flags;		/* CUSE_* */
};

/* CUSE_INIT reply, followed by the device info string. */
struct cuse_init_out {
	uint32_t major;
	uint32_t minor;
	uint32_t unused;
	uint32_t flags;
	uint32_t max_read;
	uint32_t max_write;
	uint32_t dev_major;	/* character device number */
	uint32_t dev_minor;
	uint32_t spare[10];
};

/* INTERRUPT: the request to interrupt. */
struct fuse_interrupt_in {
	uint64_t unique;
};

/* BMAP */
struct fuse_bmap_in {
	uint64_t block;
	uint32_t blocksize;
	uint32_t padding;
};

/* Reply of BMAP. */
struct fuse_bmap_out {
	uint64_t block;
};

/* IOCTL: followed by in_size bytes of input. */
struct fuse_ioctl_in {
	uint64_t fh;
	uint32_t flags;		/* FUSE_IOCTL_* */
	uint32_t cmd;
	uint64_t arg;
	uint32_t in_size;
	uint32_t out_size;
};

/* One iovec of an unrestricted ioctl retry. */
struct fuse_ioctl_iovec {
	uint64_t base;
	uint64_t len;
};

/* Reply of IOCTL, followed by output or retry iovecs. */
struct fuse_ioctl_out {
	int32_t result;
	uint32_t flags;		/* FUSE_IOCTL_* */
	uint32_t in_iovs;
	uint32_t out_iovs;
};

/* POLL */
struct fuse_poll_in {
	uint64_t fh;
	uint64_t kh;		/* kernel handle for FUSE_NOTIFY_POLL */
	uint32_t flags;		/* FUSE_POLL_* */
	uint32_t events;
};

/* Reply of POLL. */
struct fuse_poll_out {
	uint32_t revents;
	uint32_t padding;
};

/* Payload of FUSE_NOTIFY_POLL. */
struct fuse_notify_poll_wakeup_out {
	uint64_t kh;
};

/* FALLOCATE */
struct fuse_fallocate_in {
	uint64_t fh;
	uint64_t offset;
	uint64_t length;
	uint32_t mode;		/* FALLOC_FL_* */
	uint32_t padding;
};

/* ------------------------------------------------------------------------
 * Message headers
 * ------------------------------------------------------------------------ */

/* Marks a request re-queued by FUSE_NOTIFY_RESEND: bit 63 of 'unique' (7.40). */
#define FUSE_UNIQUE_RESEND (1ULL << 63)

/* With FUSE_ALLOW_IDMAP: uid/gid of a request that has no mapping (7.41). */
#define FUSE_INVALID_UIDGID ((uint32_t)(-1))

/* Starts every request the kernel sends. */
struct fuse_in_header {
	uint32_t len;		/* whole request, this header included */
	uint32_t opcode;	/* enum fuse_opcode */
	uint64_t unique;	/* request id, echoed in the reply */
	uint64_t nodeid;
	uint32_t uid;
	uint32_t gid;
	uint32_t pid;
	uint16_t total_extlen;	/* extension bytes, in units of 8 */
	uint16_t padding;
};

/* Starts every reply and notification the server writes. */
struct fuse_out_header {
	uint32_t len;		/* whole reply, this header included */
	int32_t error;		/* 0 or a negative errno; notify code if unique == 0 */
	uint64_t unique;
};

/* One record of a READDIR reply; the name follows, padded to 8 bytes. */
struct fuse_dirent {
	uint64_t ino;
	uint64_t off;		/* offset of the next record */
	uint32_t namelen;
	uint32_t type;		/* DT_* */
	char name[];
};

/* Room a READDIR record needs, and the rounding of every record. */
#define FUSE_REC_ALIGN(x) \
	(((x) + sizeof(uint64_t) - 1) & ~(sizeof(uint64_t) - 1))
#define FUSE_NAME_OFFSET offsetof(struct fuse_dirent, name)
#define FUSE_DIRENT_ALIGN(x) FUSE_REC_ALIGN(x)
#define FUSE_DIRENT_SIZE(d) \
	FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + (d)->namelen)

/* One record of a READDIRPLUS reply: an entry plus a dirent. */
struct fuse_direntplus {
	struct fuse_entry_out entry_out;
	struct fuse_dirent dirent;
};

#define FUSE_NAME_OFFSET_DIRENTPLUS \
	offsetof(struct fuse_direntplus, dirent.name)
#define FUSE_DIRENTPLUS_SIZE(d) \
	FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET_DIRENTPLUS + (d)->dirent.namelen)

/* ------------------------------------------------------------------------
 * Notifications (server to kernel)
 * ------------------------------------------------------------------------ */

/* FUSE_NOTIFY_INVAL_INODE: drop cached data of a range (len < 0: to EOF). */
struct fuse_notify_inval_inode_out {
	uint64_t ino;
	int64_t off;
	int64_t len;
};

/* FUSE_NOTIFY_INVAL_ENTRY: followed by the name. */
struct fuse_notify_inval_entry_out {
	uint64_t parent;
	uint32_t namelen;
	uint32_t flags;		/* FUSE_EXPIRE_ONLY */
};

/* FUSE_NOTIFY_DELETE: followed by the name. */
struct fuse_notify_delete_out {
	uint64_t parent;
	uint64_t child;
	uint32_t namelen;
	uint32_t padding;
};

/* FUSE_NOTIFY_STORE: followed by 'size' bytes to place in the page cache. */
struct fuse_notify_store_out {
	uint64_t nodeid;
	uint64_t offset;
	uint32_t size;
	uint32_t padding;
};

/* FUSE_NOTIFY_RETRIEVE: ask the kernel for cached data. */
struct fuse_notify_retrieve_out {
	uint64_t notify_unique;
	uint64_t nodeid;
	uint64_t offset;
	uint32_t size;
	uint32_t padding;
};

/* The kernel's answer to a retrieve, sent as a FUSE_NOTIFY_REPLY request. */
struct fuse_notify_retrieve_in {
	uint64_t dummy1;
	uint64_t offset;
	uint32_t size;
	uint32_t dummy2;
	uint64_t dummy3;
	uint64_t dummy4;
};

/* FUSE_NOTIFY_PRUNE (7.45): followed by 'count' uint64_t node ids. */
struct fuse_notify_prune_out {
	uint32_t count;
	uint32_t padding;
	uint64_t spare;
};

/* ------------------------------------------------------------------------
 * /dev/fuse ioctls
 * ------------------------------------------------------------------------ */

/* Argument of FUSE_DEV_IOC_BACKING_OPEN (7.40). */
struct fuse_backing_map {
	int32_t fd;		/* file to use as backing file */
	uint32_t flags;		/* must be 0 on mainline */
	uint64_t padding;	/* must be 0 */
};

#define FUSE_DEV_IOC_MAGIC		229
/* Attach this fd to the session of the fd given as argument. */
#define FUSE_DEV_IOC_CLONE		_IOR(FUSE_DEV_IOC_MAGIC, 0, uint32_t)
/* Register a backing file; returns its id (>= 1). 7.40. */
#define FUSE_DEV_IOC_BACKING_OPEN	_IOW(FUSE_DEV_IOC_MAGIC, 1, \
					     struct fuse_backing_map)
/* Drop a backing id. 7.40. */
#define FUSE_DEV_IOC_BACKING_CLOSE	_IOW(FUSE_DEV_IOC_MAGIC, 2, uint32_t)
/* Make the later mount(2) run INIT synchronously. Linux 6.18. */
#define FUSE_DEV_IOC_SYNC_INIT		_IO(FUSE_DEV_IOC_MAGIC, 3)

/* ------------------------------------------------------------------------
 * More requests
 * ------------------------------------------------------------------------ */

/* LSEEK */
struct fuse_lseek_in {
	uint64_t fh;
	uint64_t offset;
	uint32_t whence;
	uint32_t padding;
};

/* Reply of LSEEK. */
struct fuse_lseek_out {
	uint64_t offset;
};

/* COPY_FILE_RANGE and COPY_FILE_RANGE_64 */
struct fuse_copy_file_range_in {
	uint64_t fh_in;
	uint64_t off_in;
	uint64_t nodeid_out;
	uint64_t fh_out;
	uint64_t off_out;
	uint64_t len;
	uint64_t flags;
};

/* Reply of COPY_FILE_RANGE_64 (7.45). */
struct fuse_copy_file_range_out {
	uint64_t bytes_copied;
};

/* SETUPMAPPING flags (virtiofs DAX) */
#define FUSE_SETUPMAPPING_FLAG_WRITE (1ull << 0)
#define FUSE_SETUPMAPPING_FLAG_READ (1ull << 1)

/* SETUPMAPPING (virtiofs DAX window) */
struct fuse_setupmapping_in {
	uint64_t fh;
	uint64_t foffset;	/* offset in the file */
	uint64_t len;
	uint64_t flags;		/* FUSE_SETUPMAPPING_FLAG_* */
	uint64_t moffset;	/* offset in the DAX window */
};

/* REMOVEMAPPING: followed by 'count' struct fuse_removemapping_one. */
struct fuse_removemapping_in {
	uint32_t count;
};

struct fuse_removemapping_one {
	uint64_t moffset;
	uint64_t len;
};

/* Most ranges one REMOVEMAPPING carries. PAGE_SIZE is not defined by this
 * header: the value depends on the page size of the machine. */
#define FUSE_REMOVEMAPPING_MAX_ENTRY \
	(PAGE_SIZE / sizeof(struct fuse_removemapping_one))

/* SYNCFS */
struct fuse_syncfs_in {
	uint64_t padding;
};

/* ------------------------------------------------------------------------
 * Request extensions: security contexts and supplementary groups
 * ------------------------------------------------------------------------ */

/* One security context: followed by its name and 'size' bytes of context. */
struct fuse_secctx {
	uint32_t size;
	uint32_t padding;
};

/* Starts the security-context extension. */
struct fuse_secctx_header {
	uint32_t size;
	uint32_t nr_secctx;
};

/* Starts every extension; 'size' includes this header. */
struct fuse_ext_header {
	uint32_t size;
	uint32_t type;		/* enum fuse_ext_type */
};

/* FUSE_EXT_GROUPS payload. */
struct fuse_supp_groups {
	uint32_t nr_groups;
	uint32_t groups[];
};

/* ------------------------------------------------------------------------
 * FUSE-over-io_uring (7.42; buffer pools and zero-copy 7.46)
 * ------------------------------------------------------------------------ */

/* Room for the in/out header at the start of a ring entry's header buffer. */
#define FUSE_URING_IN_OUT_HEADER_SZ 128
/* Room for the opcode's fixed argument record. */
#define FUSE_URING_OP_IN_OUT_SZ 128

/* fuse_uring_ent_in_out.flags (7.46): the request's pages were registered
 * in the entry's zero-copy slot of the server's io_uring buffer table
 * instead of being copied into the payload buffer. */
#define FUSE_URING_ENT_ZERO_COPY	(1 << 0)

/* Per-entry bookkeeping of FUSE-over-io_uring, at the end of each ring
 * entry's header buffer (struct fuse_uring_req_header): the kernel fills it
 * when it hands a request to the server, the server when it commits the
 * reply with FUSE_IO_URING_CMD_COMMIT_AND_FETCH. */
struct fuse_uring_ent_in_out {
	uint64_t flags;		/* FUSE_URING_ENT_* (7.46) */
	uint64_t commit_id;	/* the request's unique; echo it in COMMIT_AND_FETCH */
	uint32_t payload_sz;	/* bytes of payload (zero-copied page bytes included) */
	uint32_t offset;	/* 7.46, queues with a pool: where the payload buffer
				 * of this request starts, from the pool's start
				 * (was 'padding' before 7.46) */
	uint64_t reserved;
};

/* The header buffer of a ring entry (the first iovec of REGISTER). */
struct fuse_uring_req_header {
	char in_out[FUSE_URING_IN_OUT_HEADER_SZ];	/* fuse_in_header / fuse_out_header */
	char op_in[FUSE_URING_OP_IN_OUT_SZ];		/* the opcode's first argument */
	struct fuse_uring_ent_in_out ring_ent_in_out;
};

/* io_uring_sqe.cmd_op values of FUSE's IORING_OP_URING_CMD commands. */
enum fuse_uring_cmd {
	FUSE_IO_URING_CMD_INVALID = 0,
	FUSE_IO_URING_CMD_REGISTER = 1,		/* hand an entry to the kernel */
	FUSE_IO_URING_CMD_COMMIT_AND_FETCH = 2,	/* send a reply, fetch the next */
	FUSE_IO_URING_CMD_ADD_QUEUE = 3,	/* 7.46: create queue 'qid' */
	FUSE_IO_URING_CMD_ADD_BUFPOOL = 4,	/* 7.46: give queue 'qid' a pool */
};

/* fuse_uring_cmd_req.flags of ADD_QUEUE (7.46): the queue serves zero-copy
 * requests. Needs CAP_SYS_ADMIN and a buffer pool on the queue. */
#define FUSE_URING_ZERO_COPY	(1 << 0)

/* The command area (io_uring_sqe.cmd, 80 bytes in a 128-byte SQE) of a FUSE
 * uring command. 24 bytes before 7.46, 40 since; kernels before 7.46 read
 * only the first 24. */
struct fuse_uring_cmd_req {
	uint64_t flags;		/* ADD_QUEUE: FUSE_URING_ZERO_COPY; else 0 */
	uint64_t commit_id;	/* COMMIT_AND_FETCH only */
	uint16_t qid;		/* queue index, 0 .. possible CPUs - 1 */
	uint8_t padding[6];

	/* 7.46. Which member counts depends on the command. */
	union {
		/* ADD_BUFPOOL: the pool, one region cut by the kernel into
		 * len / (maximum payload size) buffers; reserved must be 0. */
		struct {
			uint64_t uaddr;
			uint32_t len;
			uint32_t reserved;
		} bufpool;

		/* REGISTER on a zero-copy queue: the slot of the server's
		 * io_uring registered-buffer table where the kernel puts the
		 * pages of this entry's zero-copy requests. 0 on other
		 * queues. */
		uint16_t ent_zero_copy_buf_index;
	};
};

#endif /* FUSE_KERNEL_SYS_FUSE_KERNEL_H */
