//! `call` and `describe`: a service's methods, through the library's own
//! client, so the requests are exactly what any redisrpc client sends.

use std::io::Read;

use redisrpc::describe::{DESCRIBE_METHOD, MethodDescription, ServiceDescription};
use redisrpc::{Call, Client};
use serde_json::{Map, Value, json};

use crate::Options;
use crate::failure::{self, Failure, Outcome};
use crate::shapes;
use crate::words;

/// `redisrpc call QUEUE METHOD [ARG…]`.
pub(crate) async fn call(
    options: &Options,
    queue: &str,
    method: &str,
    args: &[String],
    data: Option<&str>,
    urgent: bool,
) -> Outcome {
    let (positional, named) = match data {
        Some(data) => arguments_from_data(data)?,
        None => words::arguments(args),
    };
    let mut call = Call::new(method).with_urgent(urgent);
    for value in positional {
        call = call.arg(value);
    }
    for (name, value) in named {
        call = call.kwarg(name, value);
    }
    let client = client(options, queue).await?;
    let value: Value = client.send(call).await?;
    print_json(options, &value);
    Ok(())
}

/// `redisrpc describe QUEUE [METHOD]`.
pub(crate) async fn describe(options: &Options, queue: &str, method: Option<&str>) -> Outcome {
    let client = client(options, queue).await?;
    let described: ServiceDescription = match client.call(DESCRIBE_METHOD, ()).await {
        Ok(described) => described,
        Err(error) if error.is_remote() || error.is_decode() => {
            return Err(Failure::new(
                failure::NOT_FOUND,
                format!(
                    "the server of `{queue}` does not describe itself (it answered `{DESCRIBE_METHOD}` with: {error}); \
                     servers of other RedisRPC implementations have no descriptions"
                ),
            ));
        }
        Err(error) => return Err(error.into()),
    };
    let methods: Vec<&MethodDescription> = match method {
        None => described.methods.iter().collect(),
        Some(name) => match described.method(name) {
            Some(found) => vec![found],
            None => {
                let known: Vec<&str> = described.methods.iter().map(|m| &*m.name).collect();
                return Err(Failure::new(
                    failure::NOT_FOUND,
                    format!("`{queue}` has no method `{name}` (it has: {})", known.join(", ")),
                ));
            }
        },
    };
    if options.json {
        let methods: Vec<Value> = methods.iter().map(|m| json!(m)).collect();
        println!(
            "{}",
            json!({"name": described.name, "docs": described.docs, "methods": methods})
        );
        return Ok(());
    }
    if method.is_none() {
        println!("service {} on `{queue}`", described.name);
        for line in described.docs.lines() {
            println!("  {line}");
        }
        println!();
    }
    for method in methods {
        let params: Vec<String> = method
            .params
            .iter()
            .map(|p| format!("{}: {}", p.name, p.rust_type))
            .collect();
        let error = method
            .error
            .as_ref()
            .map(|e| format!(" (fails with {e})"))
            .unwrap_or_default();
        println!("{}({}) -> {}{error}", method.name, params.join(", "), method.returns);
        for line in method.docs.lines() {
            println!("    {line}");
        }
    }
    // What the named types hold, as `ros2 interface show` shows messages.
    if let Some(Value::Object(types)) = &described.types {
        println!("\ntypes:");
        for (name, container) in types {
            println!("  {}", shapes::declaration(name, container));
        }
    }
    Ok(())
}

async fn client(options: &Options, queue: &str) -> Outcome<Client> {
    let backend = options.backend().await?;
    Ok(Client::new(backend, queue).with_timeout(Some(options.timeout)))
}

/// `-d`: `{"args": […], "kwargs": {…}}` as JSON, from `@file`, or `@-`.
fn arguments_from_data(data: &str) -> Outcome<(Vec<Value>, Map<String, Value>)> {
    let text = match data.strip_prefix('@') {
        Some("-") => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| Failure::new(failure::USAGE, format!("cannot read stdin: {e}")))?;
            text
        }
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| Failure::new(failure::USAGE, format!("cannot read {path}: {e}")))?,
        None => data.to_owned(),
    };
    let bad = |why: &str| {
        Failure::new(
            failure::USAGE,
            format!("-d wants {{\"args\": [...], \"kwargs\": {{...}}}}: {why}"),
        )
    };
    let Value::Object(mut object) = serde_json::from_str(&text).map_err(|e| bad(&e.to_string()))? else {
        return Err(bad("not an object"));
    };
    let args = match object.remove("args") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(args)) => args,
        Some(_) => return Err(bad("`args` is not a list")),
    };
    let kwargs = match object.remove("kwargs") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(kwargs)) => kwargs,
        Some(_) => return Err(bad("`kwargs` is not an object")),
    };
    if let Some(other) = object.keys().next() {
        return Err(bad(&format!("unknown member `{other}`")));
    }
    Ok((args, kwargs))
}

/// A value as JSON: pretty for people, one line with `--json`.
pub(crate) fn print_json(options: &Options, value: &Value) {
    if options.json {
        println!("{value}");
    } else {
        println!(
            "{}",
            serde_json::to_string_pretty(value).expect("a JSON value always encodes")
        );
    }
}
