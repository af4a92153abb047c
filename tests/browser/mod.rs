//! What tests/web.rs drives a page with: chromedriver and a headless Chromium session (killed
//! with everything it started on drop), `dsh web` as a child process stopped with Ctrl-C, a
//! plain HTTP/1.1 request, and waiting on a condition in the page (polled, with what the page
//! showed when it never held).
#![allow(dead_code)]

use crate::common::supervised::Supervised;
use crate::common::DSH;
use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on its own port and the Chromium it starts (found by its profile directory),
/// all killed on drop: a failed test does not leave a browser behind.
pub struct Driver {
    child: Child,
    profile: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mark = format!("--user-data-dir={}", self.profile.display());
        let mut ours = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if cmdline.split(|b| *b == 0).any(|arg| arg == mark.as_bytes()) {
                unsafe { libc::kill(pid, libc::SIGKILL) };
                ours.push(pid);
            }
        }
        // The profile is removed once nothing of that browser can write to it any more.
        let until = Instant::now() + Duration::from_secs(3);
        while ours.iter().any(|p| std::path::Path::new(&format!("/proc/{p}")).exists()) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

pub fn wait_port(port: u16, what: &str) {
    let until = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A headless Chromium session. `offline` points every request at a dead proxy, so only
/// files (and nothing from a network) can load.
pub async fn browser(port: u16, offline: bool) -> (Driver, Client) {
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver (apt-get install chromium-driver)");
    let profile = std::env::temp_dir().join(format!("dsh-web-chromium-{port}-{}", std::process::id()));
    let driver = Driver { child, profile: profile.clone() };
    wait_port(port, "chromedriver");
    let mut args = vec![
        "--headless".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-background-networking".into(),
        "--no-first-run".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--disable-dev-shm-usage".into(),
        "--window-size=1600,1000".into(),
        format!("--user-data-dir={}", profile.display()),
    ];
    if offline {
        args.push("--proxy-server=http://127.0.0.1:1".into());
        args.push("--proxy-bypass-list=<-loopback>".into());
    }
    let caps = json!({"goog:chromeOptions": {"binary": CHROMIUM, "args": args}});
    let caps = caps.as_object().unwrap().clone();
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a Chromium session");
    (driver, client)
}

/// `dsh web` in the foreground, as a presenter starts it; stopped with Ctrl-C (SIGINT) on drop.
pub struct Web {
    child: Child,
    pub url: String,
    pub token: Option<String>,
}

impl Web {
    pub fn start(c: &Supervised, port: u16, controls: bool) -> Web {
        let listen = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(DSH);
        cmd.arg("--cluster").arg(&c.file).args(["web", "--listen", &listen]);
        if controls {
            cmd.arg("--controls");
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let (mut url, mut token) = (None, None);
        for _ in 0..4 {
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            if let Some(u) = line.trim().strip_prefix("serving the live page at ") {
                url = Some(u.to_string());
            }
            if let Some(t) = line.trim().strip_prefix("token for POST /api/control (header x-dsh-token): ") {
                token = Some(t.to_string());
            }
            if line.contains("Ctrl-C") || line.is_empty() {
                break;
            }
        }
        // The rest of its output is not needed; keep the pipe drained.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        Web { child, url: url.expect("web printed its address"), token }
    }

    pub fn port(&self) -> u16 {
        self.url.trim_end_matches('/').rsplit(':').next().unwrap().parse().unwrap()
    }
}

impl Web {
    /// Ctrl-C, as a presenter stops it: the exit status if it ended within 5 s, else `None`
    /// (and it is killed).
    pub fn interrupt(&mut self) -> Option<std::process::ExitStatus> {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for Web {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.interrupt();
        }
    }
}

/// One HTTP/1.1 request; returns the status and the body.
pub fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n");
    for (k, v) in headers {
        req += &format!("{k}: {v}\r\n");
    }
    req += &format!("content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len());
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

pub fn api_state(port: u16) -> Value {
    let (code, body) = http(port, "GET", "/api/state", &[], "");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Evaluates `expr` in the page.
pub async fn js(b: &Client, expr: &str) -> Value {
    b.execute(&format!("return ({expr});"), vec![]).await.unwrap()
}

/// Waits until `expr` is true in the page; panics with `what` and the page's view otherwise.
pub async fn until(b: &Client, within: Duration, what: &str, expr: &str) -> Duration {
    let start = Instant::now();
    loop {
        if js(b, expr).await == Value::Bool(true) {
            return start.elapsed();
        }
        if start.elapsed() > within {
            let view = js(b, "window.dshPage && dshPage.view && dshPage.view.nodes").await;
            panic!("the page did not show {what} within {within:?}; its nodes: {view}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The nodes as the page draws them: `[id, role, state, term]`, from the ring's elements.
pub const DRAWN: &str = "[...document.querySelectorAll('#ring g.node')].map(g => [g.dataset.id, g.dataset.role, g.dataset.state, Number(g.dataset.term)])";

pub fn leader_of(drawn: &Value) -> Vec<String> {
    let all = drawn.as_array().unwrap();
    all.iter().filter(|n| n[1] == "leader" && n[2] == "up").map(|n| n[0].as_str().unwrap().to_string()).collect()
}

pub async fn screenshot(b: &Client, name: &str) {
    let png = b.screenshot().await.unwrap();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), png).unwrap();
}

pub async fn open_page(b: &Client, web: &Web, query: &str) {
    b.goto(&format!("{}{query}", web.url)).await.unwrap();
    until(b, Duration::from_secs(10), "the three nodes", "document.querySelectorAll('#ring g.node').length === 3")
        .await;
}

pub fn healthy(c: &Supervised) {
    c.json("wait healthy --timeout 30s");
}

/// One browser test at a time: each runs a cluster, a page and Chromium, and eight of them at
/// once on two cores starve the load whose seconds one test compares with the chart.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE.lock().unwrap_or_else(|e| e.into_inner())
}
