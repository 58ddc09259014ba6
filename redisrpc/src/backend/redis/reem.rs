//! REEM's layout on a Redis server with the RedisJSON module: a document
//! read, and a compare-and-set write, each one script.
//!
//! REEM keeps no version, so the scripts make one: the first 13 hex digits
//! (52 bits, exact in Lua's numbers) of the SHA-1 of the document's JSON
//! text and its metadata's, as RedisJSON prints them. A write compares it
//! with the one its change was computed from, so a change made meanwhile,
//! by REEM or by anyone, is a conflict, exactly as in the store's own
//! layout. RedisJSON commands run inside scripts like any other command,
//! so the write is atomic: REEM's readers see all of it or none.
//!
//! Binary values go through the script's arguments (the store's own layout
//! stages them instead, for speed): REEM's hashes must be written in the
//! same atomic step as the metadata that names them.

use std::sync::LazyLock;

use redis::Value;

use super::{Redis, map_error};
use crate::backend::{CommitOutcome, ReemCommit, ReemDoc};
use crate::layout::reem::{metadata_channel, metadata_key};
use crate::{Error, Result};

/// The fingerprint of a document, from its JSON text and metadata text.
const FINGERPRINT: &str = r"
local function fingerprint(json, metadata)
  return string.sub(redis.sha1hex(json .. '\n' .. (metadata or '')), 1, 13)
end
local function read(key, meta)
  local json = redis.call('JSON.GET', key, '.')
  if not json then return false end
  local metadata = false
  if redis.call('EXISTS', meta) == 1 then metadata = redis.call('JSON.GET', meta, '.') end
  return {json, metadata or '', fingerprint(json, metadata)}
end
";

/// KEYS: the document, its metadata. Returns `false` when absent, else
/// `{json, metadata or '', fingerprint}`.
static GET: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(&format!("{FINGERPRINT}\nreturn read(KEYS[1], KEYS[2])")));

/// KEYS: the document, its metadata, the keys to delete, the hashes to
/// write. ARGV: the expected fingerprint ('' when absent), the JSON ('' to
/// delete), the metadata ('' to keep it), how many keys to delete, how
/// many hashes, the channel to publish on (''), the metadata channel, then
/// per hash its field count and fields. Returns `{1, fingerprint}` once
/// written, or `{0, current}` (current as `GET` returns it).
static COMMIT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        "{FINGERPRINT}
local current = read(KEYS[1], KEYS[2])
local now = current and current[3] or ''
if now ~= ARGV[1] then return {{0, current}} end
local deletes, hashes = tonumber(ARGV[4]), tonumber(ARGV[5])
for i = 1, deletes do redis.call('DEL', KEYS[2 + i]) end
local at = 8
for i = 1, hashes do
  local key = KEYS[2 + deletes + i]
  local count = tonumber(ARGV[at])
  redis.call('DEL', key)
  if count > 0 then redis.call('HSET', key, unpack(ARGV, at + 1, at + 2 * count)) end
  at = at + 1 + 2 * count
end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('JSON.SET', KEYS[1], '.', ARGV[2])
end
if ARGV[3] ~= '' then
  redis.call('JSON.SET', KEYS[2], '.', ARGV[3])
  redis.call('PUBLISH', ARGV[7], 'set')
end
if ARGV[6] ~= '' then redis.call('PUBLISH', ARGV[6], 'Publish') end
local written = read(KEYS[1], KEYS[2])
return {{1, written and written[3] or ''}}"
    ))
});

impl Redis {
    pub(super) async fn reem_read(&self, key: &str) -> Result<Option<ReemDoc>> {
        self.refuse_reem_on_a_cluster()?;
        let mut conn = self.inner.manager.clone();
        let reply: Value = GET
            .key(key)
            .key(metadata_key(key))
            .invoke_async(&mut conn)
            .await
            .map_err(reem_error)?;
        doc_of(key, reply)
    }

    pub(super) async fn reem_write(&self, commit: &ReemCommit) -> Result<CommitOutcome<ReemDoc>> {
        self.refuse_reem_on_a_cluster()?;
        let key = &commit.key;
        let mut invocation = COMMIT.key(key);
        invocation.key(metadata_key(key));
        for deleted in &commit.delete {
            invocation.key(deleted);
        }
        for (hash, _) in &commit.hashes {
            invocation.key(hash);
        }
        let expected = match commit.expected {
            0 => String::new(),
            version => format!("{version:013x}"),
        };
        invocation
            .arg(expected)
            .arg(commit.json.as_deref().unwrap_or_default())
            .arg(commit.metadata.as_deref().unwrap_or_default())
            .arg(commit.delete.len())
            .arg(commit.hashes.len())
            .arg(commit.publish.as_deref().unwrap_or_default())
            .arg(metadata_channel(key));
        for (_, fields) in &commit.hashes {
            invocation.arg(fields.len());
            for (name, value) in fields.iter() {
                invocation.arg(name).arg(value.as_ref());
            }
        }
        let mut conn = self.inner.manager.clone();
        let reply: Value = invocation.invoke_async(&mut conn).await.map_err(reem_error)?;
        let malformed = || malformed(key, "a commit's reply");
        let Value::Array(mut parts) = reply else {
            return Err(malformed());
        };
        if parts.len() != 2 {
            return Err(malformed());
        }
        let (status, rest) = (parts.remove(0), parts.remove(0));
        match status {
            Value::Int(1) => Ok(CommitOutcome::Committed(version_of(
                key,
                &bytes(rest).unwrap_or_default(),
            )?)),
            Value::Int(0) => Ok(CommitOutcome::Conflict(doc_of(key, rest)?)),
            _ => Err(malformed()),
        }
    }

    fn refuse_reem_on_a_cluster(&self) -> Result<()> {
        if matches!(self.inner.manager, super::shared::Shared::Cluster(_)) {
            return Err(crate::backend::reem_not_offered());
        }
        Ok(())
    }
}

/// A read's reply: `nil` (absent) or `{json, metadata, fingerprint}`.
fn doc_of(key: &str, reply: Value) -> Result<Option<ReemDoc>> {
    let parts = match reply {
        Value::Nil => return Ok(None),
        Value::Array(parts) if parts.len() == 3 => parts,
        _ => return Err(malformed(key, "a read's reply")),
    };
    let mut parts = parts.into_iter().map(bytes);
    let (Some(Some(json)), Some(Some(metadata)), Some(Some(fingerprint))) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed(key, "a read's reply"));
    };
    Ok(Some(ReemDoc {
        version: version_of(key, &fingerprint)?,
        json,
        metadata: (!metadata.is_empty()).then_some(metadata),
    }))
}

fn bytes(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) => Some(text.into_bytes()),
        Value::Nil => Some(Vec::new()),
        _ => None,
    }
}

/// The version a fingerprint stands for; 0 for none (absent).
fn version_of(key: &str, fingerprint: &[u8]) -> Result<u64> {
    if fingerprint.is_empty() {
        return Ok(0);
    }
    std::str::from_utf8(fingerprint)
        .ok()
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .ok_or_else(|| malformed(key, "a fingerprint"))
}

fn malformed(key: &str, what: &str) -> Error {
    Error::Command {
        source: format!("REEM layout: unexpected {what} for `{key}`").into(),
    }
}

/// A script's error; an unknown command (`JSON.GET`) means the server has
/// no RedisJSON module, which deserves a clearer word.
fn reem_error(error: redis::RedisError) -> Error {
    let text = error.to_string();
    let lower = text.to_ascii_lowercase();
    if lower.contains("unknown redis command") || lower.contains("unknown command") {
        return Error::Config(format!(
            "REEM's layout needs the RedisJSON module on the Redis server, which does not have it ({text})"
        ));
    }
    map_error(error)
}
