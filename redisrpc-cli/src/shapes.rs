//! Shapes of types, as `rpc.describe` carries them (`serde-reflection`
//! formats in JSON), written the way Rust declares them:
//! `Part { name: String, kind: PartKind, tags: Vec<String> }`,
//! `PartKind = Motor | Camera { width: u32, height: u32 }`.

use serde_json::Value;

/// A format: `F64`, `{"SEQ": "STR"}`, `{"TYPENAME": "Pose"}` …
pub(crate) fn format(shape: &Value) -> String {
    match shape {
        Value::String(name) => scalar(name),
        Value::Object(map) => match map.iter().next() {
            Some((kind, inner)) => match (kind.as_str(), inner) {
                ("TYPENAME", Value::String(name)) => name.clone(),
                ("OPTION", inner) => format!("Option<{}>", format(inner)),
                ("SEQ", inner) => format!("Vec<{}>", format(inner)),
                ("MAP", Value::Object(map)) => format!(
                    "Map<{}, {}>",
                    map.get("KEY").map(format).unwrap_or_default(),
                    map.get("VALUE").map(format).unwrap_or_default()
                ),
                ("TUPLE", Value::Array(items)) => format!("({})", list(items)),
                ("TUPLEARRAY", Value::Object(map)) => format!(
                    "[{}; {}]",
                    map.get("CONTENT").map(format).unwrap_or_default(),
                    map.get("SIZE").map(Value::to_string).unwrap_or_default()
                ),
                _ => "?".to_owned(),
            },
            None => "?".to_owned(),
        },
        _ => "?".to_owned(),
    }
}

/// A named type's declaration: `Pose { x: f64, y: f64 }`, `Kind = A | B(u8)`.
pub(crate) fn declaration(name: &str, container: &Value) -> String {
    let Some((kind, inner)) = container.as_object().and_then(|map| map.iter().next()) else {
        return match container {
            Value::String(kind) if kind == "UNITSTRUCT" => name.to_owned(),
            _ => format!("{name} = ?"),
        };
    };
    match (kind.as_str(), inner) {
        ("NEWTYPESTRUCT", inner) => format!("{name}({})", format(inner)),
        ("TUPLESTRUCT", Value::Array(items)) => format!("{name}({})", list(items)),
        ("STRUCT", Value::Array(fields)) => format!("{name} {}", fields_text(fields)),
        ("ENUM", Value::Object(variants)) => {
            let mut ordered: Vec<(usize, &Value)> = variants
                .iter()
                .filter_map(|(index, variant)| Some((index.parse().ok()?, variant)))
                .collect();
            ordered.sort_by_key(|(index, _)| *index);
            let variants: Vec<String> = ordered.into_iter().map(|(_, variant)| variant_text(variant)).collect();
            format!("{name} = {}", variants.join(" | "))
        }
        _ => format!("{name} = ?"),
    }
}

fn variant_text(variant: &Value) -> String {
    let Some((name, shape)) = variant.as_object().and_then(|map| map.iter().next()) else {
        return "?".to_owned();
    };
    match shape {
        Value::String(unit) if unit == "UNIT" => name.clone(),
        Value::Object(map) => match map.iter().next() {
            Some((kind, Value::Array(fields))) if kind == "STRUCT" => format!("{name} {}", fields_text(fields)),
            Some((kind, Value::Array(items))) if kind == "TUPLE" => format!("{name}({})", list(items)),
            Some((kind, inner)) if kind == "NEWTYPE" => format!("{name}({})", format(inner)),
            _ => name.clone(),
        },
        _ => name.clone(),
    }
}

/// `{ a: f64, b: String }` from serde-reflection's named formats.
fn fields_text(fields: &[Value]) -> String {
    let fields: Vec<String> = fields
        .iter()
        .filter_map(|field| field.as_object()?.iter().next())
        .map(|(name, shape)| format!("{name}: {}", format(shape)))
        .collect();
    format!("{{ {} }}", fields.join(", "))
}

fn list(items: &[Value]) -> String {
    items.iter().map(format).collect::<Vec<_>>().join(", ")
}

fn scalar(name: &str) -> String {
    match name {
        "STR" => "String".to_owned(),
        "UNIT" => "()".to_owned(),
        "BYTES" => "bytes".to_owned(),
        other => other.to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn shapes_read_as_rust_declares_them() {
        assert_eq!(format(&json!({"SEQ": {"OPTION": "F64"}})), "Vec<Option<f64>>");
        assert_eq!(
            format(&json!({"MAP": {"KEY": "STR", "VALUE": "I64"}})),
            "Map<String, i64>"
        );
        let part = json!({"STRUCT": [{"name": "STR"}, {"kind": {"TYPENAME": "PartKind"}}]});
        assert_eq!(declaration("Part", &part), "Part { name: String, kind: PartKind }");
        let kind = json!({"ENUM": {
            "1": {"Camera": {"STRUCT": [{"width": "U32"}, {"height": "U32"}]}},
            "0": {"Motor": "UNIT"},
            "2": {"Other": {"NEWTYPE": "STR"}},
        }});
        assert_eq!(
            declaration("PartKind", &kind),
            "PartKind = Motor | Camera { width: u32, height: u32 } | Other(String)"
        );
    }
}
