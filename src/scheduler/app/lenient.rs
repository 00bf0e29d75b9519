//! Liberal reading of JSON scalars, and deserialization that names the path.
//!
//! Marathon clients are not strict about scalar types: shell scripts send
//! `"instances": "2"`, old UIs `"requirePorts": "true"`, marathon-python sends
//! `GROUP_BY` constraint values as numbers. [`Lenient`] reads a number from
//! a number or a numeric string, a bool from a bool or `"true"`/`"false"`,
//! a string from a string, number or bool. Anything else is an error that
//! [`from_value`] reports with its field path (`/healthChecks(0)/portIndex`).

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::error::Violation;

/// A scalar read liberally; see the module doc.
#[derive(Debug, Clone, PartialEq)]
pub struct Lenient<T>(pub T);

/// A scalar type [`Lenient`] can read.
pub trait LenientScalar: Sized {
    /// What the error says was expected.
    const EXPECTED: &'static str;
    fn from_json(value: &Value) -> Option<Self>;
}

impl<'de, T: LenientScalar> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        T::from_json(&value).map(Lenient).ok_or_else(|| {
            D::Error::custom(format!(
                "expected {}, got {}",
                T::EXPECTED,
                describe(&value)
            ))
        })
    }
}

/// A number from a JSON number or a string holding one.
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|n| n.is_finite())
}

/// A whole number in `[0, max]`; `2.0` counts as whole.
fn whole(value: &Value, max: u64) -> Option<u64> {
    if let Some(n) = value.as_u64() {
        return (n <= max).then_some(n);
    }
    let n = number(value)?;
    (n.fract() == 0.0 && n >= 0.0 && n <= max as f64).then_some(n as u64)
}

impl LenientScalar for f64 {
    const EXPECTED: &'static str = "a number";
    fn from_json(value: &Value) -> Option<Self> {
        number(value)
    }
}

impl LenientScalar for u32 {
    const EXPECTED: &'static str = "a whole number from 0 to 4294967295";
    fn from_json(value: &Value) -> Option<Self> {
        whole(value, u64::from(u32::MAX)).and_then(|n| u32::try_from(n).ok())
    }
}

impl LenientScalar for u16 {
    const EXPECTED: &'static str = "a port number from 0 to 65535";
    fn from_json(value: &Value) -> Option<Self> {
        whole(value, u64::from(u16::MAX)).and_then(|n| u16::try_from(n).ok())
    }
}

impl LenientScalar for bool {
    const EXPECTED: &'static str = "true or false";
    fn from_json(value: &Value) -> Option<Self> {
        match value {
            Value::Bool(b) => Some(*b),
            Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Some(true),
            Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }
}

impl LenientScalar for String {
    const EXPECTED: &'static str = "a string";
    fn from_json(value: &Value) -> Option<Self> {
        match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

/// A short name of what a value is, for errors (`string "abc"`, `an array`).
pub fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) if s.chars().count() > 40 => {
            let head: String = s.chars().take(40).collect();
            format!("string \"{head}...\"")
        }
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// Deserializes `value`; a failure names the field path in Marathon's form.
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T, Violation> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = marathon_path(e.path());
        let inner = e.into_inner().to_string();
        Violation::new(path, inner)
    })
}

/// `healthChecks[0].portIndex` as Marathon writes it: `/healthChecks(0)/portIndex`.
fn marathon_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("({index})")),
            Segment::Map { key } => {
                out.push('/');
                out.push_str(key);
            }
            Segment::Enum { variant } => {
                out.push('/');
                out.push_str(variant);
            }
            Segment::Unknown => out.push_str("/?"),
        }
    }
    if out.is_empty() { "/".into() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        #[serde(default)]
        n: Option<Lenient<u32>>,
        #[serde(default)]
        f: Option<Lenient<f64>>,
        #[serde(default)]
        b: Option<Lenient<bool>>,
        #[serde(default)]
        s: Option<Lenient<String>>,
        #[serde(default)]
        port: Option<Lenient<u16>>,
        #[serde(default)]
        checks: Vec<BTreeMap<String, Lenient<u32>>>,
    }

    #[test]
    fn scalars_are_read_liberally() {
        let p: Probe = from_value(&json!({
            "n": "2", "f": "0.5", "b": "TRUE", "s": 3, "port": 8080.0
        }))
        .expect("parse");
        assert_eq!(p.n, Some(Lenient(2)));
        assert_eq!(p.f, Some(Lenient(0.5)));
        assert_eq!(p.b, Some(Lenient(true)));
        assert_eq!(p.s, Some(Lenient("3".to_string())));
        assert_eq!(p.port, Some(Lenient(8080)));
        let nested: Probe = from_value(&json!({"checks": [{"a": "7"}]})).expect("nested");
        assert_eq!(nested.checks[0]["a"], Lenient(7));
        let nulls: Probe = from_value(&json!({"n": null, "b": null})).expect("nulls");
        assert_eq!((nulls.n, nulls.b), (None, None));
    }

    #[test]
    fn errors_name_the_path_in_marathons_form() {
        let cases = [
            (json!({"n": -1}), "/n", "expected a whole number"),
            (json!({"n": 1.5}), "/n", "expected a whole number"),
            (json!({"port": 70000}), "/port", "expected a port number"),
            (
                json!({"b": "yes"}),
                "/b",
                "expected true or false, got string \"yes\"",
            ),
            (json!({"f": [1]}), "/f", "got an array"),
            (
                json!({"checks": [{"a": 1}, {"b": "x"}]}),
                "/checks(1)/b",
                "expected a whole",
            ),
            (json!("x"), "/", "invalid type"),
        ];
        for (input, path, message) in cases {
            let err = from_value::<Probe>(&input).expect_err("must fail");
            assert_eq!(err.path, path, "{input}");
            assert!(err.errors[0].contains(message), "{input}: {:?}", err.errors);
        }
    }
}
