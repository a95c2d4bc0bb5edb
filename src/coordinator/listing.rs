//! `--dry-run`: the image URLs written out in page order, whatever order pages come back
//! in, instead of downloaded. Pages' images are held until every earlier page is done;
//! the images then wait in one queue (a per-origin queue would reorder them) for their
//! robots.txt. A link target with a thumbnail inside the link waits at the front for a
//! probe (a `HEAD`): a page gives way to its thumbnail, as in a run. Plain data: no actix.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::Write;

use crate::frontier::Offer;
use crate::html::Element;

pub struct Listing {
    out: Box<dyn Write>,
    /// Pages done out of order, with their new images.
    held: BTreeMap<u32, Vec<Offer>>,
    /// The next page whose images may be listed.
    next_page: u32,
    /// Images to list, in page order.
    queue: VecDeque<Offer>,
    /// The reader went away (`| head`): nothing more is listed, and nothing failed.
    closed: bool,
    /// The front's link target was probed: it is listed as it now is.
    front_probed: bool,
    /// URLs written: a link target that proved a page gives way to its thumbnail, which
    /// may be listed already.
    written: HashSet<url::Url>,
}

impl Listing {
    pub fn new(out: Box<dyn Write>, first_page: u32) -> Self {
        Self {
            out,
            held: BTreeMap::new(),
            next_page: first_page,
            queue: VecDeque::new(),
            closed: false,
            front_probed: false,
            written: HashSet::new(),
        }
    }

    /// Page `number` is done (fetched, failed, skipped) with these new images; a list of
    /// URLs is page 0, listed at once.
    pub fn page_done(&mut self, number: u32, images: Vec<Offer>) {
        if number == 0 {
            return self.queue.extend(images);
        }
        self.held.insert(number, images);
        while let Some(images) = self.held.remove(&self.next_page) {
            self.queue.extend(images);
            self.next_page += 1;
        }
    }

    /// Images to list as soon as robots.txt allows (a detail page's: found after its
    /// listing page was done).
    pub fn add(&mut self, images: impl IntoIterator<Item = Offer>) {
        self.queue.extend(images);
    }

    /// Every held page, in order, whatever is still missing before it (the run is ending).
    pub fn release_held(&mut self) {
        while let Some((_, images)) = self.held.pop_first() {
            self.queue.extend(images);
        }
    }

    pub fn front(&self) -> Option<&Offer> {
        self.queue.front()
    }

    pub fn pop(&mut self) -> Option<Offer> {
        self.front_probed = false;
        self.queue.pop_front()
    }

    /// The front is a link target with a thumbnail inside the link, not probed yet: a
    /// real run would take the thumbnail if the target is a page, so the list must know.
    pub fn front_needs_probe(&self) -> bool {
        !self.front_probed && self.queue.front().is_some_and(|o| o.meta.fallback.is_some())
    }

    /// The front's probe answered (`image`: false when the target is a page, which then
    /// gives way to its thumbnail). Returns the thumbnail when it did.
    pub fn probed(&mut self, url: &url::Url, image: bool) -> Option<url::Url> {
        let front = self.queue.front_mut().filter(|o| o.url == *url)?;
        self.front_probed = true;
        if image {
            return None;
        }
        let thumbnail = *front.meta.fallback.take()?;
        front.url = thumbnail.clone();
        front.meta.element = Some(Element::Img);
        front.meta.note = Some("the link target is a page: its thumbnail instead".into());
        Some(thumbnail)
    }

    /// Everything still to list, in order (the run is stopping).
    pub fn drain(&mut self) -> Vec<Offer> {
        self.release_held();
        self.queue.drain(..).collect()
    }

    /// Writes `url` out; false when the reader is gone, which closes the listing.
    pub fn write(&mut self, url: &url::Url) -> bool {
        if self.closed {
            return false;
        }
        if !self.written.insert(url.clone()) {
            return true;
        }
        if writeln!(self.out, "{url}").and_then(|()| self.out.flush()).is_ok() {
            return true;
        }
        self.closed = true;
        self.held.clear();
        self.queue.clear();
        false
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty() && self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontier::Meta;
    use url::Url;

    fn offer(page: u32, path: &str) -> Offer {
        Offer::new(Url::parse(&format!("http://h.test/{path}")).unwrap(), page, None, Meta::default())
    }

    struct Gone;

    impl Write for Gone {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_link_target_that_is_a_page_gives_way_to_its_thumbnail_once() {
        let mut listing = Listing::new(Box::new(Vec::new()), 1);
        let thumb = Url::parse("http://h.test/thumb.png").unwrap();
        let mut link = offer(1, "wiki/File:a.png");
        link.meta.fallback = Some(Box::new(thumb.clone()));
        listing.page_done(1, vec![offer(1, "thumb.png"), link, offer(1, "b.png")]);
        assert!(!listing.front_needs_probe(), "an image with no thumbnail to stand in goes as it is");
        let first = listing.pop().unwrap();
        assert!(listing.write(&first.url));
        assert!(listing.front_needs_probe());
        let page = listing.front().unwrap().url.clone();
        assert_eq!(listing.probed(&page, false), Some(thumb.clone()));
        assert!(!listing.front_needs_probe(), "asked once");
        let front = listing.pop().unwrap();
        assert_eq!(front.url, thumb);
        assert!(listing.write(&front.url), "already listed: not twice, and not a failure");
        assert!(!listing.front_needs_probe());
    }

    #[test]
    fn pages_are_listed_in_order_whatever_order_they_end_in() {
        let mut listing = Listing::new(Box::new(Vec::new()), 1);
        listing.page_done(3, vec![offer(3, "c")]);
        listing.page_done(2, vec![offer(2, "b")]);
        assert!(listing.front().is_none(), "page 1 is not done");
        listing.page_done(1, vec![offer(1, "a")]);
        let order: Vec<String> =
            std::iter::from_fn(|| listing.pop()).map(|o| o.url.path().to_string()).collect();
        assert_eq!(order, ["/a", "/b", "/c"]);
        listing.page_done(5, vec![offer(5, "e")]);
        assert!(!listing.is_empty());
        assert_eq!(listing.drain().len(), 1, "held pages are released at the end");
        assert!(listing.is_empty());
    }

    #[test]
    fn a_reader_that_went_away_closes_the_listing() {
        let mut listing = Listing::new(Box::new(Gone), 1);
        listing.page_done(1, vec![offer(1, "a"), offer(1, "b")]);
        assert!(!listing.write(&Url::parse("http://h.test/a").unwrap()));
        assert!(listing.is_closed() && listing.is_empty());
    }
}
