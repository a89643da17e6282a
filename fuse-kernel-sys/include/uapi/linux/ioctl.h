/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR BSD-2-Clause */
/*
 * uapi/linux/ioctl.h - the ioctl number encoding (_IO, _IOR, _IOW, _IOWR) of
 * every Linux architecture fuse-kernel-sys has bindings for, written for the
 * fuse-kernel-sys crate.
 *
 * This header is this project's own text; the encodings are the kernel's ABI.
 * Only the bindings generator reads it (bindgen gets this directory with
 * -isystem and -nostdlibinc), so that the bindings of any target can be
 * generated without that target's kernel headers, and every generation is
 * the same on every machine. The C cross-checks of abi-tests compile
 * fuse_kernel.h against each target's real uapi headers (Debian's
 * linux-libc-dev-<arch>-cross) instead: a wrong encoding here makes the ioctl
 * numbers of that architecture differ, and the check names it.
 *
 * An ioctl number packs four fields, from the low bits up: the command number
 * (8 bits), the type or "magic" (8 bits), the argument size, and the
 * direction. Two layouts exist among our targets:
 *  - generic (x86, arm, aarch64, riscv, loongarch, s390): 14 size bits, 2
 *    direction bits, none = 0, write = 1, read = 2;
 *  - powerpc, mips, sparc (and alpha): 13 size bits, 3 direction bits, each
 *    direction its own bit: none = 1, read = 2, write = 4.
 */
#ifndef FUSE_KERNEL_SYS_UAPI_LINUX_IOCTL_H
#define FUSE_KERNEL_SYS_UAPI_LINUX_IOCTL_H

#if defined(__powerpc__) || defined(__mips__) || defined(__sparc__) || defined(__alpha__)
#define _IOC_SIZEBITS	13
#define _IOC_DIRBITS	3
#define _IOC_NONE	1U
#define _IOC_READ	2U
#define _IOC_WRITE	4U
#elif defined(__x86_64__) || defined(__i386__) || defined(__arm__) || \
	defined(__aarch64__) || defined(__riscv) || defined(__loongarch__) || \
	defined(__s390__)
#define _IOC_SIZEBITS	14
#define _IOC_DIRBITS	2
#define _IOC_NONE	0U
#define _IOC_WRITE	1U
#define _IOC_READ	2U
#else
#error "fuse-kernel-sys: no ioctl encoding known for this architecture; add it to include/uapi/linux/ioctl.h and verify it against the kernel's asm/ioctl.h"
#endif

#define _IOC_NRBITS	8
#define _IOC_TYPEBITS	8
#define _IOC_NRSHIFT	0
#define _IOC_TYPESHIFT	(_IOC_NRSHIFT + _IOC_NRBITS)
#define _IOC_SIZESHIFT	(_IOC_TYPESHIFT + _IOC_TYPEBITS)
#define _IOC_DIRSHIFT	(_IOC_SIZESHIFT + _IOC_SIZEBITS)

/* The same operand types as the kernel's macros, so that the C type of each
 * ioctl number (unsigned int, or unsigned long where sizeof() takes part) is
 * the kernel's too. */
#define _IOC(dir, type, nr, size) \
	(((dir) << _IOC_DIRSHIFT) | ((type) << _IOC_TYPESHIFT) | \
	 ((nr) << _IOC_NRSHIFT) | ((size) << _IOC_SIZESHIFT))

#define _IO(type, nr)		_IOC(_IOC_NONE, (type), (nr), 0)
#define _IOR(type, nr, argtype)	_IOC(_IOC_READ, (type), (nr), sizeof(argtype))
#define _IOW(type, nr, argtype)	_IOC(_IOC_WRITE, (type), (nr), sizeof(argtype))
#define _IOWR(type, nr, argtype) \
	_IOC(_IOC_READ | _IOC_WRITE, (type), (nr), sizeof(argtype))

#endif
