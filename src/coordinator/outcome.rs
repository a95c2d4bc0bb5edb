//! What a worker's answer means, before anything is counted: a page's ending and its
//! images, an image saved, redirected (to follow), a page where an image was expected
//! (its thumbnail instead), skipped or failed, and a robots.txt's rules. Pure: no
//! actix; the Coordinator applies the result.

use url::Url;

use super::tally::Subject;
use crate::frontier::{Ending, Meta, Offer};
use crate::html::{Element, Found};
use crate::robots::Rules;
use crate::validate;
use crate::work::{Done, ImageTask, MAX_REDIRECTS, TaskError};

/// A listing page's answer.
pub struct PageAnswer {
    pub ending: Ending,
    pub images: Vec<Found>,
    /// What went wrong, for the log and the count, if anything did.
    pub error: Option<TaskError>,
}

/// What a page's answer means; `hops`: redirects followed to get to its URL.
pub fn page(outcome: Result<Done, TaskError>, hops: u8) -> PageAnswer {
    let (ending, images, error) = match outcome {
        Ok(Done::Page(scan)) => {
            let (stated, found) = (scan.page_count, scan.images.len());
            (Ending::PageFetched { stated, next: None, found }, scan.images, None)
        }
        Ok(Done::Moved(to)) if hops < MAX_REDIRECTS => {
            (Ending::PageMoved { url: to, hops: hops + 1 }, Vec::new(), None)
        }
        Ok(Done::Moved(_)) => (Ending::PageFailed, Vec::new(), Some(TaskError::Redirects)),
        Err(e @ TaskError::Status { code: 404 | 410, .. }) => (Ending::PageMissing, Vec::new(), Some(e)),
        Err(e) => (Ending::PageFailed, Vec::new(), Some(e)),
        Ok(other) => {
            let e = TaskError::Worker(format!("worker answered a page with {other:?}"));
            (Ending::PageFailed, Vec::new(), Some(e))
        }
    };
    PageAnswer { ending, images, error }
}

/// What a page said about an image, as the frontier keeps it.
pub fn found_meta(found: Found) -> (Url, Meta) {
    (found.url, Meta { element: Some(found.element), fallback: found.fallback, ..Meta::default() })
}

/// An image's answer. Made once per image and matched at once: not worth boxing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum ImageAnswer {
    Saved {
        name: String,
        bytes: u64,
        sha256: Option<String>,
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
    Skipped(String),
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
        Ok(Done::Image { bytes, name, sha256 }) => ImageAnswer::Saved { name, bytes, sha256 },
        Ok(Done::Moved(to)) => match follow(task, image, referer, to, image_host) {
            Ok(target) => ImageAnswer::Follow(target),
            Err(e) => ImageAnswer::Failed(e.to_string()),
        },
        Err(TaskError::Unwanted(reason)) => ImageAnswer::Skipped(reason),
        Err(TaskError::NotAnImage(reason)) if validate::is_page(&reason) && image.meta.fallback.is_some() => {
            let thumbnail = image.meta.fallback.clone().expect("checked above");
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
    if image.page > 0 && !image_host.is_empty() && !to.host_str().is_some_and(|h| h.contains(image_host)) {
        return Err(TaskError::RedirectOffHost(to.to_string()));
    }
    let meta = Meta {
        hops: image.meta.hops + 1,
        found: Some(image.found.clone()),
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
        Subject { found: url(u), page: 1, path: "a.jpg".into(), meta }
    }

    #[test]
    fn a_page_redirected_too_often_fails_and_a_missing_one_is_missing() {
        let moved = |hops| page(Ok(Done::Moved(url("http://h.test/p2"))), hops).ending;
        assert!(matches!(moved(0), Ending::PageMoved { hops: 1, .. }));
        assert_eq!(moved(MAX_REDIRECTS), Ending::PageFailed);
        assert_eq!(page(Err(TaskError::status(410)), 0).ending, Ending::PageMissing);
        assert_eq!(page(Err(TaskError::status(500)), 0).ending, Ending::PageFailed);
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
        let link =
            subject("http://h.test/File:a.jpg", Meta { fallback: Some(thumb.clone()), ..Meta::default() });
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
