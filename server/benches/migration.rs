//! How long a shard takes to move between replica groups.
//!
//! Starts a shard controller and two replica groups (three `kvd` processes
//! each, real TCP on loopback, real fsync), fills one shard with `--keys`
//! keys of `--value-size` bytes, then moves it back and forth with the
//! controller's `move` and times, from the moment `move` is acknowledged:
//!
//! - **served**: the new owner's leader serves the shard (`arrived`);
//! - **first get**: a client that only knew the old configuration reads a
//!   key of the shard (it meets `wrong_group`, refreshes, retries);
//! - **deleted**: every node of the old owner has dropped its copy;
//! - **done**: the new owner has marked the shard `serving` again.
//!
//! `cargo bench -p server --bench migration [-- --keys 10000 --value-size 256 --rounds 5]`

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use client::{ClerkOptions, ClusterClient, ShardState, ShardedClient};
use wire::{GroupId, NSHARDS, ShardId, key_to_shard};

const GROUP_SIZE: usize = 3;
const PATIENCE: Duration = Duration::from_secs(60);

struct Options {
    keys: usize,
    value_size: usize,
    rounds: usize,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        keys: 10_000,
        value_size: 256,
        rounds: 5,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> Result<usize, String> {
            let v = args.next().ok_or(format!("{name} needs a value"))?;
            v.parse().map_err(|e| format!("{name} {v:?}: {e}"))
        };
        match arg.as_str() {
            "--keys" => options.keys = value("--keys")?,
            "--value-size" => options.value_size = value("--value-size")?,
            "--rounds" => options.rounds = value("--rounds")?,
            // cargo bench passes --bench; nothing else is ours.
            "--bench" => {}
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if options.rounds == 0 || options.keys == 0 {
        return Err("--keys and --rounds must be above zero".into());
    }
    Ok(options)
}

/// One 3-node group of kvd processes, killed when dropped.
struct Group {
    client_addrs: Vec<String>,
    children: Vec<Child>,
}

impl Group {
    fn start(dir: &Path, name: &str, cluster_id: u64, extra: &[String]) -> Group {
        let addr = || {
            nemesis::ports::reserve_loopback_addr()
                .expect("a free loopback port")
                .to_string()
        };
        let client_addrs: Vec<String> = (0..GROUP_SIZE).map(|_| addr()).collect();
        let peer_addrs: Vec<String> = (0..GROUP_SIZE).map(|_| addr()).collect();
        let mut children = Vec::new();
        for i in 0..GROUP_SIZE {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_kvd"));
            cmd.arg("--id")
                .arg((i + 1).to_string())
                .arg("--client-addr")
                .arg(&client_addrs[i])
                .arg("--peer-addr")
                .arg(&peer_addrs[i])
                .arg("--data-dir")
                .arg(dir.join(format!("{name}-{i}")))
                .arg("--cluster-id")
                .arg(cluster_id.to_string())
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            for j in (0..GROUP_SIZE).filter(|&j| j != i) {
                cmd.arg("--peer")
                    .arg(format!("{}={}/{}", j + 1, peer_addrs[j], client_addrs[j]));
            }
            children.push(cmd.spawn().expect("start kvd"));
        }
        Group {
            client_addrs,
            children,
        }
    }

    fn client(&self) -> ClusterClient {
        ClusterClient::new(self.client_addrs.clone(), options()).expect("servers")
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn options() -> ClerkOptions {
    ClerkOptions {
        overall_deadline: Some(PATIENCE),
        seed: Some(7),
        ..ClerkOptions::default()
    }
}

/// Polls every node of `group` until `done` holds for each (or for any one,
/// with `any`); returns when.
async fn wait_nodes(
    group: &ClusterClient,
    any: bool,
    done: impl Fn(&BTreeMap<ShardId, ShardState>) -> bool,
) -> Instant {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let statuses = group.status_all().await;
        let mut held = statuses.iter().map(|(_, s)| {
            s.as_ref()
                .ok()
                .and_then(|s| s.shard_group.as_ref())
                .is_some_and(|g| done(&g.shards))
        });
        let ok = if any {
            held.any(|h| h)
        } else {
            held.all(|h| h)
        };
        if ok {
            return Instant::now();
        }
        assert!(Instant::now() < deadline, "migration did not finish");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

async fn run(options_: Options) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let ctrler = Group::start(dir.path(), "ctrler", 1, &["--role".into(), "ctrler".into()]);
    let ctrlers = ctrler.client_addrs.join(",");
    let group_flags = |gid: GroupId| {
        vec![
            "--group".into(),
            gid.to_string(),
            "--ctrlers".into(),
            ctrlers.clone(),
        ]
    };
    let (a, b): (GroupId, GroupId) = (100, 101);
    let ga = Group::start(dir.path(), "a", 100, &group_flags(a));
    let gb = Group::start(dir.path(), "b", 101, &group_flags(b));
    let sharded = ShardedClient::new(ctrler.client_addrs.clone(), options()).expect("ctrlers");
    let mut admin = sharded.ctrler().ctrler_clerk();
    admin
        .join(BTreeMap::from([
            (a, ga.client_addrs.clone()),
            (b, gb.client_addrs.clone()),
        ]))
        .await
        .expect("join both groups");
    let config = sharded.latest_config().await.expect("a configuration");
    let shard: ShardId = 0;
    let mut owner = config.shards[shard as usize];
    let clients = [(a, ga.client()), (b, gb.client())];
    let group_of = |gid: GroupId| {
        &clients
            .iter()
            .find(|(g, _)| *g == gid)
            .expect("known gid")
            .1
    };

    // Fill the shard with 64 concurrent writers.
    let keys: Vec<String> = (0..)
        .map(|i| format!("k{i}"))
        .filter(|k| key_to_shard(k, NSHARDS) == shard)
        .take(options_.keys)
        .collect();
    let value = "v".repeat(options_.value_size);
    let fill = Instant::now();
    let writers = 64;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let mut clerk = sharded.clerk();
        let mine: Vec<String> = keys.iter().skip(w).step_by(writers).cloned().collect();
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            for k in mine {
                clerk.put(&k, &value).await.expect("fill the shard");
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    let shard_bytes = keys.iter().map(|k| k.len() + value.len()).sum::<usize>();
    println!(
        "shard {shard}: {} keys x {} B values ({:.1} MiB) written in {:.1} s; moving it {} times between groups {a} and {b} (3 kvd processes each)",
        keys.len(),
        options_.value_size,
        shard_bytes as f64 / (1024.0 * 1024.0),
        fill.elapsed().as_secs_f64(),
        options_.rounds
    );

    let (mut served, mut first_get, mut deleted, mut done) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    println!("round  from -> to   served     first get  deleted    done");
    for round in 1..=options_.rounds {
        // A reader that knows only the configuration from before the move.
        let mut reader = sharded.clerk();
        reader.get(&keys[0]).await.expect("read before the move");
        let to = if owner == a { b } else { a };
        admin.move_shard(shard, to).await.expect("move");
        let start = Instant::now();
        let (new_group, old_group) = (group_of(to), group_of(owner));
        let reading = async {
            let v = reader.get(&keys[0]).await.expect("read after the move");
            assert_eq!(
                v.as_deref(),
                Some(value.as_str()),
                "the value moved with the shard"
            );
            Instant::now()
        };
        let serving = wait_nodes(new_group, true, |s| {
            matches!(
                s.get(&shard),
                Some(ShardState::Arrived | ShardState::Serving)
            )
        });
        let (read_at, served_at) = tokio::join!(reading, serving);
        let deleted_at = wait_nodes(old_group, false, |s| !s.contains_key(&shard)).await;
        let done_at = wait_nodes(new_group, false, |s| {
            s.get(&shard) == Some(&ShardState::Serving)
        })
        .await;
        let row = [served_at, read_at, deleted_at, done_at].map(|t| t - start);
        println!(
            "{round:>5}  {owner} -> {to}   {:<10} {:<10} {:<10} {}",
            ms(row[0]),
            ms(row[1]),
            ms(row[2]),
            ms(row[3])
        );
        served.push(row[0]);
        first_get.push(row[1]);
        deleted.push(row[2]);
        done.push(row[3]);
        owner = to;
    }
    println!(
        "median over {} rounds: served {}, first get {}, old copy deleted {}, done {}",
        options_.rounds,
        ms(median(served)),
        ms(median(first_get)),
        ms(median(deleted)),
        ms(median(done))
    );
}

fn main() {
    let options = match parse_options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("migration bench: {e}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(run(options));
}
