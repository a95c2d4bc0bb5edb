//! Why the walk of listing pages ended, said once at the end of the run: a walk that
//! stops at page 1 because the tool did not recognise the site's pager looked exactly
//! like a one-page gallery. Pure: fed each listing page's fate, it answers a line and,
//! when the last page looked paged but no next link was ever recognised, a hint.

use crate::frontier::{EndWhy, LastWhy, PageFate};

/// What the pages said about the end so far.
#[derive(Debug, Default)]
pub struct WalkEnd {
    /// The last page to fetch asked for (`AMOUNT_PAGES`, `--pages`), if any.
    limit: Option<u32>,
    /// The walk follows next links (no `{page}` in the page path).
    by_links: bool,
    /// The earliest end a page showed: the last page of the walk, and why.
    end: Option<(u32, String)>,
    /// The highest page fetched and counted.
    last_ok: Option<u32>,
    /// Some page's next link was recognised.
    next_seen: bool,
    /// Pages with no next link that looked paged: number -> what looked like a pager.
    pagers: Vec<(u32, String)>,
}

/// The line to log, and a hint when there is one.
#[derive(Debug, PartialEq, Eq)]
pub struct EndLine {
    pub last: u32,
    pub why: String,
    pub hint: Option<String>,
}

impl WalkEnd {
    pub fn new(limit: Option<u32>, by_links: bool) -> Self {
        Self { limit, by_links, ..Self::default() }
    }

    /// Page `n` came back with `fate`; `next`: its next link was recognised; `pager`:
    /// what looked like a pager on it when none was.
    pub fn page(&mut self, n: u32, fate: &PageFate, next: bool, pager: Option<String>) {
        self.next_seen |= next;
        let counted = matches!(fate, PageFate::Ok | PageFate::Clamped { .. } | PageFate::Last(_));
        if counted {
            self.last_ok = self.last_ok.max(Some(n));
            if let Some(pager) = pager {
                self.pagers.push((n, pager));
            }
        }
        let end = match *fate {
            PageFate::Clamped { stated, last } if last < stated => Some((
                last,
                format!(
                    "the site states {stated} pages; pages up to {last} were asked for (AMOUNT_PAGES or --pages)"
                ),
            )),
            PageFate::Clamped { stated, last } => Some((last, format!("the site states {stated} pages"))),
            PageFate::End { why: EndWhy::Missing, .. } => Some((n - 1, format!("page {n} was not found"))),
            PageFate::End { why: EndWhy::Repeats, .. } => Some((
                n - 1,
                format!(
                    "page {n} repeats images already found (its site serves the last page for any number)"
                ),
            )),
            PageFate::Last(why) => Some((
                n,
                match why {
                    LastWhy::Empty => "it has no images and no next link".to_string(),
                    LastWhy::NoNext => "it has no next link, where the pages before it had one".to_string(),
                    LastWhy::Loop => "its next link leads back to a page walked".to_string(),
                },
            )),
            _ => None,
        };
        if let Some((last, why)) = end
            && self.end.as_ref().is_none_or(|(earlier, _)| last < *earlier)
        {
            self.end = Some((last, why));
        }
    }

    /// Why the walk ended, once it has; `None` when no page was counted (they all
    /// failed, or another process of a shared job walked them).
    pub fn line(&self) -> Option<EndLine> {
        let last_ok = self.last_ok?;
        let (last, why) = match &self.end {
            Some((last, why)) => (*last, why.clone()),
            None if self.limit.is_some_and(|limit| last_ok >= limit) => {
                (last_ok, "the last page asked for (AMOUNT_PAGES or --pages)".to_string())
            }
            None if self.by_links => (last_ok, "no next link was found on it".to_string()),
            None => (last_ok, "no page after it could be fetched".to_string()),
        };
        let hint = match self.pagers.iter().find(|(n, _)| *n == last) {
            Some((_, pager)) if self.by_links && !self.next_seen => Some(format!(
                "page {last} has what looks like a pager ({pager}) but no next link was recognised: set NEXT_SELECTOR to a selector for its link to the next page"
            )),
            _ => None,
        };
        Some(EndLine { last, why, hint })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_walk_by_links_that_stops_at_a_pager_it_did_not_read_says_so() {
        let mut walk = WalkEnd::new(None, true);
        walk.page(1, &PageFate::Ok, false, Some("<nav class=\"pagination\">".into()));
        let line = walk.line().unwrap();
        assert_eq!((line.last, line.why.as_str()), (1, "no next link was found on it"));
        assert!(
            line.hint
                .unwrap()
                .contains("(<nav class=\"pagination\">) but no next link was recognised: set NEXT_SELECTOR")
        );
    }

    #[test]
    fn no_hint_without_a_pager_or_once_next_links_were_read() {
        let mut walk = WalkEnd::new(None, true);
        walk.page(1, &PageFate::Ok, false, None);
        assert_eq!(walk.line().unwrap().hint, None);
        let mut walk = WalkEnd::new(None, true);
        walk.page(1, &PageFate::Ok, true, None);
        walk.page(2, &PageFate::Last(LastWhy::NoNext), false, Some("links numbered 1, 2".into()));
        let line = walk.line().unwrap();
        assert_eq!(line.last, 2);
        assert_eq!(line.why, "it has no next link, where the pages before it had one");
        assert_eq!(line.hint, None, "its last page has a pager and no next link: that is how walks end");
    }

    #[test]
    fn every_end_has_its_reason() {
        let mut stated = WalkEnd::new(Some(10), false);
        stated.page(1, &PageFate::Clamped { stated: 3, last: 3 }, false, None);
        stated.page(3, &PageFate::Ok, false, None);
        assert_eq!(stated.line().unwrap().why, "the site states 3 pages");
        let mut capped = WalkEnd::new(Some(2), false);
        capped.page(1, &PageFate::Clamped { stated: 40, last: 2 }, false, None);
        assert!(
            capped.line().unwrap().why.starts_with("the site states 40 pages; pages up to 2 were asked for")
        );
        let mut limit = WalkEnd::new(Some(2), false);
        limit.page(2, &PageFate::Ok, false, None);
        limit.page(1, &PageFate::Ok, false, None);
        assert_eq!(
            limit.line().unwrap(),
            EndLine { last: 2, why: "the last page asked for (AMOUNT_PAGES or --pages)".into(), hint: None }
        );
        let mut missing = WalkEnd::new(Some(10), false);
        missing.page(1, &PageFate::Ok, false, None);
        missing.page(3, &PageFate::End { why: EndWhy::Missing, first_time: true }, false, None);
        missing.page(2, &PageFate::End { why: EndWhy::Repeats, first_time: true }, false, None);
        assert_eq!(missing.line().unwrap().last, 1, "the earliest end wins");
        assert!(missing.line().unwrap().why.starts_with("page 2 repeats images"));
        assert_eq!(WalkEnd::new(None, true).line(), None, "nothing walked, nothing said");
        let mut failed = WalkEnd::new(None, true);
        failed.page(1, &PageFate::Failed, false, None);
        assert_eq!(failed.line(), None);
    }
}
