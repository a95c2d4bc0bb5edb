//! Names in Redis: a job's key prefix, the job and node names it is built from, and how
//! a lease id names its task. Pure.

use url::Url;

use crate::task::host_of;

/// A job or node name that cannot be used in a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("the {what} name is empty")]
    Empty { what: &'static str },
    #[error("the {what} name is longer than {MAX_NAME} characters")]
    TooLong { what: &'static str },
    #[error("the {what} name {name:?} may hold only letters, digits, '.', '_' and '-'")]
    BadChar { what: &'static str, name: String },
}

/// Long enough for any name a person types, short enough that keys stay short.
pub const MAX_NAME: usize = 64;

/// Checks a job or node name: letters, digits, `.`, `_`, `-`. No braces (the job's hash
/// tag would end early), no colon (the key separator), no newline or tab (the lease
/// record's separators).
pub fn check_name(what: &'static str, name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty { what });
    }
    if name.len() > MAX_NAME {
        return Err(NameError::TooLong { what });
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
        return Err(NameError::BadChar { what, name: name.to_string() });
    }
    Ok(())
}

/// Every key of job `job` starts with this: `isc:{JOB}:`. The braces are a hash tag, so
/// a Redis Cluster keeps the whole job in one slot and a script may touch any of it.
pub fn prefix(job: &str) -> String {
    format!("isc:{{{job}}}:")
}

/// The hash holding the job's counters: the key each script declares.
pub fn counts_key(prefix: &str) -> String {
    format!("{prefix}counts")
}

/// A URL's origin as the name of its queue: scheme, host and port, as robots.txt scopes
/// them (`robots::origin` is a hash; a key wants the readable form).
pub fn origin_of(url: &Url) -> String {
    format!("{}://{}:{}", url.scheme(), host_of(url), url.port_or_known_default().unwrap_or(0))
}

/// Bits of a lease id that count the claims of its task; the rest is the task id. So a
/// completion that comes after its lease was reaped still names its task, with nothing
/// kept per lease. A task claimed 65,536 times reuses its first id: only a completion
/// that late could be taken for a newer one.
pub const SEQ_BITS: u32 = 16;

/// The task a lease id names.
pub fn task_of(lease: u64) -> u64 {
    lease >> SEQ_BITS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_break_a_key_are_refused() {
        assert_eq!(check_name("job", "cats-2024_v1.0"), Ok(()));
        assert_eq!(check_name("job", ""), Err(NameError::Empty { what: "job" }));
        assert!(matches!(check_name("job", "a}b"), Err(NameError::BadChar { .. })));
        assert!(matches!(check_name("node", "a:b"), Err(NameError::BadChar { .. })));
        assert!(matches!(check_name("node", "a\nb"), Err(NameError::BadChar { .. })));
        assert!(matches!(check_name("job", "é"), Err(NameError::BadChar { .. })));
        assert_eq!(check_name("job", &"x".repeat(65)), Err(NameError::TooLong { what: "job" }));
    }

    #[test]
    fn a_job_is_one_hash_tag_and_an_origin_names_its_port() {
        assert_eq!(counts_key(&prefix("cats")), "isc:{cats}:counts");
        let url = |s| Url::parse(s).unwrap();
        assert_eq!(origin_of(&url("http://H.test/a.jpg")), "http://h.test:80");
        assert_eq!(origin_of(&url("https://[::1]:8443/a.jpg")), "https://[::1]:8443");
        assert_eq!(task_of((7 << SEQ_BITS) | 3), 7);
    }
}
