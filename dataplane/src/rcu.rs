//! Quiescent-state-based RCU over DPDK's `rte_rcu_qsbr`: workers read shared tables with no
//! lock while the control thread replaces them, and memory a worker may still read is freed
//! only after every worker passed a quiescent state (a grace period).
//!
//! - [`Qsbr`]: one QS variable (`rte_rcu_qsbr_init`) for up to `max_threads` readers.
//! - [`QsbrReader`]: one registered, online reader thread id (`rte_rcu_qsbr_thread_register`
//!   and `_online`). Workers call [`QsbrReader::quiescent`] once per poll round
//!   (`rte_rcu_qsbr_quiescent`) and go offline around sleeps ([`QsbrReader::offline_while`]).
//! - [`RcuCell`]: a value the control thread replaces as a whole; readers borrow it through
//!   their [`QsbrReader`].
//!
//! The rules of QSBR are enforced by the borrow checker rather than by documentation: a
//! reference read from an [`RcuCell`] (or from a table that takes a `&QsbrReader`) borrows
//! the reader, and `quiescent` and `offline_while` take `&mut QsbrReader`, so no reference
//! can live across the point where the reader tells writers it holds none. A thread id can
//! be registered once at a time, so two handles can never report for each other. Writers
//! wait with `rte_rcu_qsbr_synchronize` semantics (start a token, wait until every online
//! reader acknowledged it); a writer must not itself hold an online [`QsbrReader`] of the
//! same variable while it waits (it would wait for itself: a deadlock, never a use after free).
//!
//! ```compile_fail
//! # use dataplane::rcu::{Qsbr, RcuCell};
//! let q = Qsbr::new(1).unwrap();
//! let cell = RcuCell::new(q.clone(), 1u32);
//! let mut reader = q.register(0).unwrap();
//! let v = cell.read(&reader);
//! reader.quiescent(); // error[E0502]: `reader` is still borrowed by `v`
//! assert_eq!(*v, 1);
//! ```

use std::alloc::{self, Layout};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, Mutex};

use dpdk_sys::rte_rcu_qsbr;
use mempool::DpdkError;

/// An RCU failure.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RcuError {
    /// A reader thread id outside `0..max_threads`.
    #[error("RCU thread id {id} is out of range: the QS variable has {max} slots")]
    ThreadIdOutOfRange {
        /// The id asked for.
        id: u32,
        /// The variable's `max_threads`.
        max: u32,
    },
    /// A reader thread id that already has a live [`QsbrReader`].
    #[error("RCU thread id {id} is already registered")]
    AlreadyRegistered {
        /// The id asked for.
        id: u32,
    },
    /// `max_threads` of 0, or memory could not be had.
    #[error(transparent)]
    Dpdk(#[from] DpdkError),
}

/// A grace-period token from [`Qsbr::start`] (`rte_rcu_qsbr_start`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Token(u64);

/// A QSBR variable: the shared state of one RCU domain (`struct rte_rcu_qsbr`).
///
/// Its memory is a zeroed, cache-line-aligned allocation of `rte_rcu_qsbr_get_memsize`
/// bytes owned by this value; it needs no EAL and no hugepage.
pub struct Qsbr {
    raw: NonNull<rte_rcu_qsbr>,
    layout: Layout,
    max_threads: u32,
    /// Which thread ids have a live [`QsbrReader`].
    registered: Mutex<Vec<bool>>,
}

// SAFETY: rte_rcu_qsbr is designed for concurrent use from many threads: readers update
// their own per-thread counters, writers read them, all with atomic operations. The only
// non-atomic state here, `registered`, is behind a Mutex.
unsafe impl Send for Qsbr {}
// SAFETY: as above; every &self method is one of DPDK's thread-safe QSBR calls.
unsafe impl Sync for Qsbr {}

impl std::fmt::Debug for Qsbr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Qsbr").field("max_threads", &self.max_threads).finish_non_exhaustive()
    }
}

impl Qsbr {
    /// Creates a QS variable for reader thread ids `0..max_threads` (`rte_rcu_qsbr_init`).
    /// Workers use their lcore id, so `max_threads` is usually `RTE_MAX_LCORE` (128).
    ///
    /// # Errors
    /// [`RcuError::Dpdk`] with EINVAL for `max_threads == 0`, ENOMEM when the allocation fails.
    pub fn new(max_threads: u32) -> Result<Arc<Qsbr>, RcuError> {
        let einval = DpdkError { op: "rte_rcu_qsbr_get_memsize", errno: libc::EINVAL };
        if max_threads == 0 {
            return Err(einval.into());
        }
        // SAFETY: a pure size computation.
        let size = unsafe { dpdk_sys::rte_rcu_qsbr_get_memsize(max_threads) };
        // It returns 1 on error (with rte_errno set); a real size is far larger.
        if size <= 1 {
            return Err(einval.into());
        }
        let layout = Layout::from_size_align(size, 64).map_err(|_| einval)?;
        // SAFETY: layout has a non-zero size.
        let ptr = unsafe { alloc::alloc_zeroed(layout) }.cast::<rte_rcu_qsbr>();
        let raw = NonNull::new(ptr).ok_or(DpdkError { op: "rte_rcu_qsbr_init", errno: libc::ENOMEM })?;
        // SAFETY: raw points to `size` zeroed, 64-byte-aligned bytes, which is what
        // rte_rcu_qsbr_init requires for this max_threads.
        let ret = unsafe { dpdk_sys::rte_rcu_qsbr_init(raw.as_ptr(), max_threads) };
        if ret != 0 {
            // SAFETY: allocated above with this layout and not shared yet.
            unsafe { alloc::dealloc(ptr.cast(), layout) };
            return Err(DpdkError::last("rte_rcu_qsbr_init").into());
        }
        let registered = Mutex::new(vec![false; max_threads as usize]);
        Ok(Arc::new(Qsbr { raw, layout, max_threads, registered }))
    }

    /// How many reader thread ids it has.
    pub fn max_threads(&self) -> u32 {
        self.max_threads
    }

    /// The raw variable, for DPDK libraries that take one (`rte_lpm_rcu_qsbr_add`). It
    /// lives as long as `self`.
    pub fn as_ptr(&self) -> *mut rte_rcu_qsbr {
        self.raw.as_ptr()
    }

    /// Registers reader `thread_id` and puts it online: from now on every grace period
    /// waits for it to report a quiescent state (or go offline).
    ///
    /// # Errors
    /// [`RcuError::ThreadIdOutOfRange`]; [`RcuError::AlreadyRegistered`] while another
    /// [`QsbrReader`] holds the id.
    pub fn register(self: &Arc<Self>, thread_id: u32) -> Result<QsbrReader, RcuError> {
        let mut reg = self.registered.lock().unwrap_or_else(|e| e.into_inner());
        let slot =
            reg.get_mut(thread_id as usize).ok_or(RcuError::ThreadIdOutOfRange { id: thread_id, max: self.max_threads })?;
        if *slot {
            return Err(RcuError::AlreadyRegistered { id: thread_id });
        }
        // SAFETY: thread_id < max_threads (checked above); the variable is initialised.
        let ret = unsafe { dpdk_sys::rte_rcu_qsbr_thread_register(self.raw.as_ptr(), thread_id) };
        if ret != 0 {
            return Err(DpdkError::last("rte_rcu_qsbr_thread_register").into());
        }
        // SAFETY: the id is registered; online makes writers wait for it from now on.
        unsafe { dpdk_sys::dp_rcu_qsbr_thread_online(self.raw.as_ptr(), thread_id) };
        *slot = true;
        Ok(QsbrReader { qsbr: self.clone(), id: thread_id })
    }

    /// Starts a grace period after an update was published (`rte_rcu_qsbr_start`); memory
    /// the update made unreachable may be freed once [`Qsbr::check`] of the token is true.
    pub fn start(&self) -> Token {
        // SAFETY: the variable is initialised; start only increments the token atomically.
        Token(unsafe { dpdk_sys::dp_rcu_qsbr_start(self.raw.as_ptr()) })
    }

    /// Whether every reader online when `token` was taken has since reported a quiescent
    /// state or gone offline (`rte_rcu_qsbr_check` without waiting).
    pub fn check(&self, token: Token) -> bool {
        // SAFETY: the variable is initialised; check only reads the readers' counters.
        unsafe { dpdk_sys::dp_rcu_qsbr_check(self.raw.as_ptr(), token.0, 0) == 1 }
    }

    /// Waits for a grace period: returns once every reader that was online has reported a
    /// quiescent state or gone offline (`rte_rcu_qsbr_synchronize` from a non-reader). With
    /// workers reporting once per poll round, this takes about one round.
    pub fn synchronize(&self) {
        let t = self.start();
        // SAFETY: as in check; wait = 1 spins (with rte_pause) until acknowledged.
        unsafe { dpdk_sys::dp_rcu_qsbr_check(self.raw.as_ptr(), t.0, 1) };
    }
}

impl Drop for Qsbr {
    fn drop(&mut self) {
        // SAFETY: every QsbrReader and every DPDK table given as_ptr() holds or is owned by a
        // holder of an Arc<Qsbr>, so nothing uses the memory any more; allocated in new().
        unsafe { alloc::dealloc(self.raw.as_ptr().cast(), self.layout) };
    }
}

/// A registered, online reader: one per worker lcore. `Send` (it may be created on the
/// control thread and moved into the worker) but not `Sync`: one thread at a time reports
/// for it, through `&mut self`.
pub struct QsbrReader {
    qsbr: Arc<Qsbr>,
    id: u32,
}

impl std::fmt::Debug for QsbrReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QsbrReader").field("id", &self.id).finish()
    }
}

impl QsbrReader {
    /// The reader's thread id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The QS variable it reports to.
    pub fn qsbr(&self) -> &Arc<Qsbr> {
        &self.qsbr
    }

    /// Reports that this reader holds no reference into RCU-protected memory
    /// (`rte_rcu_qsbr_quiescent`). `&mut self` makes the borrow checker prove it.
    #[inline]
    pub fn quiescent(&mut self) {
        // SAFETY: the id is registered and online for as long as self exists.
        unsafe { dpdk_sys::dp_rcu_qsbr_quiescent(self.qsbr.raw.as_ptr(), self.id) };
    }

    /// Runs `f` with the reader offline (writers do not wait for it meanwhile), for
    /// blocking or sleeping: an idle back-off, a long wait. Online again afterwards.
    pub fn offline_while<R>(&mut self, f: impl FnOnce() -> R) -> R {
        // SAFETY: registered and online; &mut self: no reference read through it is live.
        unsafe { dpdk_sys::dp_rcu_qsbr_thread_offline(self.qsbr.raw.as_ptr(), self.id) };
        // Back online even if f panics, so that Drop's offline is balanced.
        struct Online<'a>(&'a QsbrReader);
        impl Drop for Online<'_> {
            fn drop(&mut self) {
                // SAFETY: registered; it was put offline just before.
                unsafe { dpdk_sys::dp_rcu_qsbr_thread_online(self.0.qsbr.raw.as_ptr(), self.0.id) };
            }
        }
        let _online = Online(self);
        f()
    }
}

impl Drop for QsbrReader {
    fn drop(&mut self) {
        let raw = self.qsbr.raw.as_ptr();
        // SAFETY: registered and online; after offline + unregister no writer waits for it.
        unsafe {
            dpdk_sys::dp_rcu_qsbr_thread_offline(raw, self.id);
            dpdk_sys::rte_rcu_qsbr_thread_unregister(raw, self.id);
        }
        let mut reg = self.qsbr.registered.lock().unwrap_or_else(|e| e.into_inner());
        reg[self.id as usize] = false;
    }
}

/// A value readers borrow without a lock and writers replace as a whole, freeing the old
/// one after a grace period. Writers are serialised by an internal mutex (readers never
/// touch it).
pub struct RcuCell<T> {
    ptr: AtomicPtr<T>,
    qsbr: Arc<Qsbr>,
    writer: Mutex<()>,
}

// SAFETY: the cell owns a T (Box) that readers on other threads borrow (&T: needs Sync) and
// that a writer on any thread drops (needs Send).
unsafe impl<T: Send + Sync> Send for RcuCell<T> {}
// SAFETY: as above; the pointer itself is atomic and writers are serialised by a mutex.
unsafe impl<T: Send + Sync> Sync for RcuCell<T> {}

impl<T> std::fmt::Debug for RcuCell<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RcuCell").finish_non_exhaustive()
    }
}

impl<T: Send + Sync> RcuCell<T> {
    /// A cell holding `value`, protected by `qsbr`'s grace periods.
    pub fn new(qsbr: Arc<Qsbr>, value: T) -> Self {
        RcuCell { ptr: AtomicPtr::new(Box::into_raw(Box::new(value))), qsbr, writer: Mutex::new(()) }
    }

    /// The current value, for as long as `reader` is not asked to report a quiescent state.
    ///
    /// # Panics
    /// If `reader` belongs to another QS variable (its quiescent states would not protect
    /// this cell).
    #[inline]
    pub fn read<'r>(&'r self, reader: &'r QsbrReader) -> &'r T {
        assert!(Arc::ptr_eq(&reader.qsbr, &self.qsbr), "RcuCell read through a reader of another QS variable");
        // SAFETY: the pointer is always a live Box (set in new or replace). A replaced value
        // is freed only after a grace period, which cannot end while `reader` is online and
        // borrowed here (quiescent and offline_while need &mut reader).
        unsafe { &*self.ptr.load(Ordering::Acquire) }
    }

    /// Reads the current value on a writer's side (the control thread, not a registered
    /// reader): `f` runs with writers held off, so the value cannot be freed meanwhile.
    pub fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: only writers free values, and they are excluded while `_w` is held.
        f(unsafe { &*self.ptr.load(Ordering::Acquire) })
    }

    /// Publishes `f(current)` and, after a grace period, returns the old value (no reader
    /// can see it any more). Blocks for about one poll round of every online reader.
    pub fn update(&self, f: impl FnOnce(&T) -> T) -> T {
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: writers are excluded, so the current value stays alive while f reads it.
        let new = f(unsafe { &*self.ptr.load(Ordering::Acquire) });
        self.swap_locked(new)
    }

    /// Publishes `value` and returns the old one after a grace period.
    pub fn replace(&self, value: T) -> T {
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        self.swap_locked(value)
    }

    fn swap_locked(&self, value: T) -> T {
        let old = self.ptr.swap(Box::into_raw(Box::new(value)), Ordering::AcqRel);
        self.qsbr.synchronize();
        // SAFETY: `old` came from Box::into_raw, is no longer reachable through the cell,
        // and the grace period just ended, so no reader holds a reference to it.
        *unsafe { Box::from_raw(old) }
    }
}

impl<T> Drop for RcuCell<T> {
    fn drop(&mut self) {
        // SAFETY: &mut self: no reader borrow of this cell is live; the pointer is a Box.
        drop(unsafe { Box::from_raw(*self.ptr.get_mut()) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU64};

    #[test]
    fn thread_ids_are_checked_and_registered_once() {
        let q = Qsbr::new(4).unwrap();
        assert_eq!(q.register(4).unwrap_err(), RcuError::ThreadIdOutOfRange { id: 4, max: 4 });
        let r = q.register(1).unwrap();
        assert_eq!(q.register(1).unwrap_err(), RcuError::AlreadyRegistered { id: 1 });
        drop(r);
        let _again = q.register(1).unwrap();
        assert!(matches!(Qsbr::new(0), Err(RcuError::Dpdk(DpdkError { errno: libc::EINVAL, .. }))));
    }

    #[test]
    fn a_grace_period_waits_for_every_online_reader() {
        let q = Qsbr::new(4).unwrap();
        let mut a = q.register(0).unwrap();
        let mut b = q.register(1).unwrap();
        let t = q.start();
        assert!(!q.check(t));
        a.quiescent();
        assert!(!q.check(t), "reader 1 has not reported yet");
        b.offline_while(|| assert!(q.check(t), "an offline reader is not waited for"));
        // Online again: a new grace period waits for it.
        let t2 = q.start();
        a.quiescent();
        assert!(!q.check(t2));
        b.quiescent();
        assert!(q.check(t2));
        drop(b);
        let t3 = q.start();
        a.quiescent();
        assert!(q.check(t3), "an unregistered reader is not waited for");
    }

    /// A value that records being dropped, so a reader can tell it was freed under it.
    struct Canary {
        generation: u64,
        alive: AtomicBool,
        dropped: Arc<AtomicU64>,
    }

    impl Drop for Canary {
        fn drop(&mut self) {
            self.alive.store(false, Ordering::SeqCst);
            self.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn readers_never_see_a_value_freed_while_a_writer_replaces_it() {
        let q = Qsbr::new(8).unwrap();
        let dropped = Arc::new(AtomicU64::new(0));
        let cell =
            Arc::new(RcuCell::new(q.clone(), Canary { generation: 0, alive: AtomicBool::new(true), dropped: dropped.clone() }));
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..3)
            .map(|id| {
                let (cell, stop) = (cell.clone(), stop.clone());
                let mut r = q.register(id).unwrap();
                std::thread::spawn(move || {
                    let (mut reads, mut last) = (0u64, 0u64);
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..64 {
                            let v = cell.read(&r);
                            assert!(v.alive.load(Ordering::SeqCst), "read a freed value");
                            assert!(v.generation >= last, "generations go forward");
                            last = v.generation;
                            reads += 1;
                        }
                        r.quiescent();
                        if reads % 4096 == 0 {
                            r.offline_while(std::thread::yield_now);
                        }
                    }
                    reads
                })
            })
            .collect();
        for g in 1..=2000 {
            let old = cell.replace(Canary { generation: g, alive: AtomicBool::new(true), dropped: dropped.clone() });
            assert_eq!(old.generation, g - 1);
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            assert!(r.join().unwrap() > 0);
        }
        assert_eq!(dropped.load(Ordering::SeqCst), 2000);
        assert_eq!(cell.with(|v| v.generation), 2000);
        assert_eq!(
            cell.update(|v| Canary { generation: v.generation + 1, alive: AtomicBool::new(true), dropped: dropped.clone() })
                .generation,
            2000
        );
    }

    #[test]
    #[should_panic(expected = "another QS variable")]
    fn a_reader_of_another_variable_is_refused() {
        let (q1, q2) = (Qsbr::new(2).unwrap(), Qsbr::new(2).unwrap());
        let cell = RcuCell::new(q1, 5u32);
        let r = q2.register(0).unwrap();
        let _ = cell.read(&r);
    }
}
