//! [`Channel`]: requests in and replies out over one `/dev/fuse` fd, and the INIT handshake.

use std::io::IoSlice;
use std::os::fd::{AsFd, BorrowedFd};

use fuse_kernel_sys as sys;
use fuse_kernel_sys::zerocopy::{FromBytes as _, IntoBytes as _};
use fuse_wire::{InitConfig, InitError, KernelInit, Negotiated, Protocol};
use rustix::io::Errno;

use crate::device::Device;
use crate::error::{ChannelError, HandshakeError};

/// The most payload parts one [`Channel::reply`] takes (the header is one more iovec).
pub const MAX_PARTS: usize = 8;

/// The smallest `read(2)` buffer the kernel accepts before INIT is answered
/// (`FUSE_MIN_READ_BUFFER`, 8192 bytes).
pub const MIN_READ_BUFFER: usize = fuse_wire::init::MIN_READ_BUFFER;

/// One `/dev/fuse` fd used as a request channel: [`Channel::receive`] reads one request,
/// [`Channel::reply`] / [`Channel::reply_error`] / [`Channel::notify`] write with one
/// `writev(2)` each. No allocation per request: the caller owns the read buffer.
///
/// A channel knows the smallest read buffer the kernel accepts now: [`MIN_READ_BUFFER`]
/// before INIT, [`Negotiated::read_buffer_size`] after [`Channel::reply_init`]. A smaller
/// buffer is refused with [`ChannelError::BufferTooSmall`] before the syscall (the kernel would
/// fail `read(2)` with `EINVAL`: it needs `max(8192, sizeof(fuse_in_header) +
/// sizeof(fuse_write_in) + max_write)` bytes for every read, whatever request comes).
///
/// Multi-threaded servers give each worker its own channel ([`Channel::try_clone`]): each
/// request is read by exactly one fd and must be answered on the fd it was read from.
#[derive(Debug)]
pub struct Channel {
    dev: Device,
    read_size: usize,
    protocol: Protocol,
}

/// The kernel's INIT request, read by [`Channel::read_init`] and not answered yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitRequest {
    /// The request's `unique`, to answer.
    pub unique: u64,
    /// What the kernel offers: its protocol version and INIT flags (test them with
    /// `KernelInit::offers` and `fuse_wire::init_flags`). `fuse_uring::check_init` takes it.
    pub kernel: KernelInit,
}

impl Channel {
    /// A channel on `dev`, before INIT (read buffers of [`MIN_READ_BUFFER`] bytes and more).
    pub fn new(dev: Device) -> Channel {
        Channel {
            dev,
            read_size: MIN_READ_BUFFER,
            protocol: Protocol::default(),
        }
    }

    /// A channel on `dev` for a connection whose INIT was already answered with `negotiated`
    /// (for example a worker's fd made with [`Device::try_clone`]).
    pub fn with_negotiated(dev: Device, negotiated: &Negotiated) -> Channel {
        Channel {
            dev,
            read_size: negotiated.read_buffer_size(),
            protocol: negotiated.protocol(),
        }
    }

    /// The device.
    pub fn device(&self) -> &Device {
        &self.dev
    }

    /// Gives the device back.
    pub fn into_device(self) -> Device {
        self.dev
    }

    /// The smallest buffer [`Channel::receive`] accepts now, bytes.
    pub fn read_buffer_size(&self) -> usize {
        self.read_size
    }

    /// How to decode this connection's requests: pass it to `fuse_wire::Request::parse`.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// A new channel on the same connection, for another worker: a new fd attached with
    /// `FUSE_DEV_IOC_CLONE` ([`Device::try_clone`]: `open` + `ioctl`), with this channel's
    /// buffer size and protocol. Call it after INIT so that the clone knows the negotiated
    /// sizes. Linux 4.2.
    ///
    /// # Errors
    ///
    /// Those of [`Device::try_clone`] (`EPERM` before the device is mounted).
    pub fn try_clone(&self) -> Result<Channel, fuse_backing::Error> {
        Ok(Channel {
            dev: self.dev.try_clone()?,
            read_size: self.read_size,
            protocol: self.protocol,
        })
    }

    /// Reads one request into `buf` and returns its bytes (exactly `fuse_in_header.len`
    /// long, at the start of `buf`); decode them with
    /// `fuse_wire::Request::parse(bytes, channel.protocol())`. `Ok(None)`: the connection is
    /// gone, a clean end: `ENODEV` (unmounted) or `ECONNABORTED` (aborted through fusectl,
    /// for example by a server that gives up waiting for a busy detached mount to be
    /// released; the kernel answers reads of an aborted connection with it).
    ///
    /// Blocks until a request comes (the fd is blocking). One `read(2)` per request, plus
    /// one per retry: `EINTR` (a signal), `ENOENT` (the request was interrupted and withdrawn
    /// before we read it) and `EAGAIN` (a non-blocking fd; this then spins) are retried. No
    /// allocation.
    ///
    /// # Errors
    ///
    /// - [`ChannelError::BufferTooSmall`] naming the size needed (no syscall made);
    /// - [`ChannelError::Malformed`] when the kernel's bytes are not one request;
    /// - [`ChannelError::Kernel`]: `EPERM` (the fd is not mounted yet), `EINVAL` (not a
    ///   `/dev/fuse` fd, or a buffer smaller than the kernel's rule), `EBADF`, `EFAULT`.
    pub fn receive<'b>(&self, buf: &'b mut [u8]) -> Result<Option<&'b [u8]>, ChannelError> {
        if buf.len() < self.read_size {
            return Err(ChannelError::BufferTooSmall {
                need: self.read_size,
                have: buf.len(),
            });
        }
        let n = loop {
            match rustix::io::read(&self.dev, &mut *buf) {
                Ok(n) => break n,
                Err(Errno::NODEV | Errno::CONNABORTED) => return Ok(None),
                Err(Errno::INTR | Errno::NOENT | Errno::AGAIN) => continue,
                Err(e) => return Err(ChannelError::Kernel(e)),
            }
        };
        let bytes = &buf[..n];
        match sys::fuse_in_header::read_from_prefix(bytes) {
            Ok((header, _)) if header.len as usize == n => Ok(Some(bytes)),
            Ok((header, _)) => Err(ChannelError::Malformed {
                read: n,
                claimed: header.len,
            }),
            Err(_) => Err(ChannelError::Malformed {
                read: n,
                claimed: 0,
            }),
        }
    }

    /// Answers request `unique` with success and a payload made of `parts` (written in
    /// order after the `fuse_out_header` from `fuse_wire::out_header`): one `writev(2)`, no
    /// allocation.
    ///
    /// A request that was interrupted and is gone (`ENOENT`) or a connection that is gone
    /// (`ENODEV`; the next [`Channel::receive`] reports it) is not an error: `Ok(())`.
    ///
    /// # Errors
    ///
    /// - [`ChannelError::TooLarge`]: more than [`MAX_PARTS`] parts, or over `u32::MAX` bytes;
    /// - [`ChannelError::Kernel`]: `EINVAL` when the kernel rejects the reply (a wrong length
    ///   for the request, for example), `EBADF`, `EFAULT`.
    pub fn reply(&self, unique: u64, parts: &[&[u8]]) -> Result<(), ChannelError> {
        self.send(unique, 0, parts)
    }

    /// Answers request `unique` with an error: `fuse_out_header.error` is
    /// `fuse_wire::out_error(errno)`, so an errno outside `1..=511` (for example `ENOTSUPP`,
    /// 524, which some file systems leak) becomes `EIO` instead of a reply the kernel would
    /// reject. One `writev(2)`. Same non-errors and errors as [`Channel::reply`].
    ///
    /// # Errors
    ///
    /// As [`Channel::reply`].
    pub fn reply_error(&self, unique: u64, errno: Errno) -> Result<(), ChannelError> {
        self.send(unique, fuse_wire::out_error(errno), &[])
    }

    /// Answers request `unique` with `result`: the payload ([`Channel::reply`]) or the errno
    /// ([`Channel::reply_error`]). One `writev(2)`.
    ///
    /// # Errors
    ///
    /// As [`Channel::reply`].
    pub fn reply_result(
        &self,
        unique: u64,
        result: Result<&[u8], Errno>,
    ) -> Result<(), ChannelError> {
        match result {
            Ok(payload) => self.send(unique, 0, &[payload]),
            Err(errno) => self.reply_error(unique, errno),
        }
    }

    fn send(&self, unique: u64, error: i32, parts: &[&[u8]]) -> Result<(), ChannelError> {
        if parts.len() > MAX_PARTS {
            return Err(ChannelError::TooLarge);
        }
        let payload = parts.iter().map(|p| p.len()).sum::<usize>();
        if payload > u32::MAX as usize - size_of::<sys::fuse_out_header>() {
            return Err(ChannelError::TooLarge);
        }
        let header = fuse_wire::out_header(unique, error, payload);
        let mut iov = [IoSlice::new(&[]); MAX_PARTS + 1];
        iov[0] = IoSlice::new(header.as_bytes());
        for (slot, part) in iov[1..].iter_mut().zip(parts) {
            *slot = IoSlice::new(part);
        }
        match rustix::io::writev(&self.dev, &iov[..=parts.len()]) {
            Ok(_) | Err(Errno::NOENT | Errno::NODEV) => Ok(()),
            Err(e) => Err(ChannelError::Kernel(e)),
        }
    }

    /// Writes a notification: `message` is a complete one (header with unique 0 and the
    /// notification code, then its payload), as the encoders of `fuse_wire::notify` produce
    /// it. One `write(2)`.
    ///
    /// # Errors
    ///
    /// [`ChannelError::Kernel`] with the kernel's answer: `ENOENT` (for example INVAL_ENTRY
    /// of a name not in the cache, or RETRIEVE of an inode the kernel does not have), `EINVAL`
    /// (malformed), `ENOSYS` (a notification this kernel does not know), `ENODEV`
    /// (connection gone).
    pub fn notify(&self, message: &[u8]) -> Result<(), ChannelError> {
        rustix::io::write(&self.dev, message)
            .map(|_| ())
            .map_err(ChannelError::Kernel)
    }

    /// Reads the kernel's INIT (the first request after mounting) into `buf` (at least
    /// [`MIN_READ_BUFFER`] bytes) and decodes it, without answering. Decide what to ask
    /// for, then answer with [`Channel::reply_init`] (or [`Channel::refuse_init`]).
    ///
    /// # The order FUSE-over-io_uring needs
    ///
    /// The kernel creates its io_uring queues only once INIT is answered with
    /// `FUSE_OVER_IO_URING`; from then on it sends requests to the rings, and a queue
    /// without registered entries leaves its requests waiting. So:
    /// 1. `read_init`: see whether the kernel offers `FUSE_OVER_IO_URING`
    ///    (`fuse_uring::check_init(&init.kernel)` says why not);
    /// 2. set up every queue that will be registered (rings, buffers, threads), without
    ///    registering yet (REGISTER before the INIT reply fails);
    /// 3. only if every queue could be set up, put `FUSE_OVER_IO_URING` in
    ///    `InitConfig::want` (`config.with(fuse_wire::init_flags::OVER_IO_URING)`);
    ///    `fuse_wire::negotiate`;
    /// 4. [`Channel::reply_init`];
    /// 5. register every queue's entries; keep serving this channel too (FORGET and
    ///    INTERRUPT still come over `/dev/fuse`).
    ///
    /// # Errors
    ///
    /// [`HandshakeError::Channel`] (read errors, a buffer under 8192 bytes),
    /// [`HandshakeError::Closed`] (the connection ended first), [`HandshakeError::NotInit`]
    /// (another opcode came first), [`HandshakeError::Decode`] (malformed INIT).
    pub fn read_init(&self, buf: &mut [u8]) -> Result<InitRequest, HandshakeError> {
        let bytes = self.receive(buf)?.ok_or(HandshakeError::Closed)?;
        let request = fuse_wire::Request::parse(bytes, Protocol::default())
            .map_err(HandshakeError::Decode)?;
        match request.operation() {
            fuse_wire::Operation::Init(kernel) => Ok(InitRequest {
                unique: request.unique(),
                kernel: *kernel,
            }),
            _ => Err(HandshakeError::NotInit {
                opcode: request.opcode(),
            }),
        }
    }

    /// Answers INIT with `negotiated` (one `writev(2)`), after which this channel reads with
    /// buffers of [`Negotiated::read_buffer_size`] and decodes with
    /// [`Negotiated::protocol`].
    ///
    /// # Errors
    ///
    /// As [`Channel::reply`]; the kernel rejecting the reply (`EINVAL`) leaves the
    /// connection unusable (every request then fails with `ECONNREFUSED` or `EIO`).
    pub fn reply_init(
        &mut self,
        init: &InitRequest,
        negotiated: &Negotiated,
    ) -> Result<(), ChannelError> {
        self.reply(init.unique, &[negotiated.reply_bytes()])?;
        self.read_size = negotiated.read_buffer_size();
        self.protocol = negotiated.protocol();
        Ok(())
    }

    /// Refuses INIT with `error`'s errno (`EPROTO` for a protocol we do not serve); the
    /// kernel then fails the mount's requests with `ECONNREFUSED`.
    ///
    /// # Errors
    ///
    /// As [`Channel::reply`].
    pub fn refuse_init(&self, init: &InitRequest, error: &InitError) -> Result<(), ChannelError> {
        self.reply_error(init.unique, error.errno())
    }

    /// The whole INIT handshake when nothing needs deciding in between: [`Channel::read_init`]
    /// (into an 8 KiB buffer allocated once here), `fuse_wire::negotiate` with `config`,
    /// [`Channel::reply_init`]. Two syscalls. A protocol we do not serve is refused
    /// ([`Channel::refuse_init`]) and reported as [`HandshakeError::Refused`].
    ///
    /// # Errors
    ///
    /// Those of [`Channel::read_init`], [`HandshakeError::Refused`], and write errors as
    /// [`HandshakeError::Channel`].
    pub fn handshake(&mut self, config: &InitConfig) -> Result<Negotiated, HandshakeError> {
        let mut buf = vec![0u8; MIN_READ_BUFFER];
        let init = self.read_init(&mut buf)?;
        match fuse_wire::negotiate(&init.kernel, config) {
            Ok(negotiated) => {
                self.reply_init(&init, &negotiated)?;
                Ok(negotiated)
            }
            Err(e) => {
                self.refuse_init(&init, &e)?;
                Err(HandshakeError::Refused(e))
            }
        }
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.dev.as_fd()
    }
}
