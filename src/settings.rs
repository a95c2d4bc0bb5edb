//! Where settings come from before flags: `settings.yaml` (key `SCRAPER`) and
//! `IMAGE_SCRAPER_<KEY>` environment variables, the latter winning. `config/` adds the
//! flags and the defaults and validates the lot.
//!
//! Every key is known: an unknown one, in the file or the environment, is an error, so a
//! typo never silently falls back to a default.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use serde::{Deserialize, Serialize};
use url::Url;

/// How the workers fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One event loop per worker, many requests in flight on each (awc).
    Async,
    /// One thread per worker, one blocking request at a time on each (ureq).
    Sync,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Async => "async",
            Mode::Sync => "sync",
        }
    }
}

pub const DEFAULT_SETTINGS_FILE: &str = "settings.yaml";
/// Prefix of the environment variables that set keys: `IMAGE_SCRAPER_URL`, ...
pub const ENV_PREFIX: &str = "IMAGE_SCRAPER_";

/// The `SCRAPER:` section, from the file and the environment. Field names are the keys
/// (upper-cased); docs/settings.md documents each.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "SCREAMING_SNAKE_CASE")]
pub struct Section {
    pub url: Option<String>,
    pub item: Option<String>,
    pub out_dir: Option<PathBuf>,
    pub amount_pages: Option<PagesValue>,
    pub page_path: Option<String>,
    pub image_selector: Option<String>,
    pub image_attributes: Option<OneOrMany>,
    pub image_host: Option<String>,
    pub linked_images: Option<crate::html::LinkedImages>,
    pub link_selector: Option<String>,
    pub page_count_selector: Option<String>,
    pub next_selector: Option<String>,
    pub page_host: Option<String>,
    pub page_lookahead: Option<u32>,
    pub detail_selector: Option<String>,
    pub detail_image_selector: Option<String>,
    pub detail_images: Option<crate::html::DetailImages>,
    pub concurrency: Option<usize>,
    pub timeout_secs: Option<f64>,
    pub user_agent: Option<String>,
    /// `--frontier` and `--job` as settings (the flags win).
    pub frontier: Option<String>,
    pub job: Option<String>,
    /// Rendering pages built by JavaScript (`render/`): when, with which browser, how
    /// long and how far.
    pub render: Option<crate::render::Policy>,
    pub browser: Option<PathBuf>,
    pub render_tabs: Option<usize>,
    pub scroll_idle_ms: Option<u64>,
    pub scroll_max: Option<u32>,
    pub render_timeout_secs: Option<f64>,
    pub load_more_selector: Option<String>,
    pub retries: Option<u32>,
    pub retry_backoff_ms: Option<u64>,
    pub retry_max_wait_secs: Option<f64>,
    pub max_image_bytes: Option<u64>,
    /// Pixel filters judged from an image's header (`--min-width`... win).
    pub min_width: Option<u32>,
    pub min_height: Option<u32>,
    pub max_aspect: Option<f64>,
    /// `--name` and `--dedupe` as settings (the flags win).
    pub name: Option<String>,
    pub dedupe: Option<String>,
    pub per_host_concurrency: Option<usize>,
    pub delay_ms: Option<u64>,
    pub requests_per_second: Option<f64>,
    pub delay_jitter_ms: Option<u64>,
    pub obey_robots: Option<bool>,
    pub send_referer: Option<bool>,
    pub headers: Option<BTreeMap<String, String>>,
    pub cookies: Option<BTreeMap<String, String>>,
    /// PEM files of CAs trusted on top of the system's roots (`--ca-cert` wins).
    pub ca_cert: Option<OneOrMany>,
    /// `--proxy` as a setting (the flag wins); `""`: no proxy, whatever the environment says.
    pub proxy: Option<String>,
    /// `--noproxy` as a setting: replaces the environment's `no_proxy`/`NO_PROXY`.
    pub no_proxy: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRoot {
    #[serde(rename = "SCRAPER", default)]
    scraper: Option<serde_yaml::Mapping>,
}

/// `AMOUNT_PAGES: 12` (at most 12 pages) or `AMOUNT_PAGES: "5-12"` (pages 5 to 12).
/// Anything else is refused here, with the value, as a typo in any other key would be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PagesValue {
    Count(u32),
    Range(String),
}

impl<'de> Deserialize<'de> for PagesValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = PagesValue;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a page count (12) or a range of pages (\"5-12\")")
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<PagesValue, E> {
                u32::try_from(v)
                    .map(PagesValue::Count)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<PagesValue, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::invalid_value(serde::de::Unexpected::Signed(v), &self)),
                }
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<PagesValue, E> {
                let digits = |s: &str| !s.trim().is_empty() && s.trim().bytes().all(|b| b.is_ascii_digit());
                match v.split_once('-') {
                    Some((a, b)) if digits(a) && digits(b) => Ok(PagesValue::Range(v.to_string())),
                    _ if digits(v) => Ok(PagesValue::Range(v.to_string())),
                    _ => Err(E::invalid_type(serde::de::Unexpected::Str(v), &self)),
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// `IMAGE_ATTRIBUTES: src` or `IMAGE_ATTRIBUTES: [data-src, src]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

/// The settings as read, not yet combined with flags.
#[derive(Debug, Default)]
pub struct Settings {
    /// Named in every error about a key from the file.
    path: PathBuf,
    /// Whether a file was read (the default one may be absent): said at start, so a
    /// `settings.yaml` in the current folder is never applied silently.
    read: bool,
    pub section: Section,
    /// Keys set by the environment, so errors name the variable, not the file.
    from_env: HashSet<String>,
    /// The rest of the environment as read with the keys (the conventional proxy
    /// variables, `HOME` and what paths name), so resolving them is as testable as the keys.
    env: BTreeMap<String, String>,
}

impl Settings {
    /// Reads `path`, or `settings.yaml` when `None`, then the process environment. The
    /// default file may be absent (then everything comes from flags and the
    /// environment); a file named with `-c` must exist.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        Self::load_with_env(path, std::env::vars())
    }

    /// [`Settings::load`] with the environment given, for tests.
    pub fn load_with_env(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        let (path, explicit) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_SETTINGS_FILE), false),
        };
        let (text, read) = match std::fs::read_to_string(&path) {
            Ok(text) => (text, true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => (String::new(), false),
            Err(e) => return Err(e).with_context(|| format!("{}: cannot read", path.display())),
        };
        let mut settings = Self::from_text(path, &text, env)?;
        settings.read = read;
        Ok(settings)
    }

    /// The environment alone, no file: what `--demo` reads unless `-c` names one (a
    /// `settings.yaml` in the current folder describes some other site).
    pub fn without_file(env: impl IntoIterator<Item = (String, String)>) -> anyhow::Result<Self> {
        Self::from_text(PathBuf::from(DEFAULT_SETTINGS_FILE), "", env)
    }

    fn from_text(
        path: PathBuf,
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        let file = path.display().to_string();
        // Before the YAML parser sees it: deep nesting costs it seconds per level of
        // thousands, long before its own limit answers.
        check_depth(text).map_err(|e| anyhow!("{file}: {e}"))?;
        // The file alone must be valid, so its errors name the file, the key and the line.
        check_file(text).map_err(|e| anyhow!("{file}: {}", in_our_words(text, &e)))?;
        let mut mapping = parse_file(text).map_err(|e| anyhow!("{file}: {e}"))?;
        let mut from_env = HashSet::new();
        let (mut vars, others): (Vec<(String, String)>, Vec<_>) =
            env.into_iter().partition(|(k, _)| k.starts_with(ENV_PREFIX));
        let env: BTreeMap<String, String> = others.into_iter().collect();
        vars.sort();
        for (var, raw) in vars {
            let key = var[ENV_PREFIX.len()..].to_string();
            let value = env_value(&raw).map_err(|e| anyhow!("environment {var}: {e}"))?;
            let mut single = serde_yaml::Mapping::new();
            single.insert(key.clone().into(), value.clone());
            deserialize(&single)
                .map_err(|e| anyhow!("environment {var}: {}", in_our_words("", &strip_path(&e, &key))))?;
            mapping.insert(key.clone().into(), value);
            from_env.insert(key);
        }
        let section = deserialize(&mapping).map_err(|e| anyhow!("{file}: {e}"))?;
        let mut settings = Self { path, read: false, section, from_env, env };
        settings.expand_paths()?;
        Ok(settings)
    }

    /// `~` and `$VAR`/`${VAR}` in the keys that hold paths (`OUT_DIR`, `CA_CERT`), as a
    /// shell would have done had they been flags. An undefined variable is an error
    /// naming the key: a path with `$VAR` left in it would be a folder named `$VAR`.
    fn expand_paths(&mut self) -> anyhow::Result<()> {
        if let Some(browser) = &self.section.browser {
            let text = browser.to_string_lossy().into_owned();
            let expanded =
                expand(&text, &self.env).map_err(|e| anyhow!("{}: {e}", self.origin("BROWSER")))?;
            self.section.browser = Some(PathBuf::from(expanded));
        }
        if let Some(dir) = &self.section.out_dir {
            let text = dir.to_string_lossy();
            let expanded =
                expand(&text, &self.env).map_err(|e| anyhow!("{}: {e}", self.origin("OUT_DIR")))?;
            self.section.out_dir = Some(PathBuf::from(expanded));
        }
        if let Some(files) = self.section.ca_cert.take() {
            let ca = |f: &str| expand(f, &self.env).map_err(|e| anyhow!("{}: {e}", self.origin("CA_CERT")));
            let expanded = match files {
                OneOrMany::One(file) => OneOrMany::One(ca(&file)?),
                OneOrMany::Many(files) => {
                    OneOrMany::Many(files.iter().map(|f| ca(f)).collect::<anyhow::Result<_>>()?)
                }
            };
            self.section.ca_cert = Some(expanded);
        }
        Ok(())
    }

    /// The file read, or `None` when there was none (the default file is optional).
    pub fn file_read(&self) -> Option<&Path> {
        self.read.then_some(self.path.as_path())
    }

    #[cfg(test)]
    pub fn parse_for_test(text: &str) -> anyhow::Result<Self> {
        Self::from_text("test.yaml".into(), text, [])
    }

    /// How to name `key` in an error: the environment variable that set it, or the file.
    pub fn origin(&self, key: &str) -> String {
        if self.from_env.contains(key) {
            format!("environment {ENV_PREFIX}{key}")
        } else {
            format!("{}: SCRAPER.{key}", self.path.display())
        }
    }

    /// A conventional proxy variable (`http_proxy`, ...), as the environment had it.
    pub fn proxy_var(&self, name: &str) -> Option<String> {
        debug_assert!(crate::net::proxy::ENV_VARS.contains(&name), "{name} is not a proxy variable");
        self.env.get(name).cloned()
    }

    pub fn file(&self) -> String {
        self.path.display().to_string()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TypedRoot {
    #[serde(rename = "SCRAPER", default)]
    _scraper: Option<Section>,
}

/// serde_yaml names the key path and the line only when it reads the text itself.
fn check_file(text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Ok(());
    }
    serde_yaml::from_str::<Option<TypedRoot>>(text).map(drop).map_err(|e| e.to_string())
}

fn parse_file(text: &str) -> Result<serde_yaml::Mapping, String> {
    if text.trim().is_empty() {
        return Ok(serde_yaml::Mapping::new());
    }
    // serde_yaml's message already names the key path and the line.
    let root: Option<FileRoot> = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    Ok(root.and_then(|r| r.scraper).unwrap_or_default())
}

fn deserialize(mapping: &serde_yaml::Mapping) -> Result<Section, String> {
    // Errors name the key as `SCRAPER.KEY`, as they would straight from the file.
    let mut root = serde_yaml::Mapping::new();
    root.insert("SCRAPER".into(), serde_yaml::Value::Mapping(mapping.clone()));
    let root: FileRoot =
        serde_yaml::from_value(serde_yaml::Value::Mapping(root)).map_err(|e| e.to_string())?;
    serde_yaml::from_value(serde_yaml::Value::Mapping(root.scraper.unwrap_or_default()))
        .map_err(|e| e.to_string())
}

/// An environment value is YAML (`5`, `true`, `[data-src, src]`, `{X-Token: abc}`), as
/// strictly as the file: one that does not parse is an error, never taken as a string in
/// its place (a typo must not pass silently).
fn env_value(raw: &str) -> Result<serde_yaml::Value, String> {
    // YAML reads nothing as null, which would leave the key unset; `VAR=` means the
    // empty value, as `KEY: ""` does in the file (`IMAGE_HOST=`: any host).
    if raw.trim().is_empty() {
        return Ok(serde_yaml::Value::String(String::new()));
    }
    check_depth(raw)?;
    serde_yaml::from_str(raw).map_err(|e| {
        let first = e.to_string().lines().next().unwrap_or_default().to_string();
        format!("not valid YAML ({first}); quote a plain string: '{raw}'")
    })
}

/// Deepest nesting settings may have; ours need three levels.
pub const MAX_DEPTH: usize = 64;

/// Refuses text nested deeper than [`MAX_DEPTH`], counting flow collections (`[`, `{`
/// outside quotes and comments), block indentation levels and `- ` sequence markers. An
/// over-count on odd but valid YAML is harmless at this limit.
fn check_depth(text: &str) -> Result<(), String> {
    let mut indents: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    for (number, line) in text.lines().enumerate() {
        let body = line.trim_start();
        if flow == 0 && !body.is_empty() && !body.starts_with('#') {
            let indent = line.len() - body.len();
            while indents.last().is_some_and(|&top| top > indent) {
                indents.pop();
            }
            if indents.last() != Some(&indent) {
                indents.push(indent);
            }
        }
        let dashes = body.split_inclusive(' ').take_while(|w| w.trim_end() == "-").count();
        let mut quote = None;
        for c in body.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, '#') => break,
                (None, '[' | '{') => flow += 1,
                (None, ']' | '}') => flow = flow.saturating_sub(1),
                _ => {}
            }
            if indents.len() + dashes + flow > MAX_DEPTH {
                return Err(format!("line {}: nested deeper than {MAX_DEPTH} levels", number + 1));
            }
        }
        if indents.len() + dashes > MAX_DEPTH {
            return Err(format!("line {}: nested deeper than {MAX_DEPTH} levels", number + 1));
        }
    }
    Ok(())
}

/// `~`, `$VAR` and `${VAR}` expanded from `env`; an undefined variable (or `~` without
/// `HOME`) is an error.
fn expand(text: &str, env: &BTreeMap<String, String>) -> Result<String, String> {
    let home = || env.get("HOME").cloned();
    if (text == "~" || text.starts_with("~/")) && home().is_none_or(|h| h.is_empty()) {
        return Err(format!("{text:?}: ~ needs HOME to be set"));
    }
    let lookup = |var: &str| match env.get(var) {
        Some(value) => Ok(Some(value.clone())),
        None => Err(format!("${var} is not set")),
    };
    shellexpand::full_with_context(text, home, lookup)
        .map(|expanded| expanded.into_owned())
        .map_err(|e| format!("{text:?}: {}", e.cause))
}

/// serde's and the YAML parser's words, made ours where a new user would be lost: an
/// unknown key names the nearest known one instead of listing them all, and a tab in
/// the indentation says so (the parser says "found character that cannot start any
/// token"). `text` is the file, to find the tab's line.
fn in_our_words(text: &str, message: &str) -> String {
    // Only when the parser stopped on that line: a tab inside a block scalar is text.
    if let Some(line) = tab_indented_line(text)
        && message.contains(&format!("line {line} "))
    {
        return format!("line {line}: tabs are not allowed for indentation in YAML: use spaces");
    }
    nearest_key(message).unwrap_or_else(|| message.to_string())
}

/// The first line (1-based) indented with a tab, outside comments.
fn tab_indented_line(text: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            let indent = &line[..line.len() - line.trim_start().len()];
            let body = line.trim_start();
            indent.contains('\t') && !body.is_empty() && !body.starts_with('#')
        })
        .map(|n| n + 1)
}

/// `unknown field `AMOUNT_PAGE`, expected one of `URL`, ... at line 3 column 3` ->
/// `unknown key AMOUNT_PAGE (did you mean AMOUNT_PAGES?) at line 3 column 3`.
fn nearest_key(message: &str) -> Option<String> {
    const UNKNOWN: &str = "unknown field `";
    let start = message.find(UNKNOWN)?;
    let rest = &message[start + UNKNOWN.len()..];
    let name = &rest[..rest.find('`')?];
    let (list, tail) = match rest.find(" at line ") {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, ""),
    };
    // The keys the message lists: the level it is about (the file's top, or `SCRAPER:`).
    let known: Vec<&str> = list.split('`').skip(2).step_by(2).collect();
    let wanted = name.to_ascii_uppercase();
    let nearest = known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(&wanted, k), *k))
        .min()
        .filter(|(distance, key)| *distance <= (key.len() / 3).max(2));
    let hint = match nearest {
        Some((_, key)) => format!(" (did you mean {key}?)"),
        None => " (the keys are in docs/settings.md and `image-scraper man`)".to_string(),
    };
    Some(format!("{}unknown key {name}{hint}{tail}", &message[..start]))
}

/// Every key of the `SCRAPER:` section, as `Section`'s own `Deserialize` names them, so
/// the man page and the suggestions cannot drift from what the loader accepts.
pub fn keys() -> &'static [&'static str] {
    use serde::de::value::Error;
    use serde::de::{Error as _, Visitor};

    struct Introspect<'a>(&'a mut &'static [&'static str]);
    impl<'de> serde::Deserializer<'de> for Introspect<'_> {
        type Error = Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
            Err(Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Error> {
            *self.0 = fields;
            Err(Error::custom("fields read"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = Section::deserialize(Introspect(&mut fields));
    fields
}

fn strip_path(message: &str, key: &str) -> String {
    message.strip_prefix(&format!("{key}: ")).unwrap_or(message).to_string()
}

/// A gallery URL: absolute http(s) with a host.
pub fn parse_site_url(raw: &str) -> Result<Url, String> {
    let text = raw.trim();
    let no_scheme = || -> Option<String> {
        // `example.com:8080/x` parses with `example.com` as its scheme, so a colon is a
        // candidate's only when a port follows it (not `mailto:`, not `ftp://`).
        let after_colon = text.split_once(':').map(|(_, rest)| rest);
        if after_colon.is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_digit())) {
            return None;
        }
        let parsed = Url::parse(&format!("https://{text}")).ok()?;
        parsed
            .host_str()
            .is_some_and(|h| h.contains('.') || h == "localhost")
            .then(|| format!("{raw:?} is not a URL: no scheme; did you mean {parsed}?"))
    };
    let url = match Url::parse(text) {
        Ok(url) => url,
        Err(e) => return Err(no_scheme().unwrap_or_else(|| format!("{raw:?} is not a URL: {e}"))),
    };
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(no_scheme().unwrap_or_else(|| format!("{raw:?} is not an http(s) URL")));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_without_a_scheme_gets_a_guess() {
        let e = parse_site_url("example.com/gallery/").unwrap_err();
        assert_eq!(
            e,
            "\"example.com/gallery/\" is not a URL: no scheme; did you mean https://example.com/gallery/?"
        );
        let e = parse_site_url("example.com:8080/g").unwrap_err();
        assert!(e.ends_with("did you mean https://example.com:8080/g?"), "{e}");
        let e = parse_site_url("localhost:8080").unwrap_err();
        assert!(e.ends_with("did you mean https://localhost:8080/?"), "{e}");
        assert!(!parse_site_url("not a url").unwrap_err().contains("did you mean"));
        assert!(!parse_site_url("ftp://h.example/").unwrap_err().contains("did you mean"));
        assert!(!parse_site_url("mailto:a@b.example").unwrap_err().contains("did you mean"));
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn load(text: &str, vars: &[(&str, &str)]) -> anyhow::Result<Settings> {
        Settings::from_text("s.yaml".into(), text, env(vars))
    }

    #[test]
    fn the_environment_overrides_the_file() {
        let s = load(
            "SCRAPER:\n  URL: http://file.example/\n  ITEM: cats\n",
            &[
                ("IMAGE_SCRAPER_URL", "http://env.example/"),
                ("IMAGE_SCRAPER_AMOUNT_PAGES", "4"),
                ("IMAGE_SCRAPER_IMAGE_ATTRIBUTES", "[data-src, src]"),
                ("IMAGE_SCRAPER_HEADERS", "{X-Token: abc}"),
                ("IMAGE_SCRAPER_OBEY_ROBOTS", "false"),
                ("PATH", "/usr/bin"),
            ],
        )
        .unwrap();
        assert_eq!(s.section.url.as_deref(), Some("http://env.example/"));
        assert_eq!(s.section.item.as_deref(), Some("cats"));
        assert_eq!(s.section.amount_pages, Some(PagesValue::Count(4)));
        assert_eq!(s.section.image_attributes.clone().unwrap().into_vec(), ["data-src", "src"]);
        assert_eq!(s.section.headers.as_ref().unwrap()["X-Token"], "abc");
        assert_eq!(s.section.obey_robots, Some(false));
        assert_eq!(s.origin("URL"), "environment IMAGE_SCRAPER_URL");
        assert_eq!(s.origin("ITEM"), "s.yaml: SCRAPER.ITEM");
    }

    #[test]
    fn bad_environment_values_name_the_variable() {
        let e = load("", &[("IMAGE_SCRAPER_AMOUNT_PAGES", "ten")]).unwrap_err().to_string();
        assert!(e.starts_with("environment IMAGE_SCRAPER_AMOUNT_PAGES: invalid type"), "{e}");
        let e = load("", &[("IMAGE_SCRAPER_COLOUR", "red")]).unwrap_err().to_string();
        assert_eq!(
            e,
            "environment IMAGE_SCRAPER_COLOUR: unknown key COLOUR (the keys are in docs/settings.md and `image-scraper man`)"
        );
        let e = load("", &[("IMAGE_SCRAPER_IMAGE_HOTS", "x")]).unwrap_err().to_string();
        assert_eq!(
            e,
            "environment IMAGE_SCRAPER_IMAGE_HOTS: unknown key IMAGE_HOTS (did you mean IMAGE_HOST?)"
        );
    }

    #[test]
    fn a_typo_names_the_nearest_key_not_all_of_them() {
        let e = load("SCRAPER:\n  URL: https://h/\n  AMOUNT_PAGE: 3\n", &[]).unwrap_err().to_string();
        assert_eq!(
            e,
            "s.yaml: SCRAPER: unknown key AMOUNT_PAGE (did you mean AMOUNT_PAGES?) at line 3 column 3"
        );
        let e = load("SCRAPER:\n  image_host: x\n", &[]).unwrap_err().to_string();
        assert!(e.contains("unknown key image_host (did you mean IMAGE_HOST?)"), "{e}");
        let e = load("SCRAPPER:\n  URL: https://h/\n", &[]).unwrap_err().to_string();
        assert!(e.contains("unknown key SCRAPPER (did you mean SCRAPER?)"), "{e}");
        let e = load("SCRAPER:\n  COLOUR: red\n", &[]).unwrap_err().to_string();
        assert!(e.contains("unknown key COLOUR (the keys are in") && !e.contains("IMAGE_HOST"), "{e}");
    }

    #[test]
    fn a_tab_in_the_indentation_is_said_in_our_words() {
        let e = load("SCRAPER:\n  URL: https://h/\n\tITEM: cats\n", &[]).unwrap_err().to_string();
        assert_eq!(e, "s.yaml: line 3: tabs are not allowed for indentation in YAML: use spaces");
        // A tab inside a value is no indentation.
        let s = load("SCRAPER:\n  USER_AGENT: 'a\tb'\n", &[]).unwrap();
        assert_eq!(s.section.user_agent.as_deref(), Some("a\tb"));
    }

    #[test]
    fn an_empty_environment_value_is_the_empty_value() {
        let s = load("SCRAPER:\n  IMAGE_HOST: cdn.example\n", &[("IMAGE_SCRAPER_IMAGE_HOST", "")]).unwrap();
        assert_eq!(s.section.image_host.as_deref(), Some(""), "VAR= means empty, not unset");
        let e = load("", &[("IMAGE_SCRAPER_RETRIES", "")]).unwrap_err().to_string();
        assert!(e.starts_with("environment IMAGE_SCRAPER_RETRIES: invalid type: string"), "{e}");
    }

    #[test]
    fn paths_from_settings_expand_home_and_variables() {
        let vars = [("HOME", "/home/u"), ("PICS", "/data/pics")];
        let s =
            load("SCRAPER:\n  OUT_DIR: ~/pics\n  CA_CERT: [$PICS/ca.pem, '${HOME}/b.pem']\n", &vars).unwrap();
        assert_eq!(s.section.out_dir, Some(PathBuf::from("/home/u/pics")));
        assert_eq!(s.section.ca_cert.unwrap().into_vec(), ["/data/pics/ca.pem", "/home/u/b.pem"]);
        let s = load("", &[("HOME", "/home/u"), ("IMAGE_SCRAPER_OUT_DIR", "${PICS}/cats"), ("PICS", "/p")])
            .unwrap();
        assert_eq!(s.section.out_dir, Some(PathBuf::from("/p/cats")));
        let s = load("SCRAPER:\n  OUT_DIR: a~b/~\n", &vars).unwrap();
        assert_eq!(s.section.out_dir, Some(PathBuf::from("a~b/~")), "only a leading ~ is home");
        let e = load("SCRAPER:\n  OUT_DIR: $NOPE/pics\n", &vars).unwrap_err().to_string();
        assert_eq!(e, "s.yaml: SCRAPER.OUT_DIR: \"$NOPE/pics\": $NOPE is not set");
        let e = load("SCRAPER:\n  CA_CERT: ~/ca.pem\n", &[]).unwrap_err().to_string();
        assert_eq!(e, "s.yaml: SCRAPER.CA_CERT: \"~/ca.pem\": ~ needs HOME to be set");
        let e = load("", &[("IMAGE_SCRAPER_OUT_DIR", "${NOPE}")]).unwrap_err().to_string();
        assert!(e.starts_with("environment IMAGE_SCRAPER_OUT_DIR: "), "{e}");
    }

    #[test]
    fn the_key_list_is_the_loaders_own() {
        let keys = keys();
        assert_eq!(keys.first(), Some(&"URL"));
        assert!(keys.contains(&"IMAGE_HOST") && keys.contains(&"NO_PROXY"));
        for key in keys {
            let yaml = format!("SCRAPER:\n  {key}: null\n");
            assert!(load(&yaml, &[]).is_ok(), "{key} is accepted");
        }
    }

    #[test]
    fn bad_files_name_the_key_and_the_problem() {
        let e = load("SCRAPER:\n  URL: https://h/\n  ITEM: cats\n  AMOUNT_PAGES: ten\n", &[]).unwrap_err();
        assert!(e.to_string().starts_with("s.yaml: SCRAPER.AMOUNT_PAGES: invalid type"), "{e}");
        let e = load("SCRAPER:\n  URL: https://h/\n  AMOUNT_PAGE: 3\n", &[]).unwrap_err().to_string();
        assert!(e.contains("unknown key AMOUNT_PAGE"), "{e}");
        let e = load("SCRAPER:\n  URL: https://h/\n  ITEM: x\n  AMOUNT_PAGES: -1\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("SCRAPER.AMOUNT_PAGES") && e.contains("-1"), "{e}");
        let e = load("SCRAPER: [1, 2]\n", &[]).unwrap_err().to_string();
        assert!(e.starts_with("s.yaml: SCRAPER: invalid type"), "{e}");
        let e = load("OTHER: 1\n", &[]).unwrap_err().to_string();
        assert!(e.contains("unknown key OTHER"), "{e}");
        let e = load("SCRAPER:\n  URL: https://h/\n  ITEM: x\n  bad: [\n", &[]).unwrap_err().to_string();
        assert!(e.starts_with("s.yaml: ") && !e.contains('\n'), "one line: {e}");
    }

    #[test]
    fn malformed_environment_values_are_errors_naming_the_variable() {
        for raw in ["[data-src, src", "{X-Token: abc", "*alias", "a: b: c"] {
            let e = load("", &[("IMAGE_SCRAPER_IMAGE_ATTRIBUTES", raw)]).unwrap_err().to_string();
            assert!(e.starts_with("environment IMAGE_SCRAPER_IMAGE_ATTRIBUTES: "), "{raw}: {e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
        let e = load("", &[("IMAGE_SCRAPER_ITEM", "[unclosed")]).unwrap_err().to_string();
        assert!(e.contains("not valid YAML") && e.contains("quote"), "{e}");
        // Valid YAML of the wrong type is an error too; quoted, it is a string.
        assert!(load("", &[("IMAGE_SCRAPER_RETRIES", "[1]")]).is_err());
        let s = load("", &[("IMAGE_SCRAPER_IMAGE_SELECTOR", "'*[data-src]'")]).unwrap();
        assert_eq!(s.section.image_selector.as_deref(), Some("*[data-src]"));
    }

    #[test]
    fn deep_nesting_is_refused_at_once() {
        // 100,000 levels took the YAML parser ~30 s; the error must come from the scan.
        let deep = "[".repeat(100_000);
        let e = load(&format!("SCRAPER:\n  HEADERS: {deep}\n"), &[]).unwrap_err().to_string();
        assert!(e.starts_with("s.yaml: line 2: nested deeper than 64"), "{e}");
        let e = load("", &[("IMAGE_SCRAPER_HEADERS", &deep)]).unwrap_err().to_string();
        assert!(e.starts_with("environment IMAGE_SCRAPER_HEADERS: line 1: nested deeper"), "{e}");
        let block: String = (0..70).map(|i| format!("{}k{i}:\n", " ".repeat(i))).collect();
        assert!(load(&block, &[]).unwrap_err().to_string().contains("nested deeper than 64"));
        let dashes = format!("SCRAPER:\n  IMAGE_ATTRIBUTES:\n    {}x\n", "- ".repeat(70));
        assert!(load(&dashes, &[]).unwrap_err().to_string().contains("nested deeper than 64"));
        // Ordinary settings pass.
        let ok = "SCRAPER:\n  URL: https://h/ # a comment with [ and {\n  IMAGE_ATTRIBUTES: [data-src, '[x']\n  HEADERS: {X-A: '{'}\n";
        load(ok, &[]).unwrap();
    }

    #[test]
    fn missing_default_file_is_fine_but_a_named_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let named = dir.path().join("nope.yaml");
        let e = format!("{:#}", Settings::load_with_env(Some(&named), []).unwrap_err());
        assert!(e.contains("nope.yaml: cannot read"), "{e}");
    }
}
