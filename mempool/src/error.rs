//! Typed errors: a failed DPDK call with its errno, and the failures of pools, mbufs and rings.

use std::ffi::CStr;
use std::fmt;

/// A DPDK call that failed, with the errno it reported (from its return value or `rte_errno`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DpdkError {
    /// The DPDK function that failed.
    pub op: &'static str,
    /// A positive errno value.
    pub errno: i32,
}

impl DpdkError {
    /// An error for `op` from a negative return value such as `-EINVAL`.
    pub fn from_ret(op: &'static str, ret: i32) -> Self {
        DpdkError { op, errno: ret.abs() }
    }

    /// An error for `op` taken from the calling thread's `rte_errno`.
    pub fn last(op: &'static str) -> Self {
        // SAFETY: dp_errno only reads the calling thread's per-lcore errno variable.
        #[allow(unsafe_code)]
        let errno = unsafe { dpdk_sys::dp_errno() };
        DpdkError { op, errno }
    }
}

impl fmt::Display for DpdkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SAFETY: rte_strerror returns a pointer to a NUL-terminated string that stays valid
        // at least until the next call on this thread; it is copied out at once.
        #[allow(unsafe_code)]
        let text = unsafe { CStr::from_ptr(dpdk_sys::rte_strerror(self.errno)) }.to_string_lossy();
        write!(f, "{} failed: {} (errno {})", self.op, text, self.errno)
    }
}

impl std::error::Error for DpdkError {}

/// Errors from pools: creating one, or taking mbufs from it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PoolError {
    /// The pool had fewer free mbufs than were asked for (nothing was taken).
    #[error("pool {pool}: exhausted, could not take {wanted} mbufs")]
    Exhausted {
        /// The pool's name.
        pool: String,
        /// How many mbufs were asked for.
        wanted: usize,
    },
    /// Parameters that DPDK would refuse, caught before calling it.
    #[error("pool {pool}: {reason}")]
    Invalid {
        /// The pool's name.
        pool: String,
        /// What is wrong.
        reason: String,
    },
    /// A DPDK call failed.
    #[error(transparent)]
    Dpdk(#[from] DpdkError),
}

/// Errors of one mbuf's data operations (the pool is not involved).
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum MbufError {
    /// The data buffer is shared with a clone (indirect, or refcount above one): writing it
    /// would change the other packet too.
    #[error("mbuf: the data buffer is shared with a clone")]
    Shared,
    /// The bytes do not fit in the buffer after its headroom.
    #[error("mbuf: {len} bytes do not fit in the buffer")]
    DoesNotFit {
        /// How many bytes were offered.
        len: usize,
    },
}

/// Errors of creating an [`MbufRing`](crate::MbufRing).
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum RingError {
    /// A name or capacity DPDK would refuse, caught before calling it.
    #[error("ring {ring}: {reason}")]
    Invalid {
        /// The ring's name.
        ring: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// `rte_ring_create` failed (EEXIST for a duplicate name, ENOMEM).
    #[error("ring {ring}: {error}")]
    Dpdk {
        /// The ring's name.
        ring: String,
        /// The call and its errno.
        error: DpdkError,
    },
}
