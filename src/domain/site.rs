//! Sites: what a website asks its visitors (categories with their services and cookies, texts per
//! language), where it may be embedded (domains), and its policy revision. Validation, the TOML form that
//! `assent site show/update` exchange, and the fingerprint that decides when the revision must move.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::domain::i18n;

pub const DEFAULT_CATEGORIES: [&str; 4] = ["necessary", "analytics", "marketing", "preferences"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Cookie name patterns (`*` is a wildcard) that the banner deletes when the category is refused.
    #[serde(default)]
    pub cookies: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    pub id: String,
    /// Always granted, shown as a locked switch (only `necessary` by default).
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub services: Vec<Service>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SiteOptions {
    pub floating_button: bool,
    /// Track single-page-app navigations (history API and hash changes); on for new sites, as peers
    /// (Plausible, Umami) do. A stored site keeps the value it was saved with.
    pub spa: bool,
    pub google_consent_mode: bool,
    pub outbound_links: bool,
    pub file_downloads: bool,
    /// Pages served over plain http (not https) may use the API too. Loopback hosts always may.
    pub allow_http: bool,
    /// A privacy notice of the site's own; empty means Assent's generated `/s/{site}/privacy`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub privacy_url: String,
}

impl Default for SiteOptions {
    fn default() -> Self {
        SiteOptions {
            floating_button: true,
            spa: true,
            google_consent_mode: false,
            outbound_links: true,
            file_downloads: true,
            allow_http: false,
            privacy_url: String::new(),
        }
    }
}

/// Who answers for the processing, as the privacy notice and the register name them (GDPR arts. 13 and 30).
/// Every field may be empty: the notice then names the site and says what is missing rather than inventing it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Controller {
    /// The controller's legal name (the site's name when empty).
    pub name: String,
    /// Postal address, one line or several.
    pub address: String,
    /// Where visitors write about their data.
    pub email: String,
    /// The data protection officer, if any (name and how to reach them).
    pub dpo: String,
    /// The supervisory authority visitors may complain to; empty: the notice names the authority of the
    /// visitor's country of residence, work or the alleged infringement (art. 77), in general terms.
    pub supervisory_authority: String,
}

/// A site's settings as stored and as edited. `texts` holds only the site's overrides of the shipped
/// texts, per language; [`SiteConfig::merged_texts`] gives what visitors see.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    pub name: String,
    pub domains: Vec<String>,
    /// The IANA time zone the site's statistics are counted in.
    #[serde(default = "utc")]
    pub timezone: String,
    pub default_language: String,
    pub languages: Vec<String>,
    #[serde(default)]
    pub options: SiteOptions,
    #[serde(default)]
    pub controller: Controller,
    pub categories: Vec<Category>,
    #[serde(default)]
    pub texts: BTreeMap<String, Value>,
}

/// The TOML document of `site show` / `site update`: the editable config plus read-only facts.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteDocument {
    id: String,
    revision: u32,
    name: String,
    domains: Vec<String>,
    #[serde(default = "utc")]
    timezone: String,
    default_language: String,
    languages: Vec<String>,
    #[serde(default)]
    options: SiteOptions,
    #[serde(default)]
    controller: Controller,
    categories: Vec<Category>,
    #[serde(default)]
    texts: BTreeMap<String, Value>,
}

fn utc() -> String {
    "UTC".into()
}

pub fn valid_site_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')
        })
}

fn valid_category_id(id: &str) -> bool {
    (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_'))
}

fn valid_language(l: &str) -> bool {
    (2..=8).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
}

/// A host name as a site domain: lower case, no scheme, port or path.
pub fn normalize_domain(raw: &str) -> Result<String, String> {
    let d = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
    };
    if d.parse::<std::net::IpAddr>().is_ok() || (d.len() <= 253 && d.split('.').all(ok_label)) {
        Ok(d)
    } else {
        Err(format!(
            "invalid domain {raw:?}: give a host name such as example.com (no scheme, port or path)"
        ))
    }
}

/// Whether `host` is `domain` or one of its subdomains. Compared as bytes: a host that is not ASCII
/// cannot be cut inside a character.
pub fn host_matches(host: &str, domain: &str) -> bool {
    let host = host.trim_end_matches('.').as_bytes();
    let domain = domain.as_bytes();
    host.eq_ignore_ascii_case(domain)
        || (host.len() > domain.len()
            && host[host.len() - domain.len()..].eq_ignore_ascii_case(domain)
            && host[host.len() - domain.len() - 1] == b'.')
}

/// localhost, its subdomains and loopback addresses: a developer's own machine.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_matches(['[', ']']);
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback())
}

impl SiteConfig {
    /// The settings of a new site: the four default categories and every shipped language.
    pub fn new_default(name: &str, domains: Vec<String>) -> SiteConfig {
        let service = |name: &str, cookies: &[&str]| Service {
            name: name.to_string(),
            description: String::new(),
            cookies: cookies.iter().map(|c| c.to_string()).collect(),
        };
        SiteConfig {
            name: name.to_string(),
            domains,
            timezone: utc(),
            default_language: "en".into(),
            languages: i18n::SHIPPED.iter().map(|l| l.to_string()).collect(),
            options: SiteOptions::default(),
            controller: Controller::default(),
            categories: vec![
                Category {
                    id: "necessary".into(),
                    required: true,
                    services: vec![service("Assent consent", &["assent_consent"])],
                },
                Category {
                    id: "analytics".into(),
                    required: false,
                    services: vec![service("Assent analytics", &[])],
                },
                Category {
                    id: "marketing".into(),
                    required: false,
                    services: vec![],
                },
                Category {
                    id: "preferences".into(),
                    required: false,
                    services: vec![],
                },
            ],
            texts: BTreeMap::new(),
        }
    }

    pub fn allows_host(&self, host: &str) -> bool {
        self.domains.iter().any(|d| host_matches(host, d))
    }

    /// Whether a page of `origin` (an `Origin` header) may call this site's API and read its answers:
    /// https on one of the site's domains or their subdomains, on the default port, written exactly as a
    /// browser writes it (no trailing dot, no path). Plain http only where the site allows it; loopback
    /// hosts (local development) with either scheme and any port.
    pub fn allows_origin(&self, origin: &str) -> bool {
        let Ok(url) = url::Url::parse(origin) else {
            return false;
        };
        let Some(host) = url.host_str() else {
            return false;
        };
        let host = host.trim_matches(['[', ']']);
        if origin != url.origin().ascii_serialization()
            || host.ends_with('.')
            || !self.domains.iter().any(|d| host_matches(host, d))
        {
            return false;
        }
        let loopback = is_loopback_host(host);
        match url.scheme() {
            "https" => loopback || url.port().is_none(),
            "http" => loopback || (self.options.allow_http && url.port().is_none()),
            _ => false,
        }
    }

    pub fn category(&self, id: &str) -> Option<&Category> {
        self.categories.iter().find(|c| c.id == id)
    }

    /// Checks everything a visitor or the banner relies on; the message names the offending value.
    pub fn validate(&mut self) -> Result<(), String> {
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return Err("name must be 1-200 characters".into());
        }
        let c = &mut self.controller;
        for (key, value) in [
            ("controller.name", &mut c.name),
            ("controller.address", &mut c.address),
            ("controller.email", &mut c.email),
            ("controller.dpo", &mut c.dpo),
            (
                "controller.supervisory_authority",
                &mut c.supervisory_authority,
            ),
        ] {
            *value = value.trim().to_string();
            if value.len() > 1000 || value.chars().any(|ch| ch.is_control() && ch != '\n') {
                return Err(format!(
                    "{key}: at most 1000 characters, no control characters but line breaks"
                ));
            }
        }
        let email = &c.email;
        if !email.is_empty()
            && (email.contains(char::is_whitespace)
                || email.split('@').count() != 2
                || email.starts_with('@')
                || email.ends_with('@'))
        {
            return Err(format!(
                "controller.email: {email:?} is not an email address"
            ));
        }
        if self.domains.is_empty() {
            return Err("domains: a site needs at least one domain".into());
        }
        let mut domains = Vec::new();
        for d in &self.domains {
            let d = normalize_domain(d)?;
            if !domains.contains(&d) {
                domains.push(d);
            }
        }
        self.domains = domains;
        if crate::domain::stats::period::Zone::parse(&self.timezone).is_none() {
            return Err(format!(
                "timezone: unknown time zone {:?}: use an IANA name such as \"Europe/Paris\" or \"UTC\"",
                self.timezone
            ));
        }
        let mut seen = Vec::new();
        for c in &self.categories {
            if !valid_category_id(&c.id) {
                return Err(format!(
                    "invalid category id {:?}: use 1-32 of a-z 0-9 - _",
                    c.id
                ));
            }
            if seen.contains(&c.id) {
                return Err(format!("category {:?} is listed twice", c.id));
            }
            seen.push(c.id.clone());
            for s in &c.services {
                if s.name.trim().is_empty() {
                    return Err(format!("category {:?}: a service needs a name", c.id));
                }
                for cookie in &s.cookies {
                    if cookie.is_empty()
                        || cookie.len() > 200
                        || cookie
                            .chars()
                            .any(|ch| ch.is_whitespace() || ch == ';' || ch == '=')
                    {
                        return Err(format!(
                            "invalid cookie pattern {cookie:?} in service {:?}",
                            s.name
                        ));
                    }
                }
            }
        }
        match self.category("necessary") {
            Some(c) if c.required => {}
            Some(_) => return Err("category \"necessary\" must have required = true".into()),
            None => return Err("the category \"necessary\" cannot be removed".into()),
        }
        if self.languages.is_empty() {
            return Err("languages: list at least one language".into());
        }
        for l in &self.languages {
            if !valid_language(l) {
                return Err(format!(
                    "invalid language {l:?}: use a code such as \"en\" or \"pt-br\""
                ));
            }
        }
        if !self.languages.contains(&self.default_language) {
            return Err(format!(
                "default_language {:?} is not in languages",
                self.default_language
            ));
        }
        for (lang, t) in &self.texts {
            if !valid_language(lang) {
                return Err(format!("invalid language {lang:?} in texts"));
            }
            // Texts of a language the site does not offer are never shown, and `site show` would drop
            // them: refused, rather than kept where nobody sees them.
            if !self.languages.contains(lang) {
                return Err(format!(
                    "texts.{lang}: {lang:?} is not one of the site's languages: add it to languages or \
                     remove its texts"
                ));
            }
            i18n::check_overrides(t).map_err(|e| format!("texts.{lang}: {e}"))?;
        }
        if !self.options.privacy_url.is_empty() {
            let u = url::Url::parse(&self.options.privacy_url)
                .map_err(|e| format!("invalid privacy_url {:?}: {e}", self.options.privacy_url))?;
            if !matches!(u.scheme(), "http" | "https") {
                return Err(format!(
                    "invalid privacy_url {:?}: must be http(s)",
                    self.options.privacy_url
                ));
            }
        }
        Ok(())
    }

    /// The texts visitors see, per offered language: shipped defaults overlaid with the site's overrides.
    pub fn merged_texts(&self) -> BTreeMap<String, Value> {
        self.languages
            .iter()
            .map(|l| {
                (
                    l.clone(),
                    i18n::merged(
                        l,
                        &self.default_language,
                        self.texts.get(l),
                        &self.categories,
                    ),
                )
            })
            .collect()
    }

    /// A fingerprint of what visitors are asked (categories, services, cookies and every text). A change
    /// means the policy revision must move and visitors be asked again.
    pub fn policy_hash(&self) -> String {
        let asked = serde_json::json!({
            "categories": self.categories,
            "texts": self.merged_texts(),
        });
        // serde_json::Value maps are ordered (BTreeMap), so this serialization is canonical.
        hex::encode(Sha256::digest(asked.to_string().as_bytes()))
    }

    /// The TOML that `assent site show` prints, with merged texts so they can be edited in place.
    pub fn to_toml(&self, id: &str, revision: u32) -> String {
        let doc = SiteDocument {
            id: id.to_string(),
            revision,
            name: self.name.clone(),
            domains: self.domains.clone(),
            timezone: self.timezone.clone(),
            default_language: self.default_language.clone(),
            languages: self.languages.clone(),
            options: self.options.clone(),
            controller: self.controller.clone(),
            categories: self.categories.clone(),
            texts: self.merged_texts(),
        };
        let body =
            toml::to_string(&doc).unwrap_or_else(|e| format!("# could not render settings: {e}\n"));
        format!(
            "# Settings of site {id:?}. Edit and apply with: assent site update {id} --file FILE\n\
             # `id` and `revision` are read-only; a change to categories or texts bumps the revision.\n{body}"
        )
    }

    /// Parses an edited `site show` document for site `id`. Errors name the line.
    pub fn from_toml(id: &str, text: &str) -> Result<SiteConfig, String> {
        let doc: SiteDocument =
            toml::from_str(text).map_err(|e| e.to_string().trim().to_string())?;
        if doc.id != id {
            return Err(format!(
                "{}: id is {:?} but you are updating {id:?}",
                line_ref(text, "id"),
                doc.id
            ));
        }
        let mut cfg = SiteConfig {
            name: doc.name,
            domains: doc.domains,
            timezone: doc.timezone,
            default_language: doc.default_language,
            languages: doc.languages,
            options: doc.options,
            controller: doc.controller,
            categories: doc.categories,
            texts: BTreeMap::new(),
        };
        // Store only what differs from the shipped texts, so later releases' wording still reaches
        // languages the site did not touch.
        for (lang, t) in doc.texts {
            let base = i18n::merged(&lang, &cfg.default_language, None, &cfg.categories);
            if let Some(diff) = i18n::diff(&base, &t) {
                cfg.texts.insert(lang, diff);
            }
        }
        cfg.validate()
            .map_err(|e| format!("{}: {e}", locate(text, &e)))?;
        Ok(cfg)
    }
}

/// "line N" of the first line that sets `key`.
fn line_ref(text: &str, key: &str) -> String {
    text.lines()
        .position(|l| l.trim_start().starts_with(key) && l.contains('='))
        .map(|i| format!("line {}", i + 1))
        .unwrap_or_else(|| "settings".into())
}

/// Finds the line of a validation error by the first quoted value it names.
fn locate(text: &str, message: &str) -> String {
    let quoted = message.split('"').nth(1).filter(|q| !q.is_empty());
    if let Some(q) = quoted {
        let needle = format!("\"{q}\"");
        if let Some(i) = text.lines().position(|l| l.contains(&needle)) {
            return format!("line {}", i + 1);
        }
    }
    let key = message.split([':', ' ']).next().unwrap_or("");
    line_ref(text, key)
}

#[cfg(test)]
mod tests;
