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
