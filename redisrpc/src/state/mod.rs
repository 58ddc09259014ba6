//! Shared state: one nested dictionary shared by every process, binary
//! arrays beside it, and live updates.
//!
//! Robot processes share poses, joint angles, settings and camera frames
//! beside their RPC calls. [`State`] stores them as nested JSON documents
//! under top-level keys, addressed by paths; every operation is atomic on
//! the server, so processes writing different paths of one document never
//! undo each other's writes. [`State::publish`] stores a value and notifies
//! subscribers: a [`Mirror`] keeps a local copy current, [`Updates`] streams
//! what changed. It runs the same on Redis (stock Redis ≥ 7 or Valkey, no
//! module needed) and on the embedded backend.
//!
//! ```
//! use redisrpc::backend::Memory;
//! use redisrpc::state::{NdArray, State};
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> redisrpc::Result<()> {
//! let state = State::new(Memory::new()); // or `Redis::connect(url).await?`
//! state.set("robot", &json!({"arm": {"angle": 0.5}, "joints": [0.0, 0.1, 0.2]})).await?;
//! state.set("robot.gripper.open", &true).await?; // creates `gripper`
//! assert_eq!(state.incr("robot.joints[2]", 0.25).await?.as_f64(), Some(0.45));
//! let angle: f64 = state.get("robot.arm.angle").await?;
//! assert_eq!(angle, 0.5);
//!
//! // A camera frame, stored as raw bytes in numpy's layout.
//! let frame = NdArray::from_elements(vec![2, 3], &[1u8, 2, 3, 4, 5, 6]).unwrap();
//! state.set_array("robot.camera.frame", &frame).await?;
//! assert_eq!(state.get_array("robot.camera.frame").await?, frame);
//!
//! // A live mirror, read without a round trip.
//! let mut mirror = state.mirror("robot.arm").await?;
//! state.publish("robot.arm.angle", &0.75).await?;
//! while mirror.get::<f64>("robot.arm.angle")? != 0.75 {
//!     mirror.changed().await?;
//! }
//! # Ok(()) }
//! ```
//!
//! # Paths
//!
//! `robot.arm.angle`: the top-level key `robot`, then object members.
//! `robot.joints[2]`: an array element (from 0). `robot["odd.name"]`: a
//! member whose name is not plain, as a JSON string. Plain names are
//! non-empty and hold none of `.`, `[`, `]`, `"` or whitespace. Top-level
//! keys, the documents' Redis keys, are 1 to 256 bytes of letters, digits
//! and `_ - : / @ + ~`, and may not start with `__state__:`, which the
//! store keeps for itself (see [`Path::root`] for why).

//!
//! # Operations
//!
//! [`get`](State::get) (typed through serde) and
//! [`get_value`](State::get_value), [`set`](State::set) (creating missing
//! parent objects, not arrays or array elements),
//! [`delete`](State::delete), [`exists`](State::exists),
//! [`type_of`](State::type_of), [`len`](State::len),
//! [`incr`](State::incr), [`decr`](State::decr), [`mul`](State::mul),
//! [`div`](State::div), [`append`](State::append),
//! [`extend`](State::extend), and [`update`](State::update), a typed
//! read-modify-write of a subtree that retries on conflict
//! ([`try_update`](State::try_update) when the change may be refused). A bad path, a
//! type mismatch (incrementing a string, indexing past an array's end) or a
//! missing key is an error ([`Error::InvalidPath`](crate::Error::InvalidPath),
//! [`WrongType`](crate::Error::WrongType),
//! [`NotFound`](crate::Error::NotFound)) and changes nothing.
//!
//! Values round-trip exactly: every `f64` bit for bit (including `-0.0`),
//! the whole `i64` and `u64` ranges, empty arrays and objects, any Unicode
//! text. Numbers are never decoded anywhere but in Rust.
//!
//! # How the data lies in Redis
//!
//! A program in any language can read it with a plain Redis client:
//!
//! | what | Redis key | type | content |
//! | --- | --- | --- | --- |
//! | document `robot` | `robot` | hash | `json`: the document as JSON text; `version`: its version, a decimal integer |
//! | binary value at `robot.camera.frame` | `__state__:{robot}.camera.frame` (or that with `#<hex>` appended, if taken) | hash | the marshaller's fields; for arrays `arr`, `dtype`, `shape` as REEM's numpy arrays |
//! | notifications of `robot.arm` | channel `__state__:robot.arm` | pub/sub | `{"path":"robot.arm","base":B,"value":V,"version":N}` |
//! | the layout's version | `__state__:layout` | string | `1` |
//!
//! [`crate::layout`] makes every one of these names and says why they are
//! so. In the document, a binary value appears as its marker,
//! `{"$binary": {"label": "ndarray", "key": "__state__:{robot}.camera.frame"}}`
//! (see [`binary`]). A version is the time of the write in microseconds on
//! the server's clock, or one more than the document's previous version
//! when that is not less, so a document's versions only ever increase, also
//! after it is deleted and written again, after a `FLUSHALL` or a restart
//! (as long as the server's clock does not go back). Every write is one Lua
//! script that checks the version, writes the document and its binary
//! hashes, and publishes, all at once.
//!
//! ```python
//! import json, numpy, redis
//! r = redis.Redis()
//! robot = json.loads(r.hget("robot", "json"))
//! h = r.hgetall(robot["camera"]["frame"]["$binary"]["key"])
//! shape = tuple(int(n) for n in h[b"shape"].decode()[1:-1].split(",") if n.strip())
//! frame = numpy.frombuffer(h[b"arr"], h[b"dtype"].decode()).reshape(shape)
//! ```
//!
//! Another program that writes must keep this layout and give every write a
//! new version by the same rule (`TIME` in microseconds, or the previous
//! version plus one), in a `MULTI`/`EXEC` or a script that also checks the
//! version it read, so that concurrent writers here notice its writes. A document with only a `json`
//! field reads as version 0; the first write from here gives it a version.
//! A hash without a `json` field (a REEM array, say) is not a document:
//! reading or writing a path in it is an
//! [`Error::WrongType`](crate::Error::WrongType), and it is left alone.
//! Deleting or replacing a value deletes the binary hashes its markers name
//! only when the document owns them (their key starts with
//! `__state__:{robot}`, see [`crate::layout::owns`]) and no other marker in
//! it names them; reads through a marker reach only such hashes too.
//!
//! # REEM's layout
//!
//! [`State::with_layout`]`(`[`Layout::Reem`]`)` keeps documents as the REEM
//! Python middleware does, to share them with REEM programs: a RedisJSON
//! document per top-level key, its arrays' paths in `K&&&&metadata`, each
//! array in the hash `K<path>`, and valueless notifications on
//! `__pubspace@0__:K<path>` (see [`crate::layout::reem`]). The operations
//! are the same and as atomic; a mirror reads again on each notification.
//! Only a single Redis server with the RedisJSON module offers it. The
//! translation is in `reem.rs`, the scripts in the Redis backend.
//!
//! # Delivery
//!
//! Only [`publish`](State::publish) (and `publish_binary`/`publish_array`)
//! notifies; plain writes do not. Notifications are published in the same
//! atomic step as the write, so they arrive in the order of the writes.
//!
//! * [`Updates`] delivers **every update** published while it is connected,
//!   in order. When its connection drops it says so
//!   ([`Event::Disconnected`]), reconnects and resubscribes by itself with
//!   backoff, and says so again ([`Event::Resubscribed`]): updates published
//!   in between are lost, as Redis pub/sub does not keep them.
//! * A [`Mirror`] always converges to the **latest state**: it applies each
//!   update in order, and re-reads the document whenever it may have missed
//!   one (a version gap, a reconnect, a plain write seen at the next
//!   publish). While it cannot vouch for its copy (disconnected) its reads
//!   fail with [`Error::OutOfSync`](crate::Error::OutOfSync) instead of
//!   serving stale state; [`Mirror::is_in_sync`] says which.
//!
//! A subscriber that falls far behind is treated like a dropped connection:
//! it is told [`Event::Disconnected`], then [`Event::Resubscribed`], and a
//! mirror reads its document again. Each backend holds up to 4,096
//! notifications for a subscriber; the embedded backend tells it at once and
//! skips to the ones it still has, the Redis backend delivers those it holds
//! first and drops the connection (its client library would otherwise
//! buffer without limit, and Redis never sees a slow reader). After a drop,
//! the Redis backend waits before it reconnects, longer each time (20 ms up
//! to 1 s) until a connection stays up for a second.
//!
//! On Redis, a connection whose peer vanished without closing it (a crashed
//! host, a cut cable) is noticed by a `PING` sent every
//! [`subscription_ping_interval`](crate::backend::RedisOptions::subscription_ping_interval)
//! (5 s) that must be answered within the
//! [`command_timeout`](crate::backend::RedisOptions::command_timeout)
//! (10 s): by then a mirror may serve a copy that is that old.

pub mod binary;
mod cache;
mod change;
mod doc;
mod mirror;
mod number;
mod path;
mod pubsub;
mod reem;
mod store;

pub use binary::{ArrayError, Dtype, Element, Marshaller, NdArray, NdArrayMarshaller};
pub use doc::ValueType;
pub use mirror::Mirror;
pub(crate) use mirror::channels as mirror_channels;
pub use number::Operand;
pub use path::{IntoPath, MAX_KEY_LEN, Path, Segment};
pub use pubsub::{Event, Update, Updates};
pub use store::{Layout, State};
