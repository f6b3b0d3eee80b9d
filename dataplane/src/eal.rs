//! The EAL: start-up from an argv, lcore ids, launching workers, and clean-up.
//!
//! [`Eal::init`] runs `rte_eal_init` once per process; dropping the [`Eal`] runs
//! `rte_eal_cleanup`, so it must outlive every pool and port. [`launch`] starts a closure on a
//! worker lcore through a trampoline that catches panics, so a panic never unwinds across
//! `extern "C"`; [`Launched::join`] reports it with the lcore's name.

use std::any::Any;
use std::ffi::{c_int, c_void, CString};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};

use mempool::{DpdkError, SocketId};

/// An EAL logical core id; prints as `lcore3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LcoreId(pub u32);

impl fmt::Display for LcoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lcore{}", self.0)
    }
}

impl LcoreId {
    /// The lcore the calling thread runs on, or `None` for a non-EAL thread.
    pub fn current() -> Option<LcoreId> {
        // SAFETY: reads the calling thread's lcore id (a thread-local).
        let id = unsafe { dpdk_sys::dp_lcore_id() };
        (id != u32::MAX).then_some(LcoreId(id))
    }

    /// The NUMA socket of this lcore.
    pub fn socket(self) -> SocketId {
        // SAFETY: a lookup in EAL's lcore table, valid after init for any id.
        SocketId(unsafe { dpdk_sys::rte_lcore_to_socket_id(self.0) } as i32)
    }

    /// Whether EAL runs this lcore (it was in `-l`).
    pub fn is_enabled(self) -> bool {
        // SAFETY: a lookup in EAL's lcore table.
        unsafe { dpdk_sys::rte_lcore_is_enabled(self.0) != 0 }
    }
}

/// The time-stamp counter (`rte_rdtsc`); ticks at [`Eal::tsc_hz`]. On x86_64 the RDTSC
/// instruction inline, as `rte_rdtsc` is in C; elsewhere through the shim.
#[inline(always)]
pub fn rdtsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: RDTSC reads the time-stamp counter; no memory is involved.
    unsafe {
        std::arch::x86_64::_rdtsc()
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: reads the TSC; no memory is involved.
    unsafe {
        dpdk_sys::dp_rdtsc()
    }
}

/// A spin-wait hint to the CPU (`rte_pause`).
#[inline]
pub fn pause() {
    // SAFETY: executes the PAUSE instruction.
    unsafe { dpdk_sys::dp_pause() }
}

static STARTED: AtomicBool = AtomicBool::new(false);

/// The initialised EAL. At most one exists per process.
#[derive(Debug)]
pub struct Eal {
    _private: (),
}

impl Eal {
    /// Runs `rte_eal_init` with `args` (`args[0]` is the program name).
    ///
    /// # Errors
    /// A [`DpdkError`] with EAL's `rte_errno` (EAL logs which argument it refused), or
    /// EALREADY if EAL was started before in this process.
    pub fn init(args: &[String]) -> Result<Eal, DpdkError> {
        if STARTED.swap(true, Ordering::SeqCst) {
            return Err(DpdkError { op: "rte_eal_init", errno: libc::EALREADY });
        }
        let cargs: Vec<CString> = args
            .iter()
            .map(|a| CString::new(a.as_str()).map_err(|_| DpdkError { op: "rte_eal_init", errno: libc::EINVAL }))
            .collect::<Result<_, _>>()?;
        // EAL may keep pointers into argv (and reorders it), so argv and its strings live
        // for the rest of the process.
        let cargs = Box::leak(cargs.into_boxed_slice());
        let argv: &mut [*mut std::ffi::c_char] =
            Box::leak(cargs.iter().map(|a| a.as_ptr() as *mut _).collect::<Vec<_>>().into_boxed_slice());
        // SAFETY: argv holds argc valid NUL-terminated strings that are never freed; EAL is
        // started at most once (STARTED above).
        let ret = unsafe { dpdk_sys::rte_eal_init(argv.len() as c_int, argv.as_mut_ptr()) };
        if ret < 0 {
            return Err(DpdkError::last("rte_eal_init"));
        }
        Ok(Eal { _private: () })
    }

    /// The main lcore (the thread that called init).
    pub fn main_lcore(&self) -> LcoreId {
        // SAFETY: reads EAL's configuration, valid after init.
        LcoreId(unsafe { dpdk_sys::rte_get_main_lcore() })
    }

    /// TSC ticks per second.
    pub fn tsc_hz(&self) -> u64 {
        // SAFETY: EAL measured the TSC frequency during init.
        unsafe { dpdk_sys::rte_get_tsc_hz() }
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: called once, after every pool, port and worker of this process is gone
        // (the owners drop those first).
        unsafe { dpdk_sys::rte_eal_cleanup() };
    }
}

/// A worker that did not finish normally.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WorkerError {
    /// The closure panicked; the panic was caught on the lcore.
    #[error("worker on {lcore} panicked: {message}")]
    Panicked {
        /// Where it ran.
        lcore: LcoreId,
        /// The panic payload, when it was a string.
        message: String,
    },
    /// EAL could not start it.
    #[error("cannot launch a worker on {lcore}: {error}")]
    Launch {
        /// Where it was to run.
        lcore: LcoreId,
        /// What EAL said.
        error: DpdkError,
    },
}

struct Job {
    body: Box<dyn FnOnce() + Send>,
    panic: Option<String>,
}

extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: arg is the Box<Job> leaked by launch(); EAL passes it to exactly one call, and
    // launch's caller reclaims it in join() only after rte_eal_wait_lcore saw us return.
    let job = unsafe { &mut *arg.cast::<Job>() };
    let body = std::mem::replace(&mut job.body, Box::new(|| {}));
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(()) => 0,
        Err(payload) => {
            job.panic = Some(panic_message(payload.as_ref()));
            -1
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// A closure running on a worker lcore, with the heap cell its trampoline reports into.
#[derive(Debug)]
pub struct Launched {
    lcore: LcoreId,
    job: *mut c_void,
}

// SAFETY: the job pointer is only dereferenced by the lcore until it returns and by join()
// after rte_eal_wait_lcore; the handle itself may move between threads.
unsafe impl Send for Launched {}

/// Starts `body` on worker `lcore` (`rte_eal_remote_launch`).
///
/// # Errors
/// [`WorkerError::Launch`] when the lcore is not a free worker lcore.
pub fn launch(_eal: &Eal, lcore: LcoreId, body: impl FnOnce() + Send + 'static) -> Result<Launched, WorkerError> {
    let job = Box::into_raw(Box::new(Job { body: Box::new(body), panic: None })).cast::<c_void>();
    // SAFETY: trampoline matches lcore_function_t; job stays alive until join() reclaims it.
    let ret = unsafe { dpdk_sys::rte_eal_remote_launch(Some(trampoline), job, lcore.0) };
    if ret != 0 {
        // SAFETY: the launch failed, so the lcore never saw job: reclaim it here.
        drop(unsafe { Box::from_raw(job.cast::<Job>()) });
        return Err(WorkerError::Launch { lcore, error: DpdkError::from_ret("rte_eal_remote_launch", ret) });
    }
    Ok(Launched { lcore, job })
}

impl Launched {
    /// The lcore it runs on.
    pub fn lcore(&self) -> LcoreId {
        self.lcore
    }

    /// Waits for the lcore to return (`rte_eal_wait_lcore`).
    ///
    /// # Errors
    /// [`WorkerError::Panicked`] with the panic message when the closure panicked.
    pub fn join(self) -> Result<(), WorkerError> {
        // SAFETY: waits until the trampoline returned; afterwards nobody else touches job.
        unsafe { dpdk_sys::rte_eal_wait_lcore(self.lcore.0) };
        // SAFETY: job came from Box::into_raw in launch() and is reclaimed exactly once.
        let job = unsafe { Box::from_raw(self.job.cast::<Job>()) };
        match job.panic {
            None => Ok(()),
            Some(message) => Err(WorkerError::Panicked { lcore: self.lcore, message }),
        }
    }
}
