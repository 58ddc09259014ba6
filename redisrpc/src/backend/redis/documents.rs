//! The shared state's primitives on Redis: a versioned read and a
//! compare-and-set, each one Lua script, and the check of the layout the
//! server keeps its state in.
//!
//! The scripts never decode JSON (Lua's `cjson` would round numbers); they
//! only compare the version and store the text the caller computed, so
//! values stay exact and any stock Redis ≥ 7 or Valkey runs them. Both
//! touch only the document's key and its binary hashes, which share one
//! Redis Cluster slot (see [`layout`]).

use std::sync::LazyLock;

use super::shared::Shared;
use redis::{Script, Value};
use tokio::sync::OnceCell;

use super::map_error;
use crate::backend::document::not_a_document;
use crate::backend::{Commit, CommitOutcome, HashFields, StoredDoc};
use crate::{Error, Result, layout};

/// The read: the document's version and JSON in one atomic step, or what
/// else is at its key. Replies `{0}` when absent, `{1, version, json}` for a
/// document, `{2, type}` for a key holding something else (`hash` for a
/// hash without a `json` field).
static READ: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' then return {0} end
if kind ~= 'hash' then return {2, kind} end
local current = redis.call('HMGET', KEYS[1], 'version', 'json')
if not current[2] then return {2, kind} end
return {1, current[1] or '0', current[2]}
"#,
    )
});

/// The compare-and-set. KEYS: the document, the keys to delete, the hashes
/// to write. ARGV: `name, value` pairs up to a `--` (see [`CommitArgs`]),
/// then per hash its field count and its fields.
///
/// A version is the time of its write in microseconds on the server's
/// clock, or one more than the document's previous version when that is
/// not less: so versions of a document only ever increase, also across
/// its deletion, a `FLUSHALL` or a restart without persistence (as long
/// as the server's clock does not go back), and a process's copy from
/// before can never pass the compare-and-set. Replies `{1, version}` (0
/// when the document was deleted), `{0}` or `{0, version, json}` on a
/// conflict, and `{2, type}` as [`READ`] does.
static COMMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local named, at = {}, 1
while ARGV[at] ~= '--' do
  named[ARGV[at]] = ARGV[at + 1]
  at = at + 2
end
at = at + 1
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind ~= 'none' and kind ~= 'hash' then return {2, kind} end
local current = redis.call('HMGET', KEYS[1], 'version', 'json')
if kind == 'hash' and not current[2] then return {2, kind} end
if (current[1] or '0') ~= named.expected then
  if current[2] then return {0, current[1] or '0', current[2]} end
  return {0}
end
local deletes = tonumber(named.deletes)
for i = 2, 1 + deletes do redis.call('DEL', KEYS[i]) end
for i = 2 + deletes, #KEYS do
  redis.call('DEL', KEYS[i])
  local n = tonumber(ARGV[at])
  for f = at + 1, at + 2 * n, 2 do redis.call('HSET', KEYS[i], ARGV[f], ARGV[f + 1]) end
  at = at + 1 + 2 * n
end
local now = redis.call('TIME')
local version = tonumber(now[1]) * 1000000 + tonumber(now[2])
local previous = tonumber(current[1] or '0')
if version <= previous then version = previous + 1 end
version = string.format('%d', version)
redis.call('DEL', KEYS[1])
local written = '0'
if named.write == '1' then
  redis.call('HSET', KEYS[1], 'json', named.json, 'version', version)
  written = version
end
if named.channel ~= '' then redis.call('PUBLISH', named.channel, named.head .. version .. named.tail) end
return {1, written}
"#,
    )
});

/// The commit script's named arguments, each sent as its name then its
/// value, so the script and this builder agree by name, not by position.
struct CommitArgs<'a> {
    invocation: redis::ScriptInvocation<'a>,
}

impl<'a> CommitArgs<'a> {
    fn new() -> Self {
        CommitArgs {
            invocation: COMMIT.prepare_invoke(),
        }
    }

    fn named(&mut self, name: &str, value: impl redis::ToRedisArgs) -> &mut Self {
        self.invocation.arg(name).arg(value);
        self
    }

    /// Ends the named arguments; what follows is positional.
    fn end_named(&mut self) -> &mut redis::ScriptInvocation<'a> {
        self.invocation.arg("--")
    }
}

/// Whether the server's shared state is in a layout this build knows;
/// checked once per connection, before the first document operation.
#[derive(Default)]
pub(super) struct LayoutCheck {
    checked: OnceCell<()>,
}

impl LayoutCheck {
    async fn ensure(&self, manager: &Shared) -> Result<()> {
        self.checked.get_or_try_init(|| check_layout(manager)).await.map(drop)
    }
}

/// Records [`layout::LAYOUT_VERSION`] on a server that holds no shared
/// state yet, and refuses one that holds another layout.
async fn check_layout(manager: &Shared) -> Result<()> {
    let expected = layout::LAYOUT_VERSION.to_string();
    // Two commands, not a pipeline: on a cluster the keys are in two slots.
    let recorded: Option<String> = redis::cmd("GET")
        .arg(layout::LAYOUT_KEY)
        .query_async(&mut manager.clone())
        .await
        .map_err(map_error)?;
    let legacy: bool = redis::cmd("EXISTS")
        .arg(layout::LEGACY_CLOCK_KEY)
        .query_async(&mut manager.clone())
        .await
        .map_err(map_error)?;
    let recorded = match (recorded, legacy) {
        (Some(recorded), _) => recorded,
        (None, true) => "0 (from before layouts had versions)".to_owned(),
        (None, false) => {
            // `NX GET`: whoever records first wins, and the others compare.
            let previous: Option<String> = redis::cmd("SET")
                .arg(layout::LAYOUT_KEY)
                .arg(&expected)
                .arg("NX")
                .arg("GET")
                .query_async(&mut manager.clone())
                .await
                .map_err(map_error)?;
            previous.unwrap_or_else(|| expected.clone())
        }
    };
    if recorded == expected {
        Ok(())
    } else {
        Err(Error::UnknownLayout { found: recorded })
    }
}

pub(super) async fn doc_get(manager: &Shared, layout: &LayoutCheck, key: &str) -> Result<Option<StoredDoc>> {
    layout.ensure(manager).await?;
    let reply: Vec<Value> = READ
        .key(layout::document(key))
        .invoke_async(&mut manager.clone())
        .await
        .map_err(map_error)?;
    match reply.as_slice() {
        [status] if int(status) == Some(0) => Ok(None),
        // A document another program wrote without a version reads as
        // version 0, which the commit script also compares it as.
        [status, version, Value::BulkString(json)] if int(status) == Some(1) => Ok(Some(StoredDoc {
            version: int(version).ok_or_else(|| unexpected("read", &reply))?,
            json: json.clone(),
        })),
        // Another program's key (a REEM array, a string …) is not taken
        // for an absent document, which a write would replace.
        [status, kind] if int(status) == Some(2) => Err(not_a_document(key, &text(kind))),
        _ => Err(unexpected("read", &reply)),
    }
}

pub(super) async fn hash_get_all(manager: &Shared, key: &str) -> Result<HashFields> {
    redis::cmd("HGETALL")
        .arg(key)
        .query_async(&mut manager.clone())
        .await
        .map_err(map_error)
}

pub(super) async fn doc_commit(manager: &Shared, layout: &LayoutCheck, commit: &Commit) -> Result<CommitOutcome> {
    layout.ensure(manager).await?;
    let publish = commit.publish.clone().unwrap_or_default();
    let mut args = CommitArgs::new();
    args.named("expected", commit.expected)
        .named("write", if commit.json.is_some() { "1" } else { "0" })
        .named("json", commit.json.as_deref().unwrap_or_default())
        .named("channel", &publish.channel)
        .named("head", &publish.head)
        .named("tail", &publish.tail)
        .named("deletes", commit.delete.len());
    let invocation = args.end_named();
    invocation.key(layout::document(&commit.key));
    for key in &commit.delete {
        invocation.key(key);
    }
    for (key, fields) in &commit.hashes {
        invocation.key(key).arg(fields.len());
        for (field, value) in fields {
            invocation.arg(field).arg(value);
        }
    }
    // On `NOSCRIPT` (a restart, `SCRIPT FLUSH`) the invocation loads the
    // script and runs it once more; it had not run, so nothing is doubled.
    let reply: Vec<Value> = invocation.invoke_async(&mut manager.clone()).await.map_err(map_error)?;
    match reply.as_slice() {
        [status, version] if int(status) == Some(1) => Ok(CommitOutcome::Committed(
            int(version).ok_or_else(|| unexpected("commit", &reply))?,
        )),
        [status] if int(status) == Some(0) => Ok(CommitOutcome::Conflict(None)),
        [status, version, Value::BulkString(json)] if int(status) == Some(0) => {
            Ok(CommitOutcome::Conflict(Some(StoredDoc {
                version: int(version).ok_or_else(|| unexpected("commit", &reply))?,
                json: json.clone(),
            })))
        }
        [status, kind] if int(status) == Some(2) => Err(not_a_document(&commit.key, &text(kind))),
        _ => Err(unexpected("commit", &reply)),
    }
}

fn int(value: &Value) -> Option<u64> {
    match value {
        Value::Int(n) => u64::try_from(*n).ok(),
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok()?.parse().ok(),
        _ => None,
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Value::SimpleString(text) => text.clone(),
        other => format!("{other:?}"),
    }
}

fn unexpected(script: &str, reply: &[Value]) -> Error {
    Error::Command {
        source: format!("unexpected reply from the {script} script: {reply:?}").into(),
    }
}
