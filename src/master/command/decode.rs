//! Reading a committed entry in one pass. Every master decodes every entry it
//! applies, so this runs for each status and each launch of the cluster.
//!
//! ```text
//!  entry bytes ─▶ Envelope { origin, seq, command: {"type": T, fields…} }
//!                   first key "type" ─▶ T ─▶ the fields straight into Command::T
//!                   anything else (the tag later, a variant not listed here,
//!                   any error) ─▶ the derived `Deserialize` of Envelope, again
//! ```
//!
//! Why not just the derive: for an enum tagged by a field, serde's derive
//! cannot know the variant before it finds the tag, so it first reads the
//! whole entry into its own `Content` tree (every string copied, every map a
//! vector) and then reads the variant out of the tree. An entry was parsed
//! twice and allocated twice: 14% of each master's CPU in a 10,000-agent
//! deployment (perf, 2026-12-06), half of it in malloc and free. Entries
//! written by this code base put the tag first (the derived `Serialize` does),
//! so the tag can be read first and the fields read once.
//!
//! `CommandFields` lists the variants again for serde's `remote` derive,
//! which makes the compiler name every field of each variant listed; the
//! field attributes must be those of [`Command`] (the tests compare both
//! paths on every variant, and on entries from before a field was added).
//! The derived path stays the one authority: whatever the fast path cannot
//! read is read by it, with its answer and its error.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, VariantAccess,
    Visitor,
};

use super::{Command, Envelope, ReportedTask};
use crate::model::{Member, Resources, TaskSpec, TaskStatus, WeightInfo};
use crate::scheduler::state::MarathonCommand;

/// The envelope in `data`: read in one pass when the command's tag comes
/// first, by the derived path otherwise.
pub fn envelope(data: &[u8]) -> serde_json::Result<Envelope> {
    one_pass(data).or_else(|_| serde_json::from_slice(data))
}

/// Who proposed the entry in `data` (origin, seq), read from its front
/// without the command: the proposer applies its own entries from the
/// command it kept. None when the entry does not begin as an
/// [`EnvelopeRef`](super::EnvelopeRef) writes it.
pub fn proposer(data: &[u8]) -> Option<(u64, u64)> {
    let rest = data.strip_prefix(br#"{"origin":"#)?;
    let (origin, rest) = number(rest)?;
    let rest = rest.strip_prefix(br#","seq":"#)?;
    let (seq, rest) = number(rest)?;
    rest.starts_with(b",").then_some((origin, seq))
}

/// A JSON unsigned integer at the front of `data`, and what follows it.
fn number(data: &[u8]) -> Option<(u64, &[u8])> {
    let digits = data.iter().take_while(|b| b.is_ascii_digit()).count();
    let value = std::str::from_utf8(&data[..digits]).ok()?.parse().ok()?;
    Some((value, &data[digits..]))
}

fn one_pass(data: &[u8]) -> serde_json::Result<Envelope> {
    let OnePass {
        origin,
        seq,
        command,
    } = serde_json::from_slice(data)?;
    Ok(Envelope {
        origin,
        seq,
        command,
    })
}

/// [`Envelope`] field by field (a field added there fails to compile in
/// `one_pass` until it is added here).
#[derive(Deserialize)]
struct OnePass {
    origin: u64,
    seq: u64,
    #[serde(deserialize_with = "tag_first")]
    command: Command,
}

fn tag_first<'de, D: Deserializer<'de>>(d: D) -> Result<Command, D::Error> {
    d.deserialize_map(TagFirst)
}

struct TagFirst;

impl<'de> Visitor<'de> for TagFirst {
    type Value = Command;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a command whose first key is \"type\"")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Command, A::Error> {
        let key: Option<String> = map.next_key()?;
        if key.as_deref() != Some("type") {
            return Err(de::Error::custom("the tag is not the first key"));
        }
        let tag: String = map.next_value()?;
        CommandFields::deserialize(Tagged { tag, fields: map })
    }
}

/// The variants of [`Command`] as serde's externally tagged derive reads
/// them: the tag read already, then the variant's fields from the rest of
/// the map.
#[derive(Deserialize)]
#[serde(remote = "Command", rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(dead_code)] // read into Command; never built itself
enum CommandFields {
    InitCluster {
        cluster_id: String,
    },
    AnnounceMember {
        member: Member,
    },
    UpdateWeights {
        weights: Vec<WeightInfo>,
    },
    RegisterAgent {
        key: String,
        hostname: String,
        addr: String,
        resources: Resources,
        #[serde(default)]
        attributes: BTreeMap<String, String>,
        time: f64,
        #[serde(default)]
        tasks: Vec<ReportedTask>,
    },
    MarkAgentUnreachable {
        id: String,
        time: f64,
    },
    MarkAgentGone {
        id: String,
        time: f64,
    },
    LaunchTasks {
        tasks: Vec<TaskSpec>,
        time: f64,
    },
    KillTask {
        task_id: String,
    },
    KillTasks {
        task_ids: Vec<String>,
    },
    Marathon {
        command: MarathonCommand,
    },
    UpdateTaskStatuses {
        statuses: Vec<TaskStatus>,
    },
}

/// A command's map after its tag, shown to the derive as an externally
/// tagged enum: the tag names the variant, the rest of the map is its struct.
struct Tagged<A> {
    tag: String,
    fields: A,
}

impl<'de, A: MapAccess<'de>> Deserializer<'de> for Tagged<A> {
    type Error = A::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, A::Error> {
        Err(de::Error::custom("a command reads only as an enum"))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

impl<'de, A: MapAccess<'de>> EnumAccess<'de> for Tagged<A> {
    type Error = A::Error;
    type Variant = Fields<A>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Fields<A>), A::Error> {
        let variant =
            seed.deserialize(IntoDeserializer::<A::Error>::into_deserializer(self.tag))?;
        Ok((variant, Fields(self.fields)))
    }
}

/// The rest of the map, as the chosen variant's struct.
struct Fields<A>(A);

impl<'de, A: MapAccess<'de>> VariantAccess<'de> for Fields<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        Err(de::Error::custom("every command has fields"))
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, _: S) -> Result<S::Value, A::Error> {
        Err(de::Error::custom("every command is a struct"))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, A::Error> {
        Err(de::Error::custom("every command is a struct"))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        visitor.visit_map(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::master::command::EnvelopeRef;
    use crate::model::{CommandSpec, TaskState};

    /// One of each variant. The match fails to compile when `Command` gains
    /// a variant: list it in `CommandFields` and here.
    fn every_variant() -> Vec<Command> {
        let spec = TaskSpec {
            task_id: "web.1".into(),
            name: "web".into(),
            agent_id: "c-S1".into(),
            cpus: 0.01,
            mem: 8.0,
            command: Some(CommandSpec {
                value: Some("sleep 3600".into()),
                ..Default::default()
            }),
            labels: [("a \"quoted\" key".to_string(), "é\n".to_string())].into(),
            ..Default::default()
        };
        let mut status = TaskStatus::new("web.1", "c-S1", TaskState::Running, 1.7e9 + 0.123);
        status.uuid = Some("u-1".into());
        status.healthy = Some(true);
        let all = vec![
            Command::InitCluster {
                cluster_id: "c".into(),
            },
            Command::AnnounceMember {
                member: Member {
                    id: 2,
                    raft_addr: "127.0.0.1:5050".into(),
                    http_addr: Some("127.0.0.1:5051".into()),
                    hostname: None,
                },
            },
            Command::UpdateWeights {
                weights: vec![WeightInfo {
                    role: "web".into(),
                    weight: 2.5,
                }],
            },
            Command::RegisterAgent {
                key: "k".into(),
                hostname: "h".into(),
                addr: "10.0.0.1:5051".into(),
                resources: Resources {
                    cpus: 4.0,
                    mem: 1024.0,
                    disk: 0.0,
                    ports: vec![],
                },
                attributes: [("rack".to_string(), "r1".to_string())].into(),
                time: 0.1 + 0.2,
                tasks: vec![ReportedTask {
                    task_id: "web.1".into(),
                    state: TaskState::Running,
                }],
            },
            Command::MarkAgentUnreachable {
                id: "c-S1".into(),
                time: 3.0,
            },
            Command::MarkAgentGone {
                id: "c-S1".into(),
                time: 4.0,
            },
            Command::LaunchTasks {
                tasks: vec![spec.clone(), spec],
                time: 5.5,
            },
            Command::KillTask {
                task_id: "web.1".into(),
            },
            Command::KillTasks {
                task_ids: vec!["web.1".into(), "web.2".into()],
            },
            Command::Marathon {
                command: MarathonCommand::AdvanceDeployment {
                    id: "d".into(),
                    step: 1,
                },
            },
            Command::UpdateTaskStatuses {
                statuses: vec![status],
            },
        ];
        for c in &all {
            match c {
                Command::InitCluster { .. }
                | Command::AnnounceMember { .. }
                | Command::UpdateWeights { .. }
                | Command::RegisterAgent { .. }
                | Command::MarkAgentUnreachable { .. }
                | Command::MarkAgentGone { .. }
                | Command::LaunchTasks { .. }
                | Command::KillTask { .. }
                | Command::KillTasks { .. }
                | Command::Marathon { .. }
                | Command::UpdateTaskStatuses { .. } => {}
            }
        }
        all
    }

    fn derived(data: &[u8]) -> Envelope {
        serde_json::from_slice(data).expect("the derived path reads it")
    }

    #[test]
    fn every_variant_reads_in_one_pass_as_the_derive_reads_it() {
        for (seq, command) in every_variant().into_iter().enumerate() {
            let data = serde_json::to_vec(&Envelope {
                origin: 7,
                seq: seq as u64,
                command: command.clone(),
            })
            .unwrap();
            let borrowed = serde_json::to_vec(&EnvelopeRef {
                origin: 7,
                seq: seq as u64,
                command: &command,
            })
            .unwrap();
            assert_eq!(borrowed, data, "EnvelopeRef writes what Envelope does");
            assert_eq!(proposer(&data), Some((7, seq as u64)));
            let fast = one_pass(&data).unwrap_or_else(|e| panic!("{command:?}: {e}"));
            let slow = derived(&data);
            assert_eq!((fast.origin, fast.seq), (slow.origin, slow.seq));
            assert_eq!(fast.command, slow.command);
            assert_eq!(fast.command, command);
        }
    }

    #[test]
    fn an_entry_from_before_defaulted_fields_reads_the_same_both_ways() {
        // RegisterAgent without attributes and tasks, a task spec with only
        // its required fields: what an older binary wrote.
        let data = br#"{"origin":1,"seq":2,"command":{"type":"REGISTER_AGENT","key":"k","hostname":"h","addr":"a","resources":{"cpus":1.0,"mem":2.0,"disk":0.0},"time":9}}"#;
        let fast = one_pass(data).unwrap();
        assert_eq!(fast.command, derived(data).command);
        let data = br#"{"origin":1,"seq":3,"command":{"type":"LAUNCH_TASKS","tasks":[{"task_id":"t","agent_id":"a"}],"time":1,"later":"ignored"}}"#;
        let fast = one_pass(data).unwrap();
        assert_eq!(fast.command, derived(data).command);
    }

    #[test]
    fn an_entry_written_otherwise_names_no_proposer() {
        for data in [
            &br#"{"seq":2,"origin":1,"command":{}}"#[..],
            br#"{"origin":1,"seq":2}"#,
            br#"{"origin":-1,"seq":2,"command":{}}"#,
            br#"{"origin":99999999999999999999,"seq":2,"command":{}}"#,
            br#"{"origin":,"seq":2,"command":{}}"#,
            b"",
        ] {
            assert_eq!(proposer(data), None, "{}", String::from_utf8_lossy(data));
        }
    }

    #[test]
    fn a_tag_after_the_fields_is_read_by_the_derived_path() {
        let data = br#"{"origin":1,"seq":2,"command":{"task_id":"web.1","type":"KILL_TASK"}}"#;
        assert!(one_pass(data).is_err());
        let read = envelope(data).unwrap();
        assert_eq!(
            read.command,
            Command::KillTask {
                task_id: "web.1".into()
            }
        );
    }

    #[test]
    fn what_neither_path_reads_is_an_error() {
        for data in [
            &br#"{"origin":1,"seq":2,"command":{"type":"NO_SUCH_COMMAND"}}"#[..],
            br#"{"origin":1,"seq":2,"command":{"type":"KILL_TASK"}}"#,
            br#"{"origin":1,"seq":2,"command":{"type":"KILL_TASK","task_id":5}}"#,
            br#"{"origin":1,"seq":2,"command":"KILL_TASK"}"#,
            br#"{"origin":1,"seq":2}"#,
            b"not json",
        ] {
            assert!(envelope(data).is_err(), "{}", String::from_utf8_lossy(data));
        }
    }
}
