//! The `assent` binary: parse flags, load settings, start tracing, run the command.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = assent::cli::Cli::parse();
    let env: std::collections::HashMap<String, String> = std::env::vars().collect();
    let settings = match assent::commands::load_settings(&cli, &env) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("assent: {e:#}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,actix_server=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match assent::commands::run(cli, settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("assent: {e:#}");
            ExitCode::FAILURE
        }
    }
}
