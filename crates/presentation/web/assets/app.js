// MAOS dashboard: live updates and the log follower. Written for MAOS; no framework, no build.
//
// Live updates: the page was rendered after event `data-seq` (on <body>); an EventSource on
// /live?after=<seq> brings every later event, resuming by itself with Last-Event-ID after a
// reconnect. On an event the page fetches itself again and swaps each element that has both
// `data-live` and an `id` for its new version (never one that holds the focus, so a half-typed
// reason is not lost). At most one refresh runs at a time, at most one starts per 200 ms, and
// events meanwhile cause one more.
//
// The log follower: <pre data-log="URL" data-offset="N"> appends what URL&offset=N returns
// (text/plain; headers x-next-offset and x-finished) until the attempt ends.
(function () {
  "use strict";
  var body = document.body;
  if (!body || !body.dataset || body.dataset.seq === undefined) { return; }
  var status = document.getElementById("live-status");
  function say(state, text) {
    if (!status) { return; }
    status.dataset.state = state;
    status.textContent = text;
  }

  // At most one refresh starts per GAP ms: the first event of a quiet spell refreshes at once,
  // a burst costs one refresh now and one when the gap has passed.
  var GAP = 200;
  var busy = false, again = false, refreshes = 0, lastStart = 0, timer = null;
  function refresh() {
    if (busy) { again = true; return; }
    var wait = lastStart + GAP - Date.now();
    if (wait > 0) {
      if (!timer) { timer = setTimeout(function () { timer = null; refresh(); }, wait); }
      return;
    }
    busy = true; again = false; lastStart = Date.now();
    // X-MAOS-Live: only the live regions are wanted (a page may skip its costly other parts).
    fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html", "X-MAOS-Live": "1" } })
      .then(function (r) {
        if (r.status === 401 || r.status === 403) { location.reload(); throw new Error("refused"); }
        return r.text();
      })
      .then(function (text) {
        var doc = new DOMParser().parseFromString(text, "text/html");
        var regions = document.querySelectorAll("[data-live][id]");
        for (var i = 0; i < regions.length; i++) {
          var old = regions[i];
          var fresh = doc.getElementById(old.id);
          if (!fresh || fresh.outerHTML === old.outerHTML) { continue; }
          if (document.activeElement && old.contains(document.activeElement) &&
              document.activeElement !== document.body) { continue; }
          old.replaceWith(document.importNode(fresh, true));
        }
        if (doc.title) { document.title = doc.title; }
        refreshes += 1;
        body.dataset.refreshes = String(refreshes);
      })
      .catch(function () { /* the next event tries again */ })
      .then(function () {
        busy = false;
        if (again) { refresh(); }
      });
  }

  var source = null;
  function connect() {
    source = new EventSource("/live?after=" + encodeURIComponent(body.dataset.seq));
    source.onopen = function () { say("live", "live"); };
    source.onmessage = function (e) {
      if (e.lastEventId) { body.dataset.seq = e.lastEventId; }
      refresh();
    };
    source.addEventListener("reload", function () { location.reload(); });
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) {
        // An HTTP error (the token changed, the daemon is another one) ends the stream for
        // good: reload to find out why.
        say("offline", "offline");
        setTimeout(function () { location.reload(); }, 2000);
      } else {
        say("reconnecting", "reconnecting…");
      }
    };
  }
  connect();

  // The log follower.
  var logs = document.querySelectorAll("pre[data-log]");
  Array.prototype.forEach.call(logs, function (pre) {
    function next() {
      var url = pre.dataset.log + (pre.dataset.log.indexOf("?") < 0 ? "?" : "&") +
        "offset=" + encodeURIComponent(pre.dataset.offset || "0");
      fetch(url, { credentials: "same-origin" })
        .then(function (r) {
          if (!r.ok) { throw new Error(String(r.status)); }
          var nextOffset = r.headers.get("x-next-offset");
          var finished = r.headers.get("x-finished") === "1";
          return r.text().then(function (t) { return [t, nextOffset, finished]; });
        })
        .then(function (got) {
          if (got[0]) {
            var atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
            pre.appendChild(document.createTextNode(got[0]));
            if (atBottom) { pre.scrollTop = pre.scrollHeight; }
          }
          if (got[1] !== null) { pre.dataset.offset = got[1]; }
          if (got[2]) { pre.dataset.finished = "1"; return; }
          setTimeout(next, got[0] ? 0 : 250);
        })
        .catch(function () { setTimeout(next, 2000); });
    }
    next();
  });
})();
