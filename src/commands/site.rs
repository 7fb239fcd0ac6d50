//! `assent site add/list/remove/show/update`.

use anyhow::{Context, bail};

use crate::cli::SiteCommand;
use crate::domain::site::{SiteConfig, valid_site_id};
use crate::settings::Settings;
use crate::storage::Database;

pub fn snippet(settings: &Settings, id: &str) -> String {
    format!(
        "<script src=\"{}/s/{id}/assent.js\" defer></script>",
        settings.public_url
    )
}

/// Creates a site with the default categories and texts.
pub fn add(
    db: &mut Database,
    id: &str,
    domains: Vec<String>,
    name: Option<String>,
) -> anyhow::Result<()> {
    if !valid_site_id(id) {
        bail!("invalid site id {id:?}: use 1-64 of a-z 0-9 . - _");
    }
    let mut cfg = SiteConfig::new_default(name.as_deref().unwrap_or(id), domains);
    cfg.validate().map_err(anyhow::Error::msg)?;
    db.add_site(id, &cfg, crate::now())?;
    Ok(())
}

pub fn run(settings: &Settings, cmd: SiteCommand) -> anyhow::Result<()> {
    let mut db = super::open(settings)?;
    match cmd {
        SiteCommand::Add { id, domains, name } => {
            add(&mut db, &id, domains, name)?;
            println!(
                "Added site {id}. Put this in the <head> of every page:\n{}",
                snippet(settings, &id)
            );
        }
        SiteCommand::List => {
            for s in db.sites()? {
                println!(
                    "{}\t{}\trevision {}\t{}",
                    s.id,
                    s.config.name,
                    s.revision,
                    s.config.domains.join(",")
                );
            }
        }
        SiteCommand::Remove { id } => {
            if !db.remove_site(&id)? {
                bail!("unknown site {id:?}");
            }
            println!("Removed site {id} and everything collected for it.");
        }
        SiteCommand::Register { id, format } => {
            let s = db
                .site(&id)?
                .with_context(|| format!("unknown site {id:?}"))?;
            let register = register(settings, &s);
            match format.as_str() {
                "json" => println!("{}", serde_json::to_string_pretty(&register)?),
                "md" => print!("{}", register_markdown(&register)),
                other => bail!("invalid --format {other:?}: use md or json"),
            }
        }
        SiteCommand::Show { id } => {
            let s = db
                .site(&id)?
                .with_context(|| format!("unknown site {id:?}"))?;
            print!("{}", s.config.to_toml(&s.id, s.revision));
        }
        SiteCommand::Update {
            id,
            file,
            bump_revision,
        } => {
            let current = db
                .site(&id)?
                .with_context(|| format!("unknown site {id:?}"))?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let cfg = SiteConfig::from_toml(&id, &text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let revision = db.update_site(&id, &cfg, bump_revision, crate::now())?;
            if revision != current.revision {
                println!(
                    "Updated site {id}; policy revision {} -> {revision}: visitors will be asked again.",
                    current.revision
                );
            } else {
                println!("Updated site {id}; policy revision stays {revision}.");
            }
        }
    }
    Ok(())
}

/// One processing activity of the register.
#[derive(Debug, serde::Serialize)]
pub struct Activity {
    pub purpose: String,
    pub legal_basis: String,
    pub data_subjects: String,
    pub personal_data: Vec<String>,
    pub recipients: String,
    pub transfers_outside_eu: String,
    pub retention: String,
}

#[derive(Debug, serde::Serialize)]
pub struct CookieEntry {
    pub name: String,
    pub category: String,
    pub service: String,
    pub lifetime: String,
}

/// A site's record of processing activities (GDPR article 30(1)), from its settings.
#[derive(Debug, serde::Serialize)]
pub struct Register {
    pub site: String,
    pub name: String,
    pub domains: Vec<String>,
    pub policy_revision: u32,
    pub controller: crate::domain::site::Controller,
    pub activities: Vec<Activity>,
    pub cookies: Vec<CookieEntry>,
    pub security_measures: Vec<String>,
}

pub fn register(settings: &Settings, s: &crate::storage::sites::SiteRow) -> Register {
    let cfg = &s.config;
    let retention = format!(
        "{} months, then deleted automatically (hourly retention run); a choice is valid {} months",
        settings.retention_months, settings.consent_months
    );
    let subjects = format!("visitors of {}", cfg.domains.join(", "));
    let mut activities = vec![Activity {
        purpose: "Recording visitors' consent choices and proving them (GDPR art. 7(1))".into(),
        legal_basis: "Legal obligation (art. 6(1)(c)); the consent cookie is strictly necessary (ePrivacy art. 5(3))".into(),
        data_subjects: subjects.clone(),
        personal_data: vec![
            "random consent identifier".into(),
            "time, policy revision and hash of the texts shown".into(),
            "choices per category, action, language, page path".into(),
        ],
        recipients: "none beyond the controller".into(),
        transfers_outside_eu: "none".into(),
        retention: retention.clone(),
    }];
    for c in cfg.categories.iter().filter(|c| !c.required) {
        if c.id == "analytics" {
            activities.push(Activity {
                purpose: "Audience statistics (first-party, opt-in)".into(),
                legal_basis: "Consent (art. 6(1)(a)), enforced by the server before anything is stored".into(),
                data_subjects: format!("{subjects} who granted analytics"),
                personal_data: vec![
                    "pseudonymous visitor key (SHA-256 of a site secret and the consent identifier)".into(),
                    "pages, events and their properties, engaged time".into(),
                    "referring host, UTM campaign tags".into(),
                    "country from the address cut to its network (the address is not stored)".into(),
                    "browser, operating system, device type, screen size class".into(),
                ],
                recipients: "none beyond the controller".into(),
                transfers_outside_eu: "none".into(),
                retention: retention.clone(),
            });
        } else {
            let services: Vec<&str> = c.services.iter().map(|s| s.name.as_str()).collect();
            activities.push(Activity {
                purpose: format!(
                    "Category {:?}: {}",
                    c.id,
                    if services.is_empty() {
                        "no service configured".to_string()
                    } else {
                        services.join(", ")
                    }
                ),
                legal_basis: "Consent (art. 6(1)(a)); scripts and iframes run only once it is given".into(),
                data_subjects: format!("{subjects} who granted {:?}", c.id),
                personal_data: vec!["what the listed services collect themselves".into()],
                recipients: if services.is_empty() {
                    "none".into()
                } else {
                    format!("the providers of {}", services.join(", "))
                },
                transfers_outside_eu: "as documented by those providers".into(),
                retention: "as set by those services; their cookies are deleted when the category is refused".into(),
            });
        }
    }
    let cookies = cfg
        .categories
        .iter()
        .flat_map(|c| {
            c.services.iter().flat_map(move |svc| {
                svc.cookies.iter().map(move |k| CookieEntry {
                    name: k.clone(),
                    category: c.id.clone(),
                    service: svc.name.clone(),
                    lifetime: if k == "assent_consent" {
                        format!("{} months at most", settings.consent_months)
                    } else {
                        "as set by the service".into()
                    },
                })
            })
        })
        .collect();
    Register {
        site: s.id.clone(),
        name: cfg.name.clone(),
        domains: cfg.domains.clone(),
        policy_revision: s.revision,
        controller: cfg.controller.clone(),
        activities,
        cookies,
        security_measures: vec![
            "client addresses cut to their network (IPv4 /24, IPv6 /48) before any use; never stored or logged".into(),
            "statistics stored only with a current analytics grant, decided by the server in the storing transaction".into(),
            "events linked to a pseudonymous key, never to the consent identifier itself".into(),
            "erasure and access by the visitor from the banner; erasure leaves a receipt without personal data".into(),
            "deleted data overwritten in the database file (secure_delete), the write-ahead log emptied after deletions, the file rewritten after retention runs".into(),
            "data kept on the controller's own server (SQLite); dashboard behind login with hashed sessions, CSRF tokens and rate limits".into(),
        ],
    }
}

pub fn register_markdown(r: &Register) -> String {
    use std::fmt::Write;
    let or_missing = |s: &str| {
        if s.is_empty() {
            "*not given*".to_string()
        } else {
            s.replace('\n', ", ")
        }
    };
    let c = &r.controller;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Record of processing activities: {} ({})\n",
        r.name, r.site
    );
    let _ = writeln!(
        md,
        "GDPR article 30(1). Domains: {}. Policy revision {}.\n",
        r.domains.join(", "),
        r.policy_revision
    );
    let _ = writeln!(md, "## Controller\n");
    let _ = writeln!(
        md,
        "- Name: {}",
        or_missing(if c.name.is_empty() { &r.name } else { &c.name })
    );
    let _ = writeln!(md, "- Address: {}", or_missing(&c.address));
    let _ = writeln!(md, "- Contact: {}", or_missing(&c.email));
    let _ = writeln!(md, "- Data protection officer: {}", or_missing(&c.dpo));
    let _ = writeln!(
        md,
        "- Supervisory authority: {}\n",
        if c.supervisory_authority.is_empty() {
            "the authority of the data subject's member state (art. 77)".to_string()
        } else {
            c.supervisory_authority.replace('\n', ", ")
        }
    );
    let _ = writeln!(md, "## Processing activities\n");
    for a in &r.activities {
        let _ = writeln!(md, "### {}\n", a.purpose);
        let _ = writeln!(md, "- Legal basis: {}", a.legal_basis);
        let _ = writeln!(md, "- Data subjects: {}", a.data_subjects);
        let _ = writeln!(md, "- Personal data: {}", a.personal_data.join("; "));
        let _ = writeln!(md, "- Recipients: {}", a.recipients);
        let _ = writeln!(md, "- Transfers outside the EU: {}", a.transfers_outside_eu);
        let _ = writeln!(md, "- Retention: {}\n", a.retention);
    }
    let _ = writeln!(md, "## Cookies\n");
    let _ = writeln!(md, "| name | category | service | lifetime |");
    let _ = writeln!(md, "|---|---|---|---|");
    for k in &r.cookies {
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | {} |",
            k.name, k.category, k.service, k.lifetime
        );
    }
    let _ = writeln!(md, "\n## Technical and organisational security measures\n");
    for m in &r.security_measures {
        let _ = writeln!(md, "- {m}");
    }
    md
}
