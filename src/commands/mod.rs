//! The subcommands. Each loads what it needs from the settings and prints a short, clear result; errors
//! become a one-line message and a non-zero exit in `main`.

pub mod admin;
pub mod progress;
pub mod seed;
pub mod serve;
pub mod site;

use std::collections::HashMap;

use anyhow::Context;

use crate::cli::{Cli, Command, KeyCommand, UserCommand};
use crate::settings::Settings;
use crate::storage::Database;

/// Loads the settings for a command line and environment (no side effects).
pub fn load_settings(cli: &Cli, env: &HashMap<String, String>) -> anyhow::Result<Settings> {
    let file = match &cli.global.config {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?,
        ),
        None => None,
    };
    Ok(Settings::load(file.as_deref(), env, &cli.global.flags())?)
}

pub fn run(cli: Cli, settings: Settings) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve::run(settings),
        Command::Site(cmd) => site::run(&settings, cmd),
        Command::User(UserCommand::Add {
            email,
            admin,
            password_stdin,
        }) => admin::user_add(&settings, &email, admin, password_stdin),
        Command::Key(KeyCommand::Create { email, name }) => {
            admin::key_create(&settings, &email, &name)
        }
        Command::Purge { as_of, dry_run } => admin::purge(&settings, as_of.as_deref(), dry_run),
        Command::Seed { site, events, days } => seed::run(&settings, &site, events, days),
        Command::Backup { file } => admin::backup(&settings, &file),
        Command::MigrateTo { url } => admin::migrate_to(&settings, &url),
        Command::Consents(crate::cli::ConsentsCommand::Export {
            site,
            from,
            to,
            format,
        }) => admin::consents_export(&settings, &site, from.as_deref(), to.as_deref(), &format),
    }
}

/// Opens (creating and migrating) the database for a command.
pub fn open(settings: &Settings) -> anyhow::Result<Database> {
    Database::connect(&settings.location())
        .with_context(|| format!("cannot open the database {}", settings.store_name()))
}
