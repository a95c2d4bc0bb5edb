//! The Chrome DevTools Protocol over the pipe Chromium opens with
//! `--remote-debugging-pipe`: JSON messages, each ended by a NUL byte, read by the browser
//! on its fd 3 and written on its fd 4. A pipe rather than `--remote-debugging-port`:
//! no port on the machine that another local user could drive the browser through, and
//! no websocket client to carry.
//!
//! One [`Cdp`] per browser, on the Renderer's Arbiter (it holds `Rc`s): a reader task
//! hands each answer to the call waiting for its id and each event to the tab whose
//! session it names. When the browser goes (crash, kill), every waiting call and every
//! tab's event stream ends with [`CdpError::Gone`].

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, oneshot};

/// A browser's messages larger than this end the connection: a page's DOM is capped far
/// below it, so only a broken or hostile browser sends one.
const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CdpError {
    /// The pipe closed: the browser exited, crashed or was killed.
    #[error("the browser went away")]
    Gone,
    /// The browser answered the command with an error.
    #[error("{method}: {message}")]
    Failed { method: String, message: String },
}

/// An event: its method and parameters.
#[derive(Debug, Clone)]
pub struct Event {
    pub method: String,
    pub params: Value,
}

type Waiting = RefCell<HashMap<u64, (String, oneshot::Sender<Result<Value, CdpError>>)>>;

pub struct Cdp {
    next_id: Cell<u64>,
    /// Calls waiting for their answer, by id, with their method for the error text.
    waiting: Rc<Waiting>,
    /// Each attached tab's events, by session id.
    sessions: Rc<RefCell<HashMap<String, mpsc::UnboundedSender<Event>>>>,
    /// Messages to the browser, written in order by the writer task.
    outbox: mpsc::UnboundedSender<Vec<u8>>,
    /// Set when the reader saw the pipe close.
    gone: Rc<Cell<bool>>,
}

impl Cdp {
    /// Talks over `to_browser` (its fd 3) and `from_browser` (its fd 4). Spawns the reader
    /// and writer on the current Arbiter.
    pub fn start(to_browser: pipe::Sender, from_browser: pipe::Receiver) -> Rc<Self> {
        let (outbox, mut queue) = mpsc::unbounded_channel::<Vec<u8>>();
        let cdp = Rc::new(Self {
            next_id: Cell::new(1),
            waiting: Rc::default(),
            sessions: Rc::default(),
            outbox,
            gone: Rc::default(),
        });
        let mut writer = to_browser;
        actix_rt::spawn(async move {
            while let Some(message) = queue.recv().await {
                if writer.write_all(&message).await.is_err() {
                    break;
                }
            }
        });
        let (waiting, sessions, gone) =
            (Rc::clone(&cdp.waiting), Rc::clone(&cdp.sessions), Rc::clone(&cdp.gone));
        actix_rt::spawn(async move {
            read_messages(from_browser, &waiting, &sessions).await;
            gone.set(true);
            // Every waiting call fails and every tab's stream ends: no one waits for a
            // browser that is not there.
            for (_, (_, answer)) in waiting.borrow_mut().drain() {
                let _ = answer.send(Err(CdpError::Gone));
            }
            sessions.borrow_mut().clear();
        });
        cdp
    }

    pub fn is_gone(&self) -> bool {
        self.gone.get()
    }

    /// Sends `method` (to the tab `session`, or to the browser) and waits for its answer.
    /// Unbounded: callers put their own deadline on it.
    pub async fn call(&self, session: Option<&str>, method: &str, params: Value) -> Result<Value, CdpError> {
        if self.is_gone() {
            return Err(CdpError::Gone);
        }
        let id = self.send(session, method, params);
        let (tx, rx) = oneshot::channel();
        self.waiting.borrow_mut().insert(id, (method.to_string(), tx));
        rx.await.unwrap_or(Err(CdpError::Gone))
    }

    /// Sends `method` without waiting for its answer (which the reader then drops): for
    /// the replies to a paused request, which must not hold up the next event.
    pub fn tell(&self, session: Option<&str>, method: &str, params: Value) {
        self.send(session, method, params);
    }

    fn send(&self, session: Option<&str>, method: &str, params: Value) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = Value::from(session);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap_or_default();
        bytes.push(0);
        let _ = self.outbox.send(bytes);
        id
    }

    /// The events of tab `session` from now on, until it is detached or the browser goes.
    pub fn events(&self, session: &str) -> mpsc::UnboundedReceiver<Event> {
        let (tx, rx) = mpsc::unbounded_channel();
        if !self.is_gone() {
            self.sessions.borrow_mut().insert(session.to_string(), tx);
        }
        rx
    }

    /// Stops routing `session`'s events (its tab is being closed).
    pub fn forget(&self, session: &str) {
        self.sessions.borrow_mut().remove(session);
    }
}

async fn read_messages(
    mut from_browser: pipe::Receiver,
    waiting: &Waiting,
    sessions: &RefCell<HashMap<String, mpsc::UnboundedSender<Event>>>,
) {
    let mut buffer = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match from_browser.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let scanned = buffer.len();
        buffer.extend_from_slice(&chunk[..n]);
        let mut start = 0;
        let mut from = scanned;
        while let Some(end) = buffer[from..].iter().position(|&b| b == 0).map(|i| from + i) {
            dispatch(&buffer[start..end], waiting, sessions);
            start = end + 1;
            from = start;
        }
        buffer.drain(..start);
        if buffer.len() > MAX_MESSAGE_BYTES {
            return;
        }
    }
}

/// One message: an answer to its caller, an event to its tab. Anything unreadable is
/// dropped: the caller's deadline covers an answer that never comes.
fn dispatch(
    message: &[u8],
    waiting: &Waiting,
    sessions: &RefCell<HashMap<String, mpsc::UnboundedSender<Event>>>,
) {
    let Ok(mut value) = serde_json::from_slice::<Value>(message) else {
        return;
    };
    if let Some(id) = value.get("id").and_then(Value::as_u64) {
        let Some((method, answer)) = waiting.borrow_mut().remove(&id) else {
            return;
        };
        let result = match value.get_mut("error") {
            Some(error) => Err(CdpError::Failed {
                method,
                message: error.get("message").and_then(Value::as_str).unwrap_or("failed").to_string(),
            }),
            None => Ok(value.get_mut("result").map(Value::take).unwrap_or(Value::Null)),
        };
        let _ = answer.send(result);
        return;
    }
    let (Some(method), Some(session)) = (
        value.get("method").and_then(Value::as_str).map(str::to_string),
        value.get("sessionId").and_then(Value::as_str),
    ) else {
        return;
    };
    if let Some(tab) = sessions.borrow().get(session) {
        let params = value.get_mut("params").map(Value::take).unwrap_or(Value::Null);
        let _ = tab.send(Event { method, params });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reader splits at NULs across reads, answers callers by id and routes events
    /// by session, and fails every waiting call when the pipe closes.
    #[actix::test]
    async fn answers_and_events_are_routed_and_a_closed_pipe_fails_every_call() {
        let (to_browser, mut browser_reads) = pipe::pipe().unwrap();
        let (mut browser_writes, from_browser) = pipe::pipe().unwrap();
        let cdp = Cdp::start(to_browser, from_browser);
        let mut events = cdp.events("S");
        let call = {
            let cdp = Rc::clone(&cdp);
            actix_rt::spawn(async move { cdp.call(Some("S"), "Page.enable", json!({})).await })
        };
        let mut sent = vec![0u8; 4096];
        let n = browser_reads.read(&mut sent).await.unwrap();
        let sent: Value = serde_json::from_slice(&sent[..n - 1]).unwrap();
        assert_eq!((sent["method"].as_str(), sent["sessionId"].as_str()), (Some("Page.enable"), Some("S")));
        let id = sent["id"].as_u64().unwrap();
        let reply = format!(
            r#"{{"method":"Page.loadEventFired","sessionId":"S","params":{{}}}}{}{{"id":{id},"result":{{"ok":1}}}}{}"#,
            '\0', '\0'
        );
        let (first, second) = reply.as_bytes().split_at(20);
        browser_writes.write_all(first).await.unwrap();
        browser_writes.write_all(second).await.unwrap();
        assert_eq!(call.await.unwrap(), Ok(json!({"ok": 1})));
        assert_eq!(events.recv().await.unwrap().method, "Page.loadEventFired");

        let waiting = {
            let cdp = Rc::clone(&cdp);
            actix_rt::spawn(async move { cdp.call(None, "Browser.getVersion", json!({})).await })
        };
        drop(browser_writes);
        assert_eq!(waiting.await.unwrap(), Err(CdpError::Gone));
        assert!(events.recv().await.is_none());
        assert!(cdp.is_gone());
    }
}
