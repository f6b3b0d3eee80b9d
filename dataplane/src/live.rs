//! Parameters that `ctl apply` changes while the workers run: the poll budget and idle
//! back-off, the mirror, the TX backlog limits and the ports' own addresses.
//!
//! They live in one [`RcuCell`]: each worker reads it once per round through its
//! [`crate::rcu::QsbrReader`] and copies what changed (its `generation` moved) into its
//! own state, so the per-packet path reads nothing shared. The slow path reads the
//! addresses from it too. A new value is published as a whole and the old one freed after
//! a grace period.

use std::sync::Arc;

use crate::local::Local;
use crate::net::Proto;
use crate::port::PortIdx;
use crate::rcu::RcuCell;
use crate::worker::Budget;

/// The live parameters, as one value.
#[derive(Debug, Clone)]
pub struct Live {
    /// Bumped by every change, so a worker copies only when something moved.
    pub generation: u64,
    /// The round's budget and back-off (`[poll]`).
    pub budget: Budget,
    /// The mirror port and protocol (`[mirror]`), when the extension framework runs.
    pub mirror: Option<(PortIdx, Option<Proto>)>,
    /// TX backlog limits: packets per port, and under memory pressure (`[accounting]`).
    pub backlog: (u32, u32),
    /// Per port (config index): the forwarder's own addresses there.
    pub locals: Arc<Vec<Option<Local>>>,
}

/// The cell the workers and the slow path read.
pub type LiveCell = RcuCell<Live>;
