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

/// `bucket`: images go to S3, whose upload names its object before the bytes are in.
pub(super) fn resolve(
    settings: &Settings,
    cli: &Cli,
    source: &Source,
    bucket: bool,
) -> anyhow::Result<Naming> {
    let s = &settings.section;
    let template = match (&cli.name, &s.name) {
        (Some(text), _) => Some(("--name", text)),
        (None, Some(text)) => Some(("NAME", text)),
        (None, None) => None,
    };
    let template = match template {
        Some((origin, text)) => {
            let origin = if origin == "NAME" { settings.origin("NAME") } else { origin.to_string() };
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
            Some(Arc::new(parsed))
        }
        None => None,
    };
    let dedupe = match (&cli.dedupe, &s.dedupe) {
        (Some(text), _) => dedupe(text, "--dedupe")?,
        (None, Some(text)) => dedupe(text, &settings.origin("DEDUPE"))?,
        (None, None) => Dedupe::Url,
    };
    Ok(Naming { template, dedupe })
}

fn dedupe(text: &str, origin: &str) -> anyhow::Result<Dedupe> {
    match text.to_ascii_lowercase().as_str() {
        "url" => Ok(Dedupe::Url),
        "content" => Ok(Dedupe::Content),
        _ => bail!("{origin}: {text:?} is neither `url` nor `content`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::resolve;
    use crate::config::testing::*;

    #[test]
    fn a_bad_template_is_one_line_naming_the_key() {
        let e = error(&format!("{ORIGINAL}  NAME: \"{{host}}/{{nope x}}\"\n"), &[]);
        assert!(e.contains("NAME") && e.contains("not a placeholder"), "{e}");
        let e = error(ORIGINAL, &["--name", "/abs/{path}"]);
        assert!(e.starts_with("--name: ") && e.contains("relative"), "{e}");
        let e = error(ORIGINAL, &["--name", "{key}.{ext}"]);
        assert!(e.contains("list columns only with --urls"), "{e}");
        let e = error(ORIGINAL, &["--dedupe", "bytes"]);
        assert!(e.starts_with("--dedupe: "), "{e}");
    }

    #[test]
    fn the_default_is_the_url_s_own_name_and_one_file_per_url() {
        let c = resolve(ORIGINAL, &[]).unwrap();
        assert!(c.naming.template.is_none());
        assert_eq!(c.naming.dedupe, Dedupe::Url);
        let c =
            resolve(&format!("{ORIGINAL}  NAME: \"{{host}}/{{path}}\"\n  DEDUPE: content\n"), &[]).unwrap();
        assert_eq!(c.naming.template.unwrap().to_string(), "{host}/{path}");
        assert_eq!(c.naming.dedupe, Dedupe::Content);
    }
}
