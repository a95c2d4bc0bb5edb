//! What a worker's answer means, before anything is counted: a page's ending and its
//! images, an image saved, redirected (to follow), a page where an image was expected
//! (its thumbnail instead), skipped or failed, and a robots.txt's rules. Pure: no
//! actix; the Coordinator applies the result.

use url::Url;

use super::tally::Subject;
use crate::counts::{ImageInfo, SkipReason};
use crate::fetch::checks::MAX_REDIRECTS;
use crate::fetch::validate;
use crate::frontier::{Ending, Meta, Offer};
use crate::html::{Element, Found};
use crate::robots::Rules;
use crate::work::{Done, ImageTask, TaskError};

/// A listing page's answer.
pub struct PageAnswer {
    pub ending: Ending,
    pub images: Vec<Found>,
    /// Its detail links the page host allows.
    pub details: Vec<Url>,
    /// A next link the page host refused (for the log).
    pub off_host: Option<Url>,
    /// Image URLs `IMAGE_HOST` dropped (to count them).
    pub other_hosts: Vec<Url>,
    /// What went wrong, for the log and the count, if anything did.
    pub error: Option<TaskError>,
    /// What looked like a pager on a page with no next link (for the walk's end).
    pub pager: Option<String>,
}

/// What a listing page's answer means; `hops`: redirects followed to get to its URL;
/// `page_host`: where a next link or a detail link may lead.
pub fn page(outcome: Result<Done, TaskError>, hops: u8, page_host: impl Fn(&Url) -> bool) -> PageAnswer {
    let failed = |ending, error| PageAnswer {
        ending,
        images: Vec::new(),
        details: Vec::new(),
        off_host: None,
        other_hosts: Vec::new(),
        error,
        pager: None,
    };
    match outcome {
        Ok(Done::Page(scan, _)) => {
            let found = scan.images.len() + scan.details.len();
            let (next, off_host) = match scan.next {
                Some(next) if !page_host(&next) => (None, Some(next)),
                next => (next, None),
            };
            let details = scan.details.into_iter().filter(|url| page_host(url)).collect();
            let ending = Ending::PageFetched { stated: scan.page_count, next, found };
            PageAnswer {
                ending,
                images: scan.images,
                details,
                off_host,
                other_hosts: scan.other_hosts,
                error: None,
                pager: scan.pager,
            }
        }
        Ok(Done::Moved(to)) if hops < MAX_REDIRECTS => {
            failed(Ending::PageMoved { url: to, hops: hops + 1 }, None)
        }
        Ok(Done::Moved(_)) => failed(Ending::PageFailed, Some(TaskError::Redirects)),
        Err(e @ TaskError::Status { code: 404 | 410, .. }) => failed(Ending::PageMissing, Some(e)),
        Err(e) => failed(Ending::PageFailed, Some(e)),
        Ok(other) => failed(
            Ending::PageFailed,
            Some(TaskError::Worker(format!("worker answered a page with {other:?}"))),
        ),
    }
}

/// A detail page's answer: its images, or where it moved (to fetch it there), or why it
/// failed.
pub enum DetailAnswer {
    /// Its images, and the image URLs `IMAGE_HOST` dropped (to count them).
    Images(Vec<Found>, Vec<Url>),
    Moved(Box<Offer>),
    Failed(String),
}

/// What a detail page's answer means. `detail` is the page as handed out.
pub fn detail(
    outcome: Result<Done, TaskError>,
    detail: &Subject,
    page_host: impl Fn(&Url) -> bool,
) -> DetailAnswer {
    match outcome {
        Ok(Done::Page(scan, _)) => DetailAnswer::Images(scan.images, scan.other_hosts),
        Ok(Done::Moved(_)) if detail.meta.hops >= MAX_REDIRECTS => {
            DetailAnswer::Failed(TaskError::Redirects.to_string())
        }
        Ok(Done::Moved(to)) if !page_host(&to) => {
            DetailAnswer::Failed(format!("redirect to a host outside PAGE_HOST: {to}"))
        }
        Ok(Done::Moved(to)) => {
            let meta = Meta {
                hops: detail.meta.hops + 1,
                found: Some(Box::new(detail.found.clone())),
                ..detail.meta.clone()
            };
            let target = Offer { again: true, detail: true, ..Offer::new(to, detail.page, None, meta) };
            DetailAnswer::Moved(Box::new(target))
        }
        Err(e) => DetailAnswer::Failed(e.to_string()),
        Ok(other) => DetailAnswer::Failed(format!("worker answered a detail page with {other:?}")),
    }
}

/// What a page said about an image, as the frontier keeps it.
pub fn found_meta(found: Found) -> (Url, Meta) {
    let fallback = found.fallback.map(Box::new);
    (found.url, Meta { element: Some(found.element), fallback, ..Meta::default() })
}

/// An image's answer. Made once per image and matched at once: not worth boxing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum ImageAnswer {
    Saved {
        name: String,
        bytes: u64,
        sha256: Option<String>,
        info: ImageInfo,
    },
    /// Redirected: the target goes back to the frontier, under the name and report
    /// entry of the URL it was found as.
    Follow(Offer),
    /// A link target answered with a page (MediaWiki's `File:` links look like image
    /// files): the element's own best candidate, the thumbnail, is fetched instead, as
    /// the same image. `link` is how it counts if the thumbnail is already known.
    FallBack {
        thumbnail: Offer,
        link: Subject,
    },
    /// Not wanted: counted as skipped under its kind, with its reason.
    Skipped(SkipReason, String),
    Failed(String),
}

/// What `task`'s answer means. `image_host`: where an image found on a page may be
/// redirected to (empty: anywhere).
pub fn image(
    outcome: Result<Done, TaskError>,
    task: &ImageTask,
    image: &Subject,
    referer: Option<Url>,
    image_host: &str,
) -> ImageAnswer {
    match outcome {
        Ok(Done::Image { bytes, name, sha256, info }) => ImageAnswer::Saved { name, bytes, sha256, info },
        Ok(Done::Moved(to)) => match follow(task, image, referer, to, image_host) {
            Ok(target) => ImageAnswer::Follow(target),
            Err(e) => ImageAnswer::Failed(e.to_string()),
        },
        Err(TaskError::Unwanted(why, reason)) => ImageAnswer::Skipped(why, reason),
        Err(TaskError::NotAnImage(reason)) if validate::is_page(&reason) && image.meta.fallback.is_some() => {
            let thumbnail = *image.meta.fallback.clone().expect("checked above");
            let note =
                format!("the link target {} is a page, not an image: its thumbnail instead", image.found);
            let meta = Meta { element: Some(Element::Img), note: Some(note), ..Meta::default() };
            let thumbnail = Offer::new(thumbnail, image.page, referer, meta.clone());
            ImageAnswer::FallBack { thumbnail, link: Subject { meta, ..image.clone() } }
        }
        Err(e) => ImageAnswer::Failed(e.to_string()),
        Ok(other) => ImageAnswer::Failed(format!("worker answered an image with {other:?}")),
    }
}

/// The redirect target, which passes the same checks as a URL found on a page
/// (robots.txt and the per-host limit when it is handed out).
fn follow(
    task: &ImageTask,
    image: &Subject,
    referer: Option<Url>,
    to: Url,
    image_host: &str,
) -> Result<Offer, TaskError> {
    if image.meta.hops >= MAX_REDIRECTS {
        return Err(TaskError::Redirects);
    }
    if image.page > 0 && !crate::html::host_matches(image_host, &to) {
        return Err(TaskError::RedirectOffHost(to.to_string()));
    }
    let meta = Meta {
        hops: image.meta.hops + 1,
        found: Some(Box::new(image.found.clone())),
        name: Some(task.name.clone()),
        overwrite: task.overwrite,
        ..image.meta.clone()
    };
    Ok(Offer { again: true, ..Offer::new(to, image.page, referer, meta) })
}

/// A robots.txt's answer: its rules, or why it could not be read (then nothing is
/// fetched from that origin).
pub fn robots(outcome: Result<Done, TaskError>) -> Result<Rules, String> {
    match outcome {
        Ok(Done::Robots(rules)) => Ok(rules),
        Err(TaskError::Status { code, .. }) => Err(format!("HTTP {code}")),
        Err(e) => Err(e.to_string()),
        Ok(other) => Err(format!("unexpected answer {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn task(u: &str) -> ImageTask {
        ImageTask { url: url(u), name: "a.jpg".into(), overwrite: false, referer: None }
    }

    fn subject(u: &str, meta: Meta) -> Subject {
        Subject { found: url(u), page: 1, path: "a.jpg".into(), meta, carried: None }
    }

    #[test]
    fn a_page_redirected_too_often_fails_and_a_missing_one_is_missing() {
        let any = |_: &Url| true;
        let moved = |hops| page(Ok(Done::Moved(url("http://h.test/p2"))), hops, any).ending;
        assert!(matches!(moved(0), Ending::PageMoved { hops: 1, .. }));
        assert_eq!(moved(MAX_REDIRECTS), Ending::PageFailed);
        assert_eq!(page(Err(TaskError::status(410)), 0, any).ending, Ending::PageMissing);
        assert_eq!(page(Err(TaskError::status(500)), 0, any).ending, Ending::PageFailed);
    }

    #[test]
    fn links_off_the_page_host_are_not_followed() {
        let on_site = |u: &Url| u.host_str() == Some("h.test");
        let scan = crate::html::PageScan {
            next: Some(url("http://elsewhere.test/p2")),
            details: vec![url("http://h.test/view/1"), url("http://elsewhere.test/view/2")],
            images: vec![Found::img(url("http://h.test/a.jpg"))],
            ..Default::default()
        };
        let answer = page(Ok(Done::Page(scan, None)), 0, on_site);
        assert_eq!(answer.ending, Ending::PageFetched { stated: None, next: None, found: 3 });
        assert_eq!(answer.off_host.unwrap().as_str(), "http://elsewhere.test/p2");
        assert_eq!(answer.details, [url("http://h.test/view/1")]);
    }

    #[test]
    fn a_detail_page_follows_its_redirects_on_the_page_host_only() {
        let view = subject("http://h.test/view/1", Meta::default());
        let on_site = |u: &Url| u.host_str() == Some("h.test");
        let moved = detail(Ok(Done::Moved(url("http://h.test/view/1/"))), &view, on_site);
        let DetailAnswer::Moved(target) = moved else { panic!("not moved") };
        assert!(target.detail && target.again && target.found().as_str() == "http://h.test/view/1");
        let away = detail(Ok(Done::Moved(url("http://evil.test/x"))), &view, on_site);
        assert!(matches!(away, DetailAnswer::Failed(e) if e.contains("PAGE_HOST")));
    }

    #[test]
    fn a_redirected_image_keeps_its_name_and_stays_on_image_host() {
        let found = subject("http://h.test/a.jpg", Meta::default());
        let answer = image(
            Ok(Done::Moved(url("http://cdn.h.test/a.jpg"))),
            &task("http://h.test/a.jpg"),
            &found,
            None,
            "h.test",
        );
        let ImageAnswer::Follow(target) = answer else { panic!("{answer:?}") };
        assert!(target.again, "admitted already under the URL it was found as");
        assert_eq!(
            (target.found().as_str(), target.meta.name.as_deref()),
            ("http://h.test/a.jpg", Some("a.jpg"))
        );
        let off = image(
            Ok(Done::Moved(url("http://evil.test/a.jpg"))),
            &task("http://h.test/a.jpg"),
            &found,
            None,
            "h.test",
        );
        assert!(matches!(off, ImageAnswer::Failed(e) if e.contains("outside IMAGE_HOST")));
        let far = subject("http://h.test/a.jpg", Meta { hops: MAX_REDIRECTS, ..Meta::default() });
        let looped =
            image(Ok(Done::Moved(url("http://h.test/b.jpg"))), &task("http://h.test/a.jpg"), &far, None, "");
        assert!(matches!(looped, ImageAnswer::Failed(e) if e == "too many redirects"));
    }

    #[test]
    fn a_link_to_a_page_falls_back_to_its_thumbnail_only_when_it_has_one() {
        let page_answer = || Err(TaskError::NotAnImage("the body is an HTML page".into()));
        let thumb = url("http://h.test/thumb.jpg");
        let link = subject(
            "http://h.test/File:a.jpg",
            Meta { fallback: Some(Box::new(thumb.clone())), ..Meta::default() },
        );
        let answer = image(page_answer(), &task("http://h.test/File:a.jpg"), &link, None, "");
        let ImageAnswer::FallBack { thumbnail, link } = answer else { panic!("{answer:?}") };
        assert_eq!(thumbnail.url, thumb);
        assert!(!thumbnail.again, "the thumbnail may be another image of the run");
        assert!(link.meta.note.is_some_and(|n| n.contains("is a page")));
        let bare = subject("http://h.test/File:a.jpg", Meta::default());
        assert!(matches!(
            image(page_answer(), &task("http://h.test/x"), &bare, None, ""),
            ImageAnswer::Failed(_)
        ));
    }
}
