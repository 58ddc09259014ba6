use serde_json::json;

use super::*;

fn request(text: &str) -> Request {
    Request::decode(text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e:?}"))
}

#[test]
fn decodes_what_each_peer_client_sends() {
    let python = request(
        r#"{"function_call": {"name": "add", "args": [5], "kwargs": {"b": 2}}, "response_queue": "calc:rpc:X7Y2US0A"}"#,
    );
    assert_eq!(python.call.name, "add");
    assert_eq!(python.call.args, vec![json!(5)]);
    assert_eq!(python.call.kwargs["b"], json!(2));
    assert_eq!(python.response_queue, "calc:rpc:X7Y2US0A");

    let ruby = request(r#"{"function_call":{"name":"val","args":[]},"response_queue":"calc:rpc:0AZ19XYQ"}"#);
    assert!(ruby.call.args.is_empty() && ruby.call.kwargs.is_empty());

    let php = request(r#"{"function_call":{"name":"clr"},"response_queue":"calc:rpc:aZ09bY18"}"#);
    assert_eq!(
        php.call,
        FunctionCall {
            name: "clr".into(),
            ..Default::default()
        }
    );

    let nulls = request(r#"{"function_call":{"name":"clr","args":null,"kwargs":null},"response_queue":"q:rpc:1"}"#);
    assert!(nulls.call.args.is_empty() && nulls.call.kwargs.is_empty());
}

#[test]
fn ignores_unknown_members_at_every_level() {
    let r = request(
        r#"{"v":2,"function_call":{"name":"add","args":[1],"trace":"x"},"response_queue":"q:rpc:1","extra":{}}"#,
    );
    assert_eq!(r.call.args, vec![json!(1)]);
}

#[test]
fn keeps_integers_exact_across_the_i64_and_u64_ranges() {
    let r = request(
        r#"{"function_call":{"name":"f","args":[-9223372036854775808,18446744073709551615,9007199254740993]},"response_queue":"q:rpc:1"}"#,
    );
    assert_eq!(r.call.args[0].as_i64(), Some(i64::MIN));
    assert_eq!(r.call.args[1].as_u64(), Some(u64::MAX));
    assert_eq!(r.call.args[2].as_u64(), Some(9_007_199_254_740_993));
    let again = Request::decode(&r.encode()).unwrap();
    assert_eq!(again, r);
}

#[test]
fn encoding_leaves_out_empty_args_and_kwargs_as_the_python_client_does() {
    let bare = Request::new(
        FunctionCall {
            name: "val".into(),
            ..Default::default()
        },
        "calc:rpc:1",
    );
    assert_eq!(
        String::from_utf8(bare.encode()).unwrap(),
        r#"{"function_call":{"name":"val"},"response_queue":"calc:rpc:1"}"#
    );

    let mut kwargs = Map::new();
    kwargs.insert("b".into(), json!(2));
    let full = Request::new(
        FunctionCall {
            name: "add".into(),
            args: vec![json!(5)],
            kwargs,
        },
        "calc:rpc:1",
    );
    assert_eq!(
        String::from_utf8(full.encode()).unwrap(),
        r#"{"function_call":{"name":"add","args":[5],"kwargs":{"b":2}},"response_queue":"calc:rpc:1"}"#
    );
}

#[test]
fn floats_survive_encoding_bit_for_bit() {
    for x in [
        0.1,
        1e-300,
        -0.0,
        9_007_199_254_740_993_f64,
        f64::MAX,
        f64::MIN_POSITIVE,
        5e-324,
    ] {
        let r = Request::new(
            FunctionCall {
                name: "f".into(),
                args: vec![json!(x)],
                ..Default::default()
            },
            "q:rpc:1",
        );
        let back = Request::decode(&r.encode()).unwrap().call.args[0].as_f64().unwrap();
        assert_eq!(back.to_bits(), x.to_bits(), "{x}");
        let reply = Reply::encode_return(&x).unwrap();
        let Reply::Return(value) = Reply::decode(&reply).unwrap() else {
            panic!()
        };
        assert_eq!(value.decode::<f64>().unwrap().to_bits(), x.to_bits(), "{x}");
    }
}

#[test]
fn garbage_is_undecodable_and_says_why() {
    for bad in [
        &b"hello"[..],
        b"",
        b"[1,2]",
        b"{\"function_call\":{\"name\":\"x\"}}",
        b"\xff\xfe",
        b"{\"response_queue\": 5}",
    ] {
        assert!(
            matches!(Request::decode(bad), Err(RequestError::Undecodable(_))),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn a_bad_call_with_a_response_queue_can_still_be_answered() {
    for (text, needle) in [
        (r#"{"response_queue":"q:rpc:1"}"#, "function_call"),
        (r#"{"function_call":{"args":[]},"response_queue":"q:rpc:1"}"#, "name"),
        (r#"{"function_call":{"name":7},"response_queue":"q:rpc:1"}"#, "name"),
        (
            r#"{"function_call":{"name":"f","args":5},"response_queue":"q:rpc:1"}"#,
            "malformed",
        ),
        (
            r#"{"function_call":{"name":"f","kwargs":[1]},"response_queue":"q:rpc:1"}"#,
            "malformed",
        ),
        (
            r#"{"function_call":{"name":"f","args":[NaN]},"response_queue":"q:rpc:1"}"#,
            "non-finite",
        ),
    ] {
        match Request::decode(text.as_bytes()) {
            Err(RequestError::BadCall { response_queue, reason }) => {
                assert_eq!(response_queue, "q:rpc:1");
                assert!(reason.contains(needle), "{text}: {reason}");
            }
            other => panic!("{text}: {other:?}"),
        }
    }
}

fn returned(text: &str) -> ReturnValue {
    match Reply::decode(text.as_bytes()) {
        Ok(Reply::Return(value)) => value,
        other => panic!("{text}: {other:?}"),
    }
}

#[test]
fn decodes_return_values_including_null() {
    assert_eq!(returned(r#"{"return_value": 4.0}"#).decode::<f64>().unwrap(), 4.0);
    assert_eq!(
        returned(r#"{"return_value": null}"#).decode::<Option<i32>>().unwrap(),
        None
    );
    returned(r#"{"return_value": null}"#).decode::<()>().unwrap();
    assert_eq!(
        returned(r#"{"return_value": [1], "exception": null, "x": 1}"#)
            .decode::<Vec<u8>>()
            .unwrap(),
        vec![1]
    );
}

#[test]
fn decodes_exceptions_with_and_without_backtrace() {
    let ruby =
        Reply::decode(br#"{"exception":"divided by 0","backtrace":["calc.rb:10:in `div'","server.rb:3"]}"#).unwrap();
    let Reply::Exception { message, backtrace } = ruby else {
        panic!()
    };
    assert_eq!(message, "divided by 0");
    assert_eq!(backtrace.unwrap(), vec!["calc.rb:10:in `div'", "server.rb:3"]);

    let python = Reply::decode(br#"{"exception": "ZeroDivisionError('float division by zero')"}"#).unwrap();
    assert!(
        matches!(python, Reply::Exception { ref message, backtrace: None } if message.starts_with("ZeroDivisionError"))
    );

    let object = Reply::decode(br#"{"exception": {"code": 3}, "return_value": 1}"#).unwrap();
    assert!(matches!(object, Reply::Exception { ref message, .. } if message == r#"{"code":3}"#));
}

#[test]
fn decodes_the_python_peers_non_finite_tokens() {
    assert_eq!(
        returned(r#"{"return_value": Infinity}"#).decode::<f64>().unwrap(),
        f64::INFINITY
    );
    assert_eq!(
        returned(r#"{"return_value": -Infinity}"#).decode::<f64>().unwrap(),
        f64::NEG_INFINITY
    );
    assert!(returned(r#"{"return_value": NaN}"#).decode::<f64>().unwrap().is_nan());

    #[derive(Deserialize, Debug, PartialEq)]
    struct Pose {
        x: f64,
        ids: Vec<u64>,
        label: Option<String>,
    }
    let pose: Pose = returned(r#"{"return_value": {"x": -Infinity, "ids": [18446744073709551615], "label": null}}"#)
        .decode()
        .unwrap();
    assert_eq!(
        pose,
        Pose {
            x: f64::NEG_INFINITY,
            ids: vec![u64::MAX],
            label: None
        }
    );

    let Reply::Exception { message, .. } = Reply::decode(br#"{"exception": "bad", "return_value": NaN}"#).unwrap()
    else {
        panic!()
    };
    assert_eq!(message, "bad");
}

#[test]
fn a_reply_without_value_or_exception_is_malformed() {
    for bad in [
        &br#"{}"#[..],
        br#"{"exception": null}"#,
        br#"{"result": 1}"#,
        b"[1]",
        b"nonsense",
        b"",
    ] {
        let err = Reply::decode(bad).unwrap_err();
        assert!(err.is_malformed_reply(), "{err}");
    }
}

#[test]
fn a_value_json_cannot_carry_is_refused_not_sent_as_null() {
    let err = Reply::encode_return(&f64::NAN).unwrap_err();
    assert!(err.is_encode(), "{err}");
    let err = Reply::encode_return(&vec![1.0, f64::INFINITY]).unwrap_err();
    assert!(err.to_string().contains("not finite"), "{err}");
    let mut bad_keys = std::collections::HashMap::new();
    bad_keys.insert((1, 2), 3);
    assert!(Reply::encode_return(&bad_keys).unwrap_err().is_encode());
}

#[test]
fn exception_replies_escape_their_text() {
    let bytes = Reply::encode_exception("bad \"quote\" and é");
    assert_eq!(
        String::from_utf8(bytes.clone()).unwrap(),
        r#"{"exception":"bad \"quote\" and é"}"#
    );
    assert!(
        matches!(Reply::decode(&bytes).unwrap(), Reply::Exception { message, .. } if message == "bad \"quote\" and é")
    );
}

#[test]
fn trace_context_and_send_time_travel_as_optional_members() {
    let context = TraceContext::new_root();
    let sent = Duration::from_millis(1_700_000_000_123);
    let encoded = Request::new(FunctionCall::default(), "calc:rpc:1")
        .with_sent(Some(sent))
        .with_traceparent(Some(context))
        .encode();
    let wire: Value = serde_json::from_slice(&encoded).unwrap();
    assert_eq!(wire["traceparent"], json!(context.to_string()));
    assert_eq!(wire["sent"], json!(1_700_000_000_123u64));
    let decoded = Request::decode(&encoded).unwrap();
    assert_eq!(decoded.traceparent, Some(context));
    assert_eq!(decoded.sent, Some(sent));

    // Without them, neither member is written: a peer sees what it always saw.
    let plain = Request::new(FunctionCall::default(), "calc:rpc:1").encode();
    let wire: Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(wire.as_object().unwrap().len(), 2, "{wire}");
}

#[test]
fn a_malformed_trace_context_or_send_time_reads_as_none_and_the_call_stands() {
    let odd = [
        json!("00-zz"),
        json!("yesterday"),
        json!(17.5),
        json!(-3),
        json!(true),
        json!(null),
        json!({"trace": [1, {"deep": null}]}),
        json!([1, "two", [3]]),
    ];
    for value in odd {
        let text = json!({"function_call": {"name": "add", "args": [1]}, "response_queue": "calc:rpc:1",
                          "traceparent": value, "sent": value, "deadline": value})
        .to_string();
        let decoded = request(&text);
        assert_eq!(
            (decoded.call.name.as_str(), decoded.response_queue.as_str()),
            ("add", "calc:rpc:1")
        );
        assert_eq!(decoded.call.args, vec![json!(1)], "{text}");
        assert_eq!(
            (decoded.traceparent, decoded.sent, decoded.deadline),
            (None, None, None),
            "{text}"
        );
    }
}

#[test]
fn a_return_reply_is_the_peers_exact_bytes() {
    let value = json!({"a": [1, "x\"y"], "b": null});
    assert_eq!(
        Reply::encode_return(&value).unwrap(),
        br#"{"return_value":{"a":[1,"x\"y"],"b":null}}"#
    );
    assert_eq!(Reply::encode_return(&()).unwrap(), br#"{"return_value":null}"#);
    assert_eq!(Reply::encode_return("s").unwrap(), br#"{"return_value":"s"}"#);
}
