// Live updates (H5): an open list or thread follows changes without a reload.
//
// The page carries a change counter's value and a token to read it (data-live-stamp,
// data-live-token; inboxes/live.py). Every POLL_MS a visible tab asks the poll URL with
// If-None-Match: the server answers 304 while nothing changed, cheaply. On a change:
//   - a list asks its own URL again as a fragment (HX-Target: inbox-list) and swaps the
//     sidebar (#inbox-nav), the view tabs (#view-tabs) and the rows (#inbox-list), keeping
//     the focused row and the keyboard's current row (static/js/keyboard.js);
//   - a thread asks for its news after the last message shown, appends the messages it lacks and
//     swaps its status and side panels. The composer and the note form are never touched, so a
//     half-written reply stays; a panel holding the focus waits until the focus leaves it.
// Without this script the pages work as before, with a reload.

// One scope of its own: the page's classic scripts share the global one otherwise.
(() => {
  const POLL_MS = 1000;
  const MAX_BACKOFF_MS = 30000;
  const PANELS = ["#conversation-status", "section.ticket-panel", "section.assignment-panel", "#activity"];

  function liveRegion() {
    let region = document.getElementById("live-status");
    if (!region) {
      region = document.createElement("div");
      region.id = "live-status";
      region.className = "visually-hidden";
      region.setAttribute("aria-live", "polite");
      (document.querySelector("main") || document.body).appendChild(region);
    }
    return region;
  }

  function announce(text) {
    const region = liveRegion();
    region.textContent = "";
    setTimeout(() => { region.textContent = text; }, 50);
  }

  function parse(html) {
    return new DOMParser().parseFromString(html, "text/html");
  }

  function processed(element) {
    if (window.htmx) window.htmx.process(element);
    return element;
  }

  // The control in `fresh` that stands where `focused` stood in `old`: same id, else same name and
  // value, else same link.
  function counterpart(old, fresh, focused) {
    if (!focused || !old.contains(focused)) return null;
    if (focused.id) return fresh.querySelector(`#${CSS.escape(focused.id)}`);
    const name = focused.getAttribute("name");
    if (name) {
      const value = focused.getAttribute("value");
      const selector = `[name="${CSS.escape(name)}"]${value !== null ? `[value="${CSS.escape(value)}"]` : ""}`;
      return fresh.querySelector(selector);
    }
    const href = focused.getAttribute("href");
    return href ? fresh.querySelector(`a[href="${CSS.escape(href)}"]`) : null;
  }

  function replace(old, fresh) {
    const focused = document.activeElement;
    const adopted = document.importNode(fresh, true);
    const target = counterpart(old, adopted, focused);
    old.replaceWith(adopted);
    processed(adopted);
    if (target) target.focus({ preventScroll: true });
    return adopted;
  }

  class Follower {
    constructor(element) {
      this.element = element;
      this.pollUrl = element.dataset.livePoll;
      this.token = element.dataset.liveToken;
      this.stamp = element.dataset.liveStamp;
      this.delay = POLL_MS;
      this.timer = null;
      this.busy = false;
      this.stopped = false;
      document.addEventListener("visibilitychange", () => {
        if (!document.hidden) this.schedule(0);
      });
      this.schedule(POLL_MS);
    }

    schedule(ms) {
      if (this.stopped) return;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.tick(), ms);
    }

    async tick() {
      if (this.busy || document.hidden) return; // a hidden tab costs nothing; it asks when shown again
      this.busy = true;
      try {
        const changed = await this.poll();
        if (changed) await this.refresh();
        this.delay = POLL_MS;
      } catch (error) {
        if (error.stop) {
          this.stopped = true;
          return;
        }
        this.delay = Math.min(this.delay * 2, MAX_BACKOFF_MS); // server busy or away: ask less often
      } finally {
        this.busy = false;
        this.schedule(this.delay);
      }
    }

    async poll() {
      const url = `${this.pollUrl}?t=${encodeURIComponent(this.token)}`;
      const response = await fetch(url, {
        headers: { "If-None-Match": `"${this.stamp}"` },
        cache: "no-store",
        credentials: "same-origin",
      });
      if (response.status === 304) return false;
      // 403: the token expired; the refresh goes through the checked view and brings a new one.
      if (response.ok || response.status === 403) return true;
      throw new Error(`poll answered ${response.status}`);
    }

    async fetchFragment(url, target) {
      const response = await fetch(url, {
        headers: { "HX-Request": "true", "HX-Target": target, "HX-Current-URL": location.href },
        cache: "no-store",
        credentials: "same-origin",
      });
      if (response.status === 403 || response.status === 404 || response.redirected) {
        // No longer a member, no longer on the access list, or signed out: stop following.
        throw Object.assign(new Error("not allowed"), { stop: true });
      }
      if (!response.ok) throw new Error(`refresh answered ${response.status}`);
      return parse(await response.text());
    }

    renew(source) {
      if (!source) return;
      if (source.dataset.liveToken) this.token = source.dataset.liveToken;
      if (source.dataset.liveStamp !== undefined) this.stamp = source.dataset.liveStamp;
    }
  }

  // Which of two rows comes first in the list: the newer last message, then the higher id.
  function sortsBefore(row, other) {
    const at = Number(row.dataset.at), otherAt = Number(other.dataset.at);
    if (at !== otherAt) return at > otherAt;
    return Number(row.id.split("-")[1]) > Number(other.id.split("-")[1]);
  }

  class ListFollower extends Follower {
    async refresh() {
      const body = this.element.querySelector("table.conversation-list tbody");
      const params = new URLSearchParams(location.search);
      // A first page with rows asks only for the rows changed since the value it shows (with Redis;
      // otherwise, or when too much changed, the answer is the whole list as before).
      if (body && body.querySelector("tr[id]") && !params.has("before")) params.set("changed_since", this.stamp);
      const doc = await this.fetchFragment(`${location.pathname}?${params}`, "inbox-list");
      for (const id of ["inbox-nav", "view-tabs"]) {
        const old = document.getElementById(id);
        const fresh = doc.getElementById(id);
        if (old && fresh) replace(old, fresh);
      }
      const changes = doc.getElementById("inbox-list-changes");
      if (changes && body) {
        this.applyChanges(body, changes);
        this.renew(changes);
        if (!body.querySelector("tr[id]")) await this.refreshWhole(); // emptied: the page says so
        return;
      }
      this.swapList(doc);
    }

    async refreshWhole() {
      this.swapList(await this.fetchFragment(location.pathname + location.search, "inbox-list"));
    }

    // Every changed conversation's row goes; those still in the view come back in their place.
    applyChanges(body, changes) {
      const known = new Set([...body.querySelectorAll("tr[id]")].map((row) => row.id));
      const current = body.querySelector("tr.is-kbd-current")?.id;
      const focusedRow = document.activeElement?.closest?.("tbody tr[id]")?.id;
      for (const pk of changes.dataset.liveChanged.split(" ").filter(Boolean)) {
        document.getElementById(`conversation-${pk}`)?.remove();
      }
      // A full page (it links to older ones) takes no row that sorts after its last one.
      const full = Boolean(this.element.querySelector('a[href*="before="]'));
      const added = [];
      for (const row of changes.querySelectorAll("tbody tr[id]")) {
        const adopted = document.importNode(row, true);
        const next = [...body.querySelectorAll("tr[id]")].find((other) => sortsBefore(adopted, other));
        if (next) body.insertBefore(adopted, next);
        else if (!full) body.appendChild(adopted);
        else continue;
        processed(adopted);
        if (!known.has(adopted.id)) added.push(adopted);
      }
      if (current) document.getElementById(current)?.classList.add("is-kbd-current");
      if (focusedRow && !body.contains(document.activeElement)) {
        document.getElementById(focusedRow)?.querySelector("a[href]")?.focus({ preventScroll: true });
      }
      this.announceAdded(added);
    }

    announceAdded(added) {
      added.forEach((row) => row.classList.add("live-new"));
      if (added.length === 1) announce(`New conversation: ${added[0].querySelector("td.subject a")?.textContent.trim() || ""}`);
      else if (added.length > 1) announce(`${added.length} new conversations`);
    }

    swapList(doc) {
      const list = doc.getElementById("inbox-list");
      if (!list) return;
      const old = document.getElementById("inbox-list");
      const known = new Set([...old.querySelectorAll("tbody tr[id]")].map((row) => row.id));
      const current = old.querySelector("tbody tr.is-kbd-current")?.id;
      const focusedRow = document.activeElement?.closest?.("tbody tr[id]")?.id;
      const swapped = replace(old, list);
      this.element = swapped;
      if (current) document.getElementById(current)?.classList.add("is-kbd-current");
      if (focusedRow && !swapped.contains(document.activeElement)) {
        document.getElementById(focusedRow)?.querySelector("a[href]")?.focus({ preventScroll: true });
      }
      this.announceAdded([...swapped.querySelectorAll("tbody tr[id]")].filter((row) => !known.has(row.id)));
      this.renew(swapped);
    }
  }

  class ThreadFollower extends Follower {
    constructor(element) {
      super(element);
      this.newsUrl = element.dataset.liveNews;
      this.after = element.dataset.liveAfter || "";
      this.waiting = false;
      // A panel kept because it held the focus is refreshed once the focus leaves it.
      document.addEventListener("focusout", () => {
        if (this.waiting) setTimeout(() => this.schedule(0), 0);
      });
      // A reply or note sent from this page is appended by its own answer too, in either order: keep
      // one of each. The observer runs before the page paints or any other task reads it.
      new MutationObserver(() => this.dedupe()).observe(element, { childList: true });
    }

    async poll() {
      if (this.waiting && !this.panelHeld()) return true;
      return super.poll();
    }

    panelHeld() {
      return PANELS.some((selector) => document.querySelector(selector)?.contains(document.activeElement));
    }

    async refresh() {
      const url = `${this.newsUrl}?after=${encodeURIComponent(this.after)}`;
      const doc = await this.fetchFragment(url, "thread-news");
      const news = doc.querySelector("[data-live-news]");
      if (!news) return;
      const thread = this.element;
      const arrived = [];
      news.querySelectorAll("[data-live-messages] > li").forEach((item) => {
        const article = item.querySelector("article[id]");
        if (!article) return;
        const present = document.getElementById(article.id);
        if (!present) {
          const adopted = document.importNode(item, true);
          thread.appendChild(adopted);
          processed(adopted);
          arrived.push(adopted);
          return;
        }
        // A reply's delivery state (queued, sent, failed) follows too.
        const state = item.querySelector(".delivery-state[id]");
        const shown = state && document.getElementById(state.id);
        if (shown && shown.outerHTML !== state.outerHTML && !shown.contains(document.activeElement)) {
          replace(shown, state);
        }
      });
      this.waiting = false;
      for (const selector of PANELS) {
        const old = document.querySelector(selector);
        const fresh = news.querySelector(selector);
        if (!old || !fresh) continue;
        if (old.contains(document.activeElement) && selector !== "#conversation-status") {
          this.waiting = true; // the agent is using it: swapped when the focus leaves
          continue;
        }
        replace(old, fresh);
      }
      if (arrived.length) {
        const from = arrived[arrived.length - 1].querySelector("h2")?.textContent.replace(/\s+/g, " ").trim();
        announce(arrived.length === 1 ? `New message from ${from}` : `${arrived.length} new messages`);
      }
      if (news.dataset.liveAfter) this.after = news.dataset.liveAfter;
      this.renew(news);
    }

    dedupe() {
      const seen = new Set();
      this.element.querySelectorAll(":scope > li").forEach((item) => {
        const id = item.querySelector("article[id]")?.id;
        if (!id) return;
        if (seen.has(id)) item.remove();
        else seen.add(id);
      });
    }
  }

  function follow() {
    const list = document.querySelector("#inbox-list[data-live-poll]");
    if (list) new ListFollower(list);
    const thread = document.querySelector("ol.thread[data-live-poll]");
    if (thread) new ThreadFollower(thread);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", follow);
  else follow();
})();
