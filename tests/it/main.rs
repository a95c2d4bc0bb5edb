//! The one integration-test binary: local servers on 127.0.0.1:0, the real binary run
//! end to end, and each worker actor with a probe in the Coordinator's place.

mod chaos;
mod conformance;
mod datasets;
mod dimensions;
mod distributed;
mod e2e;
mod first_hour;
mod forward_proxy;
mod helpers;
mod hostile;
mod js_pages;
mod layout;
mod limits;
mod lists_and_reports;
mod names;
mod opt_out;
mod outputs;
mod polite;
mod props;
mod provenance;
mod proxy;
/// The real redis-server the frontier's own tests start, shared with these (which use
/// less of it).
#[path = "../../src/redis_job/testing.rs"]
#[allow(dead_code)]
mod redis_server;
mod render;
mod s3;
mod s3_liveness;
mod s3_store;
mod scale;
mod shared_bucket;
mod shared_dedupe;
mod shared_gallery;
mod slow_relay;
mod socks;
mod socks_proxy;
mod tls;
mod walk;
mod workers;
