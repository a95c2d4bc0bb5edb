//! How stored images are named and told apart: `NAME` (`--name`), a template parsed once
//! here so a typo stops the run before any request, and `DEDUPE` (`--dedupe`).

use std::sync::Arc;

use anyhow::bail;

use super::site::Source;
use crate::cli::Cli;
use crate::name_template::NameTemplate;
use crate::settings::Settings;

/// What makes two images the same.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Dedupe {
    /// One file per URL (the default, as always).
    #[default]
    Url,
    /// One file per content: bytes whose SHA-256 is already stored are not stored again.
    Content,
}

/// The naming part of [`Config`](super::Config).
#[derive(Debug, Clone, Default)]
pub struct Naming {
    /// `None`: the URL's own file name, as always.
    pub template: Option<Arc<NameTemplate>>,
    pub dedupe: Dedupe,
}

/// `DEDUPE`/`--dedupe` into `naming`. `bucket`: images go to S3, where a duplicate's
/// upload would have to be found and deleted after the fact (not built: refused, not
/// ignored). A shared job with folder out dirs keeps its digests in Redis.
pub(super) fn resolve_dedupe(
    settings: &Settings,
    cli: &Cli,
    naming: Naming,
    bucket: bool,
) -> anyhow::Result<Naming> {
    let (origin, text) = match (&cli.dedupe, &settings.section.dedupe) {
        (Some(text), _) => ("--dedupe".to_string(), text),
        (None, Some(text)) => (settings.origin("DEDUPE"), text),
        (None, None) => return Ok(naming),
    };
    let dedupe = match text.to_ascii_lowercase().as_str() {
        "url" => Dedupe::Url,
        "content" => Dedupe::Content,
        _ => bail!("{origin}: {text:?} is neither `url` nor `content`"),
    };
    if dedupe == Dedupe::Content && bucket {
        bail!("{origin}: `content` works with a folder out dir only (not with s3:// yet)");
    }
    Ok(Naming { dedupe, ..naming })
}

/// `bucket`: images go to S3, whose upload names its object before the bytes are in.
pub(super) fn resolve(
    settings: &Settings,
    cli: &Cli,
    source: &Source,
    bucket: bool,
) -> anyhow::Result<Naming> {
    let (origin, text) = match (&cli.name, &settings.section.name) {
        (Some(text), _) => ("--name".to_string(), text),
        (None, Some(text)) => (settings.origin("NAME"), text),
        (None, None) => return Ok(Naming::default()),
    };
    let parsed = NameTemplate::parse(text).map_err(|e| anyhow::anyhow!("{origin}: {text:?} {e}"))?;
    if let (Source::Pages { .. }, Some(column)) = (source, parsed.columns().next()) {
        bail!(
            "{origin}: {text:?}: `{{{column}}}` is not a placeholder (host, path, stem, ext, sha256, index, shard; list columns only with --urls)"
        );
    }
    if bucket && parsed.needs_body() {
        bail!(
            "{origin}: {text:?}: `{{sha256}}` names a file in a folder out dir only (an upload to S3 names its object before the bytes are in)"
        );
    }
    Ok(Naming { template: Some(Arc::new(parsed)), dedupe: Dedupe::Url })
}

#[cfg(test)]
mod tests {
    use crate::config::testing::resolve;
    use crate::config::testing::*;

    #[test]
    fn a_bad_template_is_one_line_naming_the_key() {
        let e = error(&format!("{ORIGINAL}  NAME: \"{{host}}/{{nope x}}\"\n"), &[]);
        assert!(e.contains("SCRAPER.NAME") && e.contains("not a placeholder"), "{e}");
        let e = error(ORIGINAL, &["--name", "/abs/{path}"]);
        assert!(e.starts_with("--name: ") && e.contains("relative"), "{e}");
        let e = error(ORIGINAL, &["--name", "{key}.{ext}"]);
        assert!(e.contains("list columns only with --urls"), "{e}");
        let e = error(ORIGINAL, &["-o", "s3://pics/p", "--name", "{sha256}.{ext}"]);
        assert!(e.contains("folder out dir only"), "{e}");
        let e = error(ORIGINAL, &["--dedupe", "bytes"]);
        assert!(e.starts_with("--dedupe: ") && e.contains("neither"), "{e}");
        let e = error(ORIGINAL, &["-o", "s3://pics/p", "--dedupe", "content"]);
        assert!(e.starts_with("--dedupe: ") && e.contains("not with s3://"), "{e}");
        let e = error(
            ORIGINAL,
            &["-o", "s3://pics/p", "--dedupe", "content", "--frontier", "redis://h/0", "--job", "j"],
        );
        assert!(e.starts_with("--dedupe: ") && e.contains("not with s3://"), "a shared bucket too: {e}");
    }

    #[test]
    fn the_default_is_the_url_s_own_name() {
        let c = resolve(ORIGINAL, &[]).unwrap();
        assert!(c.naming.template.is_none());
        assert_eq!(c.naming.dedupe, super::Dedupe::Url);
        let c = resolve(&format!("{ORIGINAL}  DEDUPE: content\n"), &[]).unwrap();
        assert_eq!(c.naming.dedupe, super::Dedupe::Content);
        let c =
            resolve(ORIGINAL, &["--dedupe", "content", "--frontier", "redis://h/0", "--job", "j"]).unwrap();
        assert_eq!(c.naming.dedupe, super::Dedupe::Content, "a shared job with folder out dirs");
        let c = resolve(&format!("{ORIGINAL}  NAME: \"{{host}}/{{path}}\"\n"), &[]).unwrap();
        assert_eq!(c.naming.template.unwrap().to_string(), "{host}/{path}");
    }
}
