//! Live tasks and agents counted by state, for `/metrics/snapshot`: its
//! gauges were a pass over every task per state, five per request.

use crate::model::{AgentState, TaskState};

const TASK_STATES: usize = 12;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    tasks: [usize; TASK_STATES],
    agents: [usize; 3],
}

fn task_slot(state: TaskState) -> usize {
    state as usize
}

fn agent_slot(state: AgentState) -> usize {
    match state {
        AgentState::Active => 0,
        AgentState::Unreachable => 1,
        AgentState::Gone => 2,
    }
}

impl Counts {
    /// Live tasks in `state`.
    pub fn tasks(&self, state: TaskState) -> usize {
        self.tasks[task_slot(state)]
    }

    /// Agents in `state`.
    pub fn agents(&self, state: AgentState) -> usize {
        self.agents[agent_slot(state)]
    }

    pub(super) fn task(&mut self, before: Option<TaskState>, after: Option<TaskState>) {
        if let Some(s) = before {
            self.tasks[task_slot(s)] -= 1;
        }
        if let Some(s) = after {
            self.tasks[task_slot(s)] += 1;
        }
    }

    pub(super) fn agent(&mut self, before: Option<AgentState>, after: AgentState) {
        if let Some(s) = before {
            self.agents[agent_slot(s)] -= 1;
        }
        self.agents[agent_slot(after)] += 1;
    }
}
