//! What is read from a page: the image, link, next-link, page-count and detail selectors,
//! the attributes, the image host. Each selector is parsed here, so a bad one is refused
//! naming its key before any request.

use anyhow::{anyhow, bail};
use url::Url;

use super::defaults::{
    DEFAULT_IMAGE_ATTRIBUTES, DEFAULT_IMAGE_HOST, DEFAULT_IMAGE_SELECTOR, DEFAULT_PAGE_COUNT_SELECTOR,
};
use crate::cli::Cli;
use crate::html::{DetailRules, ExtractRules, Extractor, LinkedImages, parse_selector};
use crate::settings::Settings;

/// The extraction keys, or with `--demo` the demo gallery's own (its host, and its shape's
/// detail links), then compiled once as the workers will, so any error shows now.
pub(super) fn resolve(settings: &Settings, cli: &Cli, demo: Option<&Url>) -> anyhow::Result<ExtractRules> {
    let file = settings.file();
    let key = |name: &str| settings.origin(name);
    let s = &settings.section;
    let extract = match demo {
        Some(url) => ExtractRules {
            image_selector: DEFAULT_IMAGE_SELECTOR.into(),
            attributes: DEFAULT_IMAGE_ATTRIBUTES.map(String::from).to_vec(),
            image_host: url.host_str().unwrap_or_default().to_string(),
            page_count_selector: DEFAULT_PAGE_COUNT_SELECTOR.into(),
            linked_images: LinkedImages::default(),
            link_selector: String::new(),
            next_selector: None,
            detail: DetailRules {
                selector: cli.demo.unwrap_or_default().detail_selector().unwrap_or_default().into(),
                ..DetailRules::default()
            },
        },
        None => ExtractRules {
            image_selector: s.image_selector.clone().unwrap_or_else(|| DEFAULT_IMAGE_SELECTOR.into()),
            attributes: s
                .image_attributes
                .clone()
                .map_or_else(|| DEFAULT_IMAGE_ATTRIBUTES.map(String::from).to_vec(), |a| a.into_vec()),
            image_host: match &s.image_host {
                Some(host) => image_host(host).map_err(|e| anyhow!("{}: {e}", key("IMAGE_HOST")))?,
                None => DEFAULT_IMAGE_HOST.into(),
            },
            page_count_selector: s
                .page_count_selector
                .clone()
                .unwrap_or_else(|| DEFAULT_PAGE_COUNT_SELECTOR.into()),
            linked_images: s.linked_images.unwrap_or_default(),
            link_selector: s.link_selector.clone().unwrap_or_default(),
            next_selector: s.next_selector.clone(),
            detail: resolve_detail(settings)?,
        },
    };
    if let Some(css) = &extract.next_selector {
        check_selector(settings, "NEXT_SELECTOR", css, "next-link selector")?;
    }
    Extractor::new(&extract).map_err(|e| anyhow!("{file}: SCRAPER: {e}"))?;
    Ok(extract)
}

/// `DETAIL_*`, each checked on its own so an error names its key.
fn resolve_detail(settings: &Settings) -> anyhow::Result<DetailRules> {
    let s = &settings.section;
    let rules = DetailRules {
        selector: s.detail_selector.clone().unwrap_or_default(),
        image_selector: s.detail_image_selector.clone().unwrap_or_default(),
        images: s.detail_images.unwrap_or_default(),
    };
    check_selector(settings, "DETAIL_SELECTOR", &rules.selector, "detail-link selector")?;
    check_selector(settings, "DETAIL_IMAGE_SELECTOR", &rules.image_selector, "detail-image selector")?;
    if rules.selector.trim().is_empty() {
        // What detail pages yield means nothing without links to them: a forgotten
        // DETAIL_SELECTOR must not pass silently.
        for (name, set) in [
            ("DETAIL_IMAGE_SELECTOR", s.detail_image_selector.is_some()),
            ("DETAIL_IMAGES", s.detail_images.is_some()),
        ] {
            if set {
                bail!(
                    "{}: has no effect without DETAIL_SELECTOR (the links to detail pages)",
                    settings.origin(name)
                );
            }
        }
    }
    Ok(rules)
}

/// A selector key: empty is off; anything else must parse.
fn check_selector(settings: &Settings, key: &str, css: &str, what: &str) -> anyhow::Result<()> {
    if css.trim().is_empty() {
        return Ok(());
    }
    parse_selector(css.trim(), what).map(drop).map_err(|e| anyhow!("{}: {e}", settings.origin(key)))
}

/// `IMAGE_HOST` as a filter: lower-cased, a scheme and a trailing `/` dropped (a user
/// pastes a URL: images come over http and https alike, so the scheme says nothing), a
/// port kept (it must then match too). Anything else that is no host is refused.
fn image_host(raw: &str) -> Result<String, String> {
    let host = raw.trim().to_ascii_lowercase();
    let host = match host.split_once("://") {
        Some(("http" | "https", rest)) => rest.strip_suffix('/').unwrap_or(rest).to_string(),
        Some(_) => return Err(format!("{raw:?}: only http(s) images are fetched; give a host name")),
        None => host,
    };
    if host.contains(['/', ' ', '\t', '?', '#', '@']) {
        return Err(format!(
            "{raw:?} is not a host name (like images.example.com, or 127.0.0.1:8080); \"\" keeps all hosts"
        ));
    }
    Ok(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::resolve;
    use crate::config::testing::*;

    #[test]
    fn link_keys_are_read_and_checked() {
        let base = "SCRAPER:\n  URL: http://h.example/\n  ITEM: x\n";
        let c = resolve(base, &[]).unwrap();
        assert_eq!((c.extract.linked_images, c.extract.link_selector.as_str()), (LinkedImages::Prefer, ""));
        let c = resolve(&format!("{base}  LINKED_IMAGES: both\n  LINK_SELECTOR: a.download\n"), &[]).unwrap();
        assert_eq!(
            (c.extract.linked_images, c.extract.link_selector.as_str()),
            (LinkedImages::Both, "a.download")
        );
        let e = resolve(&format!("{base}  LINKED_IMAGES: always\n"), &[]).unwrap_err().to_string();
        assert!(e.contains("LINKED_IMAGES") && e.contains("prefer"), "{e}");
        let e = resolve(&format!("{base}  LINK_SELECTOR: 'a[[href]'\n"), &[]).unwrap_err().to_string();
        assert!(e.contains("link selector"), "{e}");
    }

    #[test]
    fn image_host_takes_a_host_a_port_or_a_url() {
        let host =
            |v: &str| resolve(&format!("{ORIGINAL}  IMAGE_HOST: '{v}'\n"), &[]).map(|c| c.extract.image_host);
        assert_eq!(host("Images.Example.com").unwrap(), "images.example.com");
        assert_eq!(host("127.0.0.1:8080").unwrap(), "127.0.0.1:8080");
        assert_eq!(host("http://127.0.0.1:8080").unwrap(), "127.0.0.1:8080");
        assert_eq!(host("https://cdn.example/").unwrap(), "cdn.example");
        assert_eq!(host("").unwrap(), "");
        for bad in ["https://cdn.example/images/", "ftp://cdn.example", "a b"] {
            let e = host(bad).unwrap_err().to_string();
            assert!(e.starts_with("test.yaml: SCRAPER.IMAGE_HOST: ") && !e.contains('\n'), "{bad}: {e}");
        }
    }
}
