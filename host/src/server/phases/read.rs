//! **read** — the whole body, up to `server.max-body-bytes` (413, before a byte is read when
//! `Content-Length` already says so), within `server.body-timeout` counted from the end of the
//! headers and never reset per chunk, so a trickle cannot stretch it (408).

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, header};
use http_body_util::BodyExt;

use super::{Flow, Step};
use crate::api::ApiError;
use crate::config::ServerConfig;
use crate::server::exchange::Exchange;

/// Why the body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the body did not arrive within the body timeout")]
    Timeout,
    #[error("the body broke: {0}")]
    Broken(#[source] axum::Error),
}

impl From<ReadError> for ApiError {
    fn from(e: ReadError) -> Self {
        let api = match &e {
            ReadError::TooLarge(limit) => ApiError::body_too_large(*limit),
            ReadError::Timeout => ApiError::body_timeout(),
            ReadError::Broken(_) => ApiError::body_unreadable(),
        };
        api.caused_by(e)
    }
}

pub async fn run(ex: &mut Exchange) -> Step {
    let body = ex.client_body.take().unwrap_or_else(Body::empty);
    ex.raw = read(body, &ex.parts.headers, &ex.snap.config.server).await?;
    Ok(Flow::Next)
}

async fn read(body: Body, headers: &HeaderMap, server: &ServerConfig) -> Result<Bytes, ReadError> {
    let limit = server.max_body_bytes;
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ReadError::TooLarge(limit));
    }
    let collect = http_body_util::Limited::new(body, limit).collect();
    let Ok(collected) = tokio::time::timeout(server.connections.body_timeout, collect).await else {
        return Err(ReadError::Timeout);
    };
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ReadError::TooLarge(limit)),
        Err(e) if is_timeout(&*e) => Err(ReadError::Timeout),
        Err(e) => Err(ReadError::Broken(axum::Error::new(e))),
    }
}

/// A body error that is a read timeout of a lower layer.
fn is_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.to_string().contains("timed out") {
            return true;
        }
        cur = err.source();
    }
    false
}
