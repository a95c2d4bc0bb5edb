//! `config::PageUrls` on any `PAGE_PATH` template and `ITEM`: `new` must not panic, and
//! when it accepts them, every page's URL must be http(s) and be exactly the site URL (as a
//! folder) joined with the template filled in.
#![no_main]

use image_scraper::config::PageUrls;
use libfuzzer_sys::fuzz_target;
use url::Url;

const SITES: &[&str] = &[
    "https://www.example.com/",
    "https://www.example.com/gallery",
    "http://h.example/a/b?q=1",
    "http://127.0.0.1:8080",
    "http://[::1]:1/x/",
    "ftp://h.example/g/",
];

fuzz_target!(|input: (u8, u32, &str, &str)| {
    let (site, n, template, item) = input;
    let base = Url::parse(SITES[usize::from(site) % SITES.len()]).unwrap();
    let Ok(urls) = PageUrls::new(base.clone(), template, item) else {
        return;
    };
    let mut folder = base;
    if !folder.path().ends_with('/') {
        let path = format!("{}/", folder.path());
        folder.set_path(&path);
    }
    for page in [1, 2, 3, 5, 10, 99, n, u32::MAX] {
        let url = urls.url(page);
        assert!(matches!(url.scheme(), "http" | "https"), "{url}");
        assert!(url.host_str().is_some_and(|h| !h.is_empty()), "{url}");
        let path = template.replace("{page}", &page.to_string()).replace("{item}", item);
        let expected = folder.join(&path);
        assert_eq!(Ok(url), expected, "page {page}, template {template:?}, item {item:?}");
    }
});
