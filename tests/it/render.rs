//! Pages built by JavaScript, rendered in the machine's Chromium (issue 19): the real
//! binary against `js_pages`' fixture on 127.0.0.1, in both modes. Each run's browser
//! profile lives under a temporary folder of the test's own (`TMPDIR`), so the test can
//! tell its browsers from other tests' and prove none outlives the run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{Run, exit_within, images, read_report, run_command, without_proxy};
use crate::js_pages::{JsPage, JsPages, endless_images, js_gallery, with_bytes};

/// Whether Chromium is here; under `CI=true` its absence fails the test.
fn chromium() -> bool {
    let found = Command::new("chromium").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "chromium is not installed (.ci/run installs it)"
        );
        eprintln!("skipped: no chromium on this machine");
    }
    found
}

/// A run's folder: the working directory (no settings file), `out/`, and `tmp/` for the
/// browser's profile.
struct Place {
    dir: tempfile::TempDir,
}

impl Place {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tmp")).unwrap();
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn out(&self) -> PathBuf {
        self.path().join("out")
    }

    fn tmp(&self) -> String {
        self.path().join("tmp").display().to_string()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_image-scraper"));
        command.args(args).args(["-o", "out", "--report", "r.json"]).env("TMPDIR", self.tmp());
        command
    }

    /// Runs the tool with `args` (and `env`), failing the test if it hangs.
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let run = run_command(&mut self.command(args), self.path(), env);
        self.assert_no_browser_left();
        run
    }

    fn spawn(&self, args: &[&str]) -> Child {
        without_proxy(&mut self.command(args))
            .current_dir(self.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// The living processes whose command line names this run's temporary folder: its
    /// browsers (a zombie has no command line, and is no process to leave behind).
    fn browsers(&self) -> Vec<i32> {
        browsers_under(&self.tmp())
    }

    /// No browser of this run is alive, and its profile folder is gone. The tool reaps
    /// the browser it started before it exits; a moment's grace for the kernel to tear
    /// down its children, which the group kill reached.
    fn assert_no_browser_left(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.browsers().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(self.browsers(), Vec::<i32>::new(), "browser processes outlived the run");
        let left: Vec<_> = std::fs::read_dir(self.tmp()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert!(left.is_empty(), "the browser's profile was not deleted: {left:?}");
    }

    fn report(&self) -> serde_json::Value {
        read_report(&self.path().join("r.json"))
    }

    /// The report's item for the page at `url`.
    fn page_item(&self, url: &str) -> serde_json::Value {
        let report = self.report();
        report["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["kind"] == "page" && i["url"] == url)
            .cloned()
            .unwrap_or_else(|| panic!("no page item for {url} in {report}"))
    }
}

fn browsers_under(marker: &str) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        if String::from_utf8_lossy(&cmdline).contains(marker) {
            found.push(pid);
        }
    }
    found
}

/// The out dir holds exactly these images (by file name), byte for byte.
fn assert_files(out: &Path, expected: Vec<(String, Vec<u8>)>) {
    let want: BTreeMap<String, Vec<u8>> = expected
        .into_iter()
        .map(|(path, bytes)| (path.rsplit('/').next().unwrap().to_string(), bytes))
        .collect();
    let got = images(out);
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "files");
    assert!(got == want, "the files' bytes differ from the server's");
}

/// A whole render of `page`: exit 0, every image byte for byte, each fetched once by the
/// workers and none by the browser, the page's report item saying it was rendered.
fn renders_completely(pages: &JsPages, page: JsPage, args: &[&str], env: &[(&str, &str)]) -> (Place, Run) {
    let place = Place::new();
    let url = pages.url(page);
    let mut all = vec!["--url", url.as_str()];
    all.extend_from_slice(args);
    let run = place.run(&all, env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_files(&place.out(), page.expected());
    pages.assert_each_fetched_once(&page.images());
    let item = place.page_item(&url);
    assert_eq!(item["rendered"], true, "{item}");
    assert_eq!(item["images_rendered"], page.images().len(), "{item}");
    assert!(
        item["network_images"].as_u64() >= Some(1),
        "the browser asked for images, and was refused: {item}"
    );
    (place, run)
}

#[test]
fn an_infinite_scroll_is_rendered_to_its_end_in_both_modes() {
    if !chromium() {
        return;
    }
    for mode in ["async", "sync"] {
        let pages = js_gallery();
        let (place, run) = renders_completely(&pages, JsPage::Feed, &["--render", "-m", mode], &[]);
        run.assert_line("Done, success: 60/60, failure: 0/60");
        assert!(
            run.stdout.contains("browser  1 rendered") || run.stderr.contains("browser  1 rendered"),
            "{}",
            run.stderr
        );
        let item = place.page_item(&pages.url(JsPage::Feed));
        assert_eq!(
            (item["images_static"].as_u64(), item["why"].as_str()),
            (Some(0), Some("RENDER is always"))
        );
        assert!(item["capped"].is_null(), "{item}");
        // One size of each image: the browser asked for just what the extractor found.
        assert_eq!(
            (item["network_images"].as_u64(), item["network_only"].as_u64()),
            (Some(60), Some(0)),
            "{item}"
        );
        assert_eq!(place.report()["pages"]["rendered"], 1);
    }
}

#[test]
fn auto_renders_a_page_whose_html_has_no_image_and_says_why() {
    if !chromium() {
        return;
    }
    let pages = js_gallery();
    let (_, run) = renders_completely(&pages, JsPage::Feed, &[], &[]);
    run.assert_line("page rendered");
    run.assert_line("its HTML has no image but has scripts");
}

#[test]
fn a_load_more_button_is_clicked_until_it_is_gone() {
    if !chromium() {
        return;
    }
    let pages = js_gallery();
    // Quoted: the variable's value is YAML, where a bare # starts a comment.
    let env = [("IMAGE_SCRAPER_LOAD_MORE_SELECTOR", "\"#load-more\"")];
    let (place, _) = renders_completely(&pages, JsPage::More, &["-m", "sync"], &env);
    let steps = place.page_item(&pages.url(JsPage::More))["scroll_steps"].as_u64().unwrap();
    assert!(steps >= 4, "three clicks at least after the first batch: {steps} steps");
}

#[test]
fn an_app_shell_is_rendered_with_every_extraction_rule() {
    if !chromium() {
        return;
    }
    renders_completely(&js_gallery(), JsPage::App, &[], &[]);
}

#[test]
fn lazy_images_are_found_by_scrolling_a_screen_at_a_time() {
    if !chromium() {
        return;
    }
    renders_completely(&js_gallery(), JsPage::Lazy, &["--render"], &[]);
}

#[test]
fn auto_leaves_a_static_page_static() {
    if !chromium() {
        return;
    }
    let pages = js_gallery();
    let place = Place::new();
    let run = place.run(&["--url", &pages.url(JsPage::Static)], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_files(&place.out(), JsPage::Static.expected());
    assert!(!run.stderr.contains("rendered"), "{}", run.stderr);
    assert_eq!(place.report()["pages"]["rendered"], 0);
    assert!(place.browsers().is_empty());
}

#[test]
fn a_dry_run_lists_what_the_rendered_page_holds() {
    if !chromium() {
        return;
    }
    let pages = js_gallery();
    let place = Place::new();
    let run = place.run(&["--url", &pages.url(JsPage::App), "--dry-run"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let listed: Vec<&str> = run.stdout.lines().collect();
    let want: Vec<String> = JsPage::App.images().iter().map(|p| format!("{}{p}", pages.origin())).collect();
    assert_eq!(listed, want);
    assert!(images(&place.out()).is_empty(), "a dry run downloads nothing");
}

/// With no browser on PATH: `--render` is one line and exit 2; `auto` warns, stays
/// static, and ends saying what to install.
#[test]
fn without_chromium_render_is_refused_and_auto_says_what_to_install() {
    let pages = js_gallery();
    let place = Place::new();
    let no_browser = [("PATH", "/nonexistent"), ("CHROMIUM", "")];
    let run = place.run(&["--url", &pages.url(JsPage::Feed), "--render"], &no_browser);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
    run.assert_line("--render needs a browser and none was found: install Chromium");
    assert!(pages.server.hits(JsPage::Feed.path()) == 0, "no request before the settings are judged");

    let run = place.run(&["--url", &pages.url(JsPage::Feed)], &no_browser);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.assert_line("no browser found: pages built by JavaScript will not be rendered");
    run.assert_line("were not rendered: install Chromium");
    assert_eq!(place.report()["pages"]["unrendered"], 1);
    assert!(
        !run.stderr.contains("check IMAGE_SELECTOR"),
        "the hint is the browser, not the selectors: {}",
        run.stderr
    );
    assert_eq!(place.page_item(&pages.url(JsPage::Feed))["rendered"], false);
}

/// A hostile page ends with `code`; the run never hangs (the hang guard of
/// `run_command`) and leaves no browser.
fn hostile(page: JsPage, env: &[(&str, &str)], code: i32) -> (JsPages, Place, Run) {
    let pages = js_gallery();
    let place = Place::new();
    let run = place.run(&["--url", &pages.url(page), "--render"], env);
    assert_eq!(run.code, code, "{}", run.stderr);
    (pages, place, run)
}

#[test]
fn a_page_that_never_stops_polling_is_rendered() {
    if !chromium() {
        return;
    }
    let (_, place, _) = hostile(JsPage::Poll, &[], 0);
    assert_files(&place.out(), JsPage::Poll.expected());
}

#[test]
fn an_endless_feed_is_capped_counted_and_said() {
    if !chromium() {
        return;
    }
    let (pages, place, run) = hostile(JsPage::Endless, &[("IMAGE_SCRAPER_SCROLL_MAX", "3")], 0);
    run.assert_line("page still growing when scrolling stopped: capped");
    let item = place.page_item(&pages.url(JsPage::Endless));
    assert_eq!(item["capped"], "SCROLL_MAX", "{item}");
    assert_eq!(item["scroll_steps"], 3, "{item}");
    let got = images(&place.out());
    assert!(got.len() >= 10, "batches beyond the first: {}", got.len());
    let want = with_bytes(endless_images(got.len() as u32 / 5));
    assert_files(&place.out(), want);
}

#[test]
fn dialogs_are_answered_and_popups_and_navigations_away_refused() {
    if !chromium() {
        return;
    }
    let (_, place, _) = hostile(JsPage::Alert, &[], 0);
    assert_files(&place.out(), JsPage::Alert.expected());
    let (_, place, _) = hostile(JsPage::Popup, &[], 0);
    assert_files(&place.out(), JsPage::Popup.expected());
    let (pages, place, _) = hostile(JsPage::Away, &[], 0);
    assert_files(&place.out(), JsPage::Away.expected());
    let item = place.page_item(&pages.url(JsPage::Away));
    assert!(item["navigations_blocked"].as_u64() >= Some(1), "{item}");
}

#[test]
fn a_redirect_loop_in_script_ends() {
    if !chromium() {
        return;
    }
    let (pages, _, _) = hostile(JsPage::Loop, &[], 0);
    let loads = pages.server.hits(JsPage::Loop.path());
    assert!(loads <= 12, "the loop was cut: {loads} loads");
}

#[test]
fn a_page_that_eats_memory_or_never_yields_fails_with_a_reason() {
    if !chromium() {
        return;
    }
    // Whether the tab dies of its memory before the render has serialised the page
    // depends on how fast this machine lets it allocate (found flaky under CI's load):
    // what always holds is that the run ends, leaves no browser, and a failure says why.
    let pages = js_gallery();
    let place = Place::new();
    let run = place.run(&["--url", &pages.url(JsPage::Hog), "--render"], &[]);
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    if run.code == 1 {
        let failed = place.report()["items"][0]["error"].as_str().unwrap_or_default().to_string();
        assert!(failed.starts_with("render failed: "), "{failed}");
    }
    let (_, place, _) = hostile(JsPage::Spin, &[("IMAGE_SCRAPER_RENDER_TIMEOUT_SECS", "5")], 1);
    let failed = place.report()["items"][0]["error"].as_str().unwrap_or_default().to_string();
    assert!(failed.contains("did not answer"), "{failed}");
}

/// The browser killed while it renders: a fresh one renders the page again, and the
/// run completes.
#[test]
fn a_browser_killed_mid_render_is_replaced() {
    if !chromium() {
        return;
    }
    let pages = js_gallery();
    let place = Place::new();
    let child = place.spawn(&["--url", &pages.url(JsPage::Feed), "--render"]);
    pages.server.wait_for_hits("/feed/1.json", 1);
    for pid in place.browsers() {
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    }
    let (code, stderr) = exit_within(child, Duration::from_secs(60));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("rendering again on a fresh one"), "{stderr}");
    assert_files(&place.out(), JsPage::Feed.expected());
    place.assert_no_browser_left();
}

/// Ctrl-C while a page renders, and a SIGKILL of the tool: no browser outlives either.
#[test]
fn no_browser_outlives_an_interrupted_or_killed_run() {
    if !chromium() {
        return;
    }
    for signal in ["INT", "TERM", "KILL"] {
        let pages = js_gallery();
        let place = Place::new();
        let child = place.spawn(&["--url", &pages.url(JsPage::Endless), "--render"]);
        pages.server.wait_for_hits("/endless.html", 2);
        assert!(!place.browsers().is_empty(), "the browser is rendering");
        let _ = Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status();
        let (code, stderr) = exit_within(child, Duration::from_secs(60));
        if signal != "KILL" {
            assert!(code == 130 || code == 143, "{signal}: {code} {stderr}");
        }
        // A SIGKILL runs no code of ours: the kernel ends the browser (PR_SET_PDEATHSIG),
        // and its profile stays in TMPDIR, where the system's cleaning finds it.
        if signal == "KILL" {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !place.browsers().is_empty() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            assert_eq!(place.browsers(), Vec::<i32>::new(), "browser processes outlived a SIGKILL");
        } else {
            place.assert_no_browser_left();
        }
    }
}

/// A shared job (`--frontier`): the process walking the listing pages renders them, and
/// the images they reveal go to the job like any page's.
#[test]
fn the_walker_of_a_shared_job_renders_its_pages() {
    if !chromium() {
        return;
    }
    let Some(redis) = crate::redis_server::server() else { return };
    let pages = js_gallery();
    let place = Place::new();
    let job = crate::redis_server::job("render");
    let url = pages.url(JsPage::Feed);
    let run = place.run(&["--url", &url, "--frontier", &redis.url, "--job", &job], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.assert_line("page rendered");
    assert_files(&place.out(), JsPage::Feed.expected());
    pages.assert_each_fetched_once(&JsPage::Feed.images());
}

/// A "browser" that never answers: the page fails with the reason once the start's
/// deadline passes, the run ends, and the hung process is gone with it.
#[test]
fn a_browser_that_hangs_on_start_fails_the_page_not_the_run() {
    let pages = js_gallery();
    let place = Place::new();
    let hang = place.path().join("hang.sh");
    // A sleep this test binary alone would run, to look for afterwards.
    let sleep = format!("sleep {}", 100_000 + std::process::id() % 100_000);
    std::fs::write(&hang, format!("#!/bin/sh\nexec {sleep}\n")).unwrap();
    Command::new("chmod").arg("755").arg(&hang).status().unwrap();
    let hang = hang.display().to_string();
    let env = [("IMAGE_SCRAPER_RENDER_TIMEOUT_SECS", "3")];
    let run = place.run(&["--url", &pages.url(JsPage::Feed), "--render", "--browser", &hang], &env);
    assert_eq!(run.code, 1, "{}", run.stderr);
    run.assert_line("did not answer within 3 s of starting");
    let sleeping = Command::new("pgrep").args(["-fx", &sleep]).output().unwrap();
    assert!(sleeping.stdout.is_empty(), "the hung browser outlived the run");
}
