//! Invoice events and change notification: what lnd's `SubscribeInvoices` replays and streams.
//!
//! lnd's resume rule: given `add_index = a` and `settle_index = s`, replay every invoice added
//! with an add index above `a`, then every invoice settled with a settle index above `s`,
//! then stream new events. (lnd treats `a = s = 0` as "no replay, live only"; that choice is
//! the server's, so [`Simnet::invoice_events_since`] with zeros returns everything.) The
//! replay is exact because each node's indices are positions in append-only lists.
//!
//! To stream, a server keeps the cursor it was given and, whenever [`Simnet::generation`]
//! changes (every mutation bumps it), calls `invoice_events_since` with its cursor and moves
//! the cursor to the returned `add_index`/`settle_index`. Nothing is sent twice or skipped.

use super::Simnet;
use super::error::InvoiceError;
use super::invoices::Invoice;
use super::types::NodeId;

/// One invoice event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InvoiceEvent {
    /// An invoice was added (it is shown in its current state, as lnd replays it).
    Added(Invoice),
    /// An invoice settled.
    Settled(Invoice),
}

/// The events after a cursor, and the cursor to resume from next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvoiceEvents {
    /// Adds (in add order), then settles (in settle order).
    pub events: Vec<InvoiceEvent>,
    /// The node's highest add index now.
    pub add_index: u64,
    /// The node's highest settle index now.
    pub settle_index: u64,
}

fn skip(index: u64) -> usize {
    usize::try_from(index).unwrap_or(usize::MAX)
}

impl Simnet {
    /// Invoices of `node` added after `add_index` and settled after `settle_index`.
    pub fn invoice_events_since(
        &self,
        node: NodeId,
        add_index: u64,
        settle_index: u64,
    ) -> Result<InvoiceEvents, InvoiceError> {
        self.require_up(node).map_err(InvoiceError::NodeDown)?;
        let book = &self.nodes[node.index()].invoices;
        let added = book.invoices.iter().skip(skip(add_index));
        let settled = (book.settled.iter().skip(skip(settle_index)))
            .filter_map(|pos| book.invoices.get(*pos));
        let events = added
            .cloned()
            .map(InvoiceEvent::Added)
            .chain(settled.cloned().map(InvoiceEvent::Settled))
            .collect();
        let (add_index, settle_index) = self.invoice_cursor(node);
        Ok(InvoiceEvents {
            events,
            add_index,
            settle_index,
        })
    }

    /// `node`'s highest add and settle indices (0 when none).
    pub fn invoice_cursor(&self, node: NodeId) -> (u64, u64) {
        let book = &self.nodes[node.index()].invoices;
        let n = |len: usize| u64::try_from(len).unwrap_or(u64::MAX);
        (n(book.invoices.len()), n(book.settled.len()))
    }

    /// Bumped by every change to the network; a server waits for it to move.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub(crate) fn touch(&mut self) {
        self.generation = self.generation.wrapping_add(1);
    }
}
