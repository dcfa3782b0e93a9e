//! The operator's side: what admission adds to a mesh connection, and how
//! fast a node answers its admin API.
//!
//! - `admission_hello_check_us`: one side's work per connection: sign its
//!   hello, verify the peer's license and proof (in process, no sockets).
//! - `admin_token_p50_us` and `admin_peers_list_p50_us`: a real node's
//!   `/v1/oauth/token` and `GET /v1/peers`, one new TCP connection per
//!   request as the CLI makes them, timed from this process.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use wippy_runtime::identity::admission::{Binding, Local, check};
use wippy_runtime::identity::license::IssuerKey;
use wippy_runtime::identity::node_key::NodeKey;
use wippy_runtime::identity::peers::PeerBook;

use super::proc::{Wippy, free_port, wait_for, write_app};
use crate::harness::{Figure, Mode};

/// Runs both parts.
pub(crate) fn run(mode: Mode) -> Result<Vec<Figure>> {
    let mut out = vec![admission(mode)];
    out.extend(api(mode)?);
    Ok(out)
}

fn admission(mode: Mode) -> Figure {
    let issuer = IssuerKey::from_seed([7; 32]);
    let license = issuer.issue("lic_bench".into(), "bench".into(), 5, 0, 0);
    let local = |seed: u8, node: &str| Local {
        node: node.into(),
        key: NodeKey::from_seed([seed; 32]),
        license: Some(license.clone()),
        api_address: None,
        gossip_address: None,
    };
    let (a, b) = (local(1, "a"), local(2, "b"));
    let book = PeerBook::default();
    let static_key = [9u8; 32];
    let n = mode.pick(2_000, 50);
    let t = Instant::now();
    for _ in 0..n {
        let hello = b.hello(Binding::MeshStatic(&static_key));
        assert!(check(&a, &book, &hello, Binding::MeshStatic(&static_key), 1).is_ok());
    }
    let us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    Figure::new("admission_hello_check_us", us, "us", format!("sign a hello + verify license and proof, {n} rounds"))
}

fn api(mode: Mode) -> Result<Vec<Figure>> {
    let app = write_app("admin", "")?;
    let node = Wippy::start(app.path(), "a1", free_port()?, &[], true, &[])?;
    let port = node.admin.context("admin port")?;
    wait_for("the admin API", Duration::from_secs(20), || Ok(request(port, "GET", "/livez", "", None).is_ok()))?;
    let issuer = IssuerKey::from_seed([8; 32]);
    let license = issuer.issue("lic_api".into(), "bench".into(), 5, 0, 0);
    let (status, body) = request(port, "POST", "/v1/bootstrap", &license.to_json(), None)?;
    if status != 200 {
        bail!("bootstrap: {status} {body}");
    }
    let field = |name: &str| -> Result<String> {
        let key = format!("\"{name}\":\"");
        let start = body.find(&key).context("credential in the bootstrap answer")? + key.len();
        Ok(body[start..].split('"').next().unwrap_or_default().to_owned())
    };
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        field("client_id")?,
        field("client_secret")?
    );
    let n = mode.pick(500, 10);
    let mut token_us = Vec::with_capacity(n);
    let mut token = String::new();
    for _ in 0..n {
        let t = Instant::now();
        let (status, body) =
            request(port, "POST", "/v1/oauth/token", &form, Some("application/x-www-form-urlencoded"))?;
        token_us.push(t.elapsed().as_secs_f64() * 1e6);
        if status != 200 {
            bail!("token: {status} {body}");
        }
        let start = body.find("\"access_token\":\"").context("access_token")? + 16;
        token = body[start..].split('"').next().unwrap_or_default().to_owned();
    }
    let auth = format!("Bearer {token}");
    let mut list_us = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let (status, body) = request_auth(port, "/v1/peers", &auth)?;
        list_us.push(t.elapsed().as_secs_f64() * 1e6);
        if status != 200 {
            bail!("peers: {status} {body}");
        }
    }
    drop(node);
    Ok(vec![
        Figure::new(
            "admin_token_p50_us",
            p50(token_us),
            "us",
            format!("POST /v1/oauth/token, new connection each, {n}"),
        ),
        Figure::new("admin_peers_list_p50_us", p50(list_us), "us", format!("GET /v1/peers with a token, {n}")),
    ])
}

fn p50(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn request(port: u16, method: &str, path: &str, body: &str, ctype: Option<&str>) -> Result<(u16, String)> {
    let ctype = ctype.unwrap_or("application/json");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    exchange(port, &head)
}

fn request_auth(port: u16, path: &str, auth: &str) -> Result<(u16, String)> {
    exchange(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n"),
    )
}

fn exchange(port: u16, raw: &str) -> Result<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_nodelay(true)?;
    s.write_all(raw.as_bytes())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let status = resp.split(' ').nth(1).and_then(|c| c.parse().ok()).context("status line")?;
    Ok((status, resp.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default()))
}
