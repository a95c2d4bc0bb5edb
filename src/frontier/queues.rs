//! The images found and not yet handed out, one queue per origin, and what is known of
//! each beyond its URL ([`Meta`]). Pure: no actix.

use std::collections::{HashMap, VecDeque};

use url::Url;

use super::Offer;
use crate::html::Element;
use crate::robots;
use crate::task::host_of;

/// What is known of a piece of work beyond its URL. Kept beside the task, not in it: only
/// the Coordinator acts on it, workers only fetch. Serde: the Redis frontier stores it
/// with its offer.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Meta {
    /// Redirects followed to get to the task's URL.
    pub hops: u8,
    /// For an image that was redirected: the URL it was found under (what the report
    /// and the resume record name).
    pub found: Option<Box<Url>>,
    /// The rule that found the image; `None` for a `--urls` list.
    pub element: Option<Element>,
    /// For a link target: the thumbnail to fetch instead if the target is a page.
    pub fallback: Option<Box<Url>>,
    /// Why the URL is not the one the page pointed at first.
    pub note: Option<String>,
    /// For an image redirected: the file name it was given under the URL it was found
    /// as (it keeps it), and whether that name is its own from an earlier run.
    pub name: Option<String>,
    pub overwrite: bool,
    /// For an image found on a detail page: that page (the report names it).
    pub detail: Option<Box<Url>>,
}

/// Images found and not yet handed out, one queue per origin (in order of first
/// appearance), so an origin whose host is at its limit, or whose robots.txt is still on
/// its way, is passed over in one step instead of image by image.
#[derive(Default)]
pub struct Queues {
    pub queues: Vec<OriginQueue>,
    by_origin: HashMap<robots::Origin, usize>,
}

pub struct OriginQueue {
    /// For robots.txt (scheme, host, port).
    pub origin: robots::Origin,
    /// For the per-host limit.
    pub host: String,
    pub images: VecDeque<Offer>,
}

impl Queues {
    pub fn push(&mut self, image: Offer) {
        let slot = self.queue_of(&image.url);
        self.queues[slot].images.push_back(image);
    }

    /// Back to the front of its queue (given back untried).
    pub fn push_front(&mut self, image: Offer) {
        let slot = self.queue_of(&image.url);
        self.queues[slot].images.push_front(image);
    }

    fn queue_of(&mut self, url: &Url) -> usize {
        let origin = robots::origin(url);
        match self.by_origin.get(&origin) {
            Some(&slot) => slot,
            None => {
                let host = host_of(url).to_string();
                self.queues.push(OriginQueue { origin, host, images: VecDeque::new() });
                self.by_origin.insert(origin, self.queues.len() - 1);
                self.queues.len() - 1
            }
        }
    }

    pub fn pop(&mut self, queue: usize) -> Option<Offer> {
        self.queues[queue].images.pop_front()
    }

    pub fn len(&self) -> usize {
        self.queues.iter().map(|q| q.images.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.queues.iter().all(|q| q.images.is_empty())
    }

    pub fn drain(&mut self) -> Vec<Offer> {
        self.queues.iter_mut().flat_map(|q| q.images.drain(..)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(url: &str) -> Offer {
        Offer::new(Url::parse(url).unwrap(), 1, None, Meta::default())
    }

    #[test]
    fn one_queue_per_origin_in_order_of_first_appearance() {
        let mut pending = Queues::default();
        for url in ["http://a.test/1", "http://b.test/1", "http://a.test/2", "https://a.test/3"] {
            pending.push(image(url));
        }
        assert_eq!(pending.len(), 4);
        let hosts: Vec<&str> = pending.queues.iter().map(|q| q.host.as_str()).collect();
        assert_eq!(hosts, ["a.test", "b.test", "a.test"], "scheme and port make an origin");
        assert_eq!(pending.pop(0).unwrap().url.path(), "/1");
        assert_eq!(pending.pop(0).unwrap().url.path(), "/2");
        assert!(pending.pop(0).is_none());
        assert!(!pending.is_empty());
        assert_eq!(pending.drain().len(), 2);
        assert!(pending.is_empty());
    }

    #[test]
    fn a_redirected_image_is_known_by_the_url_it_was_found_under() {
        let mut moved = image("http://cdn.test/real.jpg");
        assert_eq!(moved.found().as_str(), "http://cdn.test/real.jpg");
        moved.meta.found = Some(Box::new(Url::parse("http://h.test/a.jpg").unwrap()));
        assert_eq!(moved.found().as_str(), "http://h.test/a.jpg");
    }
}
