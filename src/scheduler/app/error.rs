//! What goes wrong with an app definition, in the shape of Marathon's error
//! body: `{"message": ..., "details": [{"path": "/cpus", "errors": [...]}]}`.
//!
//! Paths are Marathon's (Play's `JsPath` form, which its `details` use):
//! `/` for the whole object, `/cpus`, `/container/docker/image`, an array
//! index in parentheses: `/healthChecks(0)/portIndex`. Apps inside a group
//! carry the group's prefix: `/apps(1)/cpus`, `/groups(0)/apps(0)/id`.

use std::fmt;

/// One field's problems.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    pub path: String,
    pub errors: Vec<String>,
}

impl Violation {
    pub fn new(path: impl Into<String>, error: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            errors: vec![error.into()],
        }
    }
}

/// Why an app (or group) definition was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppError {
    /// The JSON has the wrong shape: a wrong type, a number out of range
    /// (Marathon: 422 "Invalid JSON"; a 400 fits as well).
    Malformed(Violation),
    /// Well-formed but not a valid app (Marathon: 422 "Object is not valid").
    Invalid(Vec<Violation>),
}

impl AppError {
    /// Marathon's `message` for this kind of failure.
    pub fn message(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "Invalid JSON",
            Self::Invalid(_) => "Object is not valid",
        }
    }

    /// Marathon's `details`.
    pub fn details(&self) -> &[Violation] {
        match self {
            Self::Malformed(v) => std::slice::from_ref(v),
            Self::Invalid(vs) => vs,
        }
    }

    /// The same failure for a definition nested at `prefix`: `/apps(2)` for
    /// an app in a group, `(0)` for the first app of a `PUT /v2/apps` array.
    pub fn nested(self, prefix: &str) -> Self {
        let under = |v: Violation| Violation {
            path: join_path(prefix, &v.path),
            errors: v.errors,
        };
        match self {
            Self::Malformed(v) => Self::Malformed(under(v)),
            Self::Invalid(vs) => Self::Invalid(vs.into_iter().map(under).collect()),
        }
    }
}

/// `prefix` + `path`, where `path` `/` means the prefix itself.
pub(crate) fn join_path(prefix: &str, path: &str) -> String {
    match (prefix.trim_end_matches('/'), path) {
        ("", p) => p.to_string(),
        (pre, "/") => pre.to_string(),
        (pre, p) => format!("{pre}{p}"),
    }
}

/// One line: every path with its errors, `/cpus: must be at least 0; /id: ...`.
impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for v in self.details() {
            for e in &v.errors {
                if !first {
                    f.write_str("; ")?;
                }
                first = false;
                write!(f, "{}: {e}", v.path)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for AppError {}

/// Collects violations while a definition is walked.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<Violation>);

impl Problems {
    pub fn add(&mut self, path: impl Into<String>, error: impl Into<String>) {
        let path = path.into();
        let error = error.into();
        match self.0.iter_mut().find(|v| v.path == path) {
            Some(v) => v.errors.push(error),
            None => self.0.push(Violation::new(path, error)),
        }
    }

    pub fn extend(&mut self, more: Vec<Violation>) {
        for v in more {
            for e in v.errors {
                self.add(v.path.clone(), e);
            }
        }
    }

    pub fn into_result(self) -> Result<(), Vec<Violation>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_with_every_path_and_nesting_prefixes_paths() {
        let mut p = Problems::default();
        p.add("/cpus", "must be at least 0");
        p.add("/", "needs cmd, args or a container");
        p.add("/cpus", "must be a number");
        let err = AppError::Invalid(p.into_result().expect_err("problems"));
        assert_eq!(err.details().len(), 2);
        assert_eq!(
            err.to_string(),
            "/cpus: must be at least 0; /cpus: must be a number; /: needs cmd, args or a container"
        );
        let nested = err.nested("/apps(1)");
        let paths: Vec<&str> = nested.details().iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, ["/apps(1)/cpus", "/apps(1)"]);
        assert_eq!(nested.message(), "Object is not valid");
        assert!(!nested.to_string().contains('\n'));
    }
}
