//! A small client of the Chrome DevTools Protocol: it launches Debian's headless `chromium` in a
//! process group of its own, speaks JSON over one websocket (tungstenite, synchronous) to the
//! browser target, and drives pages attached with flat sessions. Every wait has a deadline; a
//! page that fails its scenario leaves a screenshot in `target/browser-failures/`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// How long chromium may take to say where it listens.
const LAUNCH: Duration = Duration::from_secs(30);
/// How long one command may take to be answered.
const COMMAND: Duration = Duration::from_secs(20);
/// How long a page may take to load.
const LOAD: Duration = Duration::from_secs(20);
/// How often a condition is polled.
const POLL: Duration = Duration::from_millis(25);

/// The chromium to run: `$MAOS_CHROMIUM`, else `chromium` or `chromium-browser` on `PATH`. None
/// is a failure (never a skip: a browser suite that skips passes CI green).
pub(crate) fn chromium() -> PathBuf {
    find_chromium(
        std::env::var_os("MAOS_CHROMIUM"),
        &std::env::var_os("PATH").unwrap_or_default(),
    )
    .unwrap_or_else(|why| panic!("{why}"))
}

/// [`chromium`], given the values of `MAOS_CHROMIUM` and `PATH`.
fn find_chromium(given: Option<OsString>, path: &OsStr) -> Result<PathBuf, String> {
    if let Some(given) = given.filter(|v| !v.is_empty()) {
        let binary = PathBuf::from(given);
        return if binary.is_file() {
            Ok(binary)
        } else {
            Err(format!(
                "MAOS_CHROMIUM names {}, which is not a file",
                binary.display()
            ))
        };
    }
    std::env::split_paths(path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            "the browser suite needs chromium, and none was found (neither `chromium` nor \
             `chromium-browser` on PATH, and MAOS_CHROMIUM is not set). Install it with \
             `sudo apt-get install -y chromium fonts-dejavu-core` (bash .ci/run does), or set \
             MAOS_CHROMIUM to a Chromium or Chrome binary."
                .to_owned()
        })
}

#[test]
fn a_missing_chromium_fails_and_says_how_to_install_it() {
    let empty = tempfile::tempdir().expect("a directory");
    let why = find_chromium(None, empty.path().as_os_str()).expect_err("no chromium there");
    assert!(why.contains("apt-get install -y chromium"), "{why}");
    let why = find_chromium(Some(empty.path().join("nope").into()), OsStr::new(""))
        .expect_err("MAOS_CHROMIUM names nothing");
    assert!(why.contains("MAOS_CHROMIUM names"), "{why}");
    // MAOS_CHROMIUM wins over PATH.
    let fake = empty.path().join("chromium");
    std::fs::write(&fake, "").expect("a fake chromium");
    assert_eq!(
        find_chromium(Some(fake.clone().into()), OsStr::new("/usr/bin")),
        Ok(fake.clone())
    );
    assert_eq!(
        find_chromium(Some(OsString::new()), empty.path().as_os_str()),
        Ok(fake)
    );
}

/// True when this process runs as root (chromium's sandbox refuses root).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The websocket to chromium, with the events read while waiting for answers.
struct Conn {
    ws: WebSocket<TcpStream>,
    next_id: u64,
    events: VecDeque<Value>,
}

impl Conn {
    /// Reads one message, or None when nothing came within the socket's read timeout.
    fn read(&mut self) -> Result<Option<Value>, String> {
        match self.ws.read() {
            Ok(Message::Text(text)) => serde_json::from_str(text.as_str())
                .map(Some)
                .map_err(|e| format!("chromium sent something that is not JSON ({e})")),
            Ok(_) => Ok(None),
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(format!("the DevTools connection failed: {e}")),
        }
    }

    /// Sends a command (to `session`, or to the browser) and waits for its answer; events read
    /// meanwhile are kept.
    fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .map_err(|e| format!("cannot send {method}: {e}"))?;
        let deadline = Instant::now() + COMMAND;
        loop {
            if Instant::now() > deadline {
                return Err(format!("{method} was not answered within {COMMAND:?}"));
            }
            let Some(v) = self.read()? else { continue };
            if v.get("id").and_then(Value::as_u64) == Some(id) {
                if let Some(err) = v.get("error") {
                    return Err(format!("{method} failed: {err}"));
                }
                return Ok(v.get("result").cloned().unwrap_or(Value::Null));
            }
            if v.get("method").is_some() {
                self.events.push_back(v);
                // A page that is never asked about its events must not grow this for ever.
                if self.events.len() > 10_000 {
                    self.events.pop_front();
                }
            }
        }
    }

    /// Takes the first kept or newly read event that `matches`, waiting at most until `deadline`.
    fn event(&mut self, deadline: Instant, matches: &dyn Fn(&Value) -> bool) -> Option<Value> {
        loop {
            if let Some(i) = self.events.iter().position(matches) {
                return self.events.remove(i);
            }
            if Instant::now() > deadline {
                return None;
            }
            match self.read() {
                Ok(Some(v)) if v.get("method").is_some() => self.events.push_back(v),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }
}

/// A headless chromium, ended (with its whole process group) when dropped.
pub(crate) struct Browser {
    child: Child,
    conn: RefCell<Conn>,
    _profile: tempfile::TempDir,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("pid", &self.child.id())
            .finish_non_exhaustive()
    }
}

impl Browser {
    /// Starts chromium headless with a throwaway profile and connects to it.
    pub(crate) fn launch() -> Browser {
        let binary = chromium();
        let profile = tempfile::tempdir().expect("a profile directory");
        let mut cmd = Command::new(&binary);
        cmd.args([
            "--headless=new",
            "--disable-gpu",
            // Containers often have a tiny /dev/shm, where chromium would crash.
            "--disable-dev-shm-usage",
            "--remote-debugging-port=0",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--mute-audio",
            "--window-size=1280,800",
        ]);
        if is_root() {
            cmd.arg("--no-sandbox");
        }
        cmd.arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own process group, so that its helpers end with it.
            .process_group(0);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let stderr = child.stderr.take().expect("chromium's stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                let mut tx = Some(tx);
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(url) = line.split("DevTools listening on ").nth(1)
                        && let Some(tx) = tx.take()
                    {
                        let _ = tx.send(url.trim().to_owned());
                    }
                    if let Ok(mut all) = lines.lock()
                        && all.len() < 200
                    {
                        all.push(line);
                    }
                }
            });
        }
        let url = match rx.recv_timeout(LAUNCH) {
            Ok(url) => url,
            Err(_) => {
                let _ = kill_group(&mut child);
                let said = lines.lock().map(|l| l.join("\n")).unwrap_or_default();
                panic!(
                    "{} did not say where it listens within {LAUNCH:?}; it said:\n{said}",
                    binary.display()
                );
            }
        };
        let conn = match connect(&url) {
            Ok(c) => c,
            Err(e) => {
                let _ = kill_group(&mut child);
                panic!("cannot connect to chromium at {url}: {e}");
            }
        };
        Browser {
            child,
            conn: RefCell::new(conn),
            _profile: profile,
        }
    }

    fn call(&self, session: Option<&str>, method: &str, params: Value) -> Result<Value, String> {
        self.conn.borrow_mut().call(session, method, params)
    }

    /// A new tab, for the scenario `scenario` (which names its failure screenshot). With
    /// `fresh`, in a browser context of its own: no cookie of the other tabs.
    pub(crate) fn page(&self, scenario: &str, fresh: bool) -> Page<'_> {
        let mut params = json!({ "url": "about:blank" });
        if fresh {
            let ctx = self
                .call(None, "Target.createBrowserContext", json!({}))
                .expect("a browser context");
            params["browserContextId"] = ctx["browserContextId"].clone();
        }
        let target = self
            .call(None, "Target.createTarget", params)
            .expect("a tab");
        let target_id = target["targetId"].as_str().expect("a target id").to_owned();
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target_id, "flatten": true }),
            )
            .expect("attached to the tab");
        let session = attached["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        let page = Page {
            browser: self,
            session,
            scenario: scenario.to_owned(),
            shot: std::cell::Cell::new(false),
        };
        for (method, params) in [
            ("Page.enable", json!({})),
            ("Runtime.enable", json!({})),
            ("Log.enable", json!({})),
            (
                "Emulation.setFocusEmulationEnabled",
                json!({ "enabled": true }),
            ),
            ("Page.bringToFront", json!({})),
        ] {
            page.call(method, params).expect("the tab set up");
        }
        page.viewport(1280, 800);
        page
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self
            .conn
            .borrow_mut()
            .call(None, "Browser.close", json!({}));
        let _ = kill_group(&mut self.child);
    }
}

/// Ends chromium and every process of its group, and reaps it.
fn kill_group(child: &mut Child) -> std::io::Result<()> {
    let group = format!("-{}", child.id());
    let _ = Command::new("kill")
        .args(["-KILL", "--", &group])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    child.wait().map(drop)
}

/// Opens the websocket at `url` (`ws://127.0.0.1:PORT/devtools/browser/ID`).
fn connect(url: &str) -> Result<Conn, String> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| format!("not a ws:// address: {url}"))?;
    let host = rest.split('/').next().unwrap_or_default();
    let addr: std::net::SocketAddr = host
        .parse()
        .map_err(|e| format!("not an address: {host} ({e})"))?;
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
        .map_err(|e| format!("cannot connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let (ws, _) = tungstenite::client(url, stream).map_err(|e| format!("handshake: {e}"))?;
    // From now on reads give up quickly, so that every wait can look at its deadline.
    ws.get_ref()
        .set_read_timeout(Some(Duration::from_millis(50)))
        .map_err(|e| e.to_string())?;
    Ok(Conn {
        ws,
        next_id: 0,
        events: VecDeque::new(),
    })
}

/// One tab, attached with a session of its own. Dropped while its scenario panics, it saves a
/// screenshot of itself into `target/browser-failures/<scenario>.png`.
pub(crate) struct Page<'b> {
    browser: &'b Browser,
    session: String,
    scenario: String,
    /// Whether its failure screenshot was taken already.
    shot: std::cell::Cell<bool>,
}

impl std::fmt::Debug for Page<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Page")
            .field("scenario", &self.scenario)
            .finish_non_exhaustive()
    }
}

/// Where failure screenshots go.
pub(crate) fn failures_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::canonicalize(&root)
        .unwrap_or(root)
        .join("target/browser-failures")
}

impl Page<'_> {
    fn call(&self, method: &str, params: Value) -> Result<Value, String> {
        self.browser.call(Some(&self.session), method, params)
    }

    /// Fails the scenario: a screenshot of the page, and a panic that says where it is.
    #[track_caller]
    pub(crate) fn fail(&self, what: &str) -> ! {
        let shot = self.failure_screenshot();
        let url = self.eval("location.href").unwrap_or_default();
        panic!("{what}\n(page: {url}; screenshot: {shot})");
    }

    fn failure_screenshot(&self) -> String {
        self.shot.set(true);
        let path = failures_dir().join(format!("{}.png", self.scenario));
        match self.screenshot(&path) {
            Ok(()) => path.display().to_string(),
            Err(e) => format!("none: {e}"),
        }
    }

    /// Sets the size of the page's window.
    pub(crate) fn viewport(&self, width: u32, height: u32) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": false }),
        )
        .expect("the viewport set");
    }

    /// Opens `url` and waits until it has loaded.
    #[track_caller]
    pub(crate) fn goto(&self, url: &str) {
        self.browser.conn.borrow_mut().events.retain(|e| {
            !(e["method"] == "Page.loadEventFired" && e["sessionId"] == self.session.as_str())
        });
        let answer = match self.call("Page.navigate", json!({ "url": url })) {
            Ok(a) => a,
            Err(e) => self.fail(&format!("cannot open {url}: {e}")),
        };
        if let Some(err) = answer.get("errorText").and_then(Value::as_str) {
            self.fail(&format!("cannot open {url}: {err}"));
        }
        self.wait_loaded(&format!("{url} to load"));
    }

    /// Waits for the page's load event (after a navigation this page started).
    #[track_caller]
    fn wait_loaded(&self, what: &str) {
        let session = self.session.clone();
        let got = self
            .browser
            .conn
            .borrow_mut()
            .event(Instant::now() + LOAD, &|e| {
                e["method"] == "Page.loadEventFired" && e["sessionId"] == session.as_str()
            });
        if got.is_none() {
            self.fail(&format!("waited {LOAD:?} for {what}"));
        }
    }

    /// Evaluates `js` in the page (awaiting a promise) and answers its value (JSON; `null` for
    /// `undefined`), or the exception it threw.
    pub(crate) fn eval(&self, js: &str) -> Result<Value, String> {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": js, "returnByValue": true, "awaitPromise": true }),
        )?;
        if let Some(ex) = r.get("exceptionDetails") {
            let text = ex["exception"]["description"]
                .as_str()
                .or_else(|| ex["text"].as_str())
                .unwrap_or("an exception");
            return Err(format!("{js}: {text}"));
        }
        Ok(r["result"].get("value").cloned().unwrap_or(Value::Null))
    }

    /// Like [`Page::eval`], failing the scenario on an exception.
    #[track_caller]
    pub(crate) fn js(&self, js: &str) -> Value {
        match self.eval(js) {
            Ok(v) => v,
            Err(e) => self.fail(&e),
        }
    }

    /// The text `js` evaluates to.
    #[track_caller]
    pub(crate) fn text(&self, js: &str) -> String {
        match self.js(js) {
            Value::String(s) => s,
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }

    /// Waits until `predicate` (JavaScript) is true, at most `timeout`; answers how long it took.
    #[track_caller]
    pub(crate) fn wait_for(&self, predicate: &str, timeout: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let last = match self.eval(predicate) {
                Ok(Value::Bool(true)) => return start.elapsed(),
                Ok(v) => v.to_string(),
                // The page may be between two documents.
                Err(e) => e,
            };
            if start.elapsed() > timeout {
                self.fail(&format!(
                    "waited {timeout:?} for `{predicate}` (last: {last})"
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Clicks the element `selector` matches (`element.click()`), failing if there is none.
    #[track_caller]
    pub(crate) fn click(&self, selector: &str) {
        let sel = quote(selector);
        let js = format!(
            "(() => {{ const e = document.querySelector({sel}); if (!e) return false; e.click(); return true; }})()"
        );
        if self.js(&js) != Value::Bool(true) {
            self.fail(&format!("nothing to click: {selector}"));
        }
    }

    /// Clicks `selector`, which leaves the page (a link, a form's button), and waits until the
    /// next document has loaded.
    #[track_caller]
    pub(crate) fn click_and_wait(&self, selector: &str) {
        self.js("window.__maosLeaving = true");
        self.click(selector);
        self.wait_for(
            "!window.__maosLeaving && document.readyState === 'complete'",
            LOAD,
        );
    }

    /// Sets the value of the field `selector` matches, as typing would (input events fire).
    #[track_caller]
    pub(crate) fn type_into(&self, selector: &str, text: &str) {
        let js = format!(
            "(() => {{ const e = document.querySelector({}); if (!e) return false; e.focus(); \
             e.value = {}; e.dispatchEvent(new Event('input', {{bubbles: true}})); \
             e.dispatchEvent(new Event('change', {{bubbles: true}})); return true; }})()",
            quote(selector),
            quote(text)
        );
        if self.js(&js) != Value::Bool(true) {
            self.fail(&format!("no field to type into: {selector}"));
        }
    }

    /// Presses and releases a key (`Tab`, `Enter`, …) with real keyboard events.
    #[track_caller]
    pub(crate) fn press(&self, key: &str, shift: bool) {
        let code = match key {
            "Tab" => 9,
            "Enter" => 13,
            "Escape" => 27,
            " " => 32,
            _ => 0,
        };
        let modifiers = if shift { 8 } else { 0 };
        for kind in ["rawKeyDown", "keyUp"] {
            let params = json!({
                "type": kind,
                "key": key,
                "code": key,
                "windowsVirtualKeyCode": code,
                "nativeVirtualKeyCode": code,
                "modifiers": modifiers,
            });
            if let Err(e) = self.call("Input.dispatchKeyEvent", params) {
                self.fail(&format!("cannot press {key}: {e}"));
            }
        }
    }

    /// The errors the page reported since the last call: uncaught exceptions, and what the
    /// browser logged as errors (a resource refused by the Content-Security-Policy, a failed
    /// load, an HTTP error status).
    pub(crate) fn errors(&self) -> Vec<String> {
        let mut conn = self.browser.conn.borrow_mut();
        // Read what has arrived, without waiting.
        while let Ok(Some(v)) = conn.read() {
            if v.get("method").is_some() {
                conn.events.push_back(v);
            }
        }
        let mut errors = Vec::new();
        conn.events.retain(|e| {
            if e["sessionId"] != self.session.as_str() {
                return true;
            }
            match e["method"].as_str() {
                Some("Runtime.exceptionThrown") => {
                    let d = &e["params"]["exceptionDetails"];
                    errors.push(format!(
                        "exception: {}",
                        d["exception"]["description"]
                            .as_str()
                            .or_else(|| d["text"].as_str())
                            .unwrap_or("?")
                    ));
                    false
                }
                Some("Log.entryAdded") => {
                    let entry = &e["params"]["entry"];
                    if entry["level"] == "error" {
                        errors.push(format!(
                            "{}: {} {}",
                            entry["source"].as_str().unwrap_or("log"),
                            entry["text"].as_str().unwrap_or_default(),
                            entry["url"].as_str().unwrap_or_default()
                        ));
                    }
                    false
                }
                Some("Runtime.consoleAPICalled") => {
                    if e["params"]["type"] == "error" {
                        errors.push(format!("console.error: {}", e["params"]["args"]));
                    }
                    false
                }
                _ => true,
            }
        });
        errors
    }

    /// Saves a PNG of what the page shows.
    pub(crate) fn screenshot(&self, path: &Path) -> Result<(), String> {
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" }))?;
        let data = shot["data"]
            .as_str()
            .ok_or_else(|| "no screenshot data".to_owned())?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| format!("the screenshot is not base64: {e}"))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(path, png).map_err(|e| format!("{}: {e}", path.display()))
    }
}

impl Drop for Page<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.shot.get() {
            let shot = self.failure_screenshot();
            eprintln!("screenshot of the page {}: {shot}", self.scenario);
        }
        let _ = self.browser.call(
            None,
            "Target.detachFromTarget",
            json!({ "sessionId": self.session }),
        );
    }
}

/// `text` as a JavaScript string literal.
pub(crate) fn quote(text: &str) -> String {
    // JSON strings are JavaScript strings, but for U+2028 and U+2029 in old engines.
    serde_json::to_string(text)
        .unwrap_or_default()
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}
