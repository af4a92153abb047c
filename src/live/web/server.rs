//! The HTTP side of `dsh web`: one axum server per `web` command, serving the page, the model
//! as JSON, the stream of views, and the controls. It runs as one task that, with every
//! stream it serves, ends on one cancellation token; [`WebServer::stop`] fires it and waits
//! for the task, so nothing outlives the command that started it.

use super::assets;
use super::control::{Action, Controls, NODE_ACTIONS};
use crate::error::{Error, ErrorKind, Result};
use crate::live::{Model, View};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::Stream;
use serde_json::json;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Where `web` listens unless told otherwise: loopback only, so a laptop on a conference network
/// does not offer the cluster (or its controls) to the room.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7342";

/// The header a control request carries the token in.
pub const TOKEN_HEADER: &str = "x-dsh-token";

/// Only the server's own files: the page loads nothing from elsewhere. uPlot sets element
/// styles from script, hence inline styles.
const CSP: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:";

struct Shared {
    model: Arc<Model>,
    controls: Option<Arc<dyn Controls>>,
    token: String,
    stop: CancellationToken,
}

/// A running `dsh web`.
pub struct WebServer {
    addr: SocketAddr,
    token: String,
    controls: bool,
    stop: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl WebServer {
    /// Listens on `listen` (`HOST:PORT`, or a bare port on loopback) and serves until
    /// [`stop`](Self::stop). With `controls`, `POST /api/control` acts through them.
    pub async fn start(model: Arc<Model>, controls: Option<Arc<dyn Controls>>, listen: &str) -> Result<WebServer> {
        let listen = if listen.parse::<u16>().is_ok() { format!("127.0.0.1:{listen}") } else { listen.to_string() };
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .map_err(|e| Error::usage(format!("web: cannot listen on {listen}: {e}")))?;
        let addr = listener.local_addr().map_err(|e| Error::internal(e.to_string()))?;
        let token = new_token()?;
        let stop = CancellationToken::new();
        let has_controls = controls.is_some();
        let shared = Arc::new(Shared { model, controls, token: token.clone(), stop: stop.clone() });
        let app = router(shared);
        let until = stop.clone();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(until.cancelled_owned());
            if let Err(e) = serve.await {
                tracing::warn!("web server on {addr}: {e}");
            }
        });
        Ok(WebServer { addr, token, controls: has_controls, stop, task: Mutex::new(Some(task)) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The audience's address.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The presenter's address: the page with the token, so its buttons work. `None` without
    /// controls.
    pub fn controls_url(&self) -> Option<String> {
        self.controls.then(|| format!("{}?token={}", self.url(), self.token))
    }

    /// What `POST /api/control` must carry in `x-dsh-token`.
    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn has_controls(&self) -> bool {
        self.controls
    }

    /// Stops serving (open streams end) and waits until the server is gone.
    pub async fn stop(&self) {
        self.stop.cancel();
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn new_token() -> Result<String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new().fill(&mut bytes).map_err(|_| Error::internal("no randomness for the web token"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/assets/{name}", get(asset))
        .route("/api/state", get(state))
        .route("/events", get(events))
        .route("/api/controls", get(controls))
        .route("/api/control", post(control))
        .with_state(shared)
}

async fn page() -> Response {
    let mut r = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], assets::PAGE_HTML).into_response();
    r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn asset(Path(name): Path<String>) -> Response {
    match assets::by_name(&name) {
        Some((body, kind)) => ([(header::CONTENT_TYPE, kind)], body).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn state(State(s): State<Arc<Shared>>) -> Response {
    let view = s.model.snapshot();
    Json(&*view).into_response()
}

/// Every view the model publishes, the current one first, so a browser that (re)connects has
/// the whole picture, history included, from its first message.
async fn events(State(s): State<Arc<Shared>>) -> Sse<impl Stream<Item = std::result::Result<Event, Infallible>>> {
    let views = s.model.subscribe();
    let stream = futures::stream::unfold((views, s.stop.clone(), true), |(mut views, stop, first)| async move {
        if !first {
            tokio::select! {
                _ = stop.cancelled() => return None,
                changed = views.changed() => changed.ok()?,
            }
        }
        let view: Arc<View> = views.borrow_and_update().clone();
        let event = view_event(&view, first);
        Some((Ok(event), (views, stop, false)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

fn view_event(view: &View, first: bool) -> Event {
    let data = serde_json::to_string(view).unwrap_or_else(|_| "{}".into());
    let event = Event::default().event("view").data(data);
    // A dropped connection is retried within half a second rather than the browser's 3 s.
    if first {
        event.retry(Duration::from_millis(500))
    } else {
        event
    }
}

/// Whether the page should draw buttons, and which.
async fn controls(State(s): State<Arc<Shared>>) -> Response {
    let Some(c) = &s.controls else {
        return Json(json!({"enabled": false})).into_response();
    };
    let mut actions: Vec<&str> = NODE_ACTIONS.to_vec();
    actions.extend(["heal", "scenario start", "scenario stop"]);
    Json(json!({"enabled": true, "actions": actions, "scenarios": c.scenarios()})).into_response()
}

async fn control(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    // Refused before the body is read: without the token nothing else is looked at.
    let Some(controls) = &s.controls else {
        return refuse(StatusCode::FORBIDDEN, Error::denied("controls are off: start `web --controls`"));
    };
    let given = headers.get(TOKEN_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !same(given.as_bytes(), s.token.as_bytes()) {
        return refuse(StatusCode::FORBIDDEN, Error::denied("missing or wrong x-dsh-token"));
    }
    let action: Action = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, Error::usage(format!("control: {e}"))),
    };
    let nodes: Vec<String> = s.model.snapshot().nodes.iter().map(|n| n.id.clone()).collect();
    let line = match action.command(&nodes) {
        Ok(l) => l,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e),
    };
    match controls.run(line.clone()).await {
        Ok(output) => Json(json!({"ok": true, "command": line, "output": output})).into_response(),
        Err(e) => {
            let code = if e.kind == ErrorKind::Usage { StatusCode::BAD_REQUEST } else { StatusCode::BAD_GATEWAY };
            let mut r = refuse(code, e);
            r.headers_mut()
                .insert("x-dsh-command", HeaderValue::from_str(&line).unwrap_or(HeaderValue::from_static("")));
            r
        }
    }
}

fn refuse(code: StatusCode, e: Error) -> Response {
    (code, Json(json!({"ok": false, "error": {"kind": e.kind.as_str(), "message": e.message}}))).into_response()
}

/// Compares without stopping at the first difference, so timing does not reveal the token.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
