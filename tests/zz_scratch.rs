mod common;
use common::*;
use wippy_runtime::Value;

const RECV: &str = r#"
return { main = function(n)
  local inbox = process.inbox()
  for i = 1, n do
    local m = inbox:receive()
    local v = m:payload():data()
    if v ~= i then error("expected " .. i .. " got " .. tostring(v)) end
  end
  return n
end }
"#;
const SEND: &str = r#"
return { main = function(to, n)
  for i = 1, n do process.send(to, "x", i) end
end }
"#;

#[test]
fn scratch_fifo() {
    for workers in [1usize, 2] {
        let mut o = options(workers);
        o.time_slice = std::time::Duration::from_millis(5);
        let h = start_with(o, &[("t:recv", RECV), ("t:send", SEND)]);
        let n = 2000000;
        let (rp, rx) = h.node.spawn_watched("t:recv", HOST, vec![Value::Int(n)]).unwrap();
        wait_for("recv", RESULT_TIMEOUT, || h.node.live() == 1);
        let (sp, _srx) = h.node.spawn_watched("t:send", HOST, vec![s(&rp), Value::Int(n)]).unwrap();
        eprintln!("workers {workers}: recv {rp} send {sp}");
        let r = rx.recv_timeout(RESULT_TIMEOUT);
        eprintln!("workers {workers}: {:?}", r.map(|r| show(&r)));
    }
}
