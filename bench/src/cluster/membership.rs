//! Failure detection and join convergence of gossip, with real nodes on
//! 127.0.0.1 and default membership settings.
//!
//! Every node runs `view.lua`, which prints the set of members it counts as
//! up (alive or suspect) whenever that set changes, polling every 20 ms; the
//! bench stamps each line as it arrives. A trial fails one node and takes
//! the time until the last survivor printed a view without it, then starts a
//! replacement under a fresh name (so the dead name's reclaim time does not
//! matter) and takes the time from its spawn until every node, itself
//! included, lists all live members. With 9 survivors that is the 10-node
//! join figure. The seed node `n0` runs the admin listener, whose
//! `gossip_convergence_seconds` histogram gives gossip's own view of the join.
//!
//! Two kinds of failure: a crash (SIGKILL: the kernel closes the process's
//! connections, which the mesh notices) and a silent one (SIGSTOP, never
//! continued: nothing closes, so only SWIM's probes and suspicion window
//! can tell; the same as a dead host or a cut cable).

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::proc::{Wippy, free_port, metric, service, wait_for, write_app};
use crate::harness::{Figure, Mode, median, trials};

/// How long forming, detecting or joining may take before it counts as broken.
const TIMEOUT: Duration = Duration::from_secs(60);

/// How a trial takes its victim down.
#[derive(Clone, Copy)]
enum Failure {
    /// SIGKILL: a crash.
    Crash,
    /// SIGSTOP, left stopped: silence.
    Silent,
}

/// One cluster size and setting, and how many fail + rejoin trials to run.
struct Plan {
    size: usize,
    /// `cluster.membership.suspicion_mult`; `None` keeps the default.
    mult: Option<u32>,
    trials: usize,
    failure: Failure,
}

pub(crate) fn run(mode: Mode) -> Result<Vec<Figure>> {
    let plan = |size, mult, failure| Plan { size, mult, trials: 5, failure };
    let plans = match mode {
        Mode::Quick => vec![Plan { size: 3, mult: None, trials: 1, failure: Failure::Crash }],
        Mode::Full => vec![
            plan(3, None, Failure::Crash),
            plan(10, None, Failure::Crash),
            plan(3, None, Failure::Silent),
            plan(10, None, Failure::Silent),
            plan(10, Some(3), Failure::Silent),
        ],
    };
    let mut figs = Vec::new();
    for plan in plans {
        figs.extend(plan.run().with_context(|| format!("cluster_*_{}", plan.label()))?);
    }
    Ok(figs)
}

/// The latest set a node printed, if any.
fn view(node: &Wippy) -> Option<BTreeSet<String>> {
    node.lines().iter().rev().find_map(|(_, l)| parse(l))
}

fn parse(line: &str) -> Option<BTreeSet<String>> {
    let names = line.strip_prefix("view ")?;
    Some(names.split(',').filter(|n| !n.is_empty()).map(str::to_owned).collect())
}

/// Waits until every node lists exactly the live nodes.
fn converge(nodes: &mut [Wippy], what: &str) -> Result<()> {
    let live: BTreeSet<String> = nodes.iter().map(|n| n.name.clone()).collect();
    wait_for(what, TIMEOUT, || {
        for n in nodes.iter_mut() {
            n.check_alive()?;
        }
        Ok(nodes.iter().all(|n| view(n).as_ref() == Some(&live)))
    })
}

impl Plan {
    fn label(&self) -> String {
        let setting = match self.mult {
            None => "default".to_owned(),
            Some(m) => format!("mult{m}"),
        };
        let how = match self.failure {
            Failure::Crash => "crash",
            Failure::Silent => "silent",
        };
        format!("{}n_{how}_{setting}", self.size)
    }

    fn run(&self) -> Result<Vec<Figure>> {
        let app = write_app("view", &service("main", "view", "[\"20ms\"]"))?;
        let extra: Vec<String> =
            self.mult.map(|m| format!("cluster.membership.suspicion_mult={m}")).into_iter().collect();
        let ports = (0..self.size).map(|_| free_port()).collect::<Result<Vec<u16>>>()?;
        let seed = ports[0];
        let mut nodes = Vec::new();
        for (i, &port) in ports.iter().enumerate() {
            let join: Vec<u16> = if i == 0 { vec![] } else { vec![seed] };
            nodes.push(Wippy::start(app.path(), &format!("n{i}"), port, &join, i == 0, &extra)?);
        }
        converge(&mut nodes, "the cluster to form")?;
        let mut x = Samples::default();
        let mut killed: HashMap<String, Instant> = HashMap::new();
        for trial in 1..=self.trials {
            // The oldest node but the seed, so each trial kills a different one.
            let mut victim = nodes.remove(1);
            let t_kill = match self.failure {
                Failure::Crash => victim.kill(),
                Failure::Silent => victim.stop(),
            };
            killed.insert(victim.name.clone(), t_kill);
            let gone = |n: &Wippy| {
                n.lines()
                    .iter()
                    .find(|(t, l)| *t >= t_kill && parse(l).is_some_and(|v| !v.contains(&victim.name)))
                    .map(|(t, _)| *t - t_kill)
            };
            wait_for("every survivor to drop the killed node", TIMEOUT, || {
                Ok(nodes.iter().all(|n| gone(n).is_some()))
            })?;
            let times: Vec<Duration> = nodes.iter().filter_map(gone).collect();
            x.detect.push(times.iter().max().context("no survivors")?.as_secs_f64());
            x.detect_first.push(times.iter().min().context("no survivors")?.as_secs_f64());
            victim.kill();

            let before = nodes[0].metrics()?;
            let new = Wippy::start(app.path(), &format!("r{trial}"), free_port()?, &[seed], false, &extra)?;
            let (name, t_start) = (new.name.clone(), new.started);
            nodes.push(new);
            converge(&mut nodes, "every node to list the new one")?;
            let all: BTreeSet<String> = nodes.iter().map(|n| n.name.clone()).collect();
            let listed = |n: &Wippy| {
                let ok = |v: &BTreeSet<String>| if n.name == name { *v == all } else { v.contains(&name) };
                n.lines().iter().find(|(_, l)| parse(l).is_some_and(|v| ok(&v))).map(|(t, _)| *t - t_start)
            };
            x.join.push(nodes.iter().filter_map(listed).max().context("nobody listed it")?.as_secs_f64());
            x.join_self.push(listed(nodes.last().context("no nodes")?).context("new node")?.as_secs_f64());
            let after = nodes[0].metrics()?;
            let d = |m: &str| metric(&after, m) - metric(&before, m);
            let count = d("gossip_convergence_seconds_count");
            if count > 0.0 {
                x.gossip.push(d("gossip_convergence_seconds_sum") / count);
            }
        }
        let flaps: usize = nodes.iter().map(|n| false_removals(n, &killed)).sum();
        drop(nodes);
        Ok(self.figures(x, flaps))
    }

    fn figures(&self, x: Samples, flaps: usize) -> Vec<Figure> {
        let l = self.label();
        let max = |xs: &[f64]| xs.iter().copied().fold(f64::NAN, f64::max);
        let setting = self.mult.map_or("default settings".to_owned(), |m| format!("suspicion_mult={m}"));
        let how = match self.failure {
            Failure::Crash => "SIGKILL",
            Failure::Silent => "SIGSTOP (kept stopped)",
        };
        let mut figs = vec![
            Figure::new(
                format!("cluster_detect_{l}_s"),
                median(x.detect.clone()),
                "s",
                format!(
                    "{} nodes, {setting}: {how} to the last survivor's view without it, median; max {:.3}; \
                     first survivor median {:.3}; trials {}",
                    self.size,
                    max(&x.detect),
                    median(x.detect_first.clone()),
                    trials(&x.detect)
                ),
            ),
            Figure::new(
                format!("cluster_join_{l}_s"),
                median(x.join.clone()),
                "s",
                format!(
                    "spawn of node {} to all {} listing all, median; max {:.3}; the new node's own view \
                     median {:.3}; trials {}",
                    self.size,
                    self.size,
                    max(&x.join),
                    median(x.join_self.clone()),
                    trials(&x.join)
                ),
            ),
            Figure::new(
                format!("cluster_false_removals_{l}"),
                flaps as f64,
                "views",
                "a live node dropped from some node's view during the run",
            ),
        ];
        if !x.gossip.is_empty() {
            figs.push(Figure::new(
                format!("cluster_join_{l}_gossip_s"),
                median(x.gossip.clone()),
                "s",
                format!("n0's gossip_convergence_seconds per join; trials {}", trials(&x.gossip)),
            ));
        }
        figs
    }
}

/// What the trials of one plan measured, in seconds.
#[derive(Default)]
struct Samples {
    /// Kill to the last survivor dropping the node.
    detect: Vec<f64>,
    /// Kill to the first survivor dropping it: the rest is dissemination.
    detect_first: Vec<f64>,
    /// Spawn of the new node to every node listing every live node.
    join: Vec<f64>,
    /// Spawn of the new node to its own view being complete.
    join_self: Vec<f64>,
    /// Mean `gossip_convergence_seconds` the seed observed per join.
    gossip: Vec<f64>,
}

/// How often `node` dropped a member from its view while that member was
/// still running: a false suspicion that ran out into a death (a busy
/// machine delays probe answers).
fn false_removals(node: &Wippy, killed: &HashMap<String, Instant>) -> usize {
    let mut prev = BTreeSet::new();
    let mut count = 0;
    for (t, line) in node.lines() {
        let Some(v) = parse(&line) else { continue };
        count += prev.iter().filter(|m| !v.contains(*m) && killed.get(*m).is_none_or(|k| *k > t)).count();
        prev = v;
    }
    count
}
