//! A subscriber layer that keeps every span it sees, with its fields, for
//! tests to look at once the span has closed. It is installed as the
//! process's global subscriber, once: servers run on other threads.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A closed span: its name and its fields, as text.
#[derive(Debug, Clone, Default)]
pub(crate) struct SeenSpan {
    pub(crate) name: &'static str,
    pub(crate) fields: BTreeMap<String, String>,
}

impl SeenSpan {
    /// A field's value; fails the test if the span lacks it.
    pub(crate) fn field(&self, name: &str) -> &str {
        self.fields
            .get(name)
            .unwrap_or_else(|| panic!("{} has no field `{name}`: {:?}", self.name, self.fields))
    }
}

#[derive(Default)]
struct Seen {
    open: Mutex<BTreeMap<u64, SeenSpan>>,
    closed: Mutex<Vec<SeenSpan>>,
}

static SEEN: OnceLock<&'static Seen> = OnceLock::new();

/// Installs the keeping layer as the global subscriber (once).
pub(crate) fn install() {
    SEEN.get_or_init(|| {
        let seen: &'static Seen = Box::leak(Box::default());
        let subscriber = tracing_subscriber::registry().with(Keeper(seen));
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
        seen
    });
}

/// The closed spans named `name` whose `rpc.service` is `queue`, waiting up
/// to 10 s for `count` of them.
pub(crate) async fn closed(name: &str, queue: &str, count: usize) -> Vec<SeenSpan> {
    let seen = SEEN.get().expect("spans::install() was called");
    for _ in 0..1000 {
        let found: Vec<SeenSpan> = seen
            .closed
            .lock()
            .unwrap()
            .iter()
            .filter(|span| span.name == name && span.fields.get("rpc.service").map(String::as_str) == Some(queue))
            .cloned()
            .collect();
        if found.len() >= count {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("fewer than {count} `{name}` spans of {queue} closed within 10 s");
}

struct Keeper(&'static Seen);

impl<S: tracing::Subscriber + for<'span> LookupSpan<'span>> Layer<S> for Keeper {
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut span = SeenSpan {
            name: attributes.metadata().name(),
            fields: BTreeMap::new(),
        };
        attributes.record(&mut Fields(&mut span.fields));
        self.0.open.lock().unwrap().insert(id.into_u64(), span);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        if let Some(span) = self.0.open.lock().unwrap().get_mut(&id.into_u64()) {
            values.record(&mut Fields(&mut span.fields));
        }
    }

    fn on_close(&self, id: Id, _: Context<'_, S>) {
        if let Some(span) = self.0.open.lock().unwrap().remove(&id.into_u64()) {
            self.0.closed.lock().unwrap().push(span);
        }
    }
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

/// Every span closed so far.
pub(crate) fn all_closed() -> Vec<SeenSpan> {
    SEEN.get()
        .expect("spans::install() was called")
        .closed
        .lock()
        .unwrap()
        .clone()
}
