// Who else is here (issue 17). The thread page sends a heartbeat to the server every few seconds
// with this member's state, "viewing" or "typing" (input in the reply box in the last few seconds),
// and shows the answer, the other members on the conversation now, in #presence; a change of state
// is sent at once. Leaving the page, or hiding it, says "gone" so the others see it promptly.
//
// The reply composer's `seen_reply` marks the newest reply the agent had seen when they started
// writing: when a draft starts, it moves on to the newest message on the page. A reply someone else
// sent after that makes the server ask before sending ("Ben replied 30 s ago — send anyway?").

(() => {
  const region = document.getElementById("presence");
  if (!region) return;

  const url = region.dataset.presenceUrl;
  const heartbeatMs = (Number(region.dataset.heartbeatSeconds) || 10) * 1000;
  const typingMs = (Number(region.dataset.typingSeconds) || 10) * 1000;

  let state = "viewing";
  let present = false; // the server has a row for this page that a "gone" should remove
  let stopped = false; // the conversation is no longer there for this member
  let shown = "";
  let heartbeatTimer = null;
  let typingTimer = null;
  let draftStarted = false;

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["x-csrftoken"] || "";
    } catch {
      return "";
    }
  }

  function post(sentState, keepalive) {
    return fetch(url, {
      method: "POST",
      body: new URLSearchParams({ state: sentState }),
      headers: { "X-CSRFToken": csrfToken() },
      credentials: "same-origin",
      // A signed-out session answers with a redirect to the login page: never shown here.
      redirect: "error",
      keepalive,
    });
  }

  function show(html) {
    // Only a change is written: a screen reader hears who came or started writing, not every beat.
    if (html === shown) return;
    shown = html;
    region.innerHTML = html;
  }

  function beat() {
    if (stopped || document.visibilityState !== "visible") return;
    present = true;
    post(state, false)
      .then((response) => {
        if (response.status === 404 || response.status === 403) {
          stopped = true; // the conversation went out of this member's sight
          show("");
          return null;
        }
        return response.ok ? response.text() : null;
      })
      .then((html) => {
        if (html !== null && html !== undefined) show(html.trim());
      })
      .catch(() => {}); // offline for a moment: the next beat tries again
  }

  function beatNow() {
    clearTimeout(heartbeatTimer);
    beat();
    heartbeatTimer = setTimeout(function again() {
      beat();
      heartbeatTimer = setTimeout(again, heartbeatMs);
    }, heartbeatMs);
  }

  function leave() {
    clearTimeout(heartbeatTimer);
    if (!present || stopped) return;
    present = false;
    // keepalive: the request outlives the page; fetch (unlike sendBeacon) carries the CSRF header.
    post("gone", true).catch(() => {});
  }

  function setState(next) {
    if (state === next) return;
    state = next;
    beatNow();
  }

  // The newest message on the page: what an agent starting a draft has seen.
  function markSeen() {
    const field = document.querySelector("#composer [data-seen-reply]");
    if (!field) return;
    let newest = Number(field.value) || 0;
    document.querySelectorAll("ol.thread [id^='message-']").forEach((element) => {
      const match = /^message-(\d+)$/.exec(element.id);
      if (match) newest = Math.max(newest, Number(match[1]));
    });
    field.value = String(newest);
  }

  document.addEventListener("input", (event) => {
    if (!(event.target instanceof HTMLTextAreaElement) || event.target.id !== "reply-body") return;
    const written = event.target.value.trim() !== "";
    if (written && !draftStarted) markSeen();
    draftStarted = written;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => setState("viewing"), typingMs);
    setState("typing");
  });

  document.addEventListener("htmx:afterSettle", () => {
    // A reply sent: the fresh composer is empty, and this member is no longer writing.
    const body = document.getElementById("reply-body");
    if (body && body.value.trim() === "") {
      draftStarted = false;
      clearTimeout(typingTimer);
      setState("viewing");
    }
    // The server asked before sending: "Send anyway" takes the focus, once.
    const sendAnyway = document.querySelector("#reply-warning [data-send-anyway]:not([data-focused])");
    if (sendAnyway) {
      sendAnyway.setAttribute("data-focused", "");
      sendAnyway.focus();
    }
  });

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") beatNow();
    else leave();
  });
  window.addEventListener("pagehide", leave);
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) beatNow(); // back from the back-forward cache
  });

  beatNow();
})();
