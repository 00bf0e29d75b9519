//! Placement as a user of Marathon would see it: where instances land, why
//! they do not, and which go on a scale-down.

mod kill;
mod place;
mod props;
mod registry;

use std::collections::BTreeMap;

use super::*;
use crate::model::{PortRange, Resources};

/// An active agent with 4 cpus, 4096 MB, 1000 MB disk and ports 31000-31009.
pub(super) fn agent(id: &str, attrs: &[(&str, &str)]) -> AgentView<'static> {
    let total = Resources {
        cpus: 4.0,
        mem: 4096.0,
        disk: 1000.0,
        ports: vec![PortRange {
            begin: 31000,
            end: 31009,
        }],
    };
    AgentView {
        id: id.to_string().into(),
        hostname: format!("{id}.local").into(),
        attributes: std::borrow::Cow::Owned(
            attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        ),
        free: total.clone(),
        total: std::borrow::Cow::Owned(total),
        active: true,
    }
}

pub(super) fn demand(cpus: f64, mem: f64) -> Demand {
    Demand {
        cpus,
        mem,
        ..Demand::default()
    }
}

pub(super) fn constraints(raws: &[&[&str]]) -> Vec<Constraint> {
    let raws: Vec<Vec<String>> = raws
        .iter()
        .map(|r| r.iter().map(|s| s.to_string()).collect())
        .collect();
    Constraint::parse_all(&raws).expect("test constraints parse")
}

pub(super) fn placed(ids: &[&str]) -> Vec<Placed> {
    ids.iter()
        .map(|id| Placed {
            agent_id: id.to_string(),
        })
        .collect()
}

/// The chosen agent ids, in order.
pub(super) fn ids(p: &Placement) -> Vec<&str> {
    p.chosen.iter().map(|c| c.agent_id.as_str()).collect()
}

/// How many of `ids` went to each agent.
pub(super) fn per_agent<'a>(ids: impl IntoIterator<Item = &'a str>) -> BTreeMap<&'a str, usize> {
    let mut m = BTreeMap::new();
    for id in ids {
        *m.entry(id).or_insert(0) += 1;
    }
    m
}
