//! Backing kinds and typed backing ids.

use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::marker::PhantomData;
use core::num::NonZeroU32;

use fuse_kernel_sys as sys;

/// The type field of `fuse_backing_map.flags` (`flags & FUSE_BACKING_TYPE_MASK`): what a
/// backing id stands for.
///
/// Code that is generic over the kind gets it from [`BackingKind::TYPE`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackingType {
    /// A backing file for passthrough I/O (Linux 6.9, protocol 7.40).
    #[doc(alias = "FUSE_BACKING_TYPE_PASSTHROUGH")]
    Passthrough,
    /// A block device for fuse-iomap (the unmerged "7.99" series; no mainline kernel).
    #[doc(alias = "FUSE_BACKING_TYPE_IOMAP")]
    Iomap,
}

impl BackingType {
    /// The value of the type field in `fuse_backing_map.flags`:
    /// `FUSE_BACKING_TYPE_PASSTHROUGH` or `FUSE_BACKING_TYPE_IOMAP`.
    pub const fn flags(self) -> u32 {
        match self {
            BackingType::Passthrough => sys::FUSE_BACKING_TYPE_PASSTHROUGH,
            BackingType::Iomap => sys::FUSE_BACKING_TYPE_IOMAP,
        }
    }

    /// A short lower-case name: `"passthrough"` or `"iomap"`.
    pub const fn name(self) -> &'static str {
        match self {
            BackingType::Passthrough => "passthrough",
            BackingType::Iomap => "iomap",
        }
    }
}

// Both type values live inside the type field and are types the ABI knows.
const _: () = {
    assert!(sys::FUSE_BACKING_TYPE_PASSTHROUGH & !sys::FUSE_BACKING_TYPE_MASK == 0);
    assert!(sys::FUSE_BACKING_TYPE_IOMAP & !sys::FUSE_BACKING_TYPE_MASK == 0);
    assert!(sys::FUSE_BACKING_TYPE_IOMAP <= sys::FUSE_BACKING_MAX_TYPE);
    assert!(sys::FUSE_BACKING_TYPE_PASSTHROUGH != sys::FUSE_BACKING_TYPE_IOMAP);
};

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Passthrough {}
    impl Sealed for super::IomapDevice {}
}

/// A kind of backing object: [`Passthrough`] or [`IomapDevice`].
///
/// Sealed: the kinds are the ones the kernel ABI defines. The kind is a type parameter of
/// [`BackingId`] and [`Backing`](crate::Backing), so ids of different kinds cannot be mixed up.
pub trait BackingKind: sealed::Sealed + fmt::Debug + 'static {
    /// The type field this kind puts into `fuse_backing_map.flags`.
    const TYPE: BackingType;
}

/// The passthrough kind: a backing **file** whose id goes into `fuse_open_out.backing_id`
/// together with `FOPEN_PASSTHROUGH` (Linux 6.9, protocol 7.40).
///
/// A marker type; it has no values.
#[doc(alias = "FUSE_BACKING_TYPE_PASSTHROUGH")]
#[derive(Debug)]
pub enum Passthrough {}

impl BackingKind for Passthrough {
    const TYPE: BackingType = BackingType::Passthrough;
}

/// The iomap kind: a backing **block device** whose id is the device cookie of fuse-iomap
/// mappings (`fuse_iomap_io.dev`). Only kernels carrying the unmerged fuse-iomap series know
/// it; mainline kernels refuse it (see [`Error::is_unsupported`](crate::Error::is_unsupported)).
///
/// A marker type; it has no values.
#[doc(alias = "FUSE_BACKING_TYPE_IOMAP")]
#[derive(Debug)]
pub enum IomapDevice {}

impl BackingKind for IomapDevice {
    const TYPE: BackingType = BackingType::Iomap;
}

/// A backing id of kind `K`, as allocated by `FUSE_DEV_IOC_BACKING_OPEN` on one connection.
///
/// The kernel allocates ids from 1 up to `i32::MAX` (iomap devices: up to 1024) and reads them
/// back as a C `int`, so every valid id is in `1..=i32::MAX`; this type holds exactly those
/// values. It is a plain `Copy` number: it does not close anything when dropped (that is what
/// [`Backing`](crate::Backing) is for), and it is only meaningful on the connection that
/// allocated it (ids are per connection and are recycled after a close).
///
/// `Option<BackingId<K>>` is 4 bytes (the id is a [`NonZeroU32`]).
///
/// ```
/// use fuse_backing::{BackingId, IomapDevice, Passthrough};
///
/// let id = BackingId::<Passthrough>::new(7).unwrap();
/// let reply = id.open_out(42, 0); // a fuse_open_out with FOPEN_PASSTHROUGH and backing_id 7
/// assert_eq!(reply.backing_id, 7);
/// assert!(BackingId::<Passthrough>::new(0).is_none());
/// assert!(BackingId::<IomapDevice>::new(u32::MAX).is_none());
/// ```
///
/// An iomap device id cannot be put into an OPEN reply:
///
/// ```compile_fail,E0599
/// use fuse_backing::{BackingId, IomapDevice};
/// let dev = BackingId::<IomapDevice>::new(1).unwrap();
/// let _ = dev.open_out(42, 0); // no such method for IomapDevice
/// ```
///
/// and a passthrough id is not an iomap device cookie:
///
/// ```compile_fail,E0599
/// use fuse_backing::{BackingId, Passthrough};
/// let file = BackingId::<Passthrough>::new(1).unwrap();
/// let _ = file.device_cookie(); // no such method for Passthrough
/// ```
#[repr(transparent)]
pub struct BackingId<K: BackingKind> {
    id: NonZeroU32,
    kind: PhantomData<fn() -> K>,
}

const _: () = assert!(size_of::<Option<BackingId<Passthrough>>>() == 4);
const _: () = assert!(size_of::<Option<BackingId<IomapDevice>>>() == 4);
const _: () = assert!(size_of::<BackingId<Passthrough>>() == size_of::<u32>());

impl<K: BackingKind> BackingId<K> {
    /// The largest valid id (`i32::MAX`): the kernel stores ids in a C `int`.
    pub const MAX: u32 = i32::MAX as u32;

    /// The id with this raw value, or `None` for 0 and for values above [`Self::MAX`]
    /// (which the kernel never allocates and rejects on close with `EINVAL`).
    ///
    /// For servers that keep ids themselves (for example in their own tables).
    pub const fn new(raw: u32) -> Option<Self> {
        if raw > Self::MAX {
            return None;
        }
        match NonZeroU32::new(raw) {
            Some(id) => Some(BackingId {
                id,
                kind: PhantomData,
            }),
            None => None,
        }
    }

    /// The raw id, in `1..=i32::MAX`.
    pub const fn get(self) -> u32 {
        self.id.get()
    }

    /// The raw id as a [`NonZeroU32`].
    pub const fn get_nonzero(self) -> NonZeroU32 {
        self.id
    }

    /// The backing type of this kind (`K::TYPE`).
    pub const fn backing_type(self) -> BackingType {
        K::TYPE
    }
}

impl BackingId<Passthrough> {
    /// The value for `fuse_open_out.backing_id` (a C `int`; always positive).
    ///
    /// The reply must also carry `FOPEN_PASSTHROUGH` in `open_flags`; [`Self::open_out`] does
    /// both.
    #[doc(alias = "backing_id")]
    pub const fn open_out_backing_id(self) -> i32 {
        // In range by the type's invariant: 1 <= id <= i32::MAX.
        self.id.get() as i32
    }

    /// A complete OPEN / CREATE reply body that hands the file to the kernel for passthrough
    /// I/O: `fuse_open_out { fh, open_flags: open_flags | FOPEN_PASSTHROUGH, backing_id }`.
    ///
    /// The kernel then serves read, write, splice and mmap of that open file from the backing
    /// file without sending READ or WRITE requests. Needs `FUSE_PASSTHROUGH` accepted in INIT
    /// (Linux 6.9, protocol 7.40) and the id registered on the same connection.
    #[doc(alias = "FOPEN_PASSTHROUGH")]
    #[doc(alias = "fuse_open_out")]
    pub const fn open_out(self, fh: u64, open_flags: u32) -> sys::fuse_open_out {
        sys::fuse_open_out {
            fh,
            open_flags: open_flags | sys::FOPEN_PASSTHROUGH,
            backing_id: self.open_out_backing_id(),
        }
    }
}

impl BackingId<IomapDevice> {
    /// The device cookie for fuse-iomap mappings (`fuse_iomap_io.dev`); never
    /// `FUSE_IOMAP_DEV_NULL` (0).
    #[doc(alias = "fuse_iomap_io")]
    pub const fn device_cookie(self) -> u32 {
        self.id.get()
    }
}

impl<K: BackingKind> Clone for BackingId<K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K: BackingKind> Copy for BackingId<K> {}

impl<K: BackingKind> PartialEq for BackingId<K> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl<K: BackingKind> Eq for BackingId<K> {}

impl<K: BackingKind> PartialOrd for BackingId<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<K: BackingKind> Ord for BackingId<K> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.id.cmp(&other.id)
    }
}

impl<K: BackingKind> Hash for BackingId<K> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl<K: BackingKind> fmt::Debug for BackingId<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BackingId<{}>({})", K::TYPE.name(), self.id)
    }
}

impl<K: BackingKind> fmt::Display for BackingId<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.id, f)
    }
}

impl<K: BackingKind> From<BackingId<K>> for u32 {
    fn from(id: BackingId<K>) -> u32 {
        id.get()
    }
}

impl<K: BackingKind> From<BackingId<K>> for NonZeroU32 {
    fn from(id: BackingId<K>) -> NonZeroU32 {
        id.get_nonzero()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_accepts_exactly_the_ids_the_kernel_can_allocate() {
        assert!(BackingId::<Passthrough>::new(0).is_none());
        assert_eq!(
            BackingId::<Passthrough>::new(1).map(BackingId::get),
            Some(1)
        );
        assert_eq!(
            BackingId::<Passthrough>::new(2_147_483_647).map(BackingId::get),
            Some(2_147_483_647)
        );
        assert!(BackingId::<Passthrough>::new(2_147_483_648).is_none());
        assert!(BackingId::<IomapDevice>::new(u32::MAX).is_none());
    }

    #[test]
    fn open_out_sets_passthrough_and_keeps_caller_flags() {
        let id = BackingId::<Passthrough>::new(5).unwrap();
        let out = id.open_out(99, sys::FOPEN_KEEP_CACHE);
        assert_eq!(out.fh, 99);
        assert_eq!(out.backing_id, 5);
        assert_eq!(
            out.open_flags,
            sys::FOPEN_KEEP_CACHE | sys::FOPEN_PASSTHROUGH
        );
        let top = BackingId::<Passthrough>::new(2_147_483_647).unwrap();
        assert_eq!(top.open_out_backing_id(), i32::MAX);
    }

    #[test]
    fn kinds_carry_their_type_field() {
        assert_eq!(
            Passthrough::TYPE.flags(),
            sys::FUSE_BACKING_TYPE_PASSTHROUGH
        );
        assert_eq!(IomapDevice::TYPE.flags(), sys::FUSE_BACKING_TYPE_IOMAP);
        let dev = BackingId::<IomapDevice>::new(3).unwrap();
        assert_eq!(dev.device_cookie(), 3);
        assert_eq!(dev.backing_type(), BackingType::Iomap);
        assert_eq!(format!("{dev:?}"), "BackingId<iomap>(3)");
    }
}
