//! Array maps shared with the kernel through `mmap` (`BPF_F_MMAPABLE`):
//! [`Mapped`] holds a whole small map, [`Window`] a short-lived slice of a
//! large one, [`Windowed`] reads and writes a large one window by window.
//! Writing an element is a plain store, so whole tables are written at
//! memory speed, and the process never holds a large table whole.
use std::os::fd::{AsFd as _, AsRawFd as _};

use aya::maps::MapData;
use router_common::{MemberCounters, MemberLine};

use super::error::{DatapathError, map_err};

/// An array map shared with the kernel through `mmap` (`BPF_F_MMAPABLE`):
/// writing an element is a plain store, so whole tables are written at
/// memory speed.
pub(super) struct Mapped<T> {
    ptr: *mut T,
    len: usize,
    bytes: usize,
    _map: MapData,
}

// SAFETY: the mapping is owned by this value and only reached through
// `&mut self`.
unsafe impl<T> Send for Mapped<T> {}

impl<T: aya::Pod> Mapped<T> {
    pub(super) fn new(map: MapData, name: &'static str) -> Result<Self, DatapathError> {
        let info = map.info().map_err(map_err(name))?;
        let size = std::mem::size_of::<T>();
        if info.value_size() as usize != size || !size.is_multiple_of(8) {
            return Err(DatapathError::Layout {
                map: name,
                message: format!("value size {} where {size} was expected", info.value_size()),
            });
        }
        let len = info.max_entries() as usize;
        let page = 4096;
        let bytes = (len * size).div_ceil(page) * page;
        // SAFETY: a shared read-write mapping of the map's memory, which
        // the kernel allows for BPF_F_MMAPABLE arrays; its length is the
        // map's size rounded up to a page.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                map.fd().as_fd().as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(DatapathError::Layout {
                map: name,
                message: format!(
                    "cannot map it into memory: {}",
                    std::io::Error::last_os_error()
                ),
            });
        }
        Ok(Mapped {
            ptr: ptr.cast(),
            len,
            bytes,
            _map: map,
        })
    }

    pub(super) fn as_mut_slice(&mut self) -> &mut [T] {
        // SAFETY: `len` elements of `T` (no padding between them: the size
        // is a multiple of 8, the kernel's element stride) live at `ptr`.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }

    pub(super) fn as_slice(&self) -> &[T] {
        // SAFETY: as in `as_mut_slice`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// Member slots of `MEMBER_LINES` reached through one mapping (per CPU).
pub const COUNTER_WINDOW: u32 = 1 << 16;

/// A mapping of `len` elements of an array map from element `first` on,
/// unmapped when dropped.
pub(super) struct Window<T> {
    base: *mut libc::c_void,
    bytes: usize,
    /// Byte offset of element `first` from `base`.
    skip: usize,
    len: usize,
    writable: bool,
    _t: std::marker::PhantomData<T>,
}

impl<T: aya::Pod> Window<T> {
    /// Maps elements `first..first + len` of the array map `fd`, read-only
    /// or, with `write`, read-write.
    pub(super) fn map(
        fd: std::os::fd::BorrowedFd<'_>,
        name: &'static str,
        first: usize,
        len: usize,
        writable: bool,
    ) -> Result<Self, DatapathError> {
        let page = 4096;
        let size = std::mem::size_of::<T>();
        let start = first * size;
        let offset = start / page * page;
        let bytes = (start + len * size).div_ceil(page) * page - offset;
        let prot = if writable {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        // SAFETY: a shared mapping of whole pages of the map's memory
        // (BPF_F_MMAPABLE), within its size: the caller asks for elements
        // that exist.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                prot,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                offset as libc::off_t,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(DatapathError::Layout {
                map: name,
                message: format!(
                    "cannot map it into memory: {}",
                    std::io::Error::last_os_error()
                ),
            });
        }
        Ok(Window {
            base,
            bytes,
            skip: start - offset,
            len,
            writable,
            _t: std::marker::PhantomData,
        })
    }

    /// A pointer to element `first + i`. The program may be writing to
    /// it: access it through raw pointers, once per field.
    pub(super) fn ptr(&self, i: usize) -> *mut T {
        assert!(i < self.len);
        // SAFETY: within the mapping; the kernel's element stride is the
        // size of `T` (a multiple of 8), so the element is aligned.
        unsafe {
            self.base
                .cast::<u8>()
                .add(self.skip + i * std::mem::size_of::<T>())
                .cast::<T>()
        }
    }
}

impl<T: aya::Pod> Window<T> {
    /// Element `first + i`, read once (the program may be writing it).
    fn get(&self, i: usize) -> T {
        // SAFETY: `ptr` is an aligned element within the mapping.
        unsafe { self.ptr(i).read_volatile() }
    }

    /// Writes element `first + i` (a writable window only).
    pub(super) fn set(&self, i: usize, value: T) {
        assert!(self.writable);
        // SAFETY: `ptr` is an aligned element within the mapping, mapped
        // writable.
        unsafe { self.ptr(i).write_volatile(value) }
    }
}

/// Bytes of an array map mapped at once by [`Windowed`].
const WINDOW_BYTES: usize = 4 << 20;

/// Writes of a [`Windowed`] table taken at a time.
const WRITE_BATCH: usize = 64 * 1024;

/// An array map (`BPF_F_MMAPABLE`) of `len` elements, written and read
/// through short-lived mappings of at most [`WINDOW_BYTES`]: the process
/// holds only what it is writing or reading, not the whole table.
pub(super) struct Windowed<T> {
    map: MapData,
    name: &'static str,
    pub(super) len: usize,
    _t: std::marker::PhantomData<T>,
}

impl<T: aya::Pod> Windowed<T> {
    pub(super) fn new(map: MapData, name: &'static str, len: usize) -> Self {
        Windowed {
            map,
            name,
            len,
            _t: std::marker::PhantomData,
        }
    }

    /// Elements per window.
    fn per_window() -> usize {
        (WINDOW_BYTES / std::mem::size_of::<T>()).max(1)
    }

    fn window(&self, first: usize, len: usize, writable: bool) -> Result<Window<T>, DatapathError> {
        if first + len > self.len {
            return Err(DatapathError::Layout {
                map: self.name,
                message: format!(
                    "elements {first}..{} are beyond its {}",
                    first + len,
                    self.len
                ),
            });
        }
        Window::map(self.map.fd().as_fd(), self.name, first, len, writable)
    }

    /// Writes `(index, value)` pairs, in any order (a later one wins).
    /// They are taken [`WRITE_BATCH`] at a time, each batch sorted so that
    /// it maps each window once: a whole table's worth (a million ids at
    /// start-up) is never copied whole.
    pub(super) fn write(
        &self,
        mut items: impl Iterator<Item = (usize, T)>,
    ) -> Result<(), DatapathError> {
        let per = Self::per_window();
        let mut batch: Vec<(usize, T)> = Vec::new();
        loop {
            batch.clear();
            batch.extend(items.by_ref().take(WRITE_BATCH));
            if batch.is_empty() {
                return Ok(());
            }
            // Stable: a later write of an index stays later.
            batch.sort_by_key(|&(i, _)| i);
            for group in batch.chunk_by(|a, b| a.0 / per == b.0 / per) {
                let first = group[0].0;
                let end = group[group.len() - 1].0 + 1;
                let w = self.window(first, end - first, true)?;
                for (i, v) in group {
                    w.set(i - first, *v);
                }
            }
        }
    }

    /// Writes `values` from element `first` on.
    pub(super) fn copy_in(&self, first: usize, values: &[T]) -> Result<(), DatapathError> {
        let per = Self::per_window();
        for (k, chunk) in values.chunks(per).enumerate() {
            let at = first + k * per;
            let w = self.window(at, chunk.len(), true)?;
            for (i, v) in chunk.iter().enumerate() {
                w.set(i, *v);
            }
        }
        Ok(())
    }

    /// Writes `value` into elements `first..first + len`.
    pub(super) fn fill(&self, first: usize, len: usize, value: T) -> Result<(), DatapathError> {
        let per = Self::per_window();
        let mut at = first;
        while at < first + len {
            let n = per.min(first + len - at);
            let w = self.window(at, n, true)?;
            for i in 0..n {
                w.set(i, value);
            }
            at += n;
        }
        Ok(())
    }

    /// Copies each element `from + i` to `to + i`, for the offsets `i`
    /// given in increasing order.
    pub(super) fn copy_between(
        &self,
        from: usize,
        to: usize,
        offsets: impl Iterator<Item = usize>,
    ) -> Result<(), DatapathError> {
        let offsets: Vec<usize> = offsets.collect();
        let per = Self::per_window();
        for group in offsets.chunk_by(|a, b| a / per == b / per && a < b) {
            let (first, end) = (group[0], group[group.len() - 1] + 1);
            let src = self.window(from + first, end - first, false)?;
            let dst = self.window(to + first, end - first, true)?;
            for &i in group {
                dst.set(i - first, src.get(i - first));
            }
        }
        Ok(())
    }

    /// Calls `f` with every element.
    pub(super) fn read(&self, mut f: impl FnMut(usize, T)) -> Result<(), DatapathError> {
        let per = Self::per_window();
        let mut at = 0;
        while at < self.len {
            let n = per.min(self.len - at);
            let w = self.window(at, n, false)?;
            for i in 0..n {
                f(at + i, w.get(i));
            }
            at += n;
        }
        Ok(())
    }
}

impl Window<MemberLine> {
    /// The counters of line `first + i`, read once (the program keeps
    /// writing them).
    pub(super) fn counters(&self, i: usize) -> MemberCounters {
        // SAFETY: `ptr` is an aligned line within the mapping.
        unsafe { std::ptr::addr_of!((*self.ptr(i)).counters).read_volatile() }
    }
}

impl<T> Drop for Window<T> {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `map` mapped.
        unsafe { libc::munmap(self.base, self.bytes) };
    }
}

impl<T> Drop for Mapped<T> {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `new` mapped.
        unsafe { libc::munmap(self.ptr.cast(), self.bytes) };
    }
}
