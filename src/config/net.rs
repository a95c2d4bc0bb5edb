//! The path to the servers: which roots are trusted (`--ca-cert`, `CA_CERT`,
//! `--insecure`) and which proxy each request goes through. Read once here so a bad CA file
//! or proxy URL stops the run before any request.

use std::path::PathBuf;

use anyhow::anyhow;

use crate::cli::Cli;
use crate::net::proxy::Proxies;
use crate::net::tls::{SystemRoots, Trust};
use crate::settings::Settings;

/// `--proxy`/`PROXY`, `--noproxy`/`NO_PROXY`, then the conventional variables (see
/// `proxy`). A proxy URL that cannot be used stops the run here, naming its source, when
/// it is certain to be used (`Proxies::resolve`).
pub(super) fn resolve_proxies(cli: &Cli, settings: &Settings) -> anyhow::Result<Proxies> {
    let s = &settings.section;
    let proxy = match (&cli.proxy, &s.proxy) {
        (Some(flag), _) => Some((flag.as_str(), "--proxy".to_string())),
        (None, Some(key)) => Some((key.as_str(), settings.origin("PROXY"))),
        (None, None) => None,
    };
    let no_proxy = cli.noproxy.as_deref().or(s.no_proxy.as_deref());
    Proxies::resolve(proxy, no_proxy, |name| settings.proxy_var(name))
        .map_err(|(origin, e)| anyhow!("{origin}: {e}"))
}

/// `--ca-cert` (all of them), else `CA_CERT`, on top of the machine's roots. A CA file
/// that cannot be used names the flag or key it came from.
pub(super) fn resolve_trust(cli: &Cli, settings: &Settings) -> anyhow::Result<Trust> {
    let (files, origin) = match (&cli.ca_cert, &settings.section.ca_cert) {
        (flags, _) if !flags.is_empty() => (flags.clone(), "--ca-cert".to_string()),
        (_, Some(files)) => {
            (files.clone().into_vec().into_iter().map(PathBuf::from).collect(), settings.origin("CA_CERT"))
        }
        (_, None) => (Vec::new(), String::new()),
    };
    Trust::new(SystemRoots::load(), &files, cli.insecure).map_err(|e| anyhow!("{origin}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::config::testing::resolve;
    use crate::config::testing::*;
    use url::Url;

    #[test]
    fn bad_ca_files_name_the_flag_or_key() {
        let site = "SCRAPER:\n  URL: https://h/\n  ITEM: x\n";
        let e = error(site, &["--ca-cert", "/no/such/ca.pem"]);
        assert!(e.starts_with("--ca-cert: /no/such/ca.pem: cannot read"), "{e}");
        let e = error(&format!("{site}  CA_CERT: [/no/such/ca.pem]\n"), &[]);
        assert!(e.starts_with("test.yaml: SCRAPER.CA_CERT: /no/such/ca.pem: cannot read"), "{e}");
        let c = resolve(site, &["--insecure"]).unwrap();
        assert!(c.trust.insecure && c.trust.extra_roots == 0);
    }

    #[test]
    fn proxies_from_flags_settings_and_the_environment() {
        let yaml = "SCRAPER:\n  URL: http://h.example/\n  ITEM: cats\n";
        let target = Url::parse("http://h.example/p1/cats.html").unwrap();
        let via = |c: &Config| c.proxies.for_url(&target).map(|p| p.to_string());
        let env = |vars: &[(&str, &str)]| {
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>()
        };
        let with_env = |yaml: &str, args: &[&str], vars: &[(&str, &str)]| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("s.yaml");
            std::fs::write(&path, yaml).unwrap();
            Config::resolve(Settings::load_with_env(Some(&path), env(vars)).unwrap(), &cli(args), None)
        };

        assert_eq!(via(&resolve(yaml, &[]).unwrap()), None, "no proxy unless asked");
        let from_env = with_env(yaml, &[], &[("http_proxy", "http://env:1")]).unwrap();
        assert_eq!(via(&from_env).as_deref(), Some("http://env:1"));
        let key =
            with_env(&format!("{yaml}  PROXY: key:2\n"), &[], &[("http_proxy", "http://env:1")]).unwrap();
        assert_eq!(via(&key).as_deref(), Some("http://key:2"), "PROXY beats the environment");
        let flag = resolve(&format!("{yaml}  PROXY: key:2\n"), &["--proxy", "flag:3"]).unwrap();
        assert_eq!(via(&flag).as_deref(), Some("http://flag:3"), "--proxy beats PROXY");
        let none = with_env(yaml, &["--proxy", ""], &[("http_proxy", "http://env:1")]).unwrap();
        assert_eq!(via(&none), None, "--proxy '' is no proxy");
        let bypassed = resolve(&format!("{yaml}  PROXY: key:2\n  NO_PROXY: .example\n"), &[]).unwrap();
        assert_eq!(via(&bypassed), None);
        let demo = Url::parse("http://127.0.0.1:4000/").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s.yaml"), yaml).unwrap();
        let settings =
            Settings::load_with_env(Some(&dir.path().join("s.yaml")), env(&[("http_proxy", "http://env:1")]))
                .unwrap();
        let c = Config::resolve(settings, &cli(&["--demo"]), Some(&demo)).unwrap();
        assert!(!c.proxies.any(), "the demo gallery is on this machine");

        let bad = resolve(&format!("{yaml}  PROXY: socks4://s:1\n"), &[]).unwrap_err().to_string();
        assert!(bad.contains("SCRAPER.PROXY") && bad.contains("unsupported proxy scheme"), "{bad}");
        let bad = with_env(yaml, &[], &[("ALL_PROXY", "http://")]).unwrap_err().to_string();
        assert!(bad.starts_with("environment ALL_PROXY: not a proxy URL"), "{bad}");
        let lazy = with_env(yaml, &[], &[("HTTPS_PROXY", "http://")]).unwrap();
        assert_eq!(lazy.proxies.unusable().count(), 1, "only https targets would use it: not an error yet");
        let socks = resolve(&format!("{yaml}  PROXY: socks5h://s:1\n"), &[]).unwrap();
        assert_eq!(via(&socks).as_deref(), Some("socks5h://s:1"));
    }
}
