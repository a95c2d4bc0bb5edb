//! `NAME` templates: how an image's stored path is made from its URL, its place in the
//! list or walk and its list row's columns (`"{host}/{path}"`, `"{shard}/{index}.{ext}"`,
//! `"{key}.{ext}"`). Parsed once when the settings are read; rendered per image into a
//! relative path that is safe inside the out dir: every segment made safe as a default
//! name is (`storage::safe_segment`: no separators, no leading dot, so never `..` nor the
//! tool's own `.image-scraper`, no control or invisible characters, at most
//! `MAX_NAME_BYTES`), empty folders dropped, the file name never empty.
//!
//! Only `{path}` and a `/` written in the template make folders: a `/` (or an encoded
//! `%2F`) inside a value stays inside its segment, replaced like any separator.
//!
//! Pure: no actix, no config.

use std::fmt;

use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};
use url::Url;

use crate::storage;

/// Folders a rendered path may have at most: `{path}` of a hostile URL could otherwise
/// nest thousands deep (past PATH_MAX). Deeper folders are joined into the last one.
pub const MAX_FOLDERS: usize = 16;

/// Images per `{shard}` folder, as img2dataset's `00000/`.
pub const SHARD_SIZE: u64 = 10_000;

/// A parsed `NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameTemplate {
    /// Literals and placeholders in order; a literal `/` is its own part.
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    /// A `/` in the template: the next folder.
    Slash,
    Field(Field),
}

/// What a placeholder stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Host,
    Path,
    Stem,
    Ext,
    Sha256,
    Index,
    Shard,
    /// A column of the list row (`{key}`, `{caption}`...).
    Column(String),
}

/// Why a template cannot be used: said once at start, naming `NAME`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("is empty")]
    Empty,
    #[error("`{{` at byte {0} is never closed")]
    Unclosed(usize),
    #[error("`}}` at byte {0} closes nothing (write the name without braces)")]
    Unopened(usize),
    #[error("`{{{0}}}` is not a placeholder (host, path, stem, ext, sha256, index, shard, or a list column)")]
    Unknown(String),
    #[error("must be a relative path: it starts with `/`")]
    Absolute,
    #[error("ends with `/`: the file name would be empty")]
    NoFileName,
    #[error("has a `{0}` folder: names stay inside the out dir")]
    DotSegment(String),
}

/// What an image's name may read when it is rendered.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    pub url: &'a Url,
    /// The row's 0-based place in the list, or the image's order of naming in a walk.
    pub index: u64,
    /// The list row's other columns, when the list has any.
    pub columns: Option<&'a Map<String, Value>>,
    /// The image's SHA-256 (hex), known only once its bytes are in.
    pub sha256: Option<&'a str>,
    /// The extension its Content-Type stands for (`jpg`), for a URL that has none.
    pub type_ext: Option<&'a str>,
}

/// Why one image cannot be named: a counted failure of that image, not of the run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("NAME: this row has no `{0}` column")]
    NoColumn(String),
}

impl NameTemplate {
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        if text.is_empty() {
            return Err(TemplateError::Empty);
        }
        if text.starts_with('/') || text.starts_with('\\') {
            return Err(TemplateError::Absolute);
        }
        let mut parts = Vec::new();
        let mut text_part = String::new();
        let mut chars = text.char_indices();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' => {
                    let rest = &text[at + 1..];
                    let end = rest.find('}').ok_or(TemplateError::Unclosed(at))?;
                    let name = &rest[..end];
                    if name.contains('{') {
                        return Err(TemplateError::Unclosed(at));
                    }
                    if !text_part.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text_part)));
                    }
                    parts.push(Part::Field(field(name)?));
                    for _ in 0..name.chars().count() + 1 {
                        chars.next();
                    }
                }
                '}' => return Err(TemplateError::Unopened(at)),
                '/' => {
                    if !text_part.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text_part)));
                    }
                    parts.push(Part::Slash);
                }
                c => text_part.push(c),
            }
        }
        if !text_part.is_empty() {
            parts.push(Part::Text(text_part));
        }
        if parts.last() == Some(&Part::Slash) {
            return Err(TemplateError::NoFileName);
        }
        // A literal folder of dots would be dropped at render; said now, as the user
        // surely meant something else.
        for segment in text.split('/') {
            if !segment.is_empty() && segment.chars().all(|c| c == '.') {
                return Err(TemplateError::DotSegment(segment.to_string()));
            }
        }
        Ok(Self { parts })
    }

    /// The list columns the template reads: a walk has none to give.
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Field(Field::Column(c)) => Some(c.as_str()),
            _ => None,
        })
    }

    /// Whether the name can only be made once the bytes are in (`{sha256}`).
    pub fn needs_body(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Field(Field::Sha256)))
    }

    /// The image's relative path: `/`-separated, every segment safe, at most
    /// [`MAX_FOLDERS`] folders, the file name never empty. What `fields` does not know yet
    /// (`sha256`, `type_ext` for a URL without an extension) is left as a hole
    /// (`storage::SHA256_HOLE`, `EXT_HOLE`), filled by `storage::fill_holes` once known.
    pub fn render(&self, fields: &Fields) -> Result<String, RenderError> {
        let mut segments: Vec<String> = vec![String::new()];
        for part in &self.parts {
            let current = segments.last_mut().expect("never empty");
            match part {
                Part::Text(t) => current.push_str(&unholed(t)),
                Part::Slash => segments.push(String::new()),
                Part::Field(Field::Path) => {
                    let mut folders = url_segments(fields.url).peekable();
                    while let Some(segment) = folders.next() {
                        segments.last_mut().expect("never empty").push_str(&unholed(&segment));
                        if folders.peek().is_some() {
                            segments.push(String::new());
                        }
                    }
                }
                Part::Field(f @ (Field::Ext | Field::Sha256)) => current.push_str(&value(f, fields)?),
                Part::Field(f) => current.push_str(&unholed(&value(f, fields)?)),
            }
        }
        let file = segments.pop().expect("never empty");
        let mut folders: Vec<String> = segments.iter().filter_map(|s| storage::safe_segment(s)).collect();
        if folders.len() > MAX_FOLDERS {
            let deep = folders.split_off(MAX_FOLDERS - 1).join("_");
            folders.push(storage::safe_segment(&deep).expect("made of safe segments"));
        }
        let file = storage::safe_segment(&file)
            .unwrap_or_else(|| format!("image-{}", storage::short_hash(fields.url)));
        folders.push(file);
        Ok(folders.join("/"))
    }
}

impl fmt::Display for NameTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                Part::Text(t) => f.write_str(t)?,
                Part::Slash => f.write_str("/")?,
                Part::Field(field) => write!(f, "{{{}}}", field_name(field))?,
            }
        }
        Ok(())
    }
}

fn field(name: &str) -> Result<Field, TemplateError> {
    Ok(match name {
        "host" => Field::Host,
        "path" => Field::Path,
        "stem" => Field::Stem,
        "ext" => Field::Ext,
        "sha256" => Field::Sha256,
        "index" => Field::Index,
        "shard" => Field::Shard,
        column
            if column.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
                && column.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.')) =>
        {
            Field::Column(column.to_string())
        }
        other => return Err(TemplateError::Unknown(other.to_string())),
    })
}

fn field_name(field: &Field) -> &str {
    match field {
        Field::Host => "host",
        Field::Path => "path",
        Field::Stem => "stem",
        Field::Ext => "ext",
        Field::Sha256 => "sha256",
        Field::Index => "index",
        Field::Shard => "shard",
        Field::Column(c) => c,
    }
}

fn value(field: &Field, fields: &Fields) -> Result<String, RenderError> {
    Ok(match field {
        Field::Host => fields.url.host_str().unwrap_or("").to_string(),
        Field::Path => unreachable!("rendered as folders"),
        Field::Stem => storage::split_extension(&last_segment(fields.url)).0.to_string(),
        Field::Ext => {
            let last = last_segment(fields.url);
            match storage::split_extension(&last).1 {
                "" => fields.type_ext.map_or_else(|| storage::EXT_HOLE.to_string(), unholed),
                ext => unholed(&ext[1..]),
            }
        }
        Field::Sha256 => fields.sha256.map_or_else(|| storage::SHA256_HOLE.to_string(), unholed),
        Field::Index => format!("{:09}", fields.index),
        Field::Shard => format!("{:05}", fields.index / SHARD_SIZE),
        Field::Column(name) => match fields.columns.and_then(|c| c.get(name)) {
            None | Some(Value::Null) => return Err(RenderError::NoColumn(name.clone())),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        },
    })
}

/// `text` without the characters that stand for holes: no URL or column can forge one.
fn unholed(text: &str) -> String {
    text.replace([storage::EXT_HOLE, storage::SHA256_HOLE], "")
}

/// The URL path's segments, each percent-decoded on its own (so `%2F` stays inside its
/// segment).
fn url_segments(url: &Url) -> impl Iterator<Item = String> + '_ {
    url.path_segments().into_iter().flatten().map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
}

fn last_segment(url: &Url) -> String {
    url_segments(url).last().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(template: &str, url: &str) -> String {
        render_with(template, url, 7, None)
    }

    fn render_with(template: &str, url: &str, index: u64, columns: Option<&Map<String, Value>>) -> String {
        let url = Url::parse(url).unwrap();
        let fields = Fields { url: &url, index, columns, sha256: None, type_ext: None };
        NameTemplate::parse(template).unwrap().render(&fields).unwrap()
    }

    #[test]
    fn placeholders_render() {
        let u = "https://Img.Example.com/a/b/cat.JPG?x=1";
        assert_eq!(render("{host}/{path}", u), "img.example.com/a/b/cat.JPG");
        assert_eq!(render("{stem}.{ext}", u), "cat.JPG");
        assert_eq!(render("{shard}/{index}.{ext}", u), "00000/000000007.JPG");
        assert_eq!(render_with("{shard}/{index}", u, 123_456, None), "00012/000123456");
        let row: Map<String, Value> = serde_json::from_str(r#"{"key":"0001","n":3}"#).unwrap();
        assert_eq!(render_with("{key}-{n}.{ext}", u, 0, Some(&row)), "0001-3.JPG");
    }

    #[test]
    fn ext_comes_from_the_content_type_when_the_url_has_none() {
        let url = Url::parse("http://h/img/42").unwrap();
        let t = NameTemplate::parse("{stem}.{ext}").unwrap();
        let fields = Fields { url: &url, index: 0, columns: None, sha256: None, type_ext: Some("png") };
        assert_eq!(t.render(&fields).unwrap(), "42.png");
        // Not known yet: a hole, filled once the response tells it (or dropped, with its
        // dot, when it does not).
        let holed = t.render(&Fields { type_ext: None, ..fields }).unwrap();
        assert_eq!(holed, format!("42.{}", storage::EXT_HOLE));
        assert_eq!(storage::fill_holes(&holed, Some("webp"), None), "42.webp");
        assert_eq!(storage::fill_holes(&holed, Some(""), None), "42");
        // A URL with an extension needs no hole.
        let url = Url::parse("http://h/img/42.gif").unwrap();
        assert_eq!(t.render(&Fields { url: &url, type_ext: None, ..fields }).unwrap(), "42.gif");
    }

    #[test]
    fn sha256_is_a_hole_until_the_bytes_are_in_and_no_url_forges_one() {
        let url = Url::parse(&format!("http://h/a{}b.jpg", storage::SHA256_HOLE)).unwrap();
        let t = NameTemplate::parse("{sha256}/{stem}.{ext}").unwrap();
        assert!(t.needs_body());
        let fields = Fields { url: &url, index: 0, columns: None, sha256: None, type_ext: None };
        let holed = t.render(&fields).unwrap();
        assert_eq!(holed, format!("{}/ab.jpg", storage::SHA256_HOLE));
        assert_eq!(storage::fill_holes(&holed, None, Some("ab12")), "ab12/ab.jpg");
    }

    #[test]
    fn hostile_urls_stay_inside() {
        // Encoded slashes stay in their segment; dot segments and leading dots go.
        assert_eq!(render("{path}", "http://h/x/..%2F..%2Fetc%2Fpasswd"), "x/_.._etc_passwd");
        // The URL parser resolves encoded dot segments itself.
        assert_eq!(render("{path}", "http://h/x/%2E%2E/y.jpg"), "y.jpg");
        assert_eq!(render("{path}", "http://h/x/%2E%2E%2Fy.jpg"), "x/_y.jpg");
        assert_eq!(render("{path}", "http://h/.image-scraper/done.jsonl"), "image-scraper/done.jsonl");
        assert_eq!(render("{path}", "http://h/a%00b/c%0A.jpg"), "a_b/c_.jpg");
        assert_eq!(render("{path}", "http://h/a//b/c.jpg"), "a/b/c.jpg");
        let empty = render("{path}", "http://h/");
        assert!(empty.starts_with("image-") && !empty.contains('/'), "{empty}");
        let long = render("{path}", &format!("http://h/{}/{}.jpg", "d".repeat(400), "f".repeat(400)));
        assert!(long.split('/').all(|s| s.len() <= storage::MAX_NAME_BYTES), "{long}");
        assert!(long.ends_with(".jpg"));
        let deep = render("{path}", &format!("http://h/{}x.jpg", "a/".repeat(100)));
        assert_eq!(deep.split('/').count(), MAX_FOLDERS + 1, "{deep}");
        let row: Map<String, Value> = serde_json::from_str(r#"{"key":"../../x"}"#).unwrap();
        assert_eq!(render_with("{key}", "http://h/a.jpg", 0, Some(&row)), "_.._x");
    }

    #[test]
    fn bad_templates_are_refused() {
        let e = |t: &str| NameTemplate::parse(t).unwrap_err();
        assert_eq!(e(""), TemplateError::Empty);
        assert_eq!(e("/{path}"), TemplateError::Absolute);
        assert_eq!(e("{host}/"), TemplateError::NoFileName);
        assert_eq!(e("{host"), TemplateError::Unclosed(0));
        assert_eq!(e("a}"), TemplateError::Unopened(1));
        assert_eq!(e("{a{b}}"), TemplateError::Unclosed(0));
        assert_eq!(e("{}"), TemplateError::Unknown(String::new()));
        assert_eq!(e("{a b}"), TemplateError::Unknown("a b".into()));
        assert_eq!(e("../{path}"), TemplateError::DotSegment("..".into()));
        assert!(e("{}").to_string().contains("not a placeholder"));
    }

    #[test]
    fn a_missing_column_is_the_image_s_failure() {
        let url = Url::parse("http://h/a.jpg").unwrap();
        let t = NameTemplate::parse("{key}.{ext}").unwrap();
        assert_eq!(t.columns().collect::<Vec<_>>(), ["key"]);
        let fields = Fields { url: &url, index: 0, columns: None, sha256: None, type_ext: None };
        assert_eq!(t.render(&fields), Err(RenderError::NoColumn("key".into())));
    }

    #[test]
    fn it_prints_as_written() {
        let t = "{host}/x-{key}/{shard}/{index}.{ext}";
        assert_eq!(NameTemplate::parse(t).unwrap().to_string(), t);
    }
}
