//! The images found and not yet handed out, one queue per origin, and what the
//! Coordinator knows of each beyond its task ([`Meta`]). Pure: no actix.

use std::collections::{HashMap, VecDeque};

use url::Url;

use crate::html::Element;
use crate::robots;
use crate::work::{ImageTask, host_of};

/// What the Coordinator knows of a task beyond the task itself. Kept here, not in the
/// task: only the Coordinator acts on it, workers only fetch.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    /// Redirects followed to get to the task's URL.
    pub hops: u8,
    /// For an image that was redirected: the URL it was found under (what the report
    /// and the resume record name).
    pub found: Option<Url>,
    /// The rule that found the image; `None` for a `--urls` list.
    pub element: Option<Element>,
    /// For a link target: the thumbnail to fetch instead if the target is a page.
    pub fallback: Option<Url>,
    /// Why the URL is not the one the page pointed at first.
    pub note: Option<String>,
}

/// An image waiting for a free slot (and for its origin's robots.txt).
pub struct PendingImage {
    pub task: ImageTask,
    /// The page that revealed it (0 for a `--urls` list).
    pub page: u32,
    pub meta: Meta,
}

impl PendingImage {
    /// The URL the image was found under, before any redirect.
    pub fn found(&self) -> &Url {
        self.meta.found.as_ref().unwrap_or(&self.task.url)
    }
}

/// Images found and not yet handed out, one queue per origin (in order of first
/// appearance), so an origin whose host is at its limit, or whose robots.txt is still on
/// its way, is passed over in one step instead of image by image.
#[derive(Default)]
pub struct Pending {
    pub queues: Vec<OriginQueue>,
    by_origin: HashMap<robots::Origin, usize>,
}

pub struct OriginQueue {
    /// For robots.txt (scheme, host, port).
    pub origin: robots::Origin,
    /// For the per-host limit.
    pub host: String,
    pub images: VecDeque<PendingImage>,
}

impl Pending {
    pub fn push(&mut self, image: PendingImage) {
        let origin = robots::origin(&image.task.url);
        let slot = match self.by_origin.get(&origin) {
            Some(&slot) => slot,
            None => {
                let host = host_of(&image.task.url).to_string();
                self.queues.push(OriginQueue { origin, host, images: VecDeque::new() });
                self.by_origin.insert(origin, self.queues.len() - 1);
                self.queues.len() - 1
            }
        };
        self.queues[slot].images.push_back(image);
    }

    pub fn pop(&mut self, queue: usize) -> Option<PendingImage> {
        self.queues[queue].images.pop_front()
    }

    pub fn len(&self) -> usize {
        self.queues.iter().map(|q| q.images.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.queues.iter().all(|q| q.images.is_empty())
    }

    pub fn drain(&mut self) -> Vec<PendingImage> {
        self.queues.iter_mut().flat_map(|q| q.images.drain(..)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(url: &str) -> PendingImage {
        let url = Url::parse(url).unwrap();
        let task = ImageTask { url, name: "x.jpg".into(), overwrite: false, referer: None };
        PendingImage { task, page: 1, meta: Meta::default() }
    }

    #[test]
    fn one_queue_per_origin_in_order_of_first_appearance() {
        let mut pending = Pending::default();
        for url in ["http://a.test/1", "http://b.test/1", "http://a.test/2", "https://a.test/3"] {
            pending.push(image(url));
        }
        assert_eq!(pending.len(), 4);
        let hosts: Vec<&str> = pending.queues.iter().map(|q| q.host.as_str()).collect();
        assert_eq!(hosts, ["a.test", "b.test", "a.test"], "scheme and port make an origin");
        assert_eq!(pending.pop(0).unwrap().task.url.path(), "/1");
        assert_eq!(pending.pop(0).unwrap().task.url.path(), "/2");
        assert!(pending.pop(0).is_none());
        assert!(!pending.is_empty());
        assert_eq!(pending.drain().len(), 2);
        assert!(pending.is_empty());
    }

    #[test]
    fn a_redirected_image_is_known_by_the_url_it_was_found_under() {
        let mut moved = image("http://cdn.test/real.jpg");
        assert_eq!(moved.found().as_str(), "http://cdn.test/real.jpg");
        moved.meta.found = Some(Url::parse("http://h.test/a.jpg").unwrap());
        assert_eq!(moved.found().as_str(), "http://h.test/a.jpg");
    }
}
