//! A writable shared memory mapping of a window of a log file.
//!
//! This module holds all the `unsafe` code of the file sink. [`MappedRegion`] maps a
//! page-aligned window `[offset, offset + len)` of a file the sink owns and offers a safe,
//! copy-in API: no reference into the mapping ever leaves this module, so the borrow of the
//! mapped memory lasts only for the duration of one `copy_from_slice`.
//!
//! # Contract
//!
//! Mapping a file is only sound while nobody else changes the mapped bytes or shrinks the
//! file under the mapping (shrinking makes accesses raise `SIGBUS`). The file sink upholds
//! this for its own code: it extends the file *before* mapping a window, and it drops the
//! region *before* it truncates the file. Other processes modifying or truncating a log file
//! that is being written through a mapping is outside the contract of the `mmap` strategy
//! (this is documented on `FileSink`).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use memmap2::{MmapMut, MmapOptions};

/// The system page size in bytes.
pub(crate) fn page_size() -> usize {
    // SAFETY: `sysconf` only reads a system constant; it has no preconditions and touches no
    // memory we own.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size)
        .ok()
        .filter(|&s| s > 0)
        .unwrap_or(4096)
}

/// Grows `file` from `old_len` to `new_len` bytes (`new_len > old_len`), with every block of
/// the new range allocated.
///
/// On Linux the new range is reserved with `fallocate(2)`. Where that is not supported (ext2,
/// ext4 without extents, some network and FUSE file systems, other platforms) zeros are
/// written over it instead. Either way, running out of disk space is reported here as
/// `ENOSPC`: a sparse extension (`set_len`) would leave holes, and the first write to a page
/// of the mapping over a hole the full file system cannot fill kills the process with
/// `SIGBUS` (found by `tests/disk_full.rs` on ext2). On error the file is set back to
/// `old_len` (best effort).
pub(crate) fn extend_file(file: &File, old_len: u64, new_len: u64) -> io::Result<()> {
    debug_assert!(new_len > old_len);
    let result = match reserve(file, old_len, new_len - old_len) {
        Ok(true) => Ok(()),
        Ok(false) => write_zeros(file, old_len, new_len),
        Err(e) => Err(e),
    };
    if result.is_err() {
        let _ = file.set_len(old_len);
    }
    result
}

/// Writes zeros over `[from, to)`, which makes the file system allocate every block of it
/// (what `posix_fallocate` does where the file system cannot). Best effort on file systems
/// that store runs of zeros as holes (compression) or copy on write.
fn write_zeros(file: &File, from: u64, to: u64) -> io::Result<()> {
    const STEP: u64 = 64 << 10;
    let zeros = vec![0u8; STEP as usize];
    let mut pos = from;
    while pos < to {
        let n = (to - pos).min(STEP);
        // `n` is at most STEP, so it fits in usize.
        file.write_all_at(&zeros[..n as usize], pos)?;
        pos += n;
    }
    Ok(())
}

/// Allocates `len` bytes at `offset`, extending the file. `Ok(false)` when the file system
/// (or the platform) does not support it.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn reserve(file: &File, offset: u64, len: u64) -> io::Result<bool> {
    use std::os::unix::io::AsRawFd;
    let (Ok(offset), Ok(len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
        return Ok(false);
    };
    loop {
        // SAFETY: `fallocate` takes a file descriptor, which `file` keeps open for the
        // duration of the call, and plain integers; it touches no memory of this process.
        let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, offset, len) };
        if rc == 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL) => return Ok(false),
            _ => return Err(err),
        }
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn reserve(_file: &File, _offset: u64, _len: u64) -> io::Result<bool> {
    Ok(false)
}

/// A shared, writable mapping of the bytes `[offset, offset + len)` of a file.
///
/// Writes land in the page cache at once, so other readers of the file see them; they reach
/// the disk when the kernel writes the pages back or when [`MappedRegion::sync`] is called.
pub(crate) struct MappedRegion {
    map: MmapMut,
    offset: u64,
}

impl MappedRegion {
    /// Maps `len` bytes of `file` starting at `offset`.
    ///
    /// `offset` must be a multiple of the page size, `len` must be non-zero, and the file must
    /// already be at least `offset + len` bytes long (checked). `file` must be open for reading
    /// and writing.
    pub(crate) fn map(file: &File, offset: u64, len: usize) -> io::Result<Self> {
        let page = page_size() as u64;
        if len == 0 || offset % page != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "mapping must be non-empty and page-aligned",
            ));
        }
        let end = offset
            .checked_add(len as u64)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "mapping too large"))?;
        if file.metadata()?.len() < end {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "file is shorter than the mapping",
            ));
        }
        // SAFETY: `map_mut` is unsafe because the mapped memory must not be modified or
        // invalidated behind Rust's back while it is mapped. Here:
        // - the file is at least `offset + len` bytes long (checked just above), so every
        //   mapped page is backed by the file and accesses do not fault with SIGBUS;
        // - the file belongs to the sink that owns this region: the sink never shrinks it
        //   while a region is alive (it drops the region first), and modification or
        //   truncation by other processes is outside the documented contract;
        // - the mapping is private to this value: no reference to it escapes this module,
        //   and every access is a short `&mut self` borrow, so there is no aliasing inside
        //   this process.
        let map = unsafe { MmapOptions::new().offset(offset).len(len).map_mut(file)? };
        Ok(MappedRegion { map, offset })
    }

    /// File offset of the first mapped byte.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// File offset just past the last mapped byte.
    pub(crate) fn end(&self) -> u64 {
        self.offset + self.map.len() as u64
    }

    /// Converts the file range `[from, to)` to a range of the mapping.
    fn local(&self, from: u64, to: u64) -> std::ops::Range<usize> {
        assert!(
            self.offset <= from && from <= to && to <= self.end(),
            "range {from}..{to} outside the mapped window {}..{}",
            self.offset,
            self.end()
        );
        // Both fit in usize: they are at most the mapping length.
        ((from - self.offset) as usize)..((to - self.offset) as usize)
    }

    /// Copies `data` to file offset `pos`, in address order: eight bytes at a time (one
    /// store each), front to back, with a compiler fence after each, so that a process killed
    /// during the copy leaves an exact prefix of `data` in the file, followed by the NULs the
    /// file held — never a hole of NULs inside the copied part (`memcpy` may fill a range in
    /// any order: its last bytes or its middle first). Opening the file for append after such
    /// a crash then only has to trim the NUL tail and the torn last line; NUL bytes before
    /// that are data (a raw line may hold them), never cut.
    ///
    /// # Panics
    /// If `[pos, pos + data.len())` is not inside the mapped window.
    pub(crate) fn write(&mut self, pos: u64, data: &[u8]) {
        use std::sync::atomic::{compiler_fence, Ordering};
        let range = self.local(pos, pos + data.len() as u64);
        let dest = &mut self.map[range];
        let mut dest_words = dest.chunks_exact_mut(8);
        let mut words = data.chunks_exact(8);
        for (d, w) in (&mut dest_words).zip(&mut words) {
            let word: &[u8; 8] = w.try_into().expect("chunks of 8");
            let d: &mut [u8; 8] = d.try_into().expect("chunks of 8");
            *d = *word;
            compiler_fence(Ordering::SeqCst);
        }
        for (d, b) in dest_words
            .into_remainder()
            .iter_mut()
            .zip(words.remainder())
        {
            *d = *b;
            compiler_fence(Ordering::SeqCst);
        }
    }

    /// Writes the file range `[from, to)` (clamped to the window) to disk and waits for it
    /// (`msync(MS_SYNC)`).
    pub(crate) fn sync(&self, from: u64, to: u64) -> io::Result<()> {
        let from = from.clamp(self.offset, self.end());
        let to = to.clamp(from, self.end());
        if from == to {
            return Ok(());
        }
        let range = self.local(from, to);
        self.map.flush_range(range.start, range.len())
    }
}
