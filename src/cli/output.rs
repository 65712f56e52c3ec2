//! Where the commands write: results on stdout, logs on stderr.
//!
//! Results are pretty-printed JSON (except `config check`'s TOML and `token attenuate`'s bare
//! macaroon, printed by their commands). Logs go to stderr, coloured only on a terminal, so
//! stdout stays a clean result for scripts. Errors are printed by `main` (see `report`).

use super::Cli;
use super::error::CliError;

/// Sets up logging to stderr. Uses the configured filter when the configuration loads;
/// configuration errors are reported by the command itself.
pub fn init_tracing(cli: &Cli) {
    let filter = cli
        .sources()
        .load()
        .map(|s| s.log.filter)
        .unwrap_or_else(|_| "info".into());
    // `tapgate demo` tells its story on stderr as it goes; the info lines of the nodes and the
    // gateway it runs would bury it, so it logs warnings and errors unless a filter is set.
    #[cfg(all(feature = "node", feature = "sqlite"))]
    let filter = if matches!(cli.command, super::Command::Demo(_)) && filter == "info" {
        "warn".to_owned()
    } else {
        filter
    };
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only for a terminal: escape codes in a log file or a pipe are noise.
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // Secrets never reach a log line in either format: root keys, preimages and macaroons are
    // never logged, and their `Debug` output is redacted.
    let _ = match cli.log_format {
        super::LogFormat::Json => builder.json().with_current_span(false).try_init(),
        super::LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
}

/// Prints a command's result on stdout, pretty-printed.
pub(super) fn print_json(value: &serde_json::Value) -> Result<(), CliError> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
