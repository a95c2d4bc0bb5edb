//! The worker kinds, each only what its HTTP client needs around the fetch core
//! ([`crate::fetch`]), and the glue they share, written once so the kinds cannot drift
//! apart on what the Coordinator and the conformance suite hold them to.
//!
//! - [`blocking`]: sync mode's `Blocking` (a `SyncArbiter` thread each, ureq).
//! - [`downloader`]: async mode's `Downloader` (an Arbiter each, awc).
//! - `finish`: a task's end (a panic included) reported to the Coordinator.
//! - `response`: a response read the same way by every client (header names, whose 407).

pub mod blocking;
pub mod downloader;
mod finish;
mod response;
