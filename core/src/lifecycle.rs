//! The drop lifecycle, enforced in this one place. Every status change in the
//! store goes through [`transition`], so an invalid change is a typed error, never a write.
//!
//! ```text
//! collecting → unreviewed
//! unreviewed | resubmitted → incomplete | approved
//! incomplete → resubmitted
//! approved → incomplete            (re-open, admins only)
//! ```

use crate::domain::{DropStatus, Role};
use crate::error::CoreError;

/// What someone asks to happen to a drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Every photo is in, the contractor sent DONE, or the API created it.
    Complete,
    /// A reviewer rejected steps; feedback goes out.
    MarkIncomplete,
    /// A reviewer accepted every step.
    Approve,
    /// The contractor fixed it (`DR… DONE`) or the API resubmit was called.
    Resubmit,
}

impl Action {
    pub fn verb(self) -> &'static str {
        match self {
            Action::Complete => "complete",
            Action::MarkIncomplete => "mark incomplete",
            Action::Approve => "approve",
            Action::Resubmit => "resubmit",
        }
    }
}

/// Who is acting: a signed-in user's role, or the system (webhooks, API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    User(Role),
    System,
}

pub fn transition(from: DropStatus, action: Action, actor: Actor) -> Result<DropStatus, CoreError> {
    use DropStatus::*;
    let to = match (from, action) {
        (Collecting, Action::Complete) => Unreviewed,
        (Unreviewed | Resubmitted, Action::MarkIncomplete) => Incomplete,
        (Approved, Action::MarkIncomplete) => {
            if actor != Actor::User(Role::Admin) {
                return Err(CoreError::Forbidden("Only an admin can re-open an approved drop.".into()));
            }
            Incomplete
        }
        (Unreviewed | Resubmitted, Action::Approve) => Approved,
        (Incomplete, Action::Resubmit) => Resubmitted,
        (from, action) => {
            return Err(CoreError::conflict(
                "invalid_transition",
                format!("A drop that is {} cannot be {}: {}.", from.label(), past(action), hint(from)),
            ))
        }
    };
    Ok(to)
}

/// Every action, in the order the dashboard lists them.
pub const ACTIONS: [Action; 4] = [Action::Complete, Action::MarkIncomplete, Action::Approve, Action::Resubmit];

/// What may be offered on a drop in `status` to `actor`: exactly the actions [`transition`]
/// accepts, so the dashboard never shows a button for a change the store would refuse.
pub fn allowed_actions(status: DropStatus, actor: Actor) -> Vec<Action> {
    ACTIONS.into_iter().filter(|a| transition(status, *a, actor).is_ok()).collect()
}

/// Whether a drop in this status takes step verdicts and photo moves: every status but
/// Approved (an admin re-opens an approved drop first).
pub fn takes_verdicts(status: DropStatus) -> bool {
    status != DropStatus::Approved
}

fn past(action: Action) -> &'static str {
    match action {
        Action::Complete => "completed",
        Action::MarkIncomplete => "marked incomplete",
        Action::Approve => "approved",
        Action::Resubmit => "resubmitted",
    }
}

fn hint(from: DropStatus) -> &'static str {
    match from {
        DropStatus::Collecting => "photos are still arriving; it can be reviewed once it is complete",
        DropStatus::Unreviewed => "it is waiting for review",
        DropStatus::Incomplete => "it is waiting for the contractor to resubmit",
        DropStatus::Resubmitted => "it is waiting for review",
        DropStatus::Approved => "it is already approved",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DropStatus::*;

    const REVIEWER: Actor = Actor::User(Role::Reviewer);
    const ADMIN: Actor = Actor::User(Role::Admin);

    #[test]
    fn the_allowed_transitions_are_exactly_the_spec_table() {
        let mut allowed = vec![];
        for from in DropStatus::ALL {
            for action in [Action::Complete, Action::MarkIncomplete, Action::Approve, Action::Resubmit] {
                if let Ok(to) = transition(*from, action, ADMIN) {
                    allowed.push((*from, action, to));
                }
            }
        }
        assert_eq!(
            allowed,
            vec![
                (Collecting, Action::Complete, Unreviewed),
                (Unreviewed, Action::MarkIncomplete, Incomplete),
                (Unreviewed, Action::Approve, Approved),
                (Incomplete, Action::Resubmit, Resubmitted),
                (Resubmitted, Action::MarkIncomplete, Incomplete),
                (Resubmitted, Action::Approve, Approved),
                (Approved, Action::MarkIncomplete, Incomplete),
            ]
        );
    }

    #[test]
    fn only_admins_reopen_approved_drops() {
        assert!(matches!(transition(Approved, Action::MarkIncomplete, REVIEWER), Err(CoreError::Forbidden(_))));
        assert!(matches!(transition(Approved, Action::MarkIncomplete, Actor::System), Err(CoreError::Forbidden(_))));
    }

    #[test]
    fn the_actions_offered_are_the_transitions_allowed() {
        use Action::*;
        assert_eq!(allowed_actions(Unreviewed, REVIEWER), vec![MarkIncomplete, Approve]);
        assert_eq!(allowed_actions(Resubmitted, REVIEWER), vec![MarkIncomplete, Approve]);
        assert_eq!(allowed_actions(Approved, REVIEWER), vec![]);
        assert_eq!(allowed_actions(Approved, ADMIN), vec![MarkIncomplete]);
        assert_eq!(allowed_actions(Incomplete, Actor::System), vec![Resubmit]);
        assert_eq!(allowed_actions(Collecting, Actor::System), vec![Complete]);
        assert!(DropStatus::ALL.iter().all(|s| takes_verdicts(*s) == (*s != Approved)));
    }

    #[test]
    fn invalid_transitions_explain_themselves() {
        let err = transition(Collecting, Action::Approve, REVIEWER).unwrap_err();
        assert_eq!(err.code(), "invalid_transition");
        assert!(err.to_string().contains("Collecting"), "{err}");
        let err = transition(Unreviewed, Action::Resubmit, Actor::System).unwrap_err();
        assert!(err.to_string().contains("cannot be resubmitted"), "{err}");
    }
}
