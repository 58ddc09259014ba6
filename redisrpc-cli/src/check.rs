//! Checking a call's arguments against the method's description before the
//! request is sent, so a mistake is named where it is (`kind.camera.width:
//! wants u32, got "wide"`) instead of costing a round trip and a serde
//! message about line and column.
//!
//! The rules are the server's: arguments bind to parameters as
//! [`redisrpc::Args::bind`] binds them, and values are held to the shapes
//! `#[rpc]` traced through serde (`serde-reflection` formats in JSON), read
//! the way `serde_json` reads them. Where the description knows nothing (no
//! shape, a type it cannot find, a method that reads its arguments by hand)
//! the check lets the value through, and the server decides.
//!
//! Two things are stricter than serde: a struct member the type does not
//! have is refused (serde would drop it, and it is most likely a misspelt
//! name), and a missing member that is not an `Option` is refused even if
//! the type gives it a `#[serde(default)]`, which shapes cannot show.
//! `redisrpc call --no-check` sends such arguments anyway.

use std::fmt;

use redisrpc::describe::{MethodDescription, ParamDescription};
use serde_json::{Map, Value};

use crate::shapes;

/// How deep the check follows named types into each other without a value
/// getting smaller (a description naming itself in a loop).
const MAX_DEPTH: usize = 256;

/// Why arguments do not fit a method.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Misfit(String);

impl fmt::Display for Misfit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks `positional` and `named` against `method`, whose named types are
/// in `types` (the description's `types`).
pub(crate) fn arguments(
    method: &MethodDescription,
    types: Option<&Value>,
    positional: &[Value],
    named: &Map<String, Value>,
) -> Result<(), Misfit> {
    let name = &method.name;
    let params = &method.params;
    // A method that reads its arguments by hand lists no parameter types,
    // and takes any arguments; so may one that lists no parameters at all.
    if params.is_empty() || params.iter().any(|p| p.rust_type.is_empty()) {
        return Ok(());
    }
    let names: Vec<&str> = params.iter().map(|p| &*p.name).collect();
    if positional.len() > params.len() {
        return Err(Misfit(format!(
            "{name}() takes {} argument{} ({}) but {} were given",
            params.len(),
            if params.len() == 1 { "" } else { "s" },
            names.join(", "),
            positional.len()
        )));
    }
    for given in named.keys() {
        match names.iter().position(|p| p == given) {
            None => {
                return Err(Misfit(format!(
                    "{name}() has no parameter `{given}` (parameters: {})",
                    names.join(", ")
                )));
            }
            Some(index) if index < positional.len() => {
                return Err(Misfit(format!(
                    "{name}() got two values for argument `{given}`, by position and by name"
                )));
            }
            Some(_) => {}
        }
    }
    let types = types.and_then(Value::as_object);
    for (index, param) in params.iter().enumerate() {
        let Some(shape) = &param.shape else { continue };
        let checker = Checker { types };
        let given = positional.get(index).or_else(|| named.get(&*param.name));
        let mut path = Path(vec![param.name.to_string()]);
        match given {
            Some(value) => checker
                .value(value, shape, &mut path, 0)
                .map_err(|why| Misfit(format!("{name}(): argument {path}: {why}")))?,
            None => checker.value(&Value::Null, shape, &mut path, 0).map_err(|_| {
                Misfit(format!(
                    "{name}() is missing argument `{}` ({})",
                    param.name,
                    param_type(param)
                ))
            })?,
        }
    }
    Ok(())
}

fn param_type(param: &ParamDescription) -> String {
    param
        .shape
        .as_ref()
        .map(shapes::format)
        .unwrap_or_else(|| param.rust_type.to_string())
}

/// Where in an argument the check is: `kind.camera.width`, `tags[2]`.
struct Path(Vec<String>);

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`")?;
        for (index, part) in self.0.iter().enumerate() {
            if index > 0 && !part.starts_with('[') {
                f.write_str(".")?;
            }
            f.write_str(part)?;
        }
        f.write_str("`")
    }
}

struct Checker<'a> {
    types: Option<&'a Map<String, Value>>,
}

type Fit = Result<(), String>;

impl Checker<'_> {
    /// `value` against a format (`"F64"`, `{"SEQ": …}`, `{"TYPENAME": …}`).
    /// On a misfit, `path` is left where it is.
    fn value(&self, value: &Value, shape: &Value, path: &mut Path, depth: usize) -> Fit {
        if depth > MAX_DEPTH {
            return Ok(());
        }
        let depth = depth + 1;
        match shape {
            Value::String(scalar) => self.scalar(value, scalar),
            Value::Object(map) => match map.iter().next() {
                Some((kind, inner)) => match (kind.as_str(), inner) {
                    ("TYPENAME", Value::String(name)) => match self.types.and_then(|types| types.get(name)) {
                        Some(container) => self.container(value, name, container, path, depth),
                        None => Ok(()),
                    },
                    ("OPTION", inner) => match value {
                        Value::Null => Ok(()),
                        value => self.value(value, inner, path, depth),
                    },
                    ("SEQ", inner) => {
                        let Value::Array(items) = value else {
                            return Err(wants(&format!("a list ({})", shapes::format(shape)), value));
                        };
                        self.items(items, std::iter::repeat(inner), path, depth)
                    }
                    ("MAP", Value::Object(map)) => {
                        let Value::Object(members) = value else {
                            return Err(wants(&format!("an object ({})", shapes::format(shape)), value));
                        };
                        for (key, member) in members {
                            path.0.push(key.clone());
                            if let Some(key_shape) = map.get("KEY") {
                                self.key(key, key_shape)?;
                            }
                            if let Some(value_shape) = map.get("VALUE") {
                                self.value(member, value_shape, path, depth)?;
                            }
                            path.0.pop();
                        }
                        Ok(())
                    }
                    ("TUPLE", Value::Array(shapes)) => self.fixed(value, shapes.iter(), shapes.len(), path, depth),
                    ("TUPLEARRAY", Value::Object(array)) => {
                        let (Some(content), Some(size)) =
                            (array.get("CONTENT"), array.get("SIZE").and_then(Value::as_u64))
                        else {
                            return Ok(());
                        };
                        let size = usize::try_from(size).unwrap_or(usize::MAX);
                        self.fixed(value, std::iter::repeat(content), size, path, depth)
                    }
                    _ => Ok(()),
                },
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// `value` against a named type's container format.
    fn container(&self, value: &Value, name: &str, container: &Value, path: &mut Path, depth: usize) -> Fit {
        let Some((kind, inner)) = container.as_object().and_then(|map| map.iter().next()) else {
            return match (container, value) {
                (Value::String(kind), Value::Null) if kind == "UNITSTRUCT" => Ok(()),
                (Value::String(kind), value) if kind == "UNITSTRUCT" => Err(wants(&format!("null ({name})"), value)),
                _ => Ok(()),
            };
        };
        match (kind.as_str(), inner) {
            ("NEWTYPESTRUCT", inner) => self.value(value, inner, path, depth),
            ("TUPLESTRUCT", Value::Array(shapes)) => self.fixed(value, shapes.iter(), shapes.len(), path, depth),
            ("STRUCT", Value::Array(fields)) => self.fields(value, name, fields, path, depth),
            ("ENUM", Value::Object(variants)) => self.variant(value, name, container, variants, path, depth),
            _ => Ok(()),
        }
    }

    /// A struct (or struct variant) as an object of its fields, or as
    /// `serde_json` also takes one, a list of them in order.
    fn fields(&self, value: &Value, name: &str, fields: &[Value], path: &mut Path, depth: usize) -> Fit {
        let fields: Vec<(&String, &Value)> = fields
            .iter()
            .filter_map(|field| field.as_object()?.iter().next())
            .collect();
        match value {
            Value::Object(members) => {
                if let Some(unknown) = members.keys().find(|key| !fields.iter().any(|(field, _)| field == key)) {
                    let known: Vec<&str> = fields.iter().map(|(field, _)| field.as_str()).collect();
                    return Err(format!(
                        "{name} has no field `{unknown}` (its fields: {})",
                        known.join(", ")
                    ));
                }
                for (field, shape) in &fields {
                    path.0.push((*field).clone());
                    match members.get(*field) {
                        Some(member) => self.value(member, shape, path, depth)?,
                        None => {
                            path.0.pop();
                            return self
                                .value(&Value::Null, shape, path, depth)
                                .map_err(|_| format!("{name} is missing field `{field}` ({})", shapes::format(shape)));
                        }
                    }
                    path.0.pop();
                }
                Ok(())
            }
            Value::Array(_) => {
                let shapes = fields.iter().map(|(_, shape)| *shape);
                self.fixed(value, shapes, fields.len(), path, depth)
            }
            value => Err(wants(&format!("an object ({name})"), value)),
        }
    }

    /// An externally tagged enum, as serde writes one in JSON: `"motor"` for
    /// a unit variant, `{"camera": {…}}` for the others.
    fn variant(
        &self,
        value: &Value,
        name: &str,
        container: &Value,
        variants: &Map<String, Value>,
        path: &mut Path,
        depth: usize,
    ) -> Fit {
        let choices = || {
            let declaration = shapes::declaration(name, container);
            declaration
                .split_once(" = ")
                .map(|(_, choices)| choices.to_owned())
                .unwrap_or(declaration)
        };
        let (tag, content) = match value {
            Value::String(tag) => (tag, None),
            Value::Object(members) if members.len() == 1 => {
                let (tag, content) = members.iter().next().expect("one member");
                (tag, Some(content))
            }
            value => return Err(wants(&format!("a {name}, one of: {}", choices()), value)),
        };
        let Some(variant) = variants
            .values()
            .filter_map(|variant| variant.as_object()?.iter().next())
            .find(|(variant, _)| *variant == tag)
            .map(|(_, variant)| variant)
        else {
            return Err(format!("`{tag}` is not a {name}; it is one of: {}", choices()));
        };
        path.0.push(tag.clone());
        let fits = match (variant, content) {
            (Value::String(unit), None | Some(Value::Null)) if unit == "UNIT" => Ok(()),
            (Value::String(unit), Some(content)) if unit == "UNIT" => {
                Err(wants("null (a variant without fields)", content))
            }
            (_, None) => {
                path.0.pop();
                return Err(format!(
                    "{name} `{tag}` has fields: give {{\"{tag}\": …}}, one of: {}",
                    choices()
                ));
            }
            (Value::Object(map), Some(content)) => match map.iter().next() {
                Some((kind, Value::Array(fields))) if kind == "STRUCT" => {
                    self.fields(content, tag, fields, path, depth)
                }
                Some((kind, Value::Array(items))) if kind == "TUPLE" => {
                    self.fixed(content, items.iter(), items.len(), path, depth)
                }
                Some((kind, inner)) if kind == "NEWTYPE" => self.value(content, inner, path, depth),
                _ => Ok(()),
            },
            _ => Ok(()),
        };
        if fits.is_ok() {
            path.0.pop();
        }
        fits
    }

    /// A list of exactly `size` values, each against its own shape.
    fn fixed<'s>(
        &self,
        value: &Value,
        shapes: impl Iterator<Item = &'s Value>,
        size: usize,
        path: &mut Path,
        depth: usize,
    ) -> Fit {
        let Value::Array(items) = value else {
            return Err(wants(&format!("a list of {size}"), value));
        };
        if items.len() != size {
            return Err(wants(&format!("a list of {size}"), value));
        }
        self.items(items, shapes, path, depth)
    }

    fn items<'s>(
        &self,
        items: &[Value],
        shapes: impl Iterator<Item = &'s Value>,
        path: &mut Path,
        depth: usize,
    ) -> Fit {
        for (index, (item, shape)) in items.iter().zip(shapes).enumerate() {
            path.0.push(format!("[{index}]"));
            self.value(item, shape, path, depth)?;
            path.0.pop();
        }
        Ok(())
    }

    /// A map's key, which JSON always writes as a string: `serde_json`
    /// parses it as a number for integer keys.
    fn key(&self, key: &str, shape: &Value) -> Fit {
        match shape.as_str() {
            Some(scalar) if integer_range(scalar).is_some() => self.scalar(&value_of_key(key), scalar),
            Some("BOOL") if key != "true" && key != "false" => {
                Err(wants("a key true or false", &Value::String(key.into())))
            }
            _ => Ok(()),
        }
    }

    fn scalar(&self, value: &Value, scalar: &str) -> Fit {
        let wanted = shapes::format(&Value::String(scalar.to_owned()));
        let fits = match (scalar, value) {
            ("UNIT", Value::Null) | ("BOOL", Value::Bool(_)) | ("STR", Value::String(_)) => true,
            ("F32" | "F64", Value::Number(_)) => true,
            ("CHAR", Value::String(text)) => text.chars().count() == 1,
            ("BYTES", Value::String(_)) => true,
            ("BYTES", Value::Array(items)) => items.iter().all(|item| item.as_u64().is_some_and(|byte| byte <= 255)),
            (integer, Value::Number(number)) => match integer_range(integer) {
                Some((low, high)) => {
                    let fits = match (number.as_i64(), number.as_u64()) {
                        (Some(signed), _) => i128::from(signed) >= low && i128::from(signed) <= high,
                        (None, Some(unsigned)) => i128::from(unsigned) <= high,
                        (None, None) => false,
                    };
                    if !fits && (number.is_i64() || number.is_u64()) {
                        return Err(format!("{number} is out of range for {wanted}"));
                    }
                    fits
                }
                None => !KNOWN_SCALARS.contains(&integer),
            },
            ("UNIT" | "BOOL" | "STR" | "F32" | "F64" | "CHAR" | "BYTES", _) => false,
            (other, _) => integer_range(other).is_none() && !KNOWN_SCALARS.contains(&other),
        };
        if fits { Ok(()) } else { Err(wants(&wanted, value)) }
    }
}

/// The formats the check knows; an unknown one (a later version's) passes.
const KNOWN_SCALARS: [&str; 17] = [
    "UNIT", "BOOL", "STR", "F32", "F64", "CHAR", "BYTES", "I8", "I16", "I32", "I64", "I128", "U8", "U16", "U32", "U64",
    "U128",
];

/// The values an integer format holds.
fn integer_range(scalar: &str) -> Option<(i128, i128)> {
    Some(match scalar {
        "I8" => (i8::MIN.into(), i8::MAX.into()),
        "I16" => (i16::MIN.into(), i16::MAX.into()),
        "I32" => (i32::MIN.into(), i32::MAX.into()),
        "I64" => (i64::MIN.into(), i64::MAX.into()),
        "I128" => (i128::MIN, i128::MAX),
        "U8" => (0, u8::MAX.into()),
        "U16" => (0, u16::MAX.into()),
        "U32" => (0, u32::MAX.into()),
        "U64" => (0, u64::MAX.into()),
        "U128" => (0, i128::MAX),
        _ => return None,
    })
}

fn value_of_key(key: &str) -> Value {
    serde_json::from_str::<serde_json::Number>(key)
        .map(Value::Number)
        .unwrap_or_else(|_| Value::String(key.to_owned()))
}

/// `wants u32, got "wide"`.
fn wants(wanted: &str, got: &Value) -> String {
    format!("wants {wanted}, got {}", described(got))
}

/// A value, briefly: `"wide"`, `3.5`, `a list of 2`, `an object {x, y}`.
fn described(value: &Value) -> String {
    match value {
        Value::String(text) if text.chars().count() > 40 => {
            let head: String = text.chars().take(40).collect();
            format!("{:?}…", head)
        }
        Value::Array(items) => format!("a list of {}", items.len()),
        Value::Object(members) => {
            let keys: Vec<&str> = members.keys().map(String::as_str).take(6).collect();
            let more = if members.len() > keys.len() { ", …" } else { "" };
            format!("an object {{{}{more}}}", keys.join(", "))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use serde_json::json;

    use super::*;

    /// The inventory's `add`, as its server describes it.
    fn add() -> (MethodDescription, Value) {
        let param = |name: &'static str, rust_type: &'static str, shape: Value| ParamDescription {
            name: Cow::Borrowed(name),
            rust_type: Cow::Borrowed(rust_type),
            shape: Some(shape),
        };
        let method = MethodDescription {
            name: Cow::Borrowed("add"),
            docs: Cow::Borrowed(""),
            params: Cow::Owned(vec![
                param("name", "String", json!("STR")),
                param("kind", "PartKind", json!({"TYPENAME": "PartKind"})),
                param("count", "i64", json!("I64")),
                param("tags", "Vec<String>", json!({"SEQ": "STR"})),
                param("supplier", "Option<String>", json!({"OPTION": "STR"})),
                param("place", "Place", json!({"TYPENAME": "Place"})),
            ]),
            returns: Cow::Borrowed("Part"),
            error: None,
            returns_shape: None,
        };
        let types = json!({
            "PartKind": {"ENUM": {
                "0": {"motor": "UNIT"},
                "1": {"camera": {"STRUCT": [{"width": "U32"}, {"height": "U32"}]}},
                "2": {"other": {"NEWTYPE": "STR"}},
            }},
            "Place": {"STRUCT": [
                {"shelf": "U8"},
                {"bins": {"MAP": {"KEY": "U16", "VALUE": {"TUPLE": ["STR", "BOOL"]}}}},
                {"note": {"OPTION": "STR"}},
            ]},
        });
        (method, types)
    }

    fn check(positional: Value, named: Value) -> Result<(), String> {
        let (method, types) = add();
        let Value::Array(positional) = positional else { panic!() };
        let Value::Object(named) = named else { panic!() };
        arguments(&method, Some(&types), &positional, &named).map_err(|misfit| misfit.0)
    }

    fn place() -> Value {
        json!({"shelf": 3, "bins": {"12": ["bolts", true]}})
    }

    #[test]
    fn arguments_that_fit_pass() {
        assert_eq!(
            check(json!(["gear", "motor", 3, ["a"], null, place()]), json!({})),
            Ok(())
        );
        let camera = json!({"camera": {"width": 640, "height": 480}});
        assert_eq!(check(json!(["eye", camera, 1, []]), json!({"place": place()})), Ok(()));
        assert_eq!(
            check(json!(["x", {"other": "y"}, 0, [], "acme", [1, {}, null]]), json!({})),
            Ok(())
        );
        assert_eq!(
            check(json!(["x", {"motor": null}, 0, [], null, place()]), json!({})),
            Ok(())
        );
    }

    #[test]
    fn a_misfit_names_the_argument_the_field_and_what_it_wants() {
        let misfit = check(
            json!(["x", {"camera": {"width": "wide", "height": 1}}, 0, [], null, place()]),
            json!({}),
        );
        assert_eq!(
            misfit.unwrap_err(),
            "add(): argument `kind.camera.width`: wants u32, got \"wide\""
        );
        let misfit = check(json!(["x", "robot", 0, [], null, place()]), json!({})).unwrap_err();
        assert_eq!(
            misfit,
            "add(): argument `kind`: `robot` is not a PartKind; it is one of: \
             motor | camera { width: u32, height: u32 } | other(String)"
        );
        let misfit = check(json!(["x", "camera", 0, [], null, place()]), json!({})).unwrap_err();
        assert!(misfit.contains("PartKind `camera` has fields"), "{misfit}");
        let misfit = check(json!(["x", "motor", 1.5, [], null, place()]), json!({})).unwrap_err();
        assert_eq!(misfit, "add(): argument `count`: wants i64, got 1.5");
        let misfit = check(json!(["x", "motor", 0, ["a", 7], null, place()]), json!({})).unwrap_err();
        assert_eq!(misfit, "add(): argument `tags[1]`: wants String, got 7");
        let bins = json!({"shelf": 300, "bins": {}});
        let misfit = check(json!(["x", "motor", 0, [], null, bins]), json!({})).unwrap_err();
        assert_eq!(misfit, "add(): argument `place.shelf`: 300 is out of range for u8");
        let bins = json!({"shelf": 1, "bins": {"left": ["a", true]}});
        let misfit = check(json!(["x", "motor", 0, [], null, bins]), json!({})).unwrap_err();
        assert_eq!(misfit, "add(): argument `place.bins.left`: wants u16, got \"left\"");
        let bins = json!({"shelf": 1, "bins": {"4": ["a"]}});
        let misfit = check(json!(["x", "motor", 0, [], null, bins]), json!({})).unwrap_err();
        assert_eq!(
            misfit,
            "add(): argument `place.bins.4`: wants a list of 2, got a list of 1"
        );
    }

    #[test]
    fn missing_and_unknown_members_are_named() {
        let misfit = check(json!(["x", "motor", 0, [], null, {"shelf": 1}]), json!({})).unwrap_err();
        assert_eq!(
            misfit,
            "add(): argument `place`: Place is missing field `bins` (Map<u16, (String, bool)>)"
        );
        let extra = json!({"shelf": 1, "bins": {}, "shelve": 2});
        let misfit = check(json!(["x", "motor", 0, [], null, extra]), json!({})).unwrap_err();
        assert_eq!(
            misfit,
            "add(): argument `place`: Place has no field `shelve` (its fields: shelf, bins, note)"
        );
        let misfit = check(json!(["x", "motor"]), json!({})).unwrap_err();
        assert_eq!(misfit, "add() is missing argument `count` (i64)");
    }

    #[test]
    fn binding_follows_the_servers_rules() {
        let misfit = check(json!([1, 2, 3, 4, 5, 6, 7]), json!({})).unwrap_err();
        assert!(
            misfit.starts_with("add() takes 6 arguments (name, kind, count, tags, supplier, place) but 7"),
            "{misfit}"
        );
        let misfit = check(json!(["x"]), json!({"colour": 1})).unwrap_err();
        assert!(misfit.starts_with("add() has no parameter `colour`"), "{misfit}");
        let misfit = check(json!(["x"]), json!({"name": "y"})).unwrap_err();
        assert!(misfit.contains("two values for argument `name`"), "{misfit}");
        let named = json!({"name": "x", "kind": "motor", "count": 1, "tags": [], "place": place()});
        assert_eq!(check(json!([]), named), Ok(()));
    }

    #[test]
    fn what_the_description_does_not_know_passes() {
        let (mut method, _) = add();
        // No types: named types are not checked, scalars still are.
        assert!(arguments(&method, None, &[json!("x"), json!(5)], &Map::new()).is_err());
        let wrong_place = [json!("x"), json!(5), json!(0), json!([]), json!(null), json!(5)];
        assert_eq!(arguments(&method, None, &wrong_place, &Map::new()), Ok(()));
        // A method that reads its arguments by hand takes anything.
        method.params.to_mut()[0].rust_type = Cow::Borrowed("");
        assert_eq!(arguments(&method, None, &vec![json!(1); 9], &Map::new()), Ok(()));
        // A loop of named types ends.
        let looping = json!({"Place": {"NEWTYPESTRUCT": {"TYPENAME": "Place"}}});
        let (method, _) = add();
        let fine = [json!("x"), json!("motor"), json!(0), json!([]), json!(null), json!(1)];
        assert_eq!(arguments(&method, Some(&looping), &fine, &Map::new()), Ok(()));
    }
}
