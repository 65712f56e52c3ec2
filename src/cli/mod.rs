//! The `tapgate` command line: the clap definitions and the dispatch to one file per command.
//!
//! Commands print their result on stdout (JSON; TOML for `config check`; the bare macaroon for
//! `token attenuate`) and errors on stderr, and exit non-zero on any error. Root keys are never
//! printed. The only preimage printed is the one `node pay` obtains: it is the payer's proof of
//! payment, which the payer needs. `token list` shows cached tokens' ids, never their
//! macaroons or preimages. `token inspect` shows a macaroon's contents, not its
//! signature; `token mint` and `token attenuate` print whole macaroons, which are bearer
//! credentials.
//!
//! Input is checked before anything is written or dialled: flag values by the parsers in
//! [`parse`], arguments that contradict each other by clap, caveats before the store is opened.
//!
//! | file | owns |
//! |---|---|
//! | `mod.rs` | [`Cli`], [`Command`], [`run`]: nothing but parsing and dispatch |
//! | [`config`] | `config check` |
//! | [`token`] | `token inspect\|attenuate\|mint\|verify\|revoke` (over [`crate::mint`]); `token list`, the client's cached tokens without secrets (feature `sqlite`) |
//! | [`price`] | `price convert` |
//! | `demo` | `demo`: simnet, the gateway and three buyers in one process, a table of who paid what (over `crate::demo`; features `node`, `sqlite`) |
//! | `simnet` | `simnet` (feature `node`) |
//! | `node` | `node … info\|balance\|invoice\|quote\|pay` (feature `node`) |
//! | `pay` | `pay URL`, curl-like, paying a `402` under dollar caps (features `node`, `sqlite`) |
//! | `wallet` | `wallet spent`, the client's ledger (feature `sqlite`) |
//! | [`error`] | [`CliError`], the messages a user reads |
//! | [`output`] | stdout and stderr: JSON results, logging |
//! | [`parse`], [`report`], `spend_cap` | flag values, error causes on stderr, `--max-usd` |
//!
//! A command file parses its arguments, calls the library and prints; the work belongs in the
//! library, where the gateway can call the same code.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::Sources;

pub mod config;
#[cfg(all(feature = "node", feature = "sqlite"))]
pub mod demo;
pub mod error;
#[cfg(feature = "node")]
pub mod node;
pub mod output;
pub mod parse;
#[cfg(all(feature = "node", feature = "sqlite"))]
pub mod pay;
pub mod price;
pub mod report;
#[cfg(feature = "node")]
pub mod serve;
#[cfg(feature = "node")]
pub mod simnet;
#[cfg(feature = "node")]
pub mod spend_cap;
pub mod token;
#[cfg(feature = "sqlite")]
pub mod wallet;

pub use error::CliError;
pub use output::init_tracing;

/// tapgate: L402 for APIs priced in dollars, paid in sats or a Taproot Assets stablecoin.
#[derive(Debug, Parser)]
#[command(name = "tapgate", version, about)]
pub struct Cli {
    /// Configuration file (default: config/tapgate.toml when it exists).
    #[arg(long, global = true, value_name = "FILE", env = "TAPGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Override one setting, highest precedence; repeatable (e.g. --set store.backend=memory).
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Log lines as text (default) or JSON objects, one per line (for a log collector).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "TAPGATE_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written (on stderr).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Configuration.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// L402 tokens.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Prices: check what a dollar price comes to in asset units and msat.
    #[command(subcommand)]
    Price(price::PriceCommand),
    /// Try it: a simnet, the gateway and three buyers in one process; prints who paid what.
    #[cfg(all(feature = "node", feature = "sqlite"))]
    Demo(demo::DemoArgs),
    /// Start the simulated regtest network (alice, bob, edge, merchant) and run until Ctrl-C.
    #[cfg(feature = "node")]
    Simnet(simnet::SimnetArgs),
    /// Talk to one node of a simnet, Polar or real network.
    #[cfg(feature = "node")]
    Node(node::NodeArgs),
    /// Run the gateway: sell the configured services, priced in dollars, over L402.
    #[cfg(feature = "node")]
    Serve(serve::ServeArgs),
    /// Send an HTTP request like curl, paying its L402 challenge under dollar caps.
    #[cfg(all(feature = "node", feature = "sqlite"))]
    Pay(pay::PayArgs),
    /// The client's ledger of payments.
    #[cfg(feature = "sqlite")]
    #[command(subcommand)]
    Wallet(wallet::WalletCommand),
}

impl Cli {
    fn sources(&self) -> Sources {
        Sources {
            file: self.config.clone(),
            overrides: self.overrides.clone(),
            env: true,
        }
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let sources = cli.sources();
    match cli.command {
        Command::Config(command) => config::run(command, &sources),
        Command::Token(command) => token::run(command, &sources).await,
        Command::Price(command) => price::run(command),
        #[cfg(all(feature = "node", feature = "sqlite"))]
        Command::Demo(args) => demo::run(&args).await,
        #[cfg(feature = "node")]
        Command::Simnet(args) => simnet::run(&args).await,
        #[cfg(feature = "node")]
        Command::Node(args) => node::run(&args, &sources).await,
        #[cfg(feature = "node")]
        Command::Serve(args) => serve::run(&args, &sources).await,
        #[cfg(all(feature = "node", feature = "sqlite"))]
        Command::Pay(args) => pay::run(&args, &sources).await,
        #[cfg(feature = "sqlite")]
        Command::Wallet(command) => wallet::run(&command, &sources).await,
    }
}
