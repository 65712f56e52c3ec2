//! `tapgate demo`: the whole story in one command. Starts a simnet in this process (or uses
//! the network `--network` names), runs [`crate::demo::run`] (the gateway, alice paying in the
//! stablecoin, bob in sats, alice's sub-agent refused over its budget), prints progress on
//! stderr as it happens and the table on stdout (`--json`: the report as JSON), then stops
//! everything through one [`Shutdown`].

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use rust_decimal::Decimal;
use serde_json::json;

use super::error::CliError;
use crate::demo::{self, Demo, Report, Step};
use crate::shutdown::Shutdown;
use crate::store::Rail;

/// How long the tasks get to stop at the end.
const DRAIN: Duration = Duration::from_secs(5);

/// `tapgate demo`
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Run against this network (DIR/network.toml, as `tapgate simnet --dir DIR` or
    /// integration/regtest/up.sh DIR write it) instead of a simnet started in this process.
    #[arg(long, value_name = "FILE")]
    pub network: Option<PathBuf>,
    /// Keep the run's files (the gateway's settings, the buyers' ledgers, the simnet's
    /// certificates) in DIR; without it they go to a temporary directory removed at the end.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `tapgate demo`.
pub async fn run(args: &DemoArgs) -> Result<(), CliError> {
    let started = Instant::now();
    let shutdown = Shutdown::new();
    let dir = args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("tapgate-demo-{}", std::process::id()))
    });
    let progress = move |line: &str| eprintln!("[{:>5} ms] {line}", started.elapsed().as_millis());
    let mut simnet = None;
    let network_file = match &args.network {
        Some(file) => file.clone(),
        None => {
            let token = shutdown.token();
            let running = crate::simnet::run::start(
                &dir.join("simnet"),
                crate::simnet::model::SimnetConfig::default(),
                async move { token.cancelled().await },
            )
            .await?;
            progress("simnet up: alice holds the USD stablecoin, bob sats, merchant sells");
            let file = running.network_file().to_owned();
            simnet = Some(running);
            file
        }
    };
    let run = Demo {
        network_file,
        work_dir: dir.join("demo"),
    };
    let outcome = demo::run(&run, &shutdown, &progress).await;
    // Everything stops whether the scenario finished or not.
    let drained = shutdown.drain(DRAIN).await;
    let stopped = match simnet {
        Some(s) => s.wait().await.map(|_| ()),
        None => Ok(()),
    };
    if args.dir.is_none() {
        // Best effort: a temporary directory left behind is harmless.
        let _ = std::fs::remove_dir_all(&dir);
    }
    let report = outcome.map_err(|e| CliError::Demo(Box::new(e)))?;
    drained.map_err(CliError::Drain)?;
    stopped?;
    let elapsed = started.elapsed();
    progress("stopped cleanly");
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "report": report,
                "summary": summary(&report, elapsed),
                "elapsed_ms": elapsed.as_millis() as u64,
            }))?
        );
    } else {
        print!("{}", table(&report));
        println!("{}", summary(&report, elapsed));
    }
    Ok(())
}

/// `1234567` as `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `$0.50`, `$1.00`, `$0.002`: cents at least, no trailing zeros beyond them.
fn dollars(d: Decimal) -> String {
    let mut d = d.normalize();
    if d.scale() < 2 {
        d.rescale(2);
    }
    format!("${d}")
}

fn millis(ms: Option<f64>) -> String {
    ms.map_or_else(|| "-".into(), |m| format!("{m:.1} ms"))
}

fn cells(s: &Step) -> Vec<String> {
    let dash = || "-".to_owned();
    let rail = match s.rail {
        Some(r) => r.as_str().to_owned(),
        None => "balance".into(),
    };
    let received = match (s.seller_units, s.seller_msat) {
        (Some(u), _) => format!("{} units", grouped(u)),
        (None, Some(m)) => format!("{} msat", grouped(m)),
        _ => dash(),
    };
    let result = match (&s.refusal, s.balance_usd) {
        (Some(r), _) => format!("{} {}", s.status, r.code),
        (None, Some(b)) => format!("{} (balance {})", s.status, dollars(b)),
        (None, None) => s.status.to_string(),
    };
    vec![
        s.who.to_owned(),
        s.service.to_owned(),
        dollars(s.price_usd),
        s.charge_usd.map_or_else(dash, dollars),
        rail,
        s.units.map_or_else(dash, grouped),
        s.msat.map_or_else(dash, grouped),
        received,
        millis(s.challenge_ms),
        millis(s.pay_ms),
        millis(Some(s.call_ms)),
        result,
    ]
}

/// The report as an aligned text table, one row a step, then the refusal's reason.
fn table(report: &Report) -> String {
    let header = [
        "who",
        "service",
        "USD price",
        "invoice USD",
        "rail",
        "asset units",
        "msat",
        "seller received",
        "challenge",
        "pay",
        "paid call",
        "result",
    ];
    let mut rows = vec![header.map(str::to_owned).to_vec()];
    rows.extend(report.steps.iter().map(cells));
    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    for s in &report.steps {
        if let Some(r) = &s.refusal {
            out.push_str(&format!(
                "{} refused on {}: {}: {}\n",
                s.who, s.service, r.code, r.message
            ));
        }
    }
    out
}

/// One line: who paid what, what the seller got, how the sub-agent ended, how long it took.
fn summary(report: &Report, elapsed: Duration) -> String {
    let on = |rail| report.steps.iter().filter(|s| s.rail == Some(rail)).count();
    let (passed, refusal) = report.sub_agent();
    let ending = refusal.map_or_else(
        || "was never refused".to_owned(),
        |r| format!("then was refused {}", r.code),
    );
    format!(
        "{} payments ({} in the stablecoin, {} in sats): the seller received {} units and {} msat; under {} the sub-agent made {} call(s) from alice's balance, {}; {:.1} s in all",
        report.payments(),
        on(Rail::Asset),
        on(Rail::Sats),
        grouped(report.seller_units()),
        grouped(report.seller_msat()),
        report.sub_agent_caveat,
        passed,
        ending,
        elapsed.as_secs_f64(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000), "1,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }

    #[test]
    fn dollars_show_cents_at_least() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(dollars(d("0.5")), "$0.50");
        assert_eq!(dollars(d("1")), "$1.00");
        assert_eq!(dollars(d("0.0020")), "$0.002");
        assert_eq!(dollars(d("0.998000")), "$0.998");
    }
}
