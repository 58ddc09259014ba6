//! Where a blocking call runs: on the thread that waits for it, through
//! connections of that thread's own.
//!
//! Waited for through the shared [`runtime`](super::runtime), a call to a
//! local Redis costs a wake-up of a worker thread for each command sent and
//! one of the caller for each reply; on two busy cores that made a call
//! several times slower than the same call from async code. So each thread
//! that calls gets a single-threaded runtime of its own, which the call's
//! `block_on` drives: the caller's thread sends the request, waits in the
//! kernel for the reply and reads it, and nothing else is woken.
//!
//! A Redis connection is driven by the runtime that made it, so the thread
//! also gets connections of its own to the same store, made at its first
//! call ([`Backend::connect_anew`]) and kept while the backend it stands
//! for is alive: two per server (commands, and the wait for replies). They
//! close when the thread ends. The embedded store has no connections: its
//! calls are waited for through the shared runtime, as everything else.
//!
//! Nothing drives the thread's runtime between its calls. What must go on
//! after a call (telling the servers it was given up) goes to the shared
//! runtime instead ([`Afterwards`]); what may wait (a cancelled wait's
//! clean-up on the thread's connections, a clock refresh) finishes during
//! the thread's next call.

use std::cell::{OnceCell, RefCell};
use std::future::Future;
use std::sync::{Arc, Weak};

use super::{inside_a_runtime, runtime};
use crate::backend::{Backend, SharedBackend};
use crate::client::Afterwards;
use crate::{Call, Error, Result};

thread_local! {
    static HERE: OnceCell<Here> = const { OnceCell::new() };
}

/// One thread's runtime and connections.
struct Here {
    /// Each backend this thread has called through, and the thread's own
    /// connections to its store (`None`: it has no connections, and its
    /// calls are waited for through the shared runtime).
    /// Declared first, so that the connections close before the runtime
    /// that drives them goes.
    connections: RefCell<Vec<Own>>,
    runtime: tokio::runtime::Runtime,
}

/// A backend a thread has called through (not kept alive by the thread),
/// and the thread's own connections to its store.
struct Own {
    backend: Weak<dyn Backend>,
    connections: Option<SharedBackend>,
}

/// Sends `call` through `client` and waits for it on the calling thread,
/// through this thread's own connections to the client's store; `what`
/// names the operation for the error given inside an async runtime.
pub(crate) fn send<T, F, Fut>(what: &str, client: &crate::Client, call: Call, send: F) -> Result<T>
where
    F: FnOnce(crate::Client, Call) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(inside_a_runtime(what));
    }
    HERE.with(|cell| {
        let here = match cell.get() {
            Some(here) => here,
            None => {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| {
                        Error::Config(format!("redisrpc::blocking: cannot start this thread's runtime: {e}"))
                    })?;
                cell.get_or_init(|| Here {
                    connections: RefCell::default(),
                    runtime,
                })
            }
        };
        let mut call = call;
        match here.connections_to(client, &mut call)? {
            Some(backend) => {
                let afterwards = Afterwards {
                    runtime: runtime().handle().clone(),
                    backend: Arc::clone(client.backend()),
                };
                here.runtime.block_on(send(client.through(backend, afterwards), call))
            }
            // No connections to drive: the thread would only wait, and a
            // thread parked outside an I/O driver wakes sooner.
            None => runtime().block_on(send(client.clone(), call)),
        }
    })
}

impl Here {
    /// This thread's connections to `client`'s store, made on first use
    /// (`None`: the backend has none); making them counts against `call`'s
    /// timeout, as any step of a call does (what is left of it becomes the
    /// call's timeout).
    fn connections_to(&self, client: &crate::Client, call: &mut Call) -> Result<Option<SharedBackend>> {
        let backend = client.backend();
        let key = Arc::downgrade(backend);
        {
            let mut connections = self.connections.borrow_mut();
            // Those to backends no longer used anywhere else close now, in
            // the context of the runtime that drives them.
            let _context = self.runtime.enter();
            connections.retain(|own| own.backend.strong_count() > 0);
            if let Some(own) = connections.iter().find(|own| Weak::ptr_eq(&own.backend, &key)) {
                return Ok(own.connections.clone());
            }
        }
        let own = match call.timeout_with(client) {
            None => self.runtime.block_on(backend.connect_anew())?,
            Some(timeout) => {
                let started = std::time::Instant::now();
                let own = self
                    .runtime
                    .block_on(async { tokio::time::timeout(timeout, backend.connect_anew()).await })
                    .map_err(|_| client.timeout_error(call.method(), timeout, true))??;
                // What is left of the timeout is the call's.
                let left = timeout.saturating_sub(started.elapsed());
                call.set_timeout(Some(left));
                own
            }
        };
        self.connections.borrow_mut().push(Own {
            backend: key,
            connections: own.clone(),
        });
        Ok(own)
    }
}
