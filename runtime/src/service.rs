//! The service supervisor: starts `process.service` entries at boot,
//! restarts failed ones with exponential backoff, and stops them first on
//! shutdown (CANCEL, then terminate after the deadline).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use wippy_lua_stdlib::Value;

use crate::app::Service;
use crate::pid::Pid;
use crate::scheduler::envelope::{Envelope, EventKind, ExitResult};
use crate::shared::Shared;

/// A service that ran at least this long has its backoff reset.
const STABLE_AFTER: Duration = Duration::from_secs(10);

enum Msg {
    Exited { idx: usize, pid: String, result: ExitResult },
    Stop { deadline: Duration, done: Sender<()> },
}

struct State {
    spec: Service,
    pid: Option<String>,
    started: Instant,
    failures: u32,
    next_start: Option<Instant>,
    restarts: u64,
}

/// Handle to the supervisor thread.
pub(crate) struct Supervisor {
    tx: Sender<Msg>,
    join: Option<std::thread::JoinHandle<()>>,
    restarts: Arc<std::sync::atomic::AtomicU64>,
}

impl Supervisor {
    /// Starts the thread and every auto-start service.
    pub(crate) fn start(shared: Arc<Shared>, services: Vec<Service>) -> std::io::Result<Supervisor> {
        let (tx, rx) = unbounded();
        let restarts = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = restarts.clone();
        let me = tx.clone();
        let join = std::thread::Builder::new()
            .name("wippy-supervisor".into())
            .spawn(move || run(shared, services, me, rx, counter))?;
        Ok(Supervisor { tx, join: Some(join), restarts })
    }

    /// Total restarts so far (all services).
    pub(crate) fn restarts(&self) -> u64 {
        self.restarts.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Cancels every running service, waits up to `deadline`, terminates the rest.
    pub(crate) fn stop(mut self, deadline: Duration) {
        let (done_tx, done_rx) = bounded(1);
        if self.tx.send(Msg::Stop { deadline, done: done_tx }).is_ok() {
            let _ = done_rx.recv_timeout(deadline + Duration::from_secs(1));
        }
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

fn start_one(shared: &Shared, st: &mut State, idx: usize, tx: &Sender<Msg>) {
    // The pid is known only after the spawn; the callback learns it through
    // a shared cell filled right after.
    let cell = Arc::new(std::sync::Mutex::new(String::new()));
    let c2 = cell.clone();
    let t2 = tx.clone();
    let cb: crate::shared::SystemWatch = Box::new(move |result: ExitResult| {
        let pid = c2.lock().map(|p| p.clone()).unwrap_or_default();
        let _ = t2.send(Msg::Exited { idx, pid, result });
    });
    match shared.spawn_external(&st.spec.process, &st.spec.host, st.spec.args.clone(), Some(cb)) {
        Ok(pid) => {
            if let Ok(mut c) = cell.lock() {
                *c = pid.clone();
            }
            tracing::info!(service = %st.spec.id, pid = %pid, "service started");
            st.pid = Some(pid);
            st.started = Instant::now();
            st.next_start = None;
        }
        Err(e) => {
            tracing::error!(service = %st.spec.id, error = %e, "service could not start");
            st.next_start = Some(Instant::now() + st.spec.restart.max_delay);
        }
    }
}

fn backoff(st: &State) -> Duration {
    let r = &st.spec.restart;
    let exp = r.backoff_factor.powi(st.failures.saturating_sub(1).min(64) as i32);
    r.initial_delay.mul_f64(exp).min(r.max_delay)
}

fn run(
    shared: Arc<Shared>,
    services: Vec<Service>,
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
    restarts: Arc<std::sync::atomic::AtomicU64>,
) {
    let mut states: Vec<State> = services
        .into_iter()
        .map(|spec| State { spec, pid: None, started: Instant::now(), failures: 0, next_start: None, restarts: 0 })
        .collect();
    for (idx, st) in states.iter_mut().enumerate() {
        if st.spec.auto_start {
            start_one(&shared, st, idx, &tx);
        }
    }
    loop {
        let now = Instant::now();
        let next = states.iter().filter_map(|s| s.next_start).min();
        let msg = match next {
            Some(at) if at <= now => None,
            Some(at) => match rx.recv_timeout(at - now) {
                Ok(m) => Some(m),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
                Err(_) => return,
            },
            None => match rx.recv() {
                Ok(m) => Some(m),
                Err(_) => return,
            },
        };
        match msg {
            None => {
                let now = Instant::now();
                for (idx, st) in states.iter_mut().enumerate() {
                    if st.next_start.is_some_and(|at| at <= now) {
                        st.restarts += 1;
                        restarts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        start_one(&shared, st, idx, &tx);
                    }
                }
            }
            Some(Msg::Exited { idx, pid, result }) => {
                let st = &mut states[idx];
                if st.pid.as_deref() != Some(pid.as_str()) && !pid.is_empty() {
                    continue;
                }
                st.pid = None;
                match result {
                    Ok(_) => tracing::info!(service = %st.spec.id, "service completed; not restarted"),
                    Err(e) => {
                        if st.started.elapsed() >= STABLE_AFTER {
                            st.failures = 0;
                        }
                        st.failures += 1;
                        let max = st.spec.restart.max_attempts;
                        if max > 0 && st.failures > max {
                            tracing::error!(service = %st.spec.id, error = %e, attempts = max, "service failed too often; giving up");
                            continue;
                        }
                        let delay = backoff(st);
                        tracing::warn!(service = %st.spec.id, error = %e, delay_ms = delay.as_millis() as u64, "service failed; restarting");
                        st.next_start = Some(Instant::now() + delay);
                    }
                }
            }
            Some(Msg::Stop { deadline, done }) => {
                stop_all(&shared, &mut states, &rx, deadline);
                let _ = done.send(());
                return;
            }
        }
    }
}

fn stop_all(shared: &Shared, states: &mut [State], rx: &Receiver<Msg>, deadline: Duration) {
    let until = Instant::now() + deadline;
    for st in states.iter_mut() {
        st.next_start = None;
        if let Some(pid) = &st.pid
            && let Ok(p) = Pid::parse(pid)
        {
            tracing::info!(service = %st.spec.id, pid = %pid, "cancelling service");
            shared.route(Envelope::Event {
                to: p.counter,
                kind: EventKind::Cancel,
                from: String::new(),
                result: Ok(Value::Nil),
                reason: "shutdown".into(),
            });
        }
    }
    while states.iter().any(|s| s.pid.is_some()) {
        let left = until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Msg::Exited { idx, .. }) => states[idx].pid = None,
            Ok(Msg::Stop { done, .. }) => {
                let _ = done.send(());
            }
            Err(_) => break,
        }
    }
    for st in states.iter() {
        if let Some(pid) = &st.pid
            && let Ok(p) = Pid::parse(pid)
        {
            tracing::warn!(service = %st.spec.id, pid = %pid, "service ignored CANCEL; terminating");
            shared.route(Envelope::Kill { to: p.counter, reason: "terminated: shutdown deadline passed".into() });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::RestartPolicy;

    fn state(failures: u32) -> State {
        State {
            spec: Service {
                id: "s".into(),
                process: "p".into(),
                host: "h".into(),
                args: vec![],
                restart: RestartPolicy::default(),
                auto_start: true,
            },
            pid: None,
            started: Instant::now(),
            failures,
            next_start: None,
            restarts: 0,
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(&state(1)), Duration::from_millis(100));
        assert_eq!(backoff(&state(2)), Duration::from_millis(200));
        assert_eq!(backoff(&state(4)), Duration::from_millis(800));
        assert_eq!(backoff(&state(30)), Duration::from_secs(10));
    }
}
