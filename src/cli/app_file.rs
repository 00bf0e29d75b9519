//! An app file for `meso app deploy`: Marathon's app JSON, or the same keys
//! in YAML, read into the JSON the cluster takes.
//!
//! `.json` is read as JSON and `.yaml`/`.yml` as YAML; any other name (or
//! `-`, stdin) as JSON when it starts with `{`, else YAML. Only the shape is
//! checked here (an object with an `id`): the cluster validates the rest and
//! names the field it refuses, which [`super::target::describe`] passes on.

use std::path::Path;

use anyhow::Context;
use serde_json::Value;

use super::{Exit, code};

/// The app definition in `path`, its id made absolute (`web` → `/web`).
pub fn read(path: &Path) -> anyhow::Result<(String, Value)> {
    let shown = path.display().to_string();
    let text = if shown == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read the app from stdin")?
    } else {
        std::fs::read_to_string(path).map_err(|e| {
            Exit::new(
                code::BAD_INPUT,
                format!("cannot read app file {shown}: {e}"),
            )
        })?
    };
    parse(&text, &shown).map_err(|m| Exit::new(code::BAD_INPUT, m).into())
}

pub fn parse(text: &str, origin: &str) -> Result<(String, Value), String> {
    let ext = Path::new(origin)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let as_json = match ext.as_deref() {
        Some("json") => true,
        Some("yaml" | "yml") => false,
        _ => text.trim_start().starts_with('{'),
    };
    let mut value: Value = if as_json {
        serde_json::from_str(text).map_err(|e| format!("{origin}: not valid JSON: {e}"))?
    } else {
        yaml_serde::from_str(text).map_err(|e| format!("{origin}: not valid YAML: {e}"))?
    };
    let Some(obj) = value.as_object_mut() else {
        return Err(format!(
            "{origin}: /: expected an app (an object with id, cmd or container, ...)"
        ));
    };
    let id = match obj.get("id") {
        Some(Value::String(id)) if !id.trim().is_empty() => absolute(id),
        Some(_) => return Err(format!("{origin}: /id: must be a non-empty string")),
        None => return Err(format!("{origin}: /id: missing; every app needs an id")),
    };
    obj.insert("id".into(), Value::String(id.clone()));
    Ok((id, value))
}

/// Marathon's ids are paths from the root group; a relative one is from `/`.
pub fn absolute(id: &str) -> String {
    let id = id.trim().trim_end_matches('/');
    if id.starts_with('/') {
        id.to_string()
    } else {
        format!("/{id}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_and_json_read_the_same() {
        let (id, yaml) = parse("id: web\ncmd: sleep 100\ninstances: 2\n", "web.yaml").unwrap();
        let (_, json) = parse(
            r#"{"id": "/web", "cmd": "sleep 100", "instances": 2}"#,
            "web.json",
        )
        .unwrap();
        assert_eq!(id, "/web");
        assert_eq!(yaml, json);
    }

    #[test]
    fn errors_name_the_file_and_the_field() {
        let e = parse("cmd: x\n", "a.yaml").unwrap_err();
        assert!(e.contains("a.yaml") && e.contains("/id"), "{e}");
        let e = parse("{\"id\": 3}", "a.json").unwrap_err();
        assert!(e.contains("/id: must be"), "{e}");
        let e = parse("{\"id\": ", "a.json").unwrap_err();
        assert!(e.contains("a.json: not valid JSON"), "{e}");
        let e = parse("- 1\n- 2\n", "a.yml").unwrap_err();
        assert!(e.contains("expected an app"), "{e}");
    }
}
