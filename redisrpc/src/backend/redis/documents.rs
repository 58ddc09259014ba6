//! The shared state's primitives on Redis: a versioned read and a
//! compare-and-set, each one Lua script, and the check of the layout the
//! server keeps its state in.
//!
//! The scripts never decode JSON (Lua's `cjson` would round numbers); they
//! only compare the version and store the text the caller computed, so
//! values stay exact and any stock Redis ≥ 7 or Valkey runs them. Both
//! touch only the document's key and its binary hashes (and the commit,
//! their staging keys), which share one Redis Cluster slot (see
//! [`layout`]).

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

/// The compare-and-set. KEYS: the document, the keys to delete, then each
/// binary hash to write followed by the key it was staged under (see
/// [`doc_commit`]). ARGV: `name, value` pairs up to a `--` (see
/// [`CommitArgs`]).
///
/// A version is the time of its write in microseconds on the server's
/// clock, or one more than the document's previous version when that is
/// not less: so versions of a document only ever increase, also across
/// its deletion, a `FLUSHALL` or a restart without persistence (as long
/// as the server's clock does not go back), and a process's copy from
/// before can never pass the compare-and-set. Replies `{1, version}` (0
/// when the document was deleted), `{0}` or `{0, version, json}` on a
/// conflict, and `{2, type}` as [`READ`] does. Whatever it replies, no
/// staged hash is left behind.
static COMMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local named, at = {}, 1
while ARGV[at] ~= '--' do
  named[ARGV[at]] = ARGV[at + 1]
  at = at + 2
end
local first_hash = 2 + tonumber(named.deletes)
local function unstage()
  for i = first_hash + 1, #KEYS, 2 do redis.call('DEL', KEYS[i]) end
end
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind ~= 'none' and kind ~= 'hash' then unstage() return {2, kind} end
local current = redis.call('HMGET', KEYS[1], 'version', 'json')
if kind == 'hash' and not current[2] then unstage() return {2, kind} end
if (current[1] or '0') ~= named.expected then
  unstage()
  if current[2] then return {0, current[1] or '0', current[2]} end
  return {0}
end
for i = 2, first_hash - 1 do redis.call('DEL', KEYS[i]) end
for i = first_hash, #KEYS, 2 do
  if redis.call('EXISTS', KEYS[i + 1]) == 1 then
    redis.call('RENAME', KEYS[i + 1], KEYS[i])
    redis.call('PERSIST', KEYS[i])
  else
    redis.call('DEL', KEYS[i])
  end
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

/// How long a staged binary hash may outlive a transaction whose script
/// did not run (Redis had forgotten it: the commit is then sent again).
const STAGED_TTL_MS: u64 = 60_000;

/// The commit script's named arguments, each sent as its name then its
/// value, so the script and this builder agree by name, not by position.
struct CommitArgs {
    command: redis::Cmd,
}

impl CommitArgs {
    fn new(keys: &[&str]) -> Self {
        let mut command = redis::cmd("EVALSHA");
        command.arg(COMMIT.get_hash()).arg(keys.len()).arg(keys);
        CommitArgs { command }
    }

    fn named(&mut self, name: &str, value: impl redis::ToRedisArgs) -> &mut Self {
        self.command.arg(name).arg(value);
        self
    }

    /// Ends the named arguments: the `EVALSHA` command.
    fn end_named(mut self) -> redis::Cmd {
        self.command.arg("--");
        self.command
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

/// Runs the compare-and-set. The binary values travel beside the script,
/// not through it: a script's arguments are copied into Lua and out again,
/// which made writing a camera frame five times slower than an `HSET` of
/// it. Each hash is written with a plain `HSET` under a staging key of its
/// document's own (`layout::staged`), in the same `MULTI` as the script,
/// which renames it into place once the version compares equal and deletes
/// it otherwise; no other client ever sees a staged hash.
pub(super) async fn doc_commit(manager: &Shared, layout: &LayoutCheck, commit: &Commit) -> Result<CommitOutcome> {
    layout.ensure(manager).await?;
    let staged: Vec<String> = if commit.hashes.is_empty() {
        Vec::new()
    } else {
        let random = uuid::Uuid::new_v4().simple().to_string();
        (0..commit.hashes.len())
            .map(|i| layout::staged(&commit.key, &format!("{random}{i}")))
            .collect()
    };
    let mut keys = Vec::with_capacity(1 + commit.delete.len() + 2 * staged.len());
    keys.push(layout::document(&commit.key));
    keys.extend(commit.delete.iter().map(String::as_str));
    for ((key, _), stage) in commit.hashes.iter().zip(&staged) {
        keys.push(key);
        keys.push(stage);
    }
    let publish = commit.publish.clone().unwrap_or_default();
    let mut args = CommitArgs::new(&keys);
    args.named("expected", commit.expected)
        .named("write", if commit.json.is_some() { "1" } else { "0" })
        .named("json", commit.json.as_deref().unwrap_or_default())
        .named("channel", &publish.channel)
        .named("head", &publish.head)
        .named("tail", &publish.tail)
        .named("deletes", commit.delete.len());
    let script = args.end_named();
    // On `NOSCRIPT` (a restart, `SCRIPT FLUSH`) the script is loaded and
    // the commit sent once more; it had not run, so nothing is doubled, and
    // the retry stages under the same keys, replacing what the first left.
    let reply = match send_commit(manager, commit, &staged, &script).await {
        Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
            COMMIT.load_async(&mut manager.clone()).await.map_err(map_error)?;
            send_commit(manager, commit, &staged, &script).await
        }
        sent => sent,
    }
    .map_err(map_error)?;
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

/// Sends the commit `script`, after staging `commit`'s hashes under
/// `staged` in the same transaction when it has any.
async fn send_commit(
    manager: &Shared,
    commit: &Commit,
    staged: &[String],
    script: &redis::Cmd,
) -> redis::RedisResult<Vec<Value>> {
    if staged.is_empty() {
        return script.query_async(&mut manager.clone()).await;
    }
    let mut pipe = redis::pipe();
    pipe.atomic();
    for ((_, fields), stage) in commit.hashes.iter().zip(staged) {
        pipe.del(stage).ignore();
        if !fields.is_empty() {
            // `HSET` with many fields, not the crate's `HMSET`, which an
            // ACL may not allow.
            let hset = pipe.cmd("HSET").arg(stage);
            for (field, value) in fields.iter() {
                hset.arg(field).arg(&value[..]);
            }
            hset.ignore();
            pipe.pexpire(stage, STAGED_TTL_MS as i64).ignore();
        }
    }
    pipe.add_command(script.clone());
    let (reply,): (Vec<Value>,) = pipe.query_async(&mut manager.clone()).await?;
    Ok(reply)
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
