//! An app file for `meso app deploy`: Marathon's app JSON, or the same keys
//! in YAML, read into the JSON the cluster takes. A file with `apps` or
//! `groups` is a group (Marathon's group JSON), deployed as a whole.
//!
//! `.json` is read as JSON and `.yaml`/`.yml` as YAML; any other name (or
//! `-`, stdin) as JSON when it starts with `{`, else YAML. Only the shape is
//! checked here (an object with an `id`): the cluster validates the rest and
//! names the field it refuses, which [`super::target::describe`] passes on.

use std::path::Path;

use anyhow::Context;
use serde_json::Value;

use super::{Exit, code};

/// What a file defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    App,
    /// Marathon's group JSON: `apps` and nested `groups` under one id.
    Group,
}

/// A definition read from a file, its id made absolute (`web` → `/web`).
#[derive(Debug)]
pub struct Definition {
    pub id: String,
    pub kind: Kind,
    pub body: Value,
}

/// The app or group definition in `path`.
pub fn read(path: &Path) -> anyhow::Result<Definition> {
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

pub fn parse(text: &str, origin: &str) -> Result<Definition, String> {
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
            "{origin}: /: expected an app (an object with id, cmd or container, ...) or a group (id, apps, groups)"
        ));
    };
    let kind = if obj.contains_key("apps") || obj.contains_key("groups") {
        Kind::Group
    } else {
        Kind::App
    };
    let id = match obj.get("id") {
        Some(Value::String(id)) if !id.trim().is_empty() => absolute(id),
        Some(_) => return Err(format!("{origin}: /id: must be a non-empty string")),
        None => {
            return Err(format!(
                "{origin}: /id: missing; every app and group needs an id"
            ));
        }
    };
    if kind == Kind::Group && id == "/" {
        return Err(format!(
            "{origin}: /id: name a group under the root (/web, not /): deploying the root would remove every other app"
        ));
    }
    obj.insert("id".into(), Value::String(id.clone()));
    Ok(Definition {
        id,
        kind,
        body: value,
    })
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
        let yaml = parse("id: web\ncmd: sleep 100\ninstances: 2\n", "web.yaml").unwrap();
        let json = parse(
            r#"{"id": "/web", "cmd": "sleep 100", "instances": 2}"#,
            "web.json",
        )
        .unwrap();
        assert_eq!(yaml.id, "/web");
        assert_eq!(yaml.kind, Kind::App);
        assert_eq!(yaml.body, json.body);
    }

    #[test]
    fn a_file_with_apps_or_groups_is_a_group() {
        let g = parse(
            "id: shop\napps:\n  - {id: web, cmd: sleep 100}\n  - {id: db, cmd: sleep 100}\n",
            "shop.yaml",
        )
        .unwrap();
        assert_eq!((g.id.as_str(), g.kind), ("/shop", Kind::Group));
        assert_eq!(g.body["id"], "/shop");
        let nested = parse(r#"{"id": "/a", "groups": [{"id": "b"}]}"#, "a.json").unwrap();
        assert_eq!(nested.kind, Kind::Group);
        let e = parse(r#"{"id": "/", "apps": []}"#, "root.json").unwrap_err();
        assert!(
            e.contains("root.json: /id: name a group under the root"),
            "{e}"
        );
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
        assert!(
            e.contains("expected an app") && e.contains("or a group"),
            "{e}"
        );
    }
}
