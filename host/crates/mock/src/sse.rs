//! Server-sent event streams for chat and legacy completions.
//!
//! Event order (chat): a role chunk (`delta {role, content: ""}`), one chunk per word
//! (`delta {content}`), a finish chunk (`delta {}`, `finish_reason`), with
//! `stream_options.include_usage` a usage chunk (`choices: []`; all earlier chunks carry
//! `"usage": null`), then `data: [DONE]`. Legacy completions have no role chunk. The first
//! event also carries `mock_echo`. Each event is its own body frame.
//!
//! Timing: headers at once; `latency` before the first event; `chunk_interval` before every word
//! chunk except a legacy stream's first. A [`StreamGuard`] in the body counts the stream as
//! completed once `[DONE]` is yielded, as cancelled if the body is dropped before.
//!
//! The chunk JSON is assembled from a per-stream prefix (`id`, `object`, `created`, `model`,
//! `system_fingerprint` serialized once) plus static fragments, so a chunk costs one allocation.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, header};
use serde::Serialize;

use super::completion::{Echo, FINGERPRINT, Kind, Usage, word};
use super::controls::{Controls, Stall};
use super::state::{InFlight, delay};

const DONE: &[u8] = b"data: [DONE]\n\n";

/// Everything a stream needs, computed before the headers are sent.
pub(crate) struct StreamPlan {
    kind: Kind,
    /// `data: {"id":..,"object":..,"created":..,"model":..,"system_fingerprint":..,"choices":[`
    head: String,
    words: u32,
    finish_reason: &'static str,
    /// `Some` when the client asked for `stream_options.include_usage`.
    usage: Option<Usage>,
    /// Serialized `mock_echo`, taken by the first event.
    echo: Option<String>,
    latency: Duration,
    interval: Duration,
    stall_body: bool,
}

impl StreamPlan {
    #[allow(clippy::too_many_arguments)] // one call site; a builder would only add noise
    pub fn new(
        kind: Kind,
        id: &str,
        created: u64,
        model: &str,
        words: u32,
        finish_reason: &'static str,
        usage: Option<Usage>,
        echo: &Echo<'_>,
        controls: &Controls,
    ) -> Self {
        #[derive(Serialize)]
        struct Head<'a> {
            id: &'a str,
            object: &'static str,
            created: u64,
            model: &'a str,
            system_fingerprint: &'static str,
        }
        let object = match kind {
            Kind::Chat => "chat.completion.chunk",
            Kind::Legacy => "text_completion",
        };
        let fields = Head { id, object, created, model, system_fingerprint: FINGERPRINT };
        let mut head = String::from("data: ");
        // Serializing borrowed strs and integers cannot fail; an empty object is a safe fallback.
        head.push_str(&serde_json::to_string(&fields).unwrap_or_else(|_| "{}".into()));
        head.pop(); // the closing brace; the choices follow
        head.push_str(if head.ends_with('{') { "\"choices\":[" } else { ",\"choices\":[" });
        Self {
            kind,
            head,
            words,
            finish_reason,
            usage,
            echo: serde_json::to_string(echo).ok(),
            latency: controls.latency,
            interval: controls.chunk_interval,
            stall_body: controls.stall == Some(Stall::Body),
        }
    }

    fn first_step(&self) -> Step {
        match self.kind {
            Kind::Chat => Step::Role,
            Kind::Legacy => self.word_or_finish(0),
        }
    }

    fn word_or_finish(&self, i: u32) -> Step {
        if i < self.words { Step::Word(i) } else { Step::Finish }
    }

    fn after(&self, step: Step) -> Step {
        match step {
            Step::Role => self.word_or_finish(0),
            Step::Word(i) => self.word_or_finish(i.saturating_add(1)),
            Step::Finish if self.usage.is_some() => Step::Usage,
            Step::Finish | Step::Usage => Step::Done,
            Step::Done | Step::End => Step::End,
        }
    }

    /// The bytes of one `data:` event.
    fn event(&mut self, step: Step) -> Bytes {
        if step == Step::Done {
            return Bytes::from_static(DONE);
        }
        let echo = self.echo.take();
        let mut s = String::with_capacity(self.head.len() + 160 + echo.as_ref().map_or(0, String::len));
        s.push_str(&self.head);
        let chat = self.kind == Kind::Chat;
        match step {
            Step::Role => s.push_str(
                r#"{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}"#,
            ),
            Step::Word(i) => {
                s.push_str(if chat { r#"{"index":0,"delta":{"content":""# } else { r#"{"text":""# });
                s.push_str(word(i)); // plain ASCII letters and a space: nothing to escape
                s.push_str(if chat {
                    r#""},"logprobs":null,"finish_reason":null}"#
                } else {
                    r#"","index":0,"logprobs":null,"finish_reason":null}"#
                });
            }
            Step::Finish => {
                s.push_str(if chat {
                    r#"{"index":0,"delta":{},"logprobs":null,"finish_reason":""#
                } else {
                    r#"{"text":"","index":0,"logprobs":null,"finish_reason":""#
                });
                s.push_str(self.finish_reason);
                s.push_str("\"}");
            }
            Step::Usage | Step::Done | Step::End => {}
        }
        s.push(']');
        if let Some(usage) = &self.usage {
            s.push_str(",\"usage\":");
            if step == Step::Usage {
                s.push_str(&serde_json::to_string(usage).unwrap_or_else(|_| "null".into()));
            } else {
                s.push_str("null");
            }
        }
        if let Some(echo) = echo {
            s.push_str(",\"mock_echo\":");
            s.push_str(&echo);
        }
        s.push_str("}\n\n");
        Bytes::from(s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Role,
    Word(u32),
    Finish,
    Usage,
    Done,
    End,
}

/// Lives in the response body: decides completed vs. cancelled and holds the in-flight count.
struct StreamGuard {
    in_flight: InFlight,
    done: bool,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if !self.done {
            self.in_flight.stats().streams_cancelled.fetch_add(1, Ordering::Relaxed);
        }
    }
}

struct Emitter {
    plan: StreamPlan,
    next: Step,
    first: bool,
    guard: StreamGuard,
}

impl Emitter {
    async fn emit(mut self) -> Option<(Result<Bytes, Infallible>, Self)> {
        let step = self.next;
        if step == Step::End {
            return None;
        }
        if self.first {
            delay(self.plan.latency).await;
        } else if self.plan.stall_body {
            std::future::pending::<()>().await;
        } else if matches!(step, Step::Word(_)) {
            delay(self.plan.interval).await;
        }
        self.first = false;
        let bytes = self.plan.event(step);
        if step == Step::Done {
            self.guard.done = true;
            let stats = self.guard.in_flight.stats();
            stats.streams_completed.fetch_add(1, Ordering::Relaxed);
        }
        self.next = self.plan.after(step);
        Some((Ok(bytes), self))
    }
}

/// The `text/event-stream` response for `plan`.
pub(crate) fn stream(plan: StreamPlan, in_flight: InFlight) -> Response {
    in_flight.stats().streams_started.fetch_add(1, Ordering::Relaxed);
    let emitter = Emitter { next: plan.first_step(), plan, first: true, guard: StreamGuard { in_flight, done: false } };
    let body = Body::from_stream(futures_util::stream::unfold(emitter, Emitter::emit));
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

/// A non-stream response whose headers go out but whose body never comes (`x-mock-stall: body`).
pub(crate) fn stalled(in_flight: InFlight) -> Response {
    let body = futures_util::stream::unfold(in_flight, |held| async move {
        let _held = held; // counted in flight until the client gives up
        std::future::pending::<Option<(Result<Bytes, Infallible>, InFlight)>>().await
    });
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], Body::from_stream(body)).into_response()
}
