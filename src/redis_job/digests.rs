//! `DEDUPE: content` across a shared job: the job's first copy of each content, so its
//! processes (one out dir or several) keep one copy between them. One round trip
//! (`digest.lua`) per new content, once its copy is in place: blocking a sync worker's
//! own thread, or awaited on an async worker's Arbiter ([`Link`]).

use super::conn::Link;
use super::scripts;
use crate::store::{DigestAnswer, DigestError, DigestLedger, FirstCopy};

#[derive(Debug)]
pub struct RedisDigests {
    /// Blocking or per Arbiter, as the workers that commit images may wait.
    link: Link,
}

impl RedisDigests {
    /// `per_arbiter` for async workers (async mode), else blocking (sync mode): see
    /// [`Link::open`].
    pub fn open(url: &str, job: &str, per_arbiter: bool) -> Result<Self, super::RedisFrontierError> {
        Ok(Self { link: Link::open(url, job, per_arbiter)? })
    }
}

impl DigestLedger for RedisDigests {
    fn claim<'a>(&'a self, sha256: &'a str, ours: &'a FirstCopy) -> DigestAnswer<'a> {
        Box::pin(async move {
            // One a line: none of the three holds a newline (a URL is percent-encoded, a
            // host name is one word, a path with one is refused by `encode`).
            let value = encode(ours)?;
            let first: String = self
                .link
                .call(&scripts::DIGEST, &[sha256, &value])
                .await
                .map_err(|e| DigestError(format!("Redis: {e}")))?;
            decode(&first)
        })
    }
}

fn encode(copy: &FirstCopy) -> Result<String, DigestError> {
    if [&copy.url, &copy.machine, &copy.path].iter().any(|s| s.contains('\n')) {
        return Err(DigestError(format!("a path with a line break cannot be shared: {:?}", copy.path)));
    }
    Ok(format!("{}\n{}\n{}", copy.url, copy.machine, copy.path))
}

fn decode(value: &str) -> Result<FirstCopy, DigestError> {
    let mut lines = value.splitn(3, '\n');
    match (lines.next(), lines.next(), lines.next()) {
        (Some(url), Some(machine), Some(path)) => {
            Ok(FirstCopy { url: url.into(), machine: machine.into(), path: path.into() })
        }
        _ => Err(DigestError(format!("a first copy that does not read: {value:?}"))),
    }
}
