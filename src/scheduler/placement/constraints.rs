//! Marathon's placement constraints: `[field, OPERATOR]` or `[field, OPERATOR,
//! value]`, parsed once (regexes compiled) and asked about one agent at a time.
//!
//! The field is `hostname` (or `@hostname`), `@region` and `@zone` (our agents
//! carry these as the attributes `region` and `zone`: there is no Mesos fault
//! domain), or the name of any agent attribute. Values are compared as text,
//! as Marathon compares the formatted text of Mesos attributes.
//!
//! An agent without the field fails every operator but UNLIKE, as in Marathon
//! (`Constraints.checkConstraint`: "only unlike can be matched if this offer
//! does not have the specified value"); that includes UNIQUE, MAX_PER and
//! GROUP_BY, whose counts only ever hold agents that have the field.

use std::collections::BTreeMap;

use regex::Regex;

/// What a constraint reads from an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Hostname,
    /// An attribute by name; `@region` and `@zone` read `region` and `zone`.
    Attribute(String),
}

impl Field {
    fn parse(text: &str) -> Result<Self, String> {
        match text {
            "" => Err(
                "the field is empty; name hostname, @region, @zone or an agent attribute".into(),
            ),
            "hostname" | "@hostname" => Ok(Self::Hostname),
            "@region" => Ok(Self::Attribute("region".into())),
            "@zone" => Ok(Self::Attribute("zone".into())),
            other => Ok(Self::Attribute(other.to_string())),
        }
    }

    /// The field's value on an agent, if the agent has it.
    pub fn value_of<'a>(
        &self,
        hostname: &'a str,
        attributes: &'a BTreeMap<String, String>,
    ) -> Option<&'a str> {
        match self {
            Self::Hostname => Some(hostname),
            Self::Attribute(name) => attributes.get(name).map(String::as_str),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Operator {
    /// At most one instance per value.
    Unique,
    /// Every instance on one value: the given one, or (none given) the value
    /// where the first instance went.
    Cluster(Option<String>),
    /// Instances spread evenly over the values; the number, when given, is
    /// how many values to expect before any value takes a second instance.
    GroupBy(Option<u32>),
    /// The value matches the regex, whole (Java's `String.matches`).
    Like(Pattern),
    /// The value does not match the regex, whole; an agent without the field passes.
    Unlike(Pattern),
    /// At most this many instances per value.
    MaxPer(u32),
    /// The value is exactly this text.
    Is(String),
}

/// A regex as the user wrote it, compiled anchored at both ends.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub source: String,
    regex: Regex,
}

impl Pattern {
    fn compile(op: &str, source: &str) -> Result<Self, String> {
        let regex = Regex::new(&format!("^(?:{source})$")).map_err(|e| {
            // The regex crate explains over several lines; the last says what.
            let text = e.to_string();
            let why = text
                .lines()
                .rev()
                .find_map(|l| l.trim().strip_prefix("error: "))
                .unwrap_or_else(|| text.lines().next().unwrap_or("invalid"))
                .to_string();
            format!("{op} value '{source}' is not a regular expression: {why}")
        })?;
        Ok(Self {
            source: source.to_string(),
            regex,
        })
    }

    pub fn matches(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }
}

#[derive(Debug, Clone)]
pub struct Constraint {
    pub field: Field,
    pub operator: Operator,
}

const OPERATORS: &str = "UNIQUE, CLUSTER, GROUP_BY, LIKE, UNLIKE, MAX_PER, IS";

impl Constraint {
    /// Marathon's raw form, `[field, OPERATOR]` or `[field, OPERATOR, value]`.
    /// Operators are read in any case. The error is one line naming the problem.
    pub fn parse(raw: &[String]) -> Result<Self, String> {
        let (field, op, value) = match raw {
            [f, o] => (f, o, None),
            [f, o, v] => (f, o, Some(v.as_str())),
            _ => {
                return Err(format!(
                    "a constraint is [field, OPERATOR] or [field, OPERATOR, value], not {} item(s)",
                    raw.len()
                ));
            }
        };
        let field = Field::parse(field)?;
        let op = op.to_ascii_uppercase();
        // An empty value is no value, as Marathon's protobuf reads it.
        let value = value.filter(|v| !v.is_empty());
        let needs = |what: &str| format!("{op} needs a value: {what}");
        let operator = match op.as_str() {
            "UNIQUE" => match value {
                None => Operator::Unique,
                Some(v) => return Err(format!("UNIQUE takes no value, got '{v}'")),
            },
            "CLUSTER" => Operator::Cluster(value.map(str::to_string)),
            "GROUP_BY" => Operator::GroupBy(
                value
                    .map(|v| {
                        v.parse::<u32>().map_err(|_| {
                            format!("GROUP_BY value '{v}' is not a whole number (the number of groups to expect)")
                        })
                    })
                    .transpose()?,
            ),
            "LIKE" => Operator::Like(Pattern::compile(
                "LIKE",
                value.ok_or_else(|| needs("a regular expression"))?,
            )?),
            "UNLIKE" => Operator::Unlike(Pattern::compile(
                "UNLIKE",
                value.ok_or_else(|| needs("a regular expression"))?,
            )?),
            "MAX_PER" => {
                let v = value.ok_or_else(|| needs("a whole number of at least 1"))?;
                match v.parse::<u32>() {
                    Ok(n) if n >= 1 => Operator::MaxPer(n),
                    _ => {
                        return Err(format!(
                            "MAX_PER value '{v}' is not a whole number of at least 1"
                        ));
                    }
                }
            }
            "IS" => Operator::Is(value.ok_or_else(|| needs("the text to match"))?.to_string()),
            _ => return Err(format!("unknown operator '{op}'; use one of {OPERATORS}")),
        };
        Ok(Self { field, operator })
    }

    /// Every constraint of an app; the error carries the index of the bad one.
    pub fn parse_all(raws: &[Vec<String>]) -> Result<Vec<Self>, (usize, String)> {
        raws.iter()
            .enumerate()
            .map(|(i, raw)| Self::parse(raw).map_err(|e| (i, e)))
            .collect()
    }

    /// True when the verdict depends on the agent alone, never on where the
    /// app's instances are.
    pub fn is_static(&self) -> bool {
        matches!(
            self.operator,
            Operator::Like(_) | Operator::Unlike(_) | Operator::Is(_) | Operator::Cluster(Some(_))
        )
    }

    /// The part of the verdict that needs no instance counts: the field's
    /// presence (only UNLIKE accepts an agent without it) and, for a static
    /// operator, the value itself. Counting operators accept any present value here.
    pub fn admits_value(&self, value: Option<&str>) -> bool {
        let Some(value) = value else {
            return matches!(self.operator, Operator::Unlike(_));
        };
        match &self.operator {
            Operator::Like(p) => p.matches(value),
            Operator::Unlike(p) => !p.matches(value),
            Operator::Is(want) | Operator::Cluster(Some(want)) => value == want,
            Operator::Unique
            | Operator::Cluster(None)
            | Operator::GroupBy(_)
            | Operator::MaxPer(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn parse(items: &[&str]) -> Result<Constraint, String> {
        Constraint::parse(&raw(items))
    }

    fn err(items: &[&str]) -> String {
        parse(items).expect_err("should not parse")
    }

    #[test]
    fn operators_parse_with_their_values() {
        assert!(matches!(
            parse(&["hostname", "UNIQUE"]).unwrap(),
            Constraint {
                field: Field::Hostname,
                operator: Operator::Unique
            }
        ));
        assert!(matches!(
            parse(&["@hostname", "cluster"]).unwrap().operator,
            Operator::Cluster(None)
        ));
        assert!(matches!(
            parse(&["rack", "CLUSTER", "r1"]).unwrap().operator,
            Operator::Cluster(Some(v)) if v == "r1"
        ));
        assert!(matches!(
            parse(&["@zone", "GROUP_BY", "3"]).unwrap(),
            Constraint { field: Field::Attribute(a), operator: Operator::GroupBy(Some(3)) } if a == "zone"
        ));
        assert!(matches!(
            parse(&["@region", "GROUP_BY"]).unwrap(),
            Constraint { field: Field::Attribute(a), operator: Operator::GroupBy(None) } if a == "region"
        ));
        assert!(matches!(
            parse(&["rack", "MAX_PER", "2"]).unwrap().operator,
            Operator::MaxPer(2)
        ));
        assert!(matches!(
            parse(&["os", "IS", "linux"]).unwrap().operator,
            Operator::Is(v) if v == "linux"
        ));
        // An empty value is no value.
        assert!(matches!(
            parse(&["hostname", "UNIQUE", ""]).unwrap().operator,
            Operator::Unique
        ));
    }

    #[test]
    fn each_operator_names_its_problem() {
        assert!(err(&["hostname"]).contains("not 1 item(s)"));
        assert!(err(&["a", "UNIQUE", "b", "c"]).contains("not 4 item(s)"));
        assert!(err(&["", "UNIQUE"]).contains("field is empty"));
        assert!(err(&["rack", "NEAR"]).contains("unknown operator 'NEAR'"));
        assert_eq!(
            err(&["hostname", "UNIQUE", "x"]),
            "UNIQUE takes no value, got 'x'"
        );
        assert!(err(&["rack", "GROUP_BY", "two"]).contains("GROUP_BY value 'two'"));
        assert!(err(&["rack", "GROUP_BY", "-1"]).contains("not a whole number"));
        assert_eq!(
            err(&["rack", "LIKE"]),
            "LIKE needs a value: a regular expression"
        );
        assert!(
            err(&["rack", "LIKE", "r(1"])
                .starts_with("LIKE value 'r(1' is not a regular expression: ")
        );
        assert_eq!(
            err(&["rack", "UNLIKE"]),
            "UNLIKE needs a value: a regular expression"
        );
        assert!(err(&["rack", "UNLIKE", "[z-a]"]).starts_with("UNLIKE value '[z-a]'"));
        assert_eq!(
            err(&["rack", "MAX_PER"]),
            "MAX_PER needs a value: a whole number of at least 1"
        );
        assert!(err(&["rack", "MAX_PER", "0"]).contains("at least 1"));
        assert!(err(&["rack", "MAX_PER", "x"]).contains("MAX_PER value 'x'"));
        assert_eq!(err(&["os", "IS"]), "IS needs a value: the text to match");
        for e in [err(&["rack", "LIKE", "r(1"]), err(&["rack", "NEAR"])] {
            assert!(!e.contains('\n'), "one line: {e}");
        }
    }

    #[test]
    fn parse_all_says_which_one() {
        let raws = vec![raw(&["hostname", "UNIQUE"]), raw(&["rack", "MAX_PER"])];
        let (index, why) = Constraint::parse_all(&raws).unwrap_err();
        assert_eq!(index, 1);
        assert!(why.contains("MAX_PER"));
    }

    #[test]
    fn like_and_unlike_match_the_whole_value() {
        let like = parse(&["rack", "LIKE", "r[1-2]"]).unwrap();
        assert!(like.admits_value(Some("r1")));
        assert!(!like.admits_value(Some("r12")), "anchored at the end");
        assert!(!like.admits_value(Some("xr1")), "anchored at the start");
        assert!(!like.admits_value(None));
        let alternation = parse(&["rack", "LIKE", "a|b"]).unwrap();
        assert!(alternation.admits_value(Some("b")));
        assert!(
            !alternation.admits_value(Some("ab")),
            "the group anchors both sides"
        );
        let unlike = parse(&["rack", "UNLIKE", "r[1-2]"]).unwrap();
        assert!(!unlike.admits_value(Some("r1")));
        assert!(unlike.admits_value(Some("r12")));
        assert!(
            unlike.admits_value(None),
            "UNLIKE accepts an agent without the field"
        );
    }

    #[test]
    fn missing_field_fails_all_but_unlike() {
        for items in [
            &["rack", "UNIQUE"][..],
            &["rack", "CLUSTER"],
            &["rack", "CLUSTER", "r1"],
            &["rack", "GROUP_BY"],
            &["rack", "MAX_PER", "2"],
            &["rack", "IS", "r1"],
            &["rack", "LIKE", ".*"],
        ] {
            assert!(!parse(items).unwrap().admits_value(None), "{items:?}");
        }
    }

    #[test]
    fn fields_read_hostname_and_attributes() {
        let attrs: BTreeMap<String, String> = [("zone".to_string(), "a".to_string())]
            .into_iter()
            .collect();
        let zone = parse(&["@zone", "IS", "a"]).unwrap();
        assert_eq!(zone.field.value_of("h1", &attrs), Some("a"));
        let host = parse(&["hostname", "IS", "h1"]).unwrap();
        assert_eq!(host.field.value_of("h1", &attrs), Some("h1"));
        assert!(host.is_static());
        assert!(!parse(&["rack", "UNIQUE"]).unwrap().is_static());
        assert_eq!(
            parse(&["@region", "IS", "x"])
                .unwrap()
                .field
                .value_of("h1", &attrs),
            None
        );
    }
}
