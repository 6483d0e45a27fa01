//! Who is in the group and where to reach them, as configured by `--peer`:
//! used for `wrong_leader` hints and the `status` reply.

use raft::NodeId;
use wire::{LeaderHint, Member};

use crate::config::KvdConfig;

/// The group's members, this node included, sorted by id.
#[derive(Debug, Clone)]
pub(crate) struct Members {
    list: Vec<Member>,
}

impl Members {
    /// Members as `config` describes them. A peer whose client address was
    /// not given has an empty `client_addr`.
    pub(crate) fn from_config(config: &KvdConfig) -> Self {
        let mut list: Vec<Member> = std::iter::once(Member {
            node_id: config.id,
            client_addr: config.client_addr.clone(),
            peer_addr: config.peer_addr.clone(),
        })
        .chain(config.peers.iter().map(|p| Member {
            node_id: p.id,
            client_addr: p.client_addr.clone().unwrap_or_default(),
            peer_addr: p.peer_addr.clone(),
        }))
        .collect();
        list.sort_by_key(|m| m.node_id);
        Members { list }
    }

    /// Where clients should go to reach `leader`, if it is known and has a
    /// client address.
    pub(crate) fn hint(&self, leader: Option<NodeId>) -> Option<LeaderHint> {
        let leader = leader?;
        let m = self.list.iter().find(|m| m.node_id == leader)?;
        (!m.client_addr.is_empty()).then(|| LeaderHint {
            node_id: m.node_id,
            client_addr: m.client_addr.clone(),
        })
    }

    /// Every member.
    pub(crate) fn all(&self) -> &[Member] {
        &self.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_name_the_leader_only_when_its_client_address_is_known() {
        let config = KvdConfig::new(
            1,
            "c:1",
            "p:1",
            vec!["3=p:3/c:3".parse().unwrap(), "2=p:2".parse().unwrap()],
            "/d",
        );
        let m = Members::from_config(&config);
        assert_eq!(
            m.all().iter().map(|m| m.node_id).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(m.hint(Some(3)).unwrap().client_addr, "c:3");
        assert_eq!(m.hint(Some(1)).unwrap().client_addr, "c:1");
        assert_eq!(m.hint(Some(2)), None);
        assert_eq!(m.hint(Some(9)), None);
        assert_eq!(m.hint(None), None);
    }
}
