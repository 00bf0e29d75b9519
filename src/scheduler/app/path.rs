//! Marathon's path ids (`/group/sub/app`): parsed once, kept canonical.
//!
//! A `PathId` is always absolute and canonical: `//` collapsed, `.` dropped,
//! `..` taken back (at the root it stays at the root, as Marathon's
//! `canonicalPath` does). Every segment is one or more DNS-like labels joined
//! by dots, each `[a-z0-9]([-a-z0-9]*[a-z0-9])?`. A last segment of
//! `restart`, `tasks` or `versions` is refused (Marathon 1.8+): those words
//! end REST routes under `/v2/apps/{id}`, so such an id could not be addressed.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Last segments that would collide with `/v2/apps/{id}/restart|tasks|versions`.
const RESERVED: [&str; 3] = ["restart", "tasks", "versions"];

#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PathId {
    segments: Vec<String>,
}

impl PathId {
    /// The root group, `/`.
    pub fn root() -> Self {
        Self::default()
    }

    /// Parses an id; a relative one is taken relative to the root.
    pub fn parse(id: &str) -> Result<Self, String> {
        Self::parse_in(id, &Self::root())
    }

    /// Parses an id; a relative one (no leading `/`) is taken relative to `base`.
    pub fn parse_in(id: &str, base: &PathId) -> Result<Self, String> {
        let id = id.trim();
        let mut segments = if id.starts_with('/') {
            Vec::new()
        } else {
            base.segments.clone()
        };
        for part in id.split('/').filter(|s| !s.is_empty()) {
            match part {
                "." => {}
                ".." => {
                    segments.pop();
                }
                _ if valid_segment(part) => segments.push(part.to_string()),
                _ => {
                    return Err(format!(
                        "'{id}': path segment '{part}' must be lower-case letters, digits and \
                         '-' in dot-separated labels, each starting and ending with a letter or digit"
                    ));
                }
            }
        }
        let path = Self { segments };
        if let Some(last) = path.segments.last()
            && RESERVED.contains(&last.as_str())
        {
            return Err(format!(
                "'{id}': an id must not end in '{last}' (restart, tasks and versions are reserved)"
            ));
        }
        Ok(path)
    }

    /// Builds a path from segments, each checked as [`PathId::parse`] does.
    pub fn from_segments<S: AsRef<str>>(segments: &[S]) -> Result<Self, String> {
        if segments
            .iter()
            .any(|s| matches!(s.as_ref(), "" | "." | ".."))
        {
            return Err("path segments must not be empty, '.' or '..'".into());
        }
        let joined: Vec<&str> = segments.iter().map(|s| s.as_ref()).collect();
        Self::parse(&format!("/{}", joined.join("/")))
    }

    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// The enclosing group; the root is its own parent.
    pub fn parent(&self) -> PathId {
        let mut segments = self.segments.clone();
        segments.pop();
        Self { segments }
    }

    /// The last segment (`app` of `/group/app`); empty for the root.
    pub fn name(&self) -> &str {
        self.segments.last().map(String::as_str).unwrap_or("")
    }

    /// `self` lies strictly inside `group` (a group is not inside itself).
    pub fn is_child_of(&self, group: &PathId) -> bool {
        self.segments.len() > group.segments.len() && self.segments.starts_with(&group.segments)
    }

    /// The path without its leading slash, `/` as `_`: `group_sub_app`. Task
    /// ids start with it; segments never hold `_`, so it can be read back.
    pub fn safe_name(&self) -> String {
        self.segments.join("_")
    }

    /// The Mesos task name Marathon gives an app's tasks: the segments in
    /// reverse, joined by dots (`/group/sub/app` → `app.sub.group`), which
    /// Mesos-DNS turns into `app-sub-group.<framework>.<domain>`.
    pub fn to_hostname(&self) -> String {
        let mut parts: Vec<&str> = self.segments.iter().map(String::as_str).collect();
        parts.reverse();
        parts.join(".")
    }
}

fn valid_segment(segment: &str) -> bool {
    segment.split('.').all(valid_label)
}

fn valid_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    let edge = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            edge(first) && edge(last) && bytes.iter().all(|b| edge(b) || *b == b'-')
        }
        _ => false,
    }
}

impl fmt::Display for PathId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.segments.join("/"))
    }
}

impl Serialize for PathId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PathId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        PathId::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> String {
        match PathId::parse(s) {
            Ok(id) => id.to_string(),
            Err(_) => "ERR".into(),
        }
    }

    #[test]
    fn canonical_forms() {
        let table = [
            ("/", "/"),
            ("", "/"),
            ("a", "/a"),
            ("/a/b", "/a/b"),
            ("//a///b/", "/a/b"),
            ("/a/./b", "/a/b"),
            ("/a/b/../c", "/a/c"),
            ("/../../a", "/a"),
            ("/a/..", "/"),
            ("/my-app.v2/x1", "/my-app.v2/x1"),
            ("  /a  ", "/a"),
        ];
        for (input, want) in table {
            assert_eq!(p(input), want, "input {input:?}");
        }
    }

    #[test]
    fn bad_segments_are_refused() {
        for bad in [
            "/A", "/a_b", "/-a", "/a-", "/a..b", "/.a", "/a./b", "/a b", "/a/ü", "/a:1",
        ] {
            assert!(PathId::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn reserved_last_segments_are_refused_but_not_elsewhere() {
        for bad in ["/a/restart", "/tasks", "/x/versions", "/a/b/../tasks"] {
            let err = PathId::parse(bad).expect_err(bad);
            assert!(err.contains("reserved"), "{err}");
        }
        assert_eq!(p("/tasks/a"), "/tasks/a");
        assert_eq!(p("/my-tasks"), "/my-tasks");
    }

    #[test]
    fn relative_ids_resolve_against_their_base() {
        let base = PathId::parse("/prod/web").expect("base");
        let got = |s: &str| PathId::parse_in(s, &base).map(|p| p.to_string());
        assert_eq!(got("api").as_deref(), Ok("/prod/web/api"));
        assert_eq!(got("../db").as_deref(), Ok("/prod/db"));
        assert_eq!(got("./x/../y").as_deref(), Ok("/prod/web/y"));
        assert_eq!(got("/abs").as_deref(), Ok("/abs"));
        assert_eq!(got("../../../../z").as_deref(), Ok("/z"));
    }

    #[test]
    fn parent_name_and_names_for_tasks() {
        let id = PathId::parse("/group/sub/app").expect("id");
        assert_eq!(id.parent().to_string(), "/group/sub");
        assert_eq!(id.name(), "app");
        assert_eq!(id.safe_name(), "group_sub_app");
        assert_eq!(id.to_hostname(), "app.sub.group");
        assert!(id.is_child_of(&PathId::parse("/group").expect("g")));
        assert!(id.is_child_of(&PathId::root()));
        assert!(!id.is_child_of(&id));
        assert!(!id.is_child_of(&PathId::parse("/gr").expect("g")));
        assert!(PathId::root().parent().is_root());
        assert_eq!(PathId::root().name(), "");
    }

    #[test]
    fn from_segments_checks_each_segment() {
        let id = PathId::from_segments(&["a", "b.c"]).expect("ok");
        assert_eq!(id.to_string(), "/a/b.c");
        assert!(PathId::from_segments(&["a", ".."]).is_err());
        assert!(PathId::from_segments(&["a", "B"]).is_err());
        assert!(PathId::from_segments(&["a", ""]).is_err());
    }

    #[test]
    fn serde_as_a_string() {
        let id: PathId = serde_json::from_str("\"a//b\"").expect("parse");
        assert_eq!(serde_json::to_string(&id).expect("ser"), "\"/a/b\"");
        assert!(serde_json::from_str::<PathId>("\"/Bad\"").is_err());
        assert!(serde_json::from_str::<PathId>("3").is_err());
    }

    /// A cheap generator in place of proptest (not a dependency here): every
    /// id built from valid segments, in any spelling with `//`, `.` and
    /// `x/..`, parses to the same path, and its safe name maps back to it.
    #[test]
    fn spellings_of_one_path_agree() {
        let labels = ["a", "b1", "x-y", "z.q", "0", "abc-def.g9"];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for _ in 0..500 {
            let len = 1 + next(4);
            let segs: Vec<&str> = (0..len).map(|_| labels[next(labels.len())]).collect();
            let mut spelled = String::new();
            for s in &segs {
                match next(4) {
                    0 => spelled.push_str("//"),
                    1 => spelled.push_str("/./"),
                    2 => spelled.push_str("/zz/../"),
                    _ => spelled.push('/'),
                }
                spelled.push_str(s);
            }
            let id = PathId::parse(&spelled).expect(&spelled);
            assert_eq!(id.to_string(), format!("/{}", segs.join("/")), "{spelled}");
            let safe = id.safe_name();
            let back: Vec<&str> = safe.split('_').collect();
            assert_eq!(PathId::from_segments(&back).expect("back"), id);
        }
    }
}
