//! Connections to one endpoint, shared so that no request can stall another.
//!
//! hyper-util's pooled client keeps a single HTTP/2 connection per host, so every stream to an
//! upstream used to share one connection and its flow-control window: four clients that stopped
//! reading filled it and froze every other request. Here an endpoint has `lanes` clients (each
//! holds one HTTP/2 connection, or a pool of HTTP/1 connections; an `https` endpoint may
//! negotiate either) and a request takes the least loaded lane with room: at most
//! `max-streams-per-connection` requests per lane. Each lane's connection window is its stream
//! window times that cap, so even if every stream on a connection stalls, none can take window
//! from another. Reusing the pooled client per lane keeps TLS, ALPN, reconnects and keep-alive
//! pings in hyper-util rather than in an own connection manager.
//!
//! A [`LaneGuard`] holds the slot until the response body is finished or dropped; when every
//! lane is full, a request waits for a slot (within its first-byte deadline).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::HttpClient;

struct Lane {
    client: HttpClient,
    in_flight: AtomicUsize,
}

/// The lanes of one endpoint.
pub(crate) struct EndpointPool {
    lanes: Vec<Lane>,
    /// `lanes × cap` permits: holding one guarantees some lane has room.
    slots: Arc<Semaphore>,
    cap: usize,
}

impl EndpointPool {
    /// `make` builds one lane's client.
    pub fn new(lanes: usize, cap: usize, mut make: impl FnMut() -> HttpClient) -> Arc<Self> {
        let lanes: Vec<Lane> =
            (0..lanes.max(1)).map(|_| Lane { client: make(), in_flight: AtomicUsize::new(0) }).collect();
        let slots = Arc::new(Semaphore::new(lanes.len().saturating_mul(cap.max(1))));
        Arc::new(EndpointPool { lanes, slots, cap: cap.max(1) })
    }

    /// Waits for a slot, then takes the least loaded lane (the first on a tie, so a quiet
    /// gateway keeps reusing one warm connection).
    pub async fn acquire(self: &Arc<Self>) -> Option<LaneGuard> {
        let permit = self.slots.clone().acquire_owned().await.ok()?;
        loop {
            let (i, n) = self
                .lanes
                .iter()
                .enumerate()
                .map(|(i, l)| (i, l.in_flight.load(Ordering::Acquire)))
                .min_by_key(|&(_, n)| n)?;
            if n >= self.cap {
                // Another holder is between its choice and its increment; look again.
                std::hint::spin_loop();
                continue;
            }
            if self.lanes[i].in_flight.compare_exchange(n, n + 1, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                return Some(LaneGuard { pool: self.clone(), lane: i, _permit: permit });
            }
        }
    }

    /// Requests in flight per lane (for tests and diagnostics).
    #[cfg(test)]
    fn loads(&self) -> Vec<usize> {
        self.lanes.iter().map(|l| l.in_flight.load(Ordering::Acquire)).collect()
    }
}

/// One request's slot on a lane; released on drop.
pub struct LaneGuard {
    pool: Arc<EndpointPool>,
    lane: usize,
    _permit: OwnedSemaphorePermit,
}

impl LaneGuard {
    pub(crate) fn client(&self) -> &HttpClient {
        &self.pool.lanes[self.lane].client
    }
}

impl Drop for LaneGuard {
    fn drop(&mut self) {
        self.pool.lanes[self.lane].in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn client() -> HttpClient {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(hyper_util::client::legacy::connect::HttpConnector::new());
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(https)
    }

    #[tokio::test]
    async fn least_loaded_lane_first_capped_and_released_on_drop() {
        let pool = EndpointPool::new(3, 2, client);
        let a = pool.acquire().await.unwrap();
        assert_eq!(pool.loads(), vec![1, 0, 0]);
        drop(a);
        let held: Vec<LaneGuard> = futures_util::future::join_all((0..6).map(|_| pool.acquire()))
            .await
            .into_iter()
            .map(Option::unwrap)
            .collect();
        assert_eq!(pool.loads(), vec![2, 2, 2]);
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), pool.acquire()).await;
        assert!(waiting.is_err(), "every lane is full: the request waits");
        drop(held);
        assert_eq!(pool.loads(), vec![0, 0, 0]);
        assert!(pool.acquire().await.is_some());
    }
}
