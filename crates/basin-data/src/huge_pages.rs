//! The process's allocator: the system's, asking Linux for transparent huge pages on every
//! allocation of [`THRESHOLD`] bytes or more (kernels, factors, data sets).
//!
//! The machine's kernel hands out huge pages only where asked (`transparent_hugepage` set to
//! `madvise`). With 4 KiB pages, first touching an 18 MB N = 1500 kernel costs 4,600 page
//! faults; `basin prior` on it took 21,000 faults, about 50 ms of its 290. With huge pages it
//! takes 2,600 and its wall time drops by about a fifth (glibc's `glibc.malloc.hugetlb=1`
//! tunable does the same from outside the process). Large blocks are also aligned to, and
//! rounded up to, whole huge pages, so that their ends are not left to 4 KiB pages: EP at
//! N = 1500 then takes 2,100 faults instead of 4,200.

use std::alloc::{GlobalAlloc, Layout, System};

/// Allocations from this size on are advised to use huge pages.
pub const THRESHOLD: usize = 4 << 20;
/// The huge page size on x86-64 and aarch64 Linux.
const HUGE_PAGE: usize = 2 << 20;

/// [`System`] plus `madvise(MADV_HUGEPAGE)` on large blocks, which are also aligned to, and
/// rounded up to, whole huge pages: a block that starts or ends inside a huge page leaves up to
/// 2 MiB at each end to 4 KiB pages (about 1,000 page faults more per block).
pub struct HugePages;

/// The layout a block of `layout` is given: whole, aligned huge pages when it is large.
fn backing(layout: Layout) -> Layout {
    if layout.size() < THRESHOLD {
        return layout;
    }
    layout
        .size()
        .checked_next_multiple_of(HUGE_PAGE)
        .and_then(|size| Layout::from_size_align(size, layout.align().max(HUGE_PAGE)).ok())
        .unwrap_or(layout)
}

/// The whole huge pages inside the block `[addr, addr + size)`, if it is large enough.
fn huge_range(addr: usize, size: usize) -> Option<(usize, usize)> {
    if addr == 0 || size < THRESHOLD {
        return None;
    }
    let start = addr.checked_next_multiple_of(HUGE_PAGE)?;
    let end = addr.checked_add(size)? / HUGE_PAGE * HUGE_PAGE;
    (end > start).then_some((start, end))
}

/// Advises the whole huge pages of a block; a hint, so failure is ignored.
fn advise(ptr: *mut u8, size: usize) {
    if let Some((start, end)) = huge_range(ptr as usize, size) {
        // SAFETY: [start, end) lies inside the block just allocated to us, and MADV_HUGEPAGE
        // changes only how the kernel backs it, never its contents.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

// SAFETY: every block comes from `System` with the layout `backing` gives for the caller's
// layout, which is at least as large and as aligned, and goes back to it with the same
// layout; `advise` does not touch the memory's contents.
unsafe impl GlobalAlloc for HugePages {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let backed = backing(layout);
        // SAFETY: `backed` has a nonzero size (at least the caller's).
        let ptr = unsafe { System.alloc(backed) };
        advise(ptr, backed.size());
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let backed = backing(layout);
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(backed) };
        advise(ptr, backed.size());
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with `backing(layout)`.
        unsafe { System.dealloc(ptr, backing(layout)) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees that `new_size` with `layout.align()` is a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let (old, new) = (backing(layout), backing(new_layout));
        if old == layout && new == new_layout {
            // SAFETY: `ptr` came from `System` with this layout.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        if old == new {
            // The same whole huge pages hold the new size.
            return ptr;
        }
        // SAFETY: `new` has a nonzero size; both blocks are valid for the bytes copied.
        unsafe {
            let fresh = System.alloc(new);
            if !fresh.is_null() {
                advise(fresh, new.size());
                std::ptr::copy_nonoverlapping(ptr, fresh, layout.size().min(new_size));
                System.dealloc(ptr, old);
            }
            fresh
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_huge_pages_inside_large_blocks_are_advised() {
        let mib = 1 << 20;
        assert_eq!(huge_range(0, 64 * mib), None);
        assert_eq!(huge_range(4096, THRESHOLD - 1), None);
        // A block starting 16 bytes past a huge page boundary: its first and last partial
        // huge pages are left alone.
        let base = 64 * HUGE_PAGE + 16;
        assert_eq!(
            huge_range(base, 6 * mib),
            Some((65 * HUGE_PAGE, 67 * HUGE_PAGE))
        );
        assert_eq!(huge_range(usize::MAX - 8 * mib, 16 * mib), None);
    }

    #[test]
    fn large_blocks_are_backed_by_whole_aligned_huge_pages() {
        let small = Layout::from_size_align(THRESHOLD - 1, 8).unwrap();
        assert_eq!(backing(small), small);
        let big = Layout::from_size_align(THRESHOLD + 1, 8).unwrap();
        let b = backing(big);
        assert_eq!(b.align(), HUGE_PAGE);
        assert_eq!(b.size(), THRESHOLD + HUGE_PAGE);
        let block = vec![1u8; THRESHOLD + 1];
        assert_eq!(
            block.as_ptr() as usize % HUGE_PAGE,
            0,
            "a large block starts on a huge page"
        );
    }

    #[test]
    fn large_blocks_keep_their_contents_through_the_allocator() {
        let n = 3 * THRESHOLD / 8;
        let zeros = vec![0.0f64; n];
        assert!(zeros.iter().all(|&v| v == 0.0));
        let mut v: Vec<u64> = (0..n as u64).collect();
        v.extend(0..n as u64);
        assert_eq!(v.len(), 2 * n);
        assert!(v[..n].iter().enumerate().all(|(i, &x)| x == i as u64));
        assert_eq!(v[2 * n - 1], n as u64 - 1);
        // Across the threshold, both ways.
        let mut w: Vec<u8> = (0..THRESHOLD + 10).map(|i| (i % 251) as u8).collect();
        w.truncate(100);
        w.shrink_to_fit();
        assert!(w.iter().enumerate().all(|(i, &x)| x == (i % 251) as u8));
        w.reserve_exact(2 * THRESHOLD);
        w.extend((100..2 * THRESHOLD).map(|i| (i % 251) as u8));
        assert!(w.iter().enumerate().all(|(i, &x)| x == (i % 251) as u8));
    }
}
