//! No S3 request waits on an event loop. With SeaweedFS answering every request late
//! behind a [`SlowRelay`], a timer on an async worker's Arbiter keeps firing on time while
//! an image's part goes up, and one on the System Arbiter (the Coordinator's) while the
//! resume record goes up. A call that waited on S3 there would hold the timer back by a
//! whole delay; the bound is half of one.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_rt::ArbiterHandle;
use image_scraper::fetch::FetchOptions;
use image_scraper::html::ExtractRules;
use image_scraper::store::Store;
use image_scraper::store::bucket::BucketStore;
use image_scraper::store::s3::{S3Client, S3Location, S3Settings};
use image_scraper::work::{Done, ImageTask, RunTask, Task};
use image_scraper::workers::downloader::{self, Downloader};
use slog::{Logger, o};
use tokio::sync::oneshot;
use url::Url;

use crate::helpers::{Reply, TestServer, jpeg, plain_trust};
use crate::s3::{SeaweedFs, server};
use crate::slow_relay::SlowRelay;
use crate::workers::{Probe, WaitFor};

/// How late S3 answers every request.
const DELAY: Duration = Duration::from_millis(800);

/// How often the watching timer asks to fire.
const TICK: Duration = Duration::from_millis(20);

/// A timer ticking on one Arbiter, noting how late it fired at worst.
struct Lag {
    /// The worst lateness so far, in ms.
    worst_ms: Arc<AtomicU64>,
    /// Ticks so far: proof that the timer ran while what is watched went on.
    ticks: Arc<AtomicU64>,
    /// Tells the timer to end.
    stop: Arc<AtomicBool>,
}

impl Lag {
    /// Starts the timer on `arbiter` and returns once it has ticked, so that it is
    /// waiting on that Arbiter before anything watched begins.
    async fn watch(arbiter: &ArbiterHandle) -> Lag {
        let lag = Lag { worst_ms: Arc::default(), ticks: Arc::default(), stop: Arc::default() };
        let (worst_ms, ticks, stop) =
            (Arc::clone(&lag.worst_ms), Arc::clone(&lag.ticks), Arc::clone(&lag.stop));
        let (started, first_tick) = oneshot::channel();
        arbiter.spawn(async move {
            let mut started = Some(started);
            while !stop.load(Ordering::Relaxed) {
                let asked = Instant::now();
                actix_rt::time::sleep(TICK).await;
                let late = asked.elapsed().saturating_sub(TICK);
                worst_ms.fetch_max(late.as_millis() as u64, Ordering::Relaxed);
                ticks.fetch_add(1, Ordering::Relaxed);
                if let Some(started) = started.take() {
                    let _ = started.send(());
                }
            }
        });
        first_tick.await.expect("the timer ticked");
        lag
    }

    /// Ends the timer: its worst lateness and how many times it fired.
    fn stop(self) -> (Duration, u64) {
        self.stop.store(true, Ordering::Relaxed);
        (Duration::from_millis(self.worst_ms.load(Ordering::Relaxed)), self.ticks.load(Ordering::Relaxed))
    }
}

/// One bucket for both tests, each under a prefix of its own: every bucket takes volumes
/// of the one server all S3 tests share.
fn bucket(s3: &SeaweedFs) -> Arc<S3Client> {
    static BUCKET: OnceLock<Arc<S3Client>> = OnceLock::new();
    Arc::clone(BUCKET.get_or_init(|| s3.new_bucket("slow")))
}

/// A store on `bucket` under `prefix`, reaching SeaweedFS through a relay that holds back
/// each of its answers by [`DELAY`].
fn slow_store(s3: &SeaweedFs, bucket: &str, prefix: &str) -> BucketStore {
    let endpoint = Url::parse(&s3.endpoint).unwrap();
    let server = endpoint.socket_addrs(|| None).unwrap()[0];
    let relay = SlowRelay::start(server, DELAY);
    let settings =
        S3Settings { endpoint: Url::parse(&format!("http://{}", relay.addr)).unwrap(), ..s3.settings() };
    let client =
        S3Client::new(&settings, bucket, Duration::from_secs(30), plain_trust().ureq_config(), None).unwrap();
    let location = S3Location::parse(&format!("s3://{bucket}/{prefix}")).unwrap();
    BucketStore::open(client, location, false).expect("open the bucket through the relay")
}

fn extract() -> ExtractRules {
    ExtractRules {
        image_selector: "img".into(),
        attributes: vec!["src".into()],
        image_host: "127.0.0.1".into(),
        page_count_selector: String::new(),
        linked_images: Default::default(),
        link_selector: String::new(),
        next_selector: Some(String::new()),
        detail: Default::default(),
    }
}

#[actix::test]
async fn a_part_going_up_slowly_leaves_the_downloaders_arbiter_serving() {
    let Some(s3) = server() else { return };
    let bucket = bucket(s3);
    let store = slow_store(s3, bucket.bucket(), "part");
    // One 8 MiB part goes up while the body is read, the rest at the commit.
    let body = jpeg(90, 10 * 1024 * 1024);
    let site = TestServer::start(vec![("/big.jpg", Reply::image(&body))]);
    let opts = Arc::new(FetchOptions {
        timeout: Duration::from_secs(30),
        ..FetchOptions::new(Arc::new(store), extract())
    });
    let probe = Probe::default().start();
    let arbiter = Arbiter::new();
    let lag = Lag::watch(&arbiter.handle()).await;
    let report = probe.clone().recipient();
    let worker = Downloader::start_in_arbiter(&arbiter.handle(), move |_| {
        Downloader::new(
            opts,
            downloader::tls_config(&plain_trust()),
            report,
            Logger::root(slog::Discard, o!()),
        )
    });
    let url = Url::parse(&format!("{}/big.jpg", site.origin())).unwrap();
    let image = ImageTask { url, name: "big.jpg".into(), overwrite: false, referer: None };
    worker.do_send(RunTask { id: 1, task: Task::Image(image) });
    let results = probe.send(WaitFor(1)).await.unwrap();
    let (worst, ticks) = lag.stop();
    arbiter.stop();

    let saved = matches!(&results[0].outcome, Ok(Done::Image { bytes, name, .. }) if *bytes == body.len() as u64 && name == "big.jpg");
    assert!(saved, "{:?}", results[0].outcome);
    assert!(bucket.get("part/big.jpg").unwrap() == Some(body), "not the image");
    assert!(worst < DELAY / 2, "the Arbiter stalled for {worst:?} while S3 answered {DELAY:?} late");
    // Four requests at least (start, two parts, completion), each a DELAY late.
    assert!(ticks >= 10, "the timer hardly ran: {ticks} ticks");
}

#[actix::test]
async fn the_record_going_up_slowly_leaves_the_coordinators_arbiter_serving() {
    let Some(s3) = server() else { return };
    let bucket = bucket(s3);
    // Every image recorded hands the record to its writer, as one does every RECORD_EVERY.
    let store = Arc::new(slow_store(s3, bucket.bucket(), "record").with_record_every(Duration::ZERO));
    let lag = Lag::watch(&Arbiter::current()).await;
    // As the Coordinator records images, from its handlers on this Arbiter.
    for i in 0..3 {
        let url = Url::parse(&format!("http://127.0.0.1/{i}.jpg")).unwrap();
        store.record(&url, &format!("{i}.jpg"), 100).unwrap();
    }
    // As the Coordinator flushes at the end: on the blocking pool, awaited.
    let flushing = Arc::clone(&store);
    actix_rt::task::spawn_blocking(move || flushing.flush()).await.unwrap().unwrap();
    let (worst, ticks) = lag.stop();

    let record = bucket.get("record/.image-scraper/done.jsonl").unwrap().expect("the record was written");
    let lines = String::from_utf8(record).unwrap();
    assert_eq!(lines.lines().count(), 3, "{lines}");
    assert!(worst < DELAY / 2, "the Arbiter stalled for {worst:?} while S3 answered {DELAY:?} late");
    // The flush waited for one PUT at least.
    assert!(ticks >= 10, "the timer hardly ran: {ticks} ticks");
}
