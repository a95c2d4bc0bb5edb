//! A new user's first runs (issue 23): any site works with no settings file, every filter
//! that drops images says how many and which, skips give their reasons, settings say
//! which file was read and what a typo meant. The real binary, against servers here.

use std::path::Path;

use crate::helpers::{Reply, Run, TestServer, images, jpeg, run_binary, run_binary_with_env};

const MODES: [&str; 2] = ["sync", "async"];

/// `/gallery/` with five JPEGs under `/img/`, all on this server; robots.txt as given
/// (404 when `None`), one image missing when `broken`.
fn gallery(robots: Option<&str>, broken: bool) -> TestServer {
    let tags: String = (0..5).map(|i| format!("<img src=\"/img/{i}.jpg\">")).collect();
    let mut routes = vec![("/gallery/", Reply::html(format!("<html><body>{tags}</body></html>")))];
    let bodies: Vec<(String, Vec<u8>)> = (0..5).map(|i| (format!("/img/{i}.jpg"), jpeg(i, 600))).collect();
    for (i, (path, body)) in bodies.iter().enumerate() {
        if !(broken && i == 4) {
            routes.push((path.as_str(), Reply::image(body)));
        }
    }
    if let Some(text) = robots {
        routes.push(("/robots.txt", Reply { status: 200, content_type: "text/plain", body: text.into() }));
    }
    TestServer::start(routes)
}

fn url(server: &TestServer) -> String {
    format!("{}/gallery/", server.origin())
}

fn scrape(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    run_binary_with_env(dir, args, env)
}

#[test]
fn no_settings_file_and_a_url_saves_every_image_in_both_modes() {
    let server = gallery(None, false);
    for mode in MODES {
        let dir = tempfile::tempdir().unwrap();
        let run = scrape(dir.path(), &["--url", &url(&server), "-m", mode, "--no-progress"], &[]);
        assert_eq!(run.code, 0, "{mode}: {}", run.stderr);
        run.assert_line("no settings file");
        run.assert_line("Done, success: 5/5, failure: 0/5");
        assert_eq!(images(&dir.path().join("images")).len(), 5, "{mode}: {}", run.stderr);
        assert!(!run.stderr.contains("dropped"), "{}", run.stderr);

        // Again: all complete, and the hint that fits that reason.
        let again = scrape(dir.path(), &["--url", &url(&server), "-m", mode, "--no-progress"], &[]);
        assert_eq!(again.code, 0, "{}", again.stderr);
        again.assert_line("images skipped: complete from an earlier run; --force downloads them again");
        again.assert_line("  skipped  5 complete from an earlier run");
        let forced = scrape(dir.path(), &["--url", &url(&server), "-m", mode, "--force"], &[]);
        assert!(!forced.stderr.contains("--force downloads"), "not with --force given: {}", forced.stderr);
    }
}

#[test]
fn a_host_filter_says_what_it_dropped_and_an_empty_variable_keeps_all() {
    let server = gallery(None, false);
    let dir = tempfile::tempdir().unwrap();
    let settings = format!("SCRAPER:\n  URL: {}\n  IMAGE_HOST: images.example.com\n", url(&server));
    std::fs::write(dir.path().join("settings.yaml"), settings).unwrap();

    let run = scrape(dir.path(), &[], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let read = dir.path().canonicalize().unwrap().join("settings.yaml");
    run.assert_line(&format!("settings file read, path: {}", read.display()));
    run.assert_line("no images kept: 5 images on other hosts dropped by IMAGE_HOST=images.example.com");
    run.assert_line("  dropped  5 on other hosts (IMAGE_HOST)");
    assert!(images(&dir.path().join("images")).is_empty());

    let run = scrape(dir.path(), &["-o", "all"], &[("IMAGE_SCRAPER_IMAGE_HOST", "")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(images(&dir.path().join("all")).len(), 5, "VAR= is the empty filter: {}", run.stderr);
}

#[test]
fn a_host_filter_with_a_scheme_and_a_port_is_understood() {
    let server = gallery(None, false);
    let dir = tempfile::tempdir().unwrap();
    let args = ["--url", &url(&server), "-o", "same"];
    let run = scrape(dir.path(), &args, &[("IMAGE_SCRAPER_IMAGE_HOST", &server.origin())]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(images(&dir.path().join("same")).len(), 5, "{}", run.stderr);

    // The same host on another port is another server.
    let args = ["--url", &url(&server), "-o", "other"];
    let run = scrape(dir.path(), &args, &[("IMAGE_SCRAPER_IMAGE_HOST", "127.0.0.1:1")]);
    run.assert_line("5 images on other hosts dropped by IMAGE_HOST=127.0.0.1:1");

    let run = scrape(dir.path(), &args, &[("IMAGE_SCRAPER_IMAGE_HOST", "http://127.0.0.1/images/")]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.starts_with("error: environment IMAGE_SCRAPER_IMAGE_HOST: "), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
}

#[test]
fn an_extension_filter_that_takes_everything_names_itself() {
    let server = gallery(None, false);
    let dir = tempfile::tempdir().unwrap();
    let run = scrape(dir.path(), &["--url", &url(&server), "--ext", "png"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.assert_line("no images kept: 5 images dropped by the extension filter --ext png");
    assert!(!run.stderr.contains("IMAGE_HOST"), "not the host filter: {}", run.stderr);
}

#[test]
fn robots_txt_skips_say_so_without_a_force_hint_in_both_modes() {
    let server = gallery(Some("User-agent: *\nDisallow: /img/\n"), false);
    for mode in MODES {
        let dir = tempfile::tempdir().unwrap();
        let run = scrape(dir.path(), &["--url", &url(&server), "-m", mode], &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.assert_line("images skipped: robots.txt disallows them");
        run.assert_line("  skipped  5 robots.txt disallowed");
        assert!(!run.stderr.contains("--force downloads"), "--force would not help: {}", run.stderr);
        assert_eq!(server.hits("/img/0.jpg"), 0);
    }
}

#[test]
fn size_filter_skips_name_the_filter() {
    let server = gallery(None, false);
    let dir = tempfile::tempdir().unwrap();
    let run = scrape(dir.path(), &["--url", &url(&server), "--min-size", "1K"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.assert_line("images skipped: outside the size filter (--min-size 1024 bytes), skipped: 5");
    run.assert_line("  skipped  5 size filter");
    assert!(!run.stderr.contains("--force downloads"), "{}", run.stderr);
}

#[test]
fn out_dir_from_settings_expands_home_and_variables() {
    let server = gallery(None, false);
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let home = home.to_str().unwrap();
    let settings = format!("SCRAPER:\n  URL: {}\n  OUT_DIR: ~/pics/$KIND\n", url(&server));
    std::fs::write(dir.path().join("settings.yaml"), settings).unwrap();
    let run = scrape(dir.path(), &[], &[("HOME", home), ("KIND", "cats")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.assert_line(&format!("out_dir: {home}/pics/cats"));
    assert_eq!(images(&Path::new(home).join("pics/cats")).len(), 5, "{}", run.stderr);
    assert!(!dir.path().join("~").exists(), "no folder named ~");

    let run = scrape(dir.path(), &[], &[("HOME", home)]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(
        run.stderr.trim(),
        "error: settings.yaml: SCRAPER.OUT_DIR: \"~/pics/$KIND\": $KIND is not set"
    );
}

#[test]
fn demo_reads_no_settings_file_unless_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("settings.yaml"), "SCRAPER:\n  OUT_DIR: elsewhere\n").unwrap();
    let run = run_binary(dir.path(), &["--demo", "--pages", "1", "-p", "2"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.assert_line("no settings file: --demo reads only one named with -c");
    assert!(!images(&dir.path().join("images")).is_empty(), "{}", run.stderr);
    assert!(!dir.path().join("elsewhere").exists());

    let run = run_binary(dir.path(), &["--demo", "--pages", "1", "-p", "2", "-c", "settings.yaml"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.assert_line("settings file read, path: ");
    assert!(!images(&dir.path().join("elsewhere")).is_empty(), "-c is read: {}", run.stderr);
}

#[test]
fn a_typo_names_the_nearest_key_and_a_tab_says_use_spaces() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("settings.yaml"),
        "SCRAPER:\n  URL: http://127.0.0.1:1/\n  IMAGE_HOTS: x\n",
    )
    .unwrap();
    let run = run_binary(dir.path(), &[]);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr.trim(),
        "error: settings.yaml: SCRAPER: unknown key IMAGE_HOTS (did you mean IMAGE_HOST?) at line 3 column 3"
    );

    std::fs::write(dir.path().join("settings.yaml"), "SCRAPER:\n  URL: http://127.0.0.1:1/\n\tITEM: cats\n")
        .unwrap();
    let run = run_binary(dir.path(), &[]);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr.trim(),
        "error: settings.yaml: line 3: tabs are not allowed for indentation in YAML: use spaces"
    );
}

#[test]
fn quiet_keeps_the_table_when_something_failed() {
    let server = gallery(None, true);
    let dir = tempfile::tempdir().unwrap();
    let run = scrape(dir.path(), &["--url", &url(&server), "-q"], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    run.assert_line("  images        4 ok      1 failed");

    let server = gallery(None, false);
    let run = scrape(dir.path(), &["--url", &url(&server), "-q", "-o", "fine"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("  images "), "quiet when all went well: {}", run.stderr);
}
