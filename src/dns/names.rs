//! How Mesos-DNS turns task names, framework names and ids into DNS labels
//! (`mesos-dns` `records/labels`, `records/generator.go`), so that names users
//! wrote against Mesos-DNS resolve the same here.
//!
//! - A task's name is one label: `apiserver.myservice` → `apiserver-myservice`
//!   (Marathon names `/group/sub/app`'s tasks `app.sub.group`, so the label is
//!   `app-sub-group`).
//! - A framework's name keeps its dots: each part is a label of its own.
//! - Labels follow RFC 1123: `[a-z0-9-]`, at most 63 characters, no dash first
//!   or last. A name cut at 63 drops the dashes at the cut and refills from
//!   what follows, as Mesos-DNS's `trimCut` does.
//! - The canonical name adds `-<hash>-<agent>`: the first five characters of
//!   the z-base-32 SHA-1 of the task id and the last `-` part of the agent id.

use sha1::{Digest, Sha1};

/// The longest label RFC 1123 allows.
pub const MAX_LABEL: usize = 63;

/// One RFC 1123 label made of `name`: upper case folded, `.` `_` `-` become
/// `-`, anything else dropped, cut at 63 characters. May be empty.
pub fn label(name: &str) -> String {
    let mapped: String = name
        .chars()
        .filter_map(|c| match c {
            'A'..='Z' => Some(c.to_ascii_lowercase()),
            'a'..='z' | '0'..='9' => Some(c),
            '-' | '.' | '_' => Some('-'),
            _ => None,
        })
        .collect();
    trim_cut(&mapped, MAX_LABEL)
}

/// Mesos-DNS's `trimCut`: no dash first; cut at `max`; if the cut leaves
/// trailing dashes, drop them and refill from after the cut (its own leading
/// dashes skipped). The result never ends with a dash either.
fn trim_cut(label: &str, max: usize) -> String {
    // `label` is ASCII here: byte indexes are character indexes.
    let trimmed = label.trim_start_matches('-');
    let size = trimmed.len().min(max);
    let head = trimmed[..size].trim_end_matches('-');
    let mut out = head.to_string();
    if head.len() < size {
        let tail = trimmed[size..].trim_start_matches('-');
        let room = size - head.len();
        out.push_str(&tail[..tail.len().min(room)]);
    }
    out.trim_end_matches('-').to_string()
}

/// A framework name as a dotted run of labels: each part sanitized, empty
/// parts dropped (`marathon.prod` stays, `My Framework` → `myframework`).
pub fn domain_fragment(name: &str) -> String {
    name.split('.')
        .map(label)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(".")
}

/// The first five characters of the z-base-32 SHA-1 of `text`: what makes
/// canonical task names unique (`hash("test") == "iffe9"`).
pub fn hash(text: &str) -> String {
    const ZBASE32: &[u8; 32] = b"ybndrfg8ejkmcpqxot1uwisza345h769";
    let digest = Sha1::digest(text.as_bytes());
    // 25 bits make five characters: the first four bytes hold them.
    let bits = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    (0..5)
        .map(|i| ZBASE32[((bits >> (27 - 5 * i)) & 31) as usize] as char)
        .collect()
}

/// The agent part of canonical names: the last `-` part of the agent id,
/// lower-cased (`…-S3` → `s3`).
pub fn agent_suffix(agent_id: &str) -> String {
    label(agent_id.rsplit('-').next().unwrap_or(agent_id))
}

/// The canonical task label `<task>-<hash>-<agent>`; the task label is cut so
/// that the whole stays within 63 characters.
pub fn canonical(task_label: &str, task_id: &str, agent_id: &str) -> String {
    let suffix = format!("-{}-{}", hash(task_id), agent_suffix(agent_id));
    let room = MAX_LABEL.saturating_sub(suffix.len());
    let head = trim_cut(task_label, room);
    format!("{head}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn labels_as_mesos_dns_makes_them() {
        assert_eq!(label("apiserver.myservice"), "apiserver-myservice");
        assert_eq!(label("app.sub.group"), "app-sub-group");
        assert_eq!(label("pod_123$abc"), "pod-123abc");
        assert_eq!(
            label("Chronos with a space AND MIXED CASE-2.0.1"),
            "chronoswithaspaceandmixedcase-2-0-1"
        );
        assert_eq!(label("--lead-and-trail--"), "lead-and-trail");
        assert_eq!(label("$$$"), "");
        // The cut at 63 lands on dashes: they go and what follows refills.
        let name = format!("{}{}f", "a".repeat(60), "-".repeat(10));
        assert_eq!(label(&name), format!("{}f", "a".repeat(60)));
        assert_eq!(label(&"x".repeat(100)).len(), 63);
    }

    #[test]
    fn framework_names_keep_their_dots() {
        assert_eq!(domain_fragment("marathon"), "marathon");
        assert_eq!(domain_fragment("marathon-0.6.0-dev"), "marathon-0.6.0-dev");
        assert_eq!(domain_fragment("a..B_c"), "a.b-c");
    }

    #[test]
    fn hashes_and_agent_suffixes_match_mesos_dns() {
        assert_eq!(hash("test"), "iffe9");
        assert_eq!(
            agent_suffix("20160107-001256-134875658-5050-27524-S3"),
            "s3"
        );
        assert_eq!(agent_suffix("20150327-2116-3"), "3");
        let c = canonical(&"n".repeat(70), "id", "x-S1");
        assert!(
            c.len() <= MAX_LABEL && c.ends_with(&format!("-{}-s1", hash("id"))),
            "{c}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn every_label_is_rfc1123(name in any::<String>()) {
            let l = label(&name);
            prop_assert!(l.len() <= MAX_LABEL);
            prop_assert!(l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'), "{l}");
            prop_assert!(!l.starts_with('-') && !l.ends_with('-'), "{l}");
        }

        #[test]
        fn labels_of_valid_short_names_are_the_names(name in "[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?") {
            prop_assert_eq!(label(&name), name);
        }

        #[test]
        fn canonical_names_are_rfc1123(name in "[ -~]{0,100}", id in "[ -~]{1,60}", agent in "[A-Za-z0-9-]{1,40}") {
            let c = canonical(&label(&name), &id, &agent);
            prop_assert!(c.len() <= MAX_LABEL, "{c}");
            prop_assert!(c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'), "{c}");
        }
    }
}
