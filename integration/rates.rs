//! The rate cache (`tapgate::mint::rates`) over the real tapd adapter, against simnet: the
//! merchant's concurrent requests for a rate become one `AddAssetBuyOrder` at the edge, a new
//! one only when the quote nears its expiry, and a rejected RFQ reaches the caller and is not
//! cached. simnet and the cache share one manual clock, so a quote lifetime passes without
//! sleeping; the buy orders are counted as the quotes the edge holds for the merchant.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use tapgate::app::{NetworkAddresses, Node};
use tapgate::clock::{Clock, ManualClock, SystemClock};
use tapgate::lightning::error::BackendError;
use tapgate::lightning::tapd::TapdNode;
use tapgate::lightning::types::AssetRef;
use tapgate::mint::rates::{BuyQuotes, DEFAULT_MARGIN_SECS, RateCache, RateError};
use tapgate::simnet::model::{NodeId, SimnetConfig};
use tapgate::simnet::run::{RunOptions, RunningSimnet, start_with};

/// Units per buy order: at most 100,000, so the edge's sample-oracle rule gives 300 s quotes.
const ORDER_UNITS: u64 = 100_000;
const QUOTE_SECS: u64 = 300;

struct Net {
    running: RunningSimnet,
    clock: Arc<ManualClock>,
    asset: AssetRef,
    cache: Arc<RateCache<AssetRef, BuyQuotes<TapdNode>>>,
    _dir: tempfile::TempDir,
}

impl Net {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(SystemClock.now_unix()));
        let mut options = RunOptions::new(SimnetConfig::default());
        options.clock = clock.clone();
        let running = start_with(&dir.path().join("net"), options, std::future::pending())
            .await
            .unwrap();
        let addrs = NetworkAddresses::from_network_file(running.network_file()).unwrap();
        let merchant = Node::connect(addrs.node("merchant").unwrap()).unwrap();
        let source = BuyQuotes::new(
            merchant.tapd,
            addrs.edge_pubkey.clone().unwrap(),
            ORDER_UNITS,
            QUOTE_SECS,
        );
        Self {
            running,
            asset: addrs.asset.clone().unwrap(),
            cache: Arc::new(RateCache::new(source, clock.clone())),
            clock,
            _dir: dir,
        }
    }

    /// Buy quotes the edge holds for the merchant and still honours: one per `AddAssetBuyOrder`
    /// while none has expired.
    fn buy_orders(&self) -> usize {
        let now = self.clock.now_unix();
        self.running.model().read(|m| {
            m.peer_accepted_quotes(NodeId::Merchant, now)
                .unwrap()
                .buy
                .len()
        })
    }

    /// `n` concurrent requests for the asset's rate.
    async fn concurrent_rates(&self, n: usize) -> Vec<tapgate::mint::rates::LiveRate> {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let (cache, asset) = (Arc::clone(&self.cache), self.asset.clone());
                tokio::spawn(async move { cache.get(&asset).await })
            })
            .collect();
        let mut rates = Vec::new();
        for h in handles {
            rates.push(h.await.unwrap().unwrap());
        }
        rates
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_place_one_buy_order_per_quote_lifetime() {
    let net = Net::start().await;
    assert_eq!(net.buy_orders(), 0);
    let t0 = net.clock.now_unix();

    let rates = net.concurrent_rates(50).await;
    assert_eq!(net.buy_orders(), 1, "50 concurrent requests, one RFQ");
    let first = &rates[0];
    assert!(rates.iter().all(|r| r == first));
    assert_eq!(first.expires_at, t0 + QUOTE_SECS);
    // simnet's default edge: $100,000/BTC less its 1% spread, for a buy order.
    assert_eq!(first.rate.to_string(), "99000000000");

    // Served from the cache until the margin before expiry...
    net.clock.set(first.expires_at - DEFAULT_MARGIN_SECS - 1);
    net.concurrent_rates(10).await;
    assert_eq!(net.buy_orders(), 1);
    // ...then one new order for everyone.
    net.clock.set(first.expires_at - DEFAULT_MARGIN_SECS);
    let renewed = net.concurrent_rates(10).await;
    assert_eq!(
        net.buy_orders(),
        2,
        "the first quote is still live, and a second one"
    );
    assert!(renewed.iter().all(|r| r.expires_at > first.expires_at));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_rfq_reaches_every_caller_and_is_not_cached() {
    let net = Net::start().await;
    net.running
        .model()
        .update(|m| m.set_rfq_reject(Some("oracle unavailable".into())));
    let handles: Vec<_> = (0..10)
        .map(|_| {
            let (cache, asset) = (Arc::clone(&net.cache), net.asset.clone());
            tokio::spawn(async move { cache.get(&asset).await })
        })
        .collect();
    for h in handles {
        let err = h.await.unwrap().unwrap_err();
        let RateError::Source(source) = &err else {
            panic!("{err:?}");
        };
        assert!(
            matches!(**source, BackendError::QuoteRejected { .. }),
            "{source:?}"
        );
        assert!(err.to_string().contains("oracle unavailable"), "{err}");
    }
    assert_eq!(net.buy_orders(), 0);

    // At the same moment, the next request asks again and gets a quote.
    net.running.model().update(|m| m.set_rfq_reject(None));
    net.cache.get(&net.asset).await.unwrap();
    assert_eq!(net.buy_orders(), 1);
}
