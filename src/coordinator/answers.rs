//! What a worker's answer does: the Coordinator's side of `TaskFinished`. `outcome`
//! says what an answer means; this applies it: counts, logs, and completes the lease
//! with the frontier, offering what the task revealed (a page's images, next link and
//! detail pages; a redirect's target; a thumbnail in place of a link to a page).

use actix::prelude::*;
use slog::{debug, info, warn};
use url::Url;

use super::outcome::{self, DetailAnswer, ImageAnswer};
use super::tally::Subject;
use super::{Coordinator, InFlight};
use crate::counts::RenderNote;
use crate::counts::{SkipReason, Status};
use crate::frontier::{
    Completed, EndWhy, Ending, ItemEnd, LastWhy, Lease, LeaseId, Meta, Offer, PageFate, Work,
};
use crate::html::Found;
use crate::robots::Rules;
use crate::work::{Done, ImageTask, PageKind, Task, TaskError, TaskFinished, host_of};

impl Coordinator {
    /// Counts what a worker reports. Returns the error that must stop the whole run (a
    /// full disk), if this was one.
    pub(super) fn finish(&mut self, msg: TaskFinished, ctx: &mut Context<Self>) -> Option<TaskError> {
        let Some(done) = self.slots.take(msg.id) else {
            warn!(self.log, "acknowledgement for an unknown task"; "id" => msg.id);
            return None;
        };
        // A shared job's task cancelled because this process stops is still the job's:
        // failing it would fail it for every process. Its lease goes back untried.
        if self.plan.shared.is_some() && matches!(msg.outcome, Err(TaskError::Interrupted)) {
            self.hand_back(done, ctx);
            self.show_progress();
            return None;
        }
        let outcome = match (&self.stopped, msg.outcome) {
            // Given up because the run stopped: say why it stopped.
            (Some(why), Err(TaskError::Interrupted)) => Err(why.clone()),
            (_, outcome) => outcome,
        };
        let halt = match &outcome {
            Err(e @ TaskError::DiskFull(_)) if self.stopped.is_none() => Some(e.clone()),
            _ => None,
        };
        let InFlight { task, lease, page, referer, meta, carried } = done;
        let mut outcome = outcome;
        if let (Task::Page { number, url, kind }, Ok(Done::Page(_, render))) = (&task, &mut outcome)
            && let Some(note) = render.take()
        {
            self.page_rendered(*number, url, *kind, *note);
        }
        match (task, lease) {
            (Task::Robots { url }, _) => self.robots_finished(&url, outcome),
            (Task::Probe { url }, _) => self.probe_finished(&url, outcome),
            (Task::Page { number, url, kind: PageKind::Listing }, Some(lease)) => {
                self.page_finished(lease, number, url, &meta, outcome, msg.attempts, ctx)
            }
            (Task::Page { number, url, kind: PageKind::Detail }, Some(lease)) => {
                let found = meta.found.as_deref().unwrap_or(&url).clone();
                let detail = Subject { found, page: number, path: String::new(), meta, carried: None };
                self.detail_finished(lease, url, detail, outcome, msg.attempts, ctx)
            }
            (Task::Image(task), Some(lease)) => {
                let image = Subject {
                    found: meta.found.as_deref().unwrap_or(&task.url).clone(),
                    page,
                    path: task.name.clone(),
                    meta,
                    carried,
                };
                self.image_finished(lease, task, image, referer, outcome, msg.attempts, ctx)
            }
            (task, None) => warn!(self.log, "a task without a lease"; "url" => %task.url()),
        }
        self.show_progress();
        halt
    }

    /// A dry run's probe answered: a link target that is a page gives way to its
    /// thumbnail, as in a real run; one that could not be asked stays (a real run
    /// decides by its bytes).
    fn probe_finished(&mut self, url: &Url, outcome: Result<Done, TaskError>) {
        self.probe = None;
        let image = match outcome {
            Ok(Done::Probed { image }) => image,
            Ok(_) => true,
            Err(e) => {
                debug!(self.log, "link target not probed: listed as it is"; "url" => %url, "error" => %e);
                true
            }
        };
        if let Some(listing) = &mut self.listing
            && let Some(thumbnail) = listing.probed(url, image)
        {
            info!(self.log, "dry run: the link target is a page, its thumbnail is listed instead";
                "link" => %url, "thumbnail" => %thumbnail);
        }
    }

    /// Gives a cancelled task's lease back to a shared job, no try counted (robots.txt is
    /// this process's own: nothing to give back).
    fn hand_back(&mut self, done: InFlight, ctx: &mut Context<Self>) {
        let InFlight { task, lease, page, referer, meta, carried } = done;
        let Some(id) = lease else { return };
        let work = match task {
            // A dry run's probe asks about a URL it holds no lease of.
            Task::Robots { .. } | Task::Probe { .. } => return,
            Task::Page { number, url, kind: PageKind::Listing } => {
                Work::Page { number, url, hops: meta.hops }
            }
            Task::Page { url, kind: PageKind::Detail, .. } => {
                Work::Detail(Offer { detail: true, ..Offer::new(url, page, referer, meta) })
            }
            Task::Image(task) => Work::Image(Offer { carried, ..Offer::new(task.url, page, referer, meta) }),
        };
        debug!(self.log, "handed back to the job"; "url" => %work.url());
        self.handed_back += 1;
        let answer = self.frontier.release(vec![Lease { id, work }]);
        self.then(ctx, answer, |_, ()| {});
    }

    #[allow(clippy::too_many_arguments)]
    fn page_finished(
        &mut self,
        lease: LeaseId,
        number: u32,
        url: Url,
        meta: &Meta,
        outcome: Result<Done, TaskError>,
        attempts: u32,
        ctx: &mut Context<Self>,
    ) {
        let answer = outcome::page(outcome, meta.hops, |u| self.page_host_allows(u));
        let outcome::PageAnswer { ending, images, details, off_host, other_hosts, error, pager } = answer;
        self.tally.dropped_by_host(other_hosts);
        let next_seen = matches!(&ending, Ending::PageFetched { next: Some(_), .. });
        if let Some(next) = off_host {
            info!(self.log, "next link leads off PAGE_HOST: not followed"; "page" => number, "next" => %next);
        }
        let mut offers = self.image_offers(images, number, &url, None);
        let listed = self.listing.is_some().then(|| offers.clone());
        let n_images = offers.len();
        let details = details
            .into_iter()
            .map(|d| Offer { detail: true, ..Offer::new(d, number, Some(url.clone()), Meta::default()) });
        offers.extend(details);
        let answer = self.frontier.complete(lease, ending, offers);
        self.then(ctx, answer, move |act, done| {
            if let Some(fate) = &done.page {
                act.walk_end.page(number, fate, next_seen, pager);
            }
            act.page_completed(number, &url, error, attempts, (n_images, listed), done)
        });
    }

    /// A page rendered, or one that wanted a render with no browser there: counted and
    /// said, before its images are offered like any page's.
    fn page_rendered(&mut self, number: u32, url: &Url, kind: PageKind, note: RenderNote) {
        match (note.rendered, note.capped.as_deref()) {
            (false, _) => debug!(self.log, "page looks built by JavaScript; no browser to render it";
                "page" => number, "url" => %url, "why" => &note.why),
            (true, Some(cap)) => warn!(self.log, "page still growing when scrolling stopped: capped";
                "page" => number, "url" => %url, "by" => cap, "steps" => note.scroll_steps,
                "images" => note.images_rendered),
            (true, None) => {
                info!(self.log, "page rendered"; "page" => number, "url" => %url, "why" => &note.why,
                "images_static" => note.images_static, "images_rendered" => note.images_rendered,
                "ms" => note.render_ms, "steps" => note.scroll_steps)
            }
        }
        self.tally.page_rendered(url, number, note, kind == PageKind::Detail);
    }

    fn page_completed(
        &mut self,
        number: u32,
        url: &Url,
        error: Option<TaskError>,
        attempts: u32,
        (images, listed): (usize, Option<Vec<Offer>>),
        done: Completed,
    ) {
        // Images come first among the children, then detail pages.
        let images = images.min(done.admitted.len());
        let new = self.found_images(&done.admitted[..images]);
        let new_details = done.admitted[images..].iter().filter(|new| **new).count();
        debug!(self.log, "images found"; "page" => number, "images" => images, "new" => new, "new_details" => new_details);
        let error = error.map_or_else(String::new, |e| e.to_string());
        match done.page {
            Some(PageFate::Moved) => return,
            Some(PageFate::Ok) => self.tally.page_ok(),
            Some(PageFate::Clamped { stated, last }) => {
                self.tally.page_ok();
                // Logged as before for a walk from page 1 (scripts may look for it); a
                // range names its first page.
                match number {
                    1 => {
                        info!(self.log, "page 1 states the page count"; "stated" => stated, "fetching" => last)
                    }
                    first => info!(self.log, "the first page states the page count";
                        "page" => first, "stated" => stated, "last" => last),
                }
            }
            Some(PageFate::End { why: EndWhy::Missing, first_time: true }) => {
                info!(self.log, "page not found: the walk ends before it"; "page" => number, "url" => %url)
            }
            Some(PageFate::End { why: EndWhy::Repeats, first_time: true }) => {
                info!(self.log, "page repeats images already found: the walk ends before it"; "page" => number, "url" => %url)
            }
            Some(PageFate::End { first_time: false, .. }) => {
                debug!(self.log, "page past the end"; "page" => number, "url" => %url)
            }
            Some(PageFate::Last(why)) => {
                self.tally.page_ok();
                let why = match why {
                    LastWhy::Empty => "it has no images and no next link",
                    LastWhy::NoNext => "it has no next link",
                    LastWhy::Loop => "its next link leads back to a page walked",
                };
                info!(self.log, "last page of the walk"; "page" => number, "url" => %url, "why" => why);
            }
            Some(PageFate::PastEnd) => {
                debug!(self.log, "page past the end"; "page" => number, "url" => %url, "error" => error)
            }
            Some(PageFate::Failed) | None => {
                warn!(self.log, "page failed"; "page" => number, "url" => %url, "error" => &error, "attempts" => attempts);
                self.tally.page_failed(url, number, error, attempts, false);
            }
        }
        if let Some(listing) = &mut self.listing {
            let admitted = listed.unwrap_or_default().into_iter().zip(done.admitted);
            listing.page_done(number, admitted.filter(|(_, new)| *new).map(|(offer, _)| offer).collect());
        }
    }

    /// A detail page came back: its images are offered as the page's own, under the
    /// listing page that linked to it, each naming the detail page.
    fn detail_finished(
        &mut self,
        lease: LeaseId,
        url: Url,
        detail: Subject,
        outcome: Result<Done, TaskError>,
        attempts: u32,
        ctx: &mut Context<Self>,
    ) {
        let (children, end) = match outcome::detail(outcome, &detail, |u| self.page_host_allows(u)) {
            DetailAnswer::Images(images, other_hosts) => {
                self.tally.dropped_by_host(other_hosts);
                (self.image_offers(images, detail.page, &url, Some(&url)), ItemEnd::DetailOk)
            }
            DetailAnswer::Moved(target) => (vec![*target], ItemEnd::Replaced),
            DetailAnswer::Failed(error) => {
                warn!(self.log, "detail page failed"; "url" => %detail.found, "error" => &error, "attempts" => attempts);
                self.tally.page_failed(&detail.found, detail.page, error, attempts, true);
                (Vec::new(), ItemEnd::DetailFailed)
            }
        };
        let ok = end == ItemEnd::DetailOk;
        let listed = (ok && self.listing.is_some()).then(|| children.clone());
        let answer = self.frontier.complete(lease, Ending::Image(end), children);
        self.then(ctx, answer, move |act, done| {
            if !ok {
                return;
            }
            act.tally.detail_ok();
            let new = act.found_images(&done.admitted);
            debug!(act.log, "images found"; "detail" => %url, "images" => done.admitted.len(), "new" => new);
            if let Some(listing) = &mut act.listing {
                let admitted = listed.unwrap_or_default().into_iter().zip(done.admitted);
                listing.add(admitted.filter(|(_, new)| *new).map(|(offer, _)| offer));
            }
        });
    }

    pub(super) fn detail_refused(&mut self, url: &Url, reason: String, failure: bool) {
        warn!(self.log, "detail page not fetched"; "url" => %url, "reason" => &reason);
        match failure {
            true => self.tally.detail_failed(),
            false => self.tally.detail_skipped(),
        }
    }

    /// The images a page (`referer`) holds, past the filters, as offers; what `--ext`
    /// drops is counted.
    fn image_offers(
        &mut self,
        images: Vec<Found>,
        page: u32,
        referer: &Url,
        detail: Option<&Url>,
    ) -> Vec<Offer> {
        let (wanted, unwanted): (Vec<Found>, Vec<Found>) =
            images.into_iter().partition(|f| self.plan.filters.wants(&f.url));
        for found in &unwanted {
            self.tally.dropped_by_extension(&found.url);
        }
        wanted
            .into_iter()
            .map(outcome::found_meta)
            .map(|(image, meta)| {
                let meta = Meta { detail: detail.cloned().map(Box::new), ..meta };
                Offer::new(image, page, Some(referer.clone()), meta)
            })
            .collect()
    }

    /// Counts the images the frontier admitted as found; returns how many.
    fn found_images(&mut self, admitted: &[bool]) -> usize {
        let new = admitted.iter().filter(|new| **new).count();
        for _ in 0..new {
            self.tally.found_image();
        }
        new
    }

    /// Whether a next link or a detail link may lead to `url` (`PAGE_HOST`).
    fn page_host_allows(&self, url: &Url) -> bool {
        crate::html::host_matches(&self.plan.page_host, url)
    }

    #[allow(clippy::too_many_arguments)]
    fn image_finished(
        &mut self,
        lease: LeaseId,
        task: ImageTask,
        image: Subject,
        referer: Option<Url>,
        outcome: Result<Done, TaskError>,
        attempts: u32,
        ctx: &mut Context<Self>,
    ) {
        let mut children = Vec::new();
        let mut fell_back = None;
        let answer = outcome::image(outcome, &task, &image, referer, &self.plan.image_host);
        // `DEDUPE: content`: bytes another URL stored first are this one's duplicate.
        let first_copy = match &answer {
            ImageAnswer::Saved { sha256: Some(sha256), .. } => self.plan.store.first_copy(&task.url, sha256),
            _ => None,
        };
        // What the store worked around meanwhile (a shared job's digests unreachable): its
        // writers have no log, so it is said here, once.
        if let Some(notice) = self.plan.store.notice() {
            warn!(self.log, "{}", notice);
        }
        let end = match &answer {
            ImageAnswer::Saved { .. } if first_copy.is_some() => ItemEnd::Skipped,
            ImageAnswer::Saved { .. } => ItemEnd::Ok,
            ImageAnswer::Follow(_) | ImageAnswer::FallBack { .. } => ItemEnd::Replaced,
            ImageAnswer::Skipped(..) => ItemEnd::Skipped,
            ImageAnswer::Failed(_) => ItemEnd::Failed,
        };
        let mut ending = Ending::Image(end);
        match answer {
            ImageAnswer::Saved { name, bytes, sha256, mut info } => {
                debug!(self.log, "image saved"; "url" => %image.found, "path" => &name, "bytes" => bytes);
                ending = Ending::Saved { path: name.clone(), bytes, duplicate: first_copy.is_some() };
                if let Err(e) = self.plan.store.record_content(&image.found, &name, bytes, sha256.as_deref())
                    && !self.resume_warned
                {
                    self.resume_warned = true;
                    warn!(self.log, "cannot update the resume record: a re-run will fetch these again"; "error" => %e);
                }
                if info.final_url.as_deref() == Some(image.found.as_str()) {
                    info.final_url = None;
                }
                if let Some(first) = first_copy {
                    // Skipped, not ok: nothing was stored for it. Its path is the first
                    // copy's, which the reason names too.
                    debug!(self.log, "image is a duplicate"; "url" => %image.found, "first_copy" => &first);
                    let mut item = Subject { path: name, ..image }.item(Status::Skipped);
                    (item.bytes, item.attempts, item.sha256, item.info) = (bytes, attempts, sha256, info);
                    item.reason = Some(format!("duplicate of {first}"));
                    self.tally.skipped(item, SkipReason::Duplicate);
                } else {
                    let mut item = Subject { path: name, ..image }.item(Status::Ok);
                    (item.bytes, item.attempts, item.sha256, item.info) = (bytes, attempts, sha256, info);
                    self.tally.image(item);
                }
            }
            // What replaces the image keeps its row's columns.
            ImageAnswer::Follow(target) => children.push(Offer { carried: image.carried.clone(), ..target }),
            ImageAnswer::FallBack { mut thumbnail, link } => {
                thumbnail.carried = image.carried.clone();
                info!(self.log, "link target is a page: fetching its thumbnail"; "link" => %link.found, "thumbnail" => %thumbnail.url);
                children.push(thumbnail);
                fell_back = Some(link);
            }
            ImageAnswer::Skipped(why, reason) => self.skip(&image, why, reason),
            ImageAnswer::Failed(error) => self.fail(&image, attempts, error),
        }
        let answer = self.frontier.complete(lease, ending, children);
        self.then(ctx, answer, move |act, done| {
            if let Some(link) = fell_back
                && done.admitted.first() == Some(&false)
            {
                // Found on its own too: downloaded (or skipped) as that image.
                act.skip(
                    &link,
                    SkipReason::Other,
                    "its thumbnail is already another image of this run".into(),
                );
            }
        });
    }

    fn robots_finished(&mut self, url: &Url, outcome: Result<Done, TaskError>) {
        let local = matches!(&outcome, Err(e) if e.is_local());
        let rules = outcome::robots(outcome).unwrap_or_else(|why| {
            if local {
                // The proxy or this machine failed, not the site: --ignore-robots would not help.
                warn!(self.log, "robots.txt not fetched: nothing is fetched from that site, and its pages and images count as failed";
                    "url" => %url, "error" => &why);
            } else {
                warn!(self.log, "robots.txt unreachable: nothing is fetched from that site, and its pages and images count as failed (--ignore-robots to override)";
                    "url" => %url, "error" => &why);
            }
            Rules::Unreachable(why)
        });
        if let Some(asked) = rules.crawl_delay() {
            let host = host_of(url);
            let delay = asked.min(self.plan.max_server_wait);
            if delay < asked {
                warn!(self.log, "robots.txt asks for a crawl delay longer than RETRY_MAX_WAIT_SECS: using that instead";
                    "host" => host, "asked_secs" => asked.as_secs_f64(), "using_secs" => delay.as_secs_f64());
            } else {
                info!(self.log, "robots.txt asks for a crawl delay"; "host" => host, "secs" => delay.as_secs_f64());
            }
            self.plan.gate.set_crawl_delay(host, delay);
        }
        self.robots.learn(url, rules);
    }
}
