//! Memory: the process's allocator (the system's, asking the kernel for
//! transparent huge pages on large blocks), freeing large values off the
//! request's path, and the resident size the debug logs report.
//!
//! A million members make hash tables and arrays of tens of megabytes that
//! are read at random (the member index, the prefix table's shadow): with
//! 4 KiB pages nearly every such read also misses the TLB. Linux gives huge
//! pages only to ranges marked `MADV_HUGEPAGE` when
//! `/sys/kernel/mm/transparent_hugepage/enabled` is `madvise` (Debian's
//! default), so blocks of [`THRESHOLD`] bytes and more are marked. Nothing
//! changes where huge pages are off or unavailable.
use std::alloc::{GlobalAlloc, Layout, System};

/// Makes every thread allocate from the one heap (glibc's main arena).
///
/// glibc gives threads arenas of their own: a million-member sync parsed on
/// one Tokio worker, computed on another and freed on a third leaves freed
/// memory in arenas the next sync does not allocate from, and the peak RSS
/// then varies by a fifth between identical runs (247 to 295 MiB at 1M
/// members; 206–217 MiB with one arena). The daemon's allocations are not
/// contended: sync and `PUT` rates did not move measurably. Call before any
/// thread starts.
pub fn one_arena() {
    // SAFETY: mallopt only sets an allocator parameter; a refusal (another
    // allocator) leaves the defaults.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Blocks at least this large are marked.
pub const THRESHOLD: usize = 4 << 20;
const HUGE: usize = 2 << 20;

/// The system allocator, marking large blocks for huge pages.
pub struct HugePages;

fn advise(p: *mut u8, len: usize) {
    let start = (p as usize).next_multiple_of(HUGE);
    let end = (p as usize + len) / HUGE * HUGE;
    if start < end {
        // SAFETY: the range lies inside a block the allocator just handed
        // out; madvise with MADV_HUGEPAGE changes no content, and a failure
        // (huge pages off) is harmless.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

// SAFETY: every call is forwarded to `System` with the same arguments; the
// blocks are only advised, never changed.
unsafe impl GlobalAlloc for HugePages {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() && layout.size() >= THRESHOLD {
            advise(p, layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() && layout.size() >= THRESHOLD {
            advise(p, layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() && new_size >= THRESHOLD {
            advise(p, new_size);
        }
        p
    }
}

/// This process's resident memory and its peak (`VmRSS`, `VmHWM`), in KiB;
/// zeros where /proc does not say.
pub fn resident_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Drops `value` on a thread of its own: freeing a large member set takes
/// a while, and nobody waits for it. Then gives the freed memory back to
/// the system (`malloc_trim`): the heap of a million-member sync would
/// otherwise stay resident until the next one.
pub fn drop_later<T: Send + 'static>(value: T) {
    // When no thread can be started, the value is dropped here instead.
    let _ = std::thread::Builder::new()
        .name("collecte-free".into())
        .spawn(move || {
            drop(value);
            // SAFETY: malloc_trim only releases free memory of the heap.
            unsafe { libc::malloc_trim(0) };
        });
}

/// Gives the heap's free memory back to the system, on a thread of its
/// own (see [`drop_later`]): after a large change was applied and freed.
pub fn trim_later() {
    drop_later(());
}
