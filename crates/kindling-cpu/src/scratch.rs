//! Scratch buffers kept per thread between calls: a kernel's per-task buffers (padded images,
//! column matrices, transformed tiles) come from this thread's pool and go back to it when
//! dropped, instead of being allocated, zeroed and faulted in afresh by every call. A buffer
//! written whole before it is read is taken as it was left ([`Buf::reused`]); one that relies
//! on zeros (a padded border, discarded columns) is zeroed when taken ([`Buf::zeroed`]).

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};

/// Buffers a thread keeps: enough for the most any kernel holds at once (four).
const KEEP: usize = 8;

thread_local! {
    static POOL: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// A buffer of `f32` lent by this thread's pool, given back when dropped.
pub(crate) struct Buf(Vec<f32>);

impl Buf {
    /// `len` zeros.
    pub(crate) fn zeroed(len: usize) -> Self {
        let mut v = take(len);
        v.clear();
        v.resize(len, 0.0);
        Self(v)
    }

    /// `len` values as the buffer's last user left them (zeros where it grew): for a buffer
    /// the caller writes whole before reading it.
    pub(crate) fn reused(len: usize) -> Self {
        let mut v = take(len);
        if v.capacity() < len {
            // Growing would copy what the buffer held; nothing of it is needed.
            v.clear();
        }
        v.resize(len, 0.0);
        Self(v)
    }
}

/// The pool's smallest buffer that holds `len` values, else its largest, else a new one.
fn take(len: usize) -> Vec<f32> {
    POOL.try_with(|pool| {
        let mut pool = pool.borrow_mut();
        let fits = (0..pool.len()).filter(|&i| pool[i].capacity() >= len).min_by_key(|&i| pool[i].capacity());
        let pick = fits.or_else(|| (0..pool.len()).max_by_key(|&i| pool[i].capacity()));
        pick.map(|i| pool.swap_remove(i)).unwrap_or_default()
    })
    .unwrap_or_default()
}

impl Drop for Buf {
    fn drop(&mut self) {
        let v = std::mem::take(&mut self.0);
        // At a thread's exit the pool may already be gone; the buffer is then simply freed.
        let _ = POOL.try_with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.len() < KEEP {
                pool.push(v);
            } else if let Some(i) = (0..pool.len()).min_by_key(|&i| pool[i].capacity()) {
                // Full: keep the larger of this one and the smallest kept.
                if pool[i].capacity() < v.capacity() {
                    pool[i] = v;
                }
            }
        });
    }
}

impl Deref for Buf {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        &self.0
    }
}

impl DerefMut for Buf {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_buffers_are_zero_and_reused_ones_come_back_from_the_pool() {
        {
            let mut a = Buf::zeroed(100);
            a.fill(7.0);
        }
        // The same thread gets the buffer back: as it was left, or zeroed on request.
        let b = Buf::reused(50);
        assert_eq!(b.len(), 50);
        assert!(b.iter().all(|&v| v == 7.0));
        drop(b);
        let c = Buf::zeroed(120);
        assert_eq!(c.len(), 120);
        assert!(c.iter().all(|&v| v == 0.0));
    }
}
