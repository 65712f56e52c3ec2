//! Server-streaming RPCs over the model: one spawned task per open stream that re-reads the
//! model whenever it changes and forwards what is new.
//!
//! The task owns the rules every simnet stream shares, so the handlers only say what to send:
//! it ends the stream with `UNAVAILABLE` when the node goes down or its drop-streams epoch moves
//! (the fault knob that makes clients reconnect and resume), and ends it quietly when the
//! client goes away or the servers shut down. It never holds the model's lock across an
//! `.await`.

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tracing::Instrument;

use super::state::SimnetHandle;
use crate::simnet::model::{NodeId, Simnet};

/// What a streaming handler returns: an mpsc receiver as a `Stream`.
pub(crate) type RpcStream<T> = ReceiverStream<Result<T, Status>>;

/// Messages buffered per stream before the task waits for the client to read.
const STREAM_BUFFER: usize = 32;

/// What one look at the model produced.
pub(crate) enum Poll<T> {
    /// Send these and wait for the next change.
    More(Vec<T>),
    /// Send these and end the stream (the watched thing reached a final state).
    Done(Vec<T>),
    /// End the stream with this error.
    Fail(Status),
}

/// The message a client sees when the drop-streams knob cuts its stream.
pub(crate) const STREAM_DROPPED: &str =
    "stream dropped by the simnet (drop-streams fault knob); reconnect and resume";

/// Everything a stream task needs from its node's server.
#[derive(Clone)]
pub(crate) struct StreamCtx {
    pub(crate) node: NodeId,
    pub(crate) net: SimnetHandle,
    /// Becomes `true` when the servers shut down.
    pub(crate) stop: watch::Receiver<bool>,
}

impl StreamCtx {
    /// Spawns the task behind one streaming RPC: sends `first`, then calls `poll` with the model
    /// and the clock's now, at once and after every change, until it says `Done` or `Fail`.
    pub(crate) fn spawn<T, F>(&self, rpc: &'static str, first: Vec<T>, poll: F) -> RpcStream<T>
    where
        T: Send + 'static,
        F: FnMut(&Simnet, u64) -> Poll<T> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        // Read now, not in the task: a drop between this call and the task's first poll must
        // still cut the stream.
        let epoch = self.net.read(|m| m.faults(self.node).drop_streams_epoch);
        let span = tracing::info_span!("simnet_stream", node = %self.node, rpc);
        tokio::spawn(run(self.clone(), epoch, tx, first, poll).instrument(span));
        ReceiverStream::new(rx)
    }

    /// A stream of `items` and nothing more (the watched thing is already final): no task.
    pub(crate) fn finished<T>(&self, items: Vec<T>) -> RpcStream<T> {
        let (tx, rx) = mpsc::channel(items.len().max(1));
        for item in items {
            // Cannot fail: the channel has room for every item and the receiver is alive.
            let _ = tx.try_send(Ok(item));
        }
        ReceiverStream::new(rx)
    }
}

async fn run<T, F>(
    ctx: StreamCtx,
    epoch: u64,
    tx: mpsc::Sender<Result<T, Status>>,
    first: Vec<T>,
    mut poll: F,
) where
    F: FnMut(&Simnet, u64) -> Poll<T>,
{
    let StreamCtx {
        node,
        net,
        mut stop,
    } = ctx;
    let mut changes = net.subscribe();
    for item in first {
        if tx.send(Ok(item)).await.is_err() {
            return;
        }
    }
    loop {
        // Mark the current generation seen *before* reading, so a change made between the
        // read and the wait below still wakes the wait.
        changes.borrow_and_update();
        let now = net.now();
        let step = net.read(|m| {
            let faults = m.faults(node);
            if faults.drop_streams_epoch != epoch {
                Poll::Fail(Status::unavailable(STREAM_DROPPED))
            } else if faults.down {
                Poll::Fail(Status::unavailable("node is down"))
            } else {
                poll(m, now)
            }
        });
        let (items, done) = match step {
            Poll::More(items) => (items, false),
            Poll::Done(items) => (items, true),
            Poll::Fail(status) => {
                let _ = tx.send(Err(status)).await;
                return;
            }
        };
        for item in items {
            if tx.send(Ok(item)).await.is_err() {
                return;
            }
        }
        if done {
            return;
        }
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            _ = stop.wait_for(|stopping| *stopping) => return,
            () = tx.closed() => return,
        }
    }
}
