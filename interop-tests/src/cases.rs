//! The scripts every cell runs.
//!
//! Each takes `named`: whether the client can send named arguments (ours
//! and Python's can, Ruby's cannot). With `named`, some calls pass their
//! arguments by name, so a server is also held to binding them.

use serde_json::{Value, json};

use crate::script::{Expect, Step};

/// What the calculator's unknown-method and division errors contain, in
/// the words of each server: ours, Python's, Ruby's, PHP's.
const UNKNOWN_METHOD: &[&str] = &["pow"];
const DIVISION_BY_ZERO: &[&str] = &["float division by zero", "divided by 0", "Division by zero"];

/// The calculator sequence: clr, add 5, sub 3, mul 4, div 2, val == 4; an
/// unknown method is a remote error; division by zero is a remote error and
/// the server goes on serving.
pub fn calculator(named: bool) -> Vec<Step> {
    let number = |method: &str, n: Value, result: f64| {
        if named {
            Step::returns(method, vec![], json!(result)).with_kwargs(json!({ "number": n }))
        } else {
            Step::returns(method, vec![n], json!(result))
        }
    };
    vec![
        // Peers differ in what `clr` returns: null, or Ruby's 0.0.
        Step::new("clr", vec![], Expect::ReturnsAnything),
        number("add", json!(5), 5.0),
        number("sub", json!(3), 2.0),
        number("mul", json!(4), 8.0),
        number("div", json!(2), 4.0),
        Step::returns("val", vec![], json!(4.0)),
        Step::new("pow", vec![json!(2)], Expect::Fails(UNKNOWN_METHOD)),
        Step::new("div", vec![json!(0)], Expect::Fails(DIVISION_BY_ZERO)),
        Step::returns("val", vec![], json!(4.0)),
        number("add", json!(0.5), 4.5),
    ]
}

/// Values `echo` must return exactly as sent: non-ASCII text, integers at
/// the `i64` limits, floats bit for bit, nesting, empty list versus empty
/// object, null, and a 1 MiB string.
pub fn echo_values() -> Vec<Value> {
    let two_to_53 = 2f64.powi(53);
    vec![
        json!("grüße, naïve café, 日本語, emoji 🤖, \"quotes\", back\\slash, tab\t, newline\n"),
        json!(["\u{0}", "\u{7f}", "\u{2028}", "\u{10ffff}"]),
        json!(i64::MAX),
        json!(i64::MIN),
        json!([i64::MIN, -1, 0, 1, i64::MAX, 9_007_199_254_740_993_i64]),
        json!(0.1),
        json!(1e-300),
        // 2^53 + 1 cannot be a float: it is 2^53 as one, and must stay a float.
        json!(two_to_53 + 1.0),
        json!([
            0.1,
            0.2,
            1e-300,
            two_to_53 + 1.0,
            two_to_53 + 2.0,
            5e-324,
            f64::MAX,
            -2.5,
            1.0,
            -0.0
        ]),
        json!({"a": [1, {"b": [[], {}], "c": null}], "d": {"e": {"f": [true, false, "g"]}}}),
        json!([]),
        json!({}),
        json!([[], {}, [[]], {"": {}}]),
        Value::Null,
        json!([null, {"k": null}]),
        json!("0123456789abcdef".repeat(1 << 16)),
    ]
}

/// `echo` of each of [`echo_values`].
pub fn echo() -> Vec<Step> {
    echo_values()
        .into_iter()
        .map(|value| Step::returns("echo", vec![value.clone()], value))
        .collect()
}

/// A part as `add` stores it.
fn part(name: &str, kind: Value, count: i64, weight_kg: f64, tags: &[&str], supplier: Option<&str>) -> Value {
    json!({
        "name": name, "kind": kind, "count": count, "weight_kg": weight_kg,
        "tags": tags, "supplier": supplier, "attributes": {},
    })
}

/// The inventory: named parameters, a parameter with a default, an enum
/// with a unit and an object variant, optional results, and errors.
pub fn inventory(named: bool) -> Vec<Step> {
    let camera = json!({"camera": {"width": 640, "height": 480}});
    let motor = part("m1", json!("motor"), 3, 0.25, &["arm", "joint"], Some("ACME"));
    let cam = part("cam", camera.clone(), 1, 0.1, &[], None);
    let sensor = part("s1", json!("sensor"), 0, 0.02, &["ütf-8"], None);
    let mut gripper = part("g1", json!("gripper"), 2, 1.5, &["soft"], Some("Grip & Co"));
    gripper["attributes"] = json!({"fingers": 3, "force_n": 12.5, "notes": null, "jaws": {"open": [0.0, 0.08]}});

    let add_motor = vec![
        json!("m1"),
        json!("motor"),
        json!(3),
        json!(0.25),
        json!(["arm", "joint"]),
        json!("ACME"),
    ];
    let (add_motor, add_camera, list_sensors) = if named {
        (
            Step::returns("add", vec![], motor.clone()).with_kwargs(json!({
                "name": "m1", "kind": "motor", "count": 3, "weight_kg": 0.25,
                "tags": ["arm", "joint"], "supplier": "ACME",
            })),
            // Mixed, as Python allows; `supplier` left to its default.
            Step::returns("add", vec![json!("cam"), camera.clone()], cam.clone())
                .with_kwargs(json!({"count": 1, "weight_kg": 0.1, "tags": []})),
            Step::returns("list", vec![], json!([sensor])).with_kwargs(json!({"kind": "sensor"})),
        )
    } else {
        (
            Step::returns("add", add_motor, motor.clone()),
            Step::returns(
                "add",
                vec![json!("cam"), camera.clone(), json!(1), json!(0.1), json!([])],
                cam.clone(),
            ),
            Step::returns("list", vec![json!("sensor")], json!([sensor])),
        )
    };
    let no_part: &'static [&'static str] = &["no part named `m1`"];
    vec![
        add_motor,
        add_camera,
        Step::returns(
            "add",
            vec![
                json!("s1"),
                json!("sensor"),
                json!(0),
                json!(0.02),
                json!(["ütf-8"]),
                Value::Null,
            ],
            sensor.clone(),
        ),
        Step::new(
            "add",
            vec![json!("bad"), json!("motor"), json!(-1), json!(1.0), json!([])],
            Expect::Fails(&["count must not be negative"]),
        ),
        Step::returns("get", vec![json!("cam")], cam.clone()),
        Step::returns("get", vec![json!("nothing")], Value::Null),
        Step::returns("list", vec![], json!([cam, motor, sensor])),
        Step::returns("list", vec![json!("motor")], json!([motor])),
        Step::returns("list", vec![camera], json!([cam])),
        list_sensors,
        Step::returns("counts", vec![], json!({"cam": 1, "m1": 3, "s1": 0})),
        Step::returns("put", vec![gripper.clone()], gripper.clone()),
        Step::returns("get", vec![json!("g1")], gripper.clone()),
        Step::returns("remove", vec![json!("m1")], motor),
        Step::new("remove", vec![json!("m1")], Expect::Fails(no_part)),
        Step::returns("list", vec![], json!([cam, gripper, sensor])),
    ]
}
