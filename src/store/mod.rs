//! Where images end up.

pub mod s3;
