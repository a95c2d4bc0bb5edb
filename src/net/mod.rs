//! How requests reach servers, for both worker kinds: which servers are trusted, which
//! proxy a URL goes through and how each client reaches it, and how often a host is asked.
//!
//! # Layout
//!
//! - `tls`: pure: the machine's roots and `--ca-cert`, and a refused handshake in words.
//! - `proxy`: pure: which proxy a URL goes through (curl's variables, `NO_PROXY`).
//! - `awc_proxy`: awc's TCP connector, through a proxy where `proxy` says so.
//! - `ureq_forward`: sync mode's agent for `http://` targets through a proxy (the
//!   absolute form, which ureq cannot write itself).
//! - `politeness`: the per-host gate every worker of a process shares.

pub mod awc_proxy;
pub mod politeness;
pub mod proxy;
pub mod tls;
pub mod ureq_forward;
