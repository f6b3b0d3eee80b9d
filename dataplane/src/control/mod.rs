//! The control plane's API: a UNIX stream socket that `dataplane ctl` (and later routing
//! daemons) use to look at and change a running forwarder (docs/control-api.md).
//!
//! - [`api`]: the schema, one set of serde types for the server and the client.
//! - [`server`]: the socket ([`server::Bound`] before EAL starts, so a second instance is
//!   refused before it touches a hugepage), a thread per client, limits on clients, line
//!   length and idle time.
//! - [`handler`]: what each command does ([`Control`]): reads of the forwarder's counters,
//!   route changes through the [`crate::fib::Fib`] (the only writer), `apply`.
//! - [`apply`]: the running config against a new one: what changes live, what needs a
//!   restart.
//! - [`client`]: the client side.
//!
//! None of this runs on a worker: workers read what it changes lock-free, through RCU.

pub mod api;
pub mod apply;
pub mod client;
pub mod handler;
pub mod server;

pub use api::{ApiError, Command, Reply};
pub use client::Client;
pub use handler::Control;
pub use server::{Bound, Server, ServerError};
