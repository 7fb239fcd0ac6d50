//! The `assent` binary: parse flags, load settings, start tracing, run the command.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    assent::allocator::tune();
    let cli = assent::cli::Cli::parse();
    let env: std::collections::HashMap<String, String> = std::env::vars().collect();
    let settings = match assent::commands::load_settings(&cli, &env) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("assent: {e:#}");
            return ExitCode::from(2);
        }
    };
    assent::logs::init(settings.log_format);
    match assent::commands::run(cli, settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("assent: {e:#}");
            ExitCode::FAILURE
        }
    }
}
