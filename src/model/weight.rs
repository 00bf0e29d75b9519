use serde::{Deserialize, Serialize};

/// A role's weight, the fair-share knob of Mesos's allocator (`/master/weights`,
/// operator call `UPDATE_WEIGHTS`). Weights live in the registry, as in Mesos.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightInfo {
    pub role: String,
    pub weight: f64,
}

impl WeightInfo {
    /// Mesos's rules: a non-empty role without `/`-edge, `.`/`..`, whitespace; a
    /// positive, finite weight. Returns the message naming the offending field.
    pub fn validate(&self, path: &str) -> Result<(), String> {
        let role = self.role.as_str();
        if role.is_empty() {
            return Err(format!("{path}.role: must not be empty"));
        }
        if role == "." || role == ".." || role.starts_with('/') || role.ends_with('/') {
            return Err(format!("{path}.role: '{role}' is not a valid role name"));
        }
        if role.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("{path}.role: '{role}' contains whitespace"));
        }
        if !(self.weight.is_finite() && self.weight > 0.0) {
            return Err(format!(
                "{path}.weight: must be a positive number, got {}",
                self.weight
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(role: &str, weight: f64) -> WeightInfo {
        WeightInfo {
            role: role.into(),
            weight,
        }
    }

    #[test]
    fn accepts_ordinary_roles() {
        assert!(w("analytics", 2.5).validate("[0]").is_ok());
        assert!(w("eng/web", 1.0).validate("[0]").is_ok());
    }

    #[test]
    fn names_the_field_that_is_wrong() {
        assert_eq!(
            w("", 1.0).validate("[3]").unwrap_err(),
            "[3].role: must not be empty"
        );
        assert!(
            w("a", 0.0)
                .validate("[0]")
                .unwrap_err()
                .starts_with("[0].weight")
        );
        assert!(w("a", f64::NAN).validate("[0]").is_err());
        assert!(w("a b", 1.0).validate("[0]").is_err());
        assert!(w("..", 1.0).validate("[0]").is_err());
    }
}
