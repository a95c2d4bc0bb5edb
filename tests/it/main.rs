//! The one integration-test binary: local servers on 127.0.0.1:0, the real binary run
//! end to end, and each worker actor with a probe in the Coordinator's place.

mod chaos;
mod conformance;
mod e2e;
mod helpers;
mod hostile;
mod outputs;
mod polite;
mod props;
mod s3;
mod s3_store;
mod walk;
mod workers;
