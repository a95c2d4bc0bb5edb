//! The Lua scripts, each `common.lua` followed by its own body, and how their arguments
//! are laid out. Each is one atomic step; `redis::Script` calls it by SHA (EVALSHA) and
//! loads it again when the server answers NOSCRIPT (after a restart or SCRIPT FLUSH).

use std::sync::LazyLock;

use redis::{Script, ScriptInvocation};
use xxhash_rust::xxh3::xxh3_128;

use super::keys::origin_of;
use crate::frontier::{FrontierError, Offer};
use crate::task::host_of;

macro_rules! script {
    ($file:literal) => {
        LazyLock::new(|| Script::new(concat!(include_str!("lua/common.lua"), include_str!($file))))
    };
}

pub static OFFER: LazyLock<Script> = script!("lua/offer.lua");
pub static CLAIM: LazyLock<Script> = script!("lua/claim.lua");
pub static COMPLETE: LazyLock<Script> = script!("lua/complete.lua");
pub static RELEASE: LazyLock<Script> = script!("lua/release.lua");
pub static RENEW: LazyLock<Script> = script!("lua/renew.lua");
pub static COUNTS: LazyLock<Script> = script!("lua/counts.lua");
pub static WALK: LazyLock<Script> = script!("lua/walk.lua");
pub static GATE: LazyLock<Script> = script!("lua/gate.lua");
pub static NAME: LazyLock<Script> = script!("lua/name.lua");
pub static STATUS: LazyLock<Script> = script!("lua/status.lua");
pub static RETRY: LazyLock<Script> = script!("lua/retry.lua");
pub static DIGEST: LazyLock<Script> = script!("lua/digest.lua");

/// Every script, to load once when a connection is made.
pub fn all() -> [&'static Script; 12] {
    [&OFFER, &CLAIM, &COMPLETE, &RELEASE, &RENEW, &COUNTS, &WALK, &GATE, &NAME, &STATUS, &RETRY, &DIGEST]
}

/// A call of `script` for the job under `prefix`: KEYS[1] its counters, ARGV[1] the
/// prefix.
pub fn call(script: &'static Script, prefix: &str) -> ScriptInvocation<'static> {
    let mut call = script.prepare_invoke();
    call.key(super::keys::counts_key(prefix)).arg(prefix);
    call
}

/// Adds `offers` as `common.lua`'s `offer` reads them: six arguments each.
pub fn add_offers(call: &mut ScriptInvocation<'static>, offers: &[Offer]) -> Result<(), FrontierError> {
    for offer in offers {
        let payload = serde_json::to_string(offer)
            .map_err(|e| FrontierError::Unavailable(format!("cannot encode an offer: {e}")))?;
        let flags = match (offer.again, offer.detail) {
            (true, true) => "ad",
            (true, false) => "a",
            (false, true) => "d",
            (false, false) => "",
        };
        call.arg(&xxh3_128(offer.url.as_str().as_bytes()).to_le_bytes()[..])
            .arg(flags)
            .arg(origin_of(&offer.url))
            .arg(host_of(&offer.url))
            .arg(offer.url.as_str())
            .arg(payload);
    }
    Ok(())
}

/// An offer as stored: a payload that does not decode was not written by this version.
pub fn decode(payload: &str) -> Result<Offer, FrontierError> {
    serde_json::from_str(payload)
        .map_err(|e| FrontierError::Unavailable(format!("a task in Redis does not decode: {e}")))
}
