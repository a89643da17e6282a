/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR BSD-2-Clause */
/*
 * fuse_iomap.h - the fuse-iomap extension of the FUSE protocol, written for
 * the fuse-kernel-sys crate.
 *
 * UNSTABLE. NOT MAINLINE. This follows Darrick J. Wong's fuse-iomap patch
 * series as posted on 2026-02-23 (the "7.99" state, after "fuse: set iomap
 * backing device block size"). The series calls itself protocol 7.99, a
 * deliberately fake minor; its numbers have changed between postings and
 * will change again before (if ever) it is merged. No released kernel speaks
 * it: on mainline Linux 6.18 the ioctls below answer ENOTTY and the IOMAP
 * backing type answers EINVAL.
 *
 * This header only adds to fuse_kernel.h; it never redefines a mainline
 * item, and FUSE_KERNEL_MINOR_VERSION stays 45. Two differences from the
 * series' own header follow from that:
 *  - the series names part of fuse_statx.__spare2 (mnt_id, dio_mem_align,
 *    ...); the layout is unchanged, so the mainline struct fuse_statx is used;
 *  - the series adds its opcodes and notify codes to enum fuse_opcode and
 *    enum fuse_notify_code; here they are the separate enums
 *    fuse_iomap_opcode and fuse_iomap_notify_code, with the series' values.
 *
 * Names, C types, field order and values are the series'; comments are ours,
 * written from the project's fact sheet of the posting (its structs and values
 * as the C compiler lays them out).
 */
#ifndef FUSE_KERNEL_SYS_FUSE_IOMAP_H
#define FUSE_KERNEL_SYS_FUSE_IOMAP_H

#include "fuse_kernel.h"

/* ------------------------------------------------------------------------
 * Backing types, carried in the low byte of fuse_backing_map.flags
 * ------------------------------------------------------------------------ */

/* Bits of fuse_backing_map.flags that hold the backing type. */
#define FUSE_BACKING_TYPE_MASK		(0xFF)
/* A passthrough backing file (the mainline meaning, value 0). */
#define FUSE_BACKING_TYPE_PASSTHROUGH	(0)
/* A block device that iomap mappings point into. */
#define FUSE_BACKING_TYPE_IOMAP		(1)
/* Highest defined backing type. */
#define FUSE_BACKING_MAX_TYPE		(FUSE_BACKING_TYPE_IOMAP)
/* Every flag bit a BACKING_OPEN may carry (only the type field so far). */
#define FUSE_BACKING_FLAGS_ALL		(FUSE_BACKING_TYPE_MASK)

/* ------------------------------------------------------------------------
 * Negotiation and per-inode flags
 * ------------------------------------------------------------------------ */

/* INIT flag (flags2 bit 11): file I/O through iomap mappings. CONFLICT:
 * mainline 7.46 (Linux 7.3) gave bit 43 to FUSE_HAS_IO_URING_BUFPOOL, so on
 * a mainline kernel this bit never means iomap. The Rust bindings give this
 * flag its own type so the two cannot be mixed up. */
#define FUSE_IOMAP		(1ULL << 43)

/* fuse_attr.flags bits added by the series. */
#define FUSE_ATTR_EXCLUSIVE	(1 << 2)	/* the kernel owns the inode's data */
#define FUSE_ATTR_IOMAP		(1 << 3)	/* use iomap (needs EXCLUSIVE, regular) */
#define FUSE_ATTR_ATOMIC	(1 << 4)	/* atomic writes allowed */
#define FUSE_ATTR_SYNC		(1 << 5)	/* synchronous writes */
#define FUSE_ATTR_IMMUTABLE	(1 << 6)	/* immutable file */
#define FUSE_ATTR_APPEND	(1 << 7)	/* append-only file */

/* ------------------------------------------------------------------------
 * ioctls
 * ------------------------------------------------------------------------ */

/* What FUSE_DEV_IOC_IOMAP_SUPPORT reports. */
#define FUSE_IOMAP_SUPPORT_FILEIO	(1ULL << 0)
#define FUSE_IOMAP_SUPPORT_ATOMIC	(1ULL << 1)

struct fuse_iomap_support {
	uint64_t flags;		/* FUSE_IOMAP_SUPPORT_* */
	uint64_t padding;
};

/* Argument of FUSE_DEV_IOC_IOMAP_SET_BLOCKSIZE. */
struct fuse_iomap_backing_info {
	uint32_t backing_id;	/* an IOMAP backing id */
	uint32_t blocksize;
};

/* Would iomap be allowed on this fd? Works before mount. */
#define FUSE_DEV_IOC_IOMAP_SUPPORT	_IOR(FUSE_DEV_IOC_MAGIC, 99, \
					     struct fuse_iomap_support)
/* Set (1) or clear (0) NOFS reclaim behaviour on the calling thread. */
#define FUSE_DEV_IOC_SET_NOFS		_IOW(FUSE_DEV_IOC_MAGIC, 100, uint32_t)
/* Pre-approve iomap for this fd (needs CAP_SYS_RAWIO). */
#define FUSE_DEV_IOC_ADD_IOMAP		_IO(FUSE_DEV_IOC_MAGIC, 101)
/* Set the block size of an iomap backing device. */
#define FUSE_DEV_IOC_IOMAP_SET_BLOCKSIZE _IOW(FUSE_DEV_IOC_MAGIC, 102, \
					     struct fuse_iomap_backing_info)

/* ------------------------------------------------------------------------
 * Opcodes and notify codes of the series
 * ------------------------------------------------------------------------ */

enum fuse_iomap_opcode {
	FUSE_FREEZE_FS		= 4089,	/* struct fuse_freezefs_in */
	FUSE_UNFREEZE_FS	= 4090,
	FUSE_SHUTDOWN_FS	= 4091,	/* struct fuse_shutdownfs_in */
	FUSE_IOMAP_CONFIG	= 4092,	/* fuse_iomap_config_in -> _out */
	FUSE_IOMAP_IOEND	= 4093,	/* fuse_iomap_ioend_in -> _out */
	FUSE_IOMAP_BEGIN	= 4094,	/* fuse_iomap_begin_in -> _out */
	FUSE_IOMAP_END		= 4095,	/* struct fuse_iomap_end_in */
};

enum fuse_iomap_notify_code {
	FUSE_NOTIFY_IOMAP_DEV_INVAL		= 99,
	FUSE_NOTIFY_IOMAP_UPSERT_MAPPINGS	= 100,
	FUSE_NOTIFY_IOMAP_INVAL_MAPPINGS	= 101,
	/* The series re-adds this enumerator (mainline 7.45 deleted it). */
	FUSE_NOTIFY_CODE_MAX,
};

/* FREEZE_FS */
struct fuse_freezefs_in {
	uint64_t unlinked;	/* number of open but unlinked files */
};

/* SHUTDOWN_FS */
struct fuse_shutdownfs_in {
	uint64_t flags;
};

/* ------------------------------------------------------------------------
 * Mappings
 * ------------------------------------------------------------------------ */

/* fuse_iomap_io.type */
#define FUSE_IOMAP_TYPE_HOLE		0	/* no storage behind the range */
#define FUSE_IOMAP_TYPE_DELALLOC	1	/* delayed allocation */
#define FUSE_IOMAP_TYPE_MAPPED		2	/* mapped to 'addr' on 'dev' */
#define FUSE_IOMAP_TYPE_UNWRITTEN	3	/* allocated, reads as zeros */
#define FUSE_IOMAP_TYPE_INLINE		4	/* data in the reply */
/* Only for a write mapping: overwrite in place. */
#define FUSE_IOMAP_TYPE_PURE_OVERWRITE	(255)
/* Only for a write mapping: do not cache, ask again. */
#define FUSE_IOMAP_TYPE_RETRY_CACHE	(254)
/* Do not cache this mapping. */
#define FUSE_IOMAP_TYPE_NOCACHE		(253)

/* fuse_iomap_io.dev when no device is involved. */
#define FUSE_IOMAP_DEV_NULL		(0U)

/* fuse_iomap_io.flags */
#define FUSE_IOMAP_F_NEW		(1U << 0)
#define FUSE_IOMAP_F_DIRTY		(1U << 1)
#define FUSE_IOMAP_F_SHARED		(1U << 2)
#define FUSE_IOMAP_F_MERGED		(1U << 3)
#define FUSE_IOMAP_F_BOUNDARY		(1U << 4)
#define FUSE_IOMAP_F_ANON_WRITE		(1U << 5)
#define FUSE_IOMAP_F_ATOMIC_BIO		(1U << 6)
/* Ask the kernel to send IOMAP_END for this mapping. */
#define FUSE_IOMAP_F_WANT_IOMAP_END	(1U << 7)
#define FUSE_IOMAP_F_SIZE_CHANGED	(1U << 8)
#define FUSE_IOMAP_F_STALE		(1U << 9)

/* opflags of IOMAP_BEGIN / IOMAP_END */
#define FUSE_IOMAP_OP_WRITE		(1U << 0)
#define FUSE_IOMAP_OP_ZERO		(1U << 1)
#define FUSE_IOMAP_OP_REPORT		(1U << 2)
#define FUSE_IOMAP_OP_FAULT		(1U << 3)
#define FUSE_IOMAP_OP_DIRECT		(1U << 4)
#define FUSE_IOMAP_OP_NOWAIT		(1U << 5)
#define FUSE_IOMAP_OP_OVERWRITE_ONLY	(1U << 6)
#define FUSE_IOMAP_OP_UNSHARE		(1U << 7)
#define FUSE_IOMAP_OP_DAX		(1U << 8)
#define FUSE_IOMAP_OP_ATOMIC		(1U << 9)
#define FUSE_IOMAP_OP_DONTCACHE		(1U << 10)
#define FUSE_IOMAP_OP_SWAPFILE		(1U << 30)
#define FUSE_IOMAP_OP_WRITEBACK		(1U << 31)

/* fuse_iomap_io.addr when the range has no address. */
#define FUSE_IOMAP_NULL_ADDR		(-1ULL)

/* One mapping of a file range. */
struct fuse_iomap_io {
	uint64_t offset;	/* file offset, bytes */
	uint64_t length;	/* bytes */
	uint64_t addr;		/* device address, bytes, or FUSE_IOMAP_NULL_ADDR */
	uint16_t type;		/* FUSE_IOMAP_TYPE_* */
	uint16_t flags;		/* FUSE_IOMAP_F_* */
	uint32_t dev;		/* backing device id, or FUSE_IOMAP_DEV_NULL */
};

/* IOMAP_BEGIN */
struct fuse_iomap_begin_in {
	uint32_t opflags;	/* FUSE_IOMAP_OP_* */
	uint32_t reserved;
	uint64_t attr_ino;
	uint64_t pos;
	uint64_t count;
};

/* Reply of IOMAP_BEGIN: the mapping for reads and the one for writes. */
struct fuse_iomap_begin_out {
	struct fuse_iomap_io read;
	struct fuse_iomap_io write;
};

/* IOMAP_END */
struct fuse_iomap_end_in {
	uint32_t opflags;	/* FUSE_IOMAP_OP_* */
	uint32_t reserved;
	uint64_t attr_ino;
	uint64_t pos;
	uint64_t count;
	int64_t written;
	struct fuse_iomap_io map;
};

/* fuse_iomap_ioend_in.flags */
#define FUSE_IOMAP_IOEND_SHARED		(1U << 0)
#define FUSE_IOMAP_IOEND_UNWRITTEN	(1U << 1)
#define FUSE_IOMAP_IOEND_BOUNDARY	(1U << 2)
#define FUSE_IOMAP_IOEND_DIRECT		(1U << 3)
#define FUSE_IOMAP_IOEND_APPEND		(1U << 4)
#define FUSE_IOMAP_IOEND_WRITEBACK	(1U << 5)
#define FUSE_IOMAP_IOEND_SWAPOFF	(1U << 6)

/* IOMAP_IOEND: an I/O over a mapping completed. */
struct fuse_iomap_ioend_in {
	uint32_t flags;		/* FUSE_IOMAP_IOEND_* */
	int32_t error;		/* negative errno or 0 */
	uint64_t attr_ino;
	uint64_t pos;
	uint64_t new_addr;
	uint64_t written;
	uint32_t dev;
	uint32_t pad;
};

/* Reply of IOMAP_IOEND. */
struct fuse_iomap_ioend_out {
	uint64_t newsize;
};

/* ------------------------------------------------------------------------
 * IOMAP_CONFIG: file system geometry the server hands the kernel
 * ------------------------------------------------------------------------ */

/* fuse_iomap_config_out.flags: which fields are set. These are int
 * expressions (the shift count's type does not widen the result) used in a
 * 64-bit field, exactly as in the series. */
#define FUSE_IOMAP_CONFIG_SID		(1 << 0ULL)
#define FUSE_IOMAP_CONFIG_UUID		(1 << 1ULL)
#define FUSE_IOMAP_CONFIG_BLOCKSIZE	(1 << 2ULL)
#define FUSE_IOMAP_CONFIG_MAX_LINKS	(1 << 3ULL)
#define FUSE_IOMAP_CONFIG_TIME		(1 << 4ULL)
#define FUSE_IOMAP_CONFIG_MAXBYTES	(1 << 5ULL)
#define FUSE_IOMAP_CONFIG_CACHE_MAXBYTES (1 << 6ULL)

struct fuse_iomap_config_in {
	uint64_t flags;
	int64_t maxbytes;
	uint32_t cache_maxbytes;
	uint32_t zero;
	uint64_t padding[5];
};

/* Reply of IOMAP_CONFIG. Has 4 bytes of implicit tail padding (size 104,
 * last field ends at 100): zero the whole record before sending it. */
struct fuse_iomap_config_out {
	uint64_t flags;		/* FUSE_IOMAP_CONFIG_* */
	char s_id[32];
	char s_uuid[16];
	uint8_t s_uuid_len;
	uint8_t s_pad[3];
	uint32_t s_blocksize;
	uint32_t s_max_links;
	uint32_t s_time_gran;
	int64_t s_time_min;
	int64_t s_time_max;
	int64_t s_maxbytes;
	uint32_t cache_maxbytes;
};

/* ------------------------------------------------------------------------
 * Notifications of the series
 * ------------------------------------------------------------------------ */

struct fuse_range {
	uint64_t offset;
	uint64_t length;
};

/* A length meaning "to the end of the file". */
#define FUSE_IOMAP_INVAL_TO_EOF		(~0ULL)

/* FUSE_NOTIFY_IOMAP_DEV_INVAL: drop cached data of a device range. */
struct fuse_iomap_dev_inval_out {
	uint32_t dev;
	uint32_t reserved;
	struct fuse_range range;
};

/* FUSE_NOTIFY_IOMAP_INVAL_MAPPINGS */
struct fuse_iomap_inval_mappings_out {
	uint64_t nodeid;
	uint64_t attr_ino;
	struct fuse_range read;
	struct fuse_range write;
};

/* FUSE_NOTIFY_IOMAP_UPSERT_MAPPINGS */
struct fuse_iomap_upsert_mappings_out {
	uint64_t nodeid;
	uint64_t attr_ino;
	struct fuse_iomap_io read;
	struct fuse_iomap_io write;
};

#endif /* FUSE_KERNEL_SYS_FUSE_IOMAP_H */
