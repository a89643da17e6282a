//! What several fuzz targets share: the reader that turns the fuzzer's bytes into arguments,
//! and the kernel's rule for a valid name.

use fuse_wire::dirent::NAME_MAX;

/// Little-endian reader that yields zeros past the end.
pub struct Input<'a>(pub &'a [u8]);

impl Input<'_> {
    /// The next `n` bytes, fewer at the end.
    pub fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        head
    }

    pub fn u8(&mut self) -> u8 {
        self.bytes(1).first().copied().unwrap_or(0)
    }

    pub fn u16(&mut self) -> u16 {
        u16::from(self.u8()) | u16::from(self.u8()) << 8
    }

    pub fn u32(&mut self) -> u32 {
        u32::from(self.u16()) | u32::from(self.u16()) << 16
    }

    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | u64::from(self.u32()) << 32
    }

    /// A name of any bytes: mostly short, sometimes exactly `NAME_MAX` or one past it, or up
    /// to 63 past it; a long name from little input repeats its last byte (`fill` when empty).
    pub fn name(&mut self, fill: u8) -> Vec<u8> {
        let len = match self.u8() {
            n @ 0..=250 => usize::from(n),
            251 => NAME_MAX,
            252 => NAME_MAX + 1,
            _ => usize::from(self.u16()) % (NAME_MAX + 64),
        };
        let mut name = self.bytes(len).to_vec();
        name.resize(len, name.last().copied().unwrap_or(fill));
        name
    }
}

/// A name the kernel accepts in a directory entry or notification: 1 to `NAME_MAX` bytes,
/// no `/` and no NUL.
pub fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.len() <= NAME_MAX && !name.contains(&b'/') && !name.contains(&0)
}
