//! Callers' notices that they gave up a call: a client that times out or
//! drops a call whose request a server already took publishes its reply
//! queue's name on the queue's cancel channel, and the server running the
//! call cancels it (see [`Cancellation`](super::Cancellation)).

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::request::Context;
use crate::backend::PubSubEvent;
use crate::backoff::Backoff;
use crate::layout;

/// Follows the callers' notices that they gave up a call, and cancels the
/// call if it runs here. Without the notices (no subscription possible),
/// calls are still cancelled at their deadline.
pub(super) async fn listen_for_cancels(context: Arc<Context>, stop: CancellationToken) {
    let channel = layout::cancel_channel(&context.queue);
    let mut pause = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    let mut notices = loop {
        match context.backend.subscribe(std::slice::from_ref(&channel), &[]).await {
            Ok(notices) => break notices,
            Err(error) => {
                // Meanwhile calls still stop at their deadline.
                let pause = pause.next_pause();
                tracing::warn!(queue = %context.queue, %error, retry_in = ?pause, "cannot follow cancelled calls");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(pause) => {}
                }
            }
        }
    };
    loop {
        let event = tokio::select! {
            () = stop.cancelled() => return,
            event = notices.next() => event,
        };
        match event {
            Some(PubSubEvent::Message { payload, .. }) => {
                let Ok(response_queue) = std::str::from_utf8(&payload) else {
                    continue;
                };
                let running = context.running.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(call) = running.get(response_queue) {
                    call.cancel();
                }
            }
            Some(_) => {}
            None => return,
        }
    }
}
