//! `tapgate wallet spent`: the client's ledger, what `tapgate pay` spent, holds or could not
//! confirm, as JSON. Tokens are in the same file; `tapgate token list` shows them, without
//! their secrets.

use clap::Subcommand;
use serde_json::json;

use super::error::CliError;
use super::output::print_json;
use crate::client::ledger::{ClientLedger, FILE_NAME};
use crate::config::Sources;

/// `tapgate wallet …`
#[derive(Debug, Subcommand)]
pub enum WalletCommand {
    /// What was paid (settled), is held (reserved, or unknown: to follow up by payment hash)
    /// and was released, oldest first, with what is committed today and in total.
    Spent {
        /// Only spends reserved at or after this time, unix seconds.
        #[arg(long, value_name = "UNIX_SECS", default_value_t = 0)]
        since: u64,
    },
}

/// Runs `tapgate wallet …`.
pub async fn run(command: &WalletCommand, sources: &Sources) -> Result<(), CliError> {
    let settings = sources.load()?;
    let WalletCommand::Spent { since } = command;
    let ledger = ClientLedger::open(&settings.data_dir.join(FILE_NAME)).await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let spends = ledger.spends(*since).await?;
    let committed = ledger.committed(now).await?;
    print_json(&json!({
        "spends": spends,
        "committed_today_usd": committed.today_usd,
        "committed_total_usd": committed.total_usd,
    }))
}
