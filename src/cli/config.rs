//! `tapgate config check`: the effective settings, every layer applied, secrets redacted.
//!
//! [`crate::config`] loads and validates; this file only prints (TOML, as the file is written).

use clap::Subcommand;

use super::error::CliError;
use crate::config::Sources;

/// `tapgate config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (secrets redacted) after every layer is applied.
    Check,
}

/// Runs `tapgate config …`.
pub fn run(command: ConfigCommand, sources: &Sources) -> Result<(), CliError> {
    match command {
        ConfigCommand::Check => {
            let settings = sources.load()?;
            print!("{}", settings.to_toml());
            Ok(())
        }
    }
}
