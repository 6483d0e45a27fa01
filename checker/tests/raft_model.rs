//! The Raft model on the correct core: every property holds under each
//! network and with crashes, the driver persists and restores what it
//! must, and the run options and explorer refuse what they cannot do.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use checker::raft_model::{
    ActorState, Bounds, ClientState, ModelError, Msg, NetworkKind, PropertyOutcome, RaftModel,
    RaftModelConfig, RaftState, RunError, RunOptions, RunReport, Strategy, Timer, Verdict,
    build_model, explore, properties, run,
};
use raft::Role;
use stateright::Model;
use stateright::actor::{ActorModelAction, Id};

fn bfs(depth: usize) -> RunOptions {
    RunOptions {
        strategy: Strategy::Bfs,
        threads: 1,
        max_depth: Some(depth),
        max_states: None,
        progress_every: Duration::from_secs(3600),
    }
}

fn check(config: &RaftModelConfig, options: &RunOptions) -> RunReport {
    let model = build_model(config).expect("valid model");
    run(model, options, |_| {}).expect("valid options")
}

fn violations(report: &RunReport) -> Vec<(&'static str, String)> {
    report
        .properties
        .iter()
        .filter_map(|p| match &p.outcome {
            PropertyOutcome::Violated { detail, .. } => Some((p.spec.name, detail.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn default_model_passes_and_commits_a_value_within_14_steps() {
    let report = check(&RaftModelConfig::new(3), &bfs(14));
    assert_eq!(violations(&report), vec![]);
    assert_eq!(report.verdict(), Verdict::Pass, "both examples are found");
    assert!(report.exhaustive);
    assert_eq!(report.properties.len(), properties::PROPERTIES.len());
}

#[test]
fn crashes_and_restarts_keep_every_property() {
    let mut config = RaftModelConfig::new(3);
    config.crashes = 1;
    let report = check(&config, &bfs(13));
    assert_eq!(violations(&report), vec![]);
    assert!(report.exhaustive);
}

#[test]
fn ordered_network_keeps_every_property() {
    let mut config = RaftModelConfig::new(3);
    config.network = NetworkKind::Ordered;
    let report = check(&config, &bfs(18));
    assert_eq!(violations(&report), vec![]);
}

#[test]
fn lossy_network_keeps_every_property() {
    let mut config = RaftModelConfig::new(3);
    config.network = NetworkKind::Lossy;
    let report = check(&config, &bfs(11));
    assert_eq!(violations(&report), vec![]);
}

#[test]
fn two_clients_stay_linearizable() {
    let mut config = RaftModelConfig::new(3);
    config.clients = 2;
    config.bounds.max_in_flight = 7;
    let report = check(&config, &bfs(13));
    assert_eq!(violations(&report), vec![]);
    assert!(matches!(
        report
            .property(properties::LINEARIZABLE)
            .map(|p| &p.outcome),
        Some(PropertyOutcome::Held)
    ));
}

#[test]
fn model_without_clients_drops_the_client_properties() {
    let mut config = RaftModelConfig::new(3);
    config.clients = 0;
    let report = check(&config, &bfs(8));
    assert!(report.property(properties::LINEARIZABLE).is_none());
    assert!(report.property(properties::VALUE_COMMITTED).is_none());
    assert!(report.property(properties::ELECTION_SAFETY).is_some());
}

#[test]
fn simulation_with_crashes_reports_replayable_examples() {
    // stateright's simulation cannot rebuild a path that chose an action
    // which changed nothing (a delivery to a crashed server, say); the
    // model's chooser never picks one, so examples come back intact.
    let mut config = RaftModelConfig::new(3);
    config.crashes = 1;
    let options = RunOptions {
        strategy: Strategy::Simulation { seed: 3 },
        threads: 1,
        max_depth: Some(60),
        max_states: Some(50_000),
        progress_every: Duration::from_secs(3600),
    };
    let report = check(&config, &options);
    assert_eq!(violations(&report), vec![]);
    assert!(!report.exhaustive, "a simulation only samples");
    let Some(PropertyOutcome::Found { path }) = report
        .property(properties::LEADER_ELECTED)
        .map(|p| &p.outcome)
    else {
        panic!("random walks elect a leader");
    };
    assert!(properties::leader_elected(
        &path.last().expect("non-empty path").0
    ));
}

// --- The driver: persistence, restarts, clients -----------------------------

fn server_state(state: &RaftState, n: usize) -> &checker::raft_model::ServerState {
    match &*state.actor_states[n - 1] {
        ActorState::Server(s) => s,
        ActorState::Client(_) => unreachable!("actor {n} is a server"),
    }
}

/// Takes the first enabled action `pick` accepts.
fn take(
    model: &RaftModel,
    state: &RaftState,
    what: &str,
    pick: impl Fn(&checker::raft_model::RaftAction) -> bool,
) -> RaftState {
    let mut actions = Vec::new();
    model.actions(state, &mut actions);
    let action = actions
        .into_iter()
        .find(|a| pick(a))
        .unwrap_or_else(|| panic!("no enabled action: {what}"));
    model
        .next_state(state, action)
        .unwrap_or_else(|| panic!("{what} changed nothing"))
}

/// Delivers messages in order until `done` holds, preferring the oldest
/// kind of progress: any enabled delivery to a live server or client.
fn deliver_until(
    model: &RaftModel,
    mut state: RaftState,
    done: impl Fn(&RaftState) -> bool,
) -> RaftState {
    for _ in 0..200 {
        if done(&state) {
            return state;
        }
        state = take(model, &state, "a delivery", |a| {
            matches!(a, ActorModelAction::Deliver { .. })
        });
    }
    panic!("condition not reached within 200 deliveries");
}

#[test]
fn restarted_leader_rebuilds_its_register_from_what_it_persisted() {
    let mut config = RaftModelConfig::new(3);
    config.crashes = 1;
    config.bounds = Bounds {
        max_in_flight: 20,
        ..Bounds::default()
    };
    let model = build_model(&config).expect("valid model");
    let mut state = model.init_states().remove(0);
    while server_state(&state, 1).node.role() == Role::Follower {
        state = take(
            &model,
            &state,
            "s1's clock",
            |a| matches!(a, ActorModelAction::Timeout(id, Timer::Clock) if *id == Id::from(0)),
        );
    }
    let mut state = deliver_until(&model, state, |s| {
        matches!(
            &*s.actor_states[3],
            ActorState::Client(ClientState::Getting)
        )
    });
    assert_eq!(
        server_state(&state, 1).register,
        Some(1),
        "the leader applied the put"
    );
    state = take(
        &model,
        &state,
        "s1 crashes",
        |a| matches!(a, ActorModelAction::Crash(id) if *id == Id::from(0)),
    );
    state = take(
        &model,
        &state,
        "s1 restarts",
        |a| matches!(a, ActorModelAction::Recover(id) if *id == Id::from(0)),
    );
    let restarted = server_state(&state, 1);
    assert_eq!(restarted.node.role(), Role::Follower);
    assert_eq!(
        restarted.register,
        Some(1),
        "committed entries were applied again"
    );
    assert!(restarted.node.term() >= 1, "the term survived the crash");
}

#[test]
fn clients_never_crash() {
    let mut config = RaftModelConfig::new(3);
    config.crashes = 1;
    let model = build_model(&config).expect("valid model");
    let init = model.init_states().remove(0);
    let client = Id::from(3);
    let crashed = model
        .next_state(&init, ActorModelAction::Crash(client))
        .expect("stateright offers client crashes");
    assert!(
        !Model::within_boundary(&model, &crashed),
        "a crashed client is outside the model's bounds"
    );
    let server_crashed = model
        .next_state(&init, ActorModelAction::Crash(Id::from(0)))
        .expect("servers crash");
    assert!(Model::within_boundary(&model, &server_crashed));
}

#[test]
fn followers_forward_client_requests_to_the_leader() {
    let mut config = RaftModelConfig::new(3);
    config.clients = 2;
    config.bounds = Bounds {
        max_in_flight: 20,
        ..Bounds::default()
    };
    let model = build_model(&config).expect("valid model");
    let mut state = model.init_states().remove(0);
    while server_state(&state, 1).node.role() == Role::Follower {
        state = take(
            &model,
            &state,
            "s1's clock",
            |a| matches!(a, ActorModelAction::Timeout(id, Timer::Clock) if *id == Id::from(0)),
        );
    }
    // Client c1 talks to s2; once s2 follows s1 it forwards the put there.
    let state = deliver_until(&model, state, |s| {
        s.network.iter_all().any(|env| {
            env.src == Id::from(1)
                && env.dst == Id::from(0)
                && matches!(env.msg, Msg::Request { client: 1, .. })
        })
    });
    assert_eq!(server_state(&state, 2).node.leader_id(), Some(1));
}

// --- Refusals ----------------------------------------------------------------

#[test]
fn invalid_models_are_refused_with_the_reason() {
    let with = |change: fn(&mut RaftModelConfig)| {
        let mut config = RaftModelConfig::new(3);
        change(&mut config);
        build_model(&config).err()
    };
    assert_eq!(with(|c| c.servers = 0), Some(ModelError::Servers(0)));
    assert_eq!(with(|c| c.servers = 10), Some(ModelError::Servers(10)));
    assert_eq!(with(|c| c.clients = 255), Some(ModelError::Clients(255)));
    assert_eq!(
        with(|c| c.bounds.max_elections = 63),
        Some(ModelError::MaxElections(63))
    );
    assert!(matches!(
        with(|c| c.crashes = 4),
        Some(ModelError::Crashes {
            crashes: 4,
            servers: 3
        })
    ));
    assert!(matches!(
        with(|c| c.node.heartbeat_tick = 5),
        Some(ModelError::Node(_))
    ));
}

#[test]
fn depth_first_search_refuses_a_depth_bound() {
    let model = build_model(&RaftModelConfig::new(3)).expect("valid model");
    let mut options = bfs(5);
    options.strategy = Strategy::Dfs;
    assert!(matches!(
        run(model, &options, |_| {}),
        Err(RunError::DepthWithDfs)
    ));
}

#[test]
fn simulation_needs_a_state_budget_and_checkers_a_thread() {
    let model = build_model(&RaftModelConfig::new(3)).expect("valid model");
    let mut options = bfs(5);
    options.strategy = Strategy::Simulation { seed: 0 };
    assert!(matches!(
        run(model.clone(), &options, |_| {}),
        Err(RunError::SimulationNeedsBudget)
    ));
    let mut options = bfs(5);
    options.threads = 0;
    assert!(matches!(
        run(model, &options, |_| {}),
        Err(RunError::NoThreads)
    ));
}

#[test]
fn explorer_listens_on_loopback_only() {
    let model = build_model(&RaftModelConfig::new(3)).expect("valid model");
    let outside: SocketAddr = "0.0.0.0:3000".parse().expect("address");
    assert!(matches!(
        explore(model, outside, || {}),
        Err(RunError::NotLoopback(_))
    ));
}

#[test]
fn explorer_reports_an_address_in_use_instead_of_panicking() {
    let model = build_model(&RaftModelConfig::new(3)).expect("valid model");
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("address");
    assert!(matches!(
        explore(model, addr, || {}),
        Err(RunError::Bind { .. })
    ));
}
