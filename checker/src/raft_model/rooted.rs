//! Checking a model from a state other than its initial one.
//!
//! Some bugs sit behind a long, specific prefix (Figure 8 needs four
//! elections); a test can script that prefix with the model's own actions
//! and have the checker explore every continuation of the state it reaches.

use stateright::{Model, Path, Property};

use super::properties::{PROPERTIES, properties_for};
use super::{RaftAction, RaftModel, RaftState, render};

/// [`RaftModel`] with `root` as its only initial state, describing its
/// steps the way [`render`] does (the explorer shows these).
#[derive(Clone)]
pub(crate) struct Rooted {
    pub(crate) model: RaftModel,
    pub(crate) root: RaftState,
}

/// `PROPERTIES[I]`'s condition, on a rooted model. stateright wants plain
/// function pointers typed by the model, hence one instance per property.
fn condition<const I: usize>(rooted: &Rooted, state: &RaftState) -> bool {
    (PROPERTIES[I].condition)(&rooted.model, state)
}

type Condition = fn(&Rooted, &RaftState) -> bool;

const CONDITIONS: [Condition; 9] = [
    condition::<0>,
    condition::<1>,
    condition::<2>,
    condition::<3>,
    condition::<4>,
    condition::<5>,
    condition::<6>,
    condition::<7>,
    condition::<8>,
];

const _: () = assert!(CONDITIONS.len() == PROPERTIES.len());

impl Model for Rooted {
    type State = RaftState;
    type Action = RaftAction;

    fn init_states(&self) -> Vec<RaftState> {
        vec![self.root.clone()]
    }

    fn actions(&self, state: &RaftState, actions: &mut Vec<RaftAction>) {
        self.model.actions(state, actions);
    }

    fn next_state(&self, state: &RaftState, action: RaftAction) -> Option<RaftState> {
        self.model.next_state(state, action)
    }

    fn format_action(&self, action: &RaftAction) -> String {
        render::describe_action_alone(&self.model, action)
    }

    fn format_step(&self, last_state: &RaftState, action: RaftAction) -> Option<String> {
        let next = self.model.next_state(last_state, action.clone())?;
        Some(format!(
            "{}\n\n{}",
            render::describe_action(&self.model, last_state, &action),
            render::final_state(&self.model, &next)
        ))
    }

    fn as_svg(&self, path: Path<RaftState, RaftAction>) -> Option<String> {
        self.model.as_svg(path)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        properties_for(self.model.cfg.clients)
            .map(|spec| {
                let index = PROPERTIES
                    .iter()
                    .position(|p| p.name == spec.name)
                    .unwrap_or(0);
                Property {
                    expectation: spec.expectation.clone(),
                    name: spec.name,
                    condition: CONDITIONS[index],
                }
            })
            .collect()
    }

    fn within_boundary(&self, state: &RaftState) -> bool {
        Model::within_boundary(&self.model, state)
    }
}
