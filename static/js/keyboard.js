// Keyboard shortcuts (issue 17), as Gmail, Front and Help Scout users expect them:
//   list (an inbox's conversations, search results): j / k move between conversations, o (or Enter
//           on the link) opens one;
//   thread: j / k open the next / previous conversation of the list it was opened from,
//           n / p move between its messages, r reply, a assign to me, e close, u back to the list;
//   anywhere in an account: / search, ? the list of shortcuts (templates/inboxhub/partials/keyboard_help.html).
// A shortcut never fires while the focus is in a field or with Ctrl, Alt or Meta held. What a key did
// (or why it could not) is said in a polite live region, #keyboard-status.
//
// Rows, messages and forms are looked up when a key is pressed, never kept: live updates swap them.
// a and e click the page's own buttons, so they go through the same forms, endpoints and refusals
// as a click; a disabled button makes the key say the reason the page gives for it.
//
// On a thread, j / k need the order of the list the agent came from: opening a conversation from a
// list keeps that list's order in sessionStorage (per tab). A conversation opened any other way has
// no list, and j / k say so instead of guessing.

// One scope of its own: the page's other classic scripts declare names such as announce() too.
(() => {
  const LIST_KEY = "inboxhub.keyboard.list"; // {list, items: [paths], current}
  const PENDING_KEY = "inboxhub.keyboard.pending"; // {what: "flash" | "search", at}
  const PENDING_MS = 15000;
  const REPEATABLE = new Set(["j", "k", "n", "p"]);
  // The lists j and k walk: the inbox's conversations and the search results.
  const ROWS = "table.conversation-list tbody tr, ol.search-results > li";
  const LISTS = "table.conversation-list, ol.search-results";

  function helpDialog() {
    return document.getElementById("keyboard-help");
  }

  let sayTimer = null;
  let clearTimer = null;

  function announce(text) {
    const region = document.getElementById("keyboard-status");
    if (!region) return;
    // Emptied first, so the same words said twice are announced twice.
    region.textContent = "";
    clearTimeout(sayTimer);
    clearTimeout(clearTimer);
    sayTimer = setTimeout(() => {
      region.textContent = text;
      clearTimer = setTimeout(() => { region.textContent = ""; }, 6000);
    }, 50);
  }

  function inField(target) {
    if (!(target instanceof Element)) return false;
    return (
      target.isContentEditable ||
      target.matches("input, textarea, select, [role=textbox], [role=searchbox], [role=combobox]")
    );
  }

  function readJson(key) {
    try {
      return JSON.parse(sessionStorage.getItem(key));
    } catch {
      return null;
    }
  }

  function writeJson(key, value) {
    try {
      sessionStorage.setItem(key, JSON.stringify(value));
    } catch {
      // Storage full or refused: the shortcuts that need it say so when used.
    }
  }

  function takePending(what) {
    const pending = readJson(PENDING_KEY);
    if (!pending || pending.what !== what) return false;
    sessionStorage.removeItem(PENDING_KEY);
    return Date.now() - pending.at < PENDING_MS;
  }

  // Why a control is disabled: the text the page points to with aria-describedby, on the control or
  // its disabled fieldset.
  function reasonFor(control, fallback) {
    const holder = control.closest("[aria-describedby]");
    const ids = holder ? holder.getAttribute("aria-describedby").split(/\s+/) : [];
    const text = ids.map((id) => document.getElementById(id)?.textContent.trim() || "").join(" ").trim();
    return text || fallback;
  }

  // --- Conversation list ---------------------------------------------------------------------------

  function rowLink(row) {
    return row.querySelector("td.subject a[href], a.search-subject[href]") || row.querySelector("a[href]");
  }

  function listRows() {
    return [...document.querySelectorAll(ROWS)].filter(rowLink);
  }

  function onList() {
    return document.querySelector(LISTS) !== null;
  }

  function currentRow(rows) {
    const focused = document.activeElement?.closest?.(ROWS);
    if (focused && rows.includes(focused)) return focused;
    return rows.find((row) => row.classList.contains("is-kbd-current")) || null;
  }

  function markRow(row) {
    listRows().forEach((other) => {
      if (other !== row) other.classList.remove("is-kbd-current");
    });
    row.classList.add("is-kbd-current");
  }

  function selectRow(row) {
    markRow(row);
    rowLink(row).focus({ preventScroll: true });
    row.scrollIntoView({ block: "nearest" });
  }

  function moveRow(step) {
    const rows = listRows();
    if (!rows.length) {
      announce("There are no conversations on this page.");
      return;
    }
    const index = rows.indexOf(currentRow(rows));
    const next = index === -1 ? 0 : index + step;
    if (next < 0) announce("This is the first conversation.");
    else if (next >= rows.length) announce("This is the last conversation on this page.");
    else selectRow(rows[next]);
  }

  function openRow() {
    const rows = listRows();
    const row = currentRow(rows);
    if (!row) {
      announce("Choose a conversation with j or k first.");
      return;
    }
    rowLink(row).click();
  }

  // The list's order, kept when a conversation is opened from it (mouse, Enter or o alike).
  document.addEventListener("click", (event) => {
    const link = event.target.closest?.("a[href]");
    const row = link?.closest(ROWS);
    if (!row || rowLink(row) !== link) return;
    markRow(row);
    writeJson(LIST_KEY, {
      list: location.pathname + location.search,
      items: listRows().map((each) => new URL(rowLink(each).href).pathname),
      current: new URL(link.href).pathname,
    });
  });

  // Back on the list, the conversation opened last is the one j and k move from.
  function restoreRow() {
    const kept = readJson(LIST_KEY);
    if (!kept || kept.list !== location.pathname + location.search) return;
    const row = listRows().find((each) => new URL(rowLink(each).href).pathname === kept.current);
    if (row) markRow(row);
  }

  // --- Thread --------------------------------------------------------------------------------------

  function onThread() {
    return document.querySelector("ol.thread") !== null;
  }

  function cameFromList(kept) {
    try {
      const from = new URL(document.referrer);
      if (from.origin !== location.origin) return false;
      return from.pathname + from.search === kept.list || kept.items.includes(from.pathname);
    } catch {
      return false; // no referrer
    }
  }

  // The kept list, when this thread was reached from it: opened from it, by j or k, or back to it
  // through the history. A thread that is on an old list but was opened some other way has none.
  let threadList = null;

  function findThreadList() {
    const kept = readJson(LIST_KEY);
    if (!kept || !Array.isArray(kept.items)) return null;
    const index = kept.items.indexOf(location.pathname);
    if (index === -1 || (kept.current !== location.pathname && !cameFromList(kept))) return null;
    kept.current = location.pathname;
    writeJson(LIST_KEY, kept);
    return { ...kept, index };
  }

  function moveConversation(step) {
    const kept = threadList;
    if (!kept) {
      announce("This conversation was not opened from a list. Press u for the list, n and p for its messages.");
      return;
    }
    const next = kept.index + step;
    if (next < 0) announce("This is the first conversation of the list.");
    else if (next >= kept.items.length) announce("This is the last conversation of the list.");
    else {
      writeJson(LIST_KEY, { list: kept.list, items: kept.items, current: kept.items[next] });
      location.assign(kept.items[next]);
    }
  }

  function backToList() {
    const kept = threadList;
    const back = document.querySelector("[data-keyboard-back]");
    const url = kept ? kept.list : back?.getAttribute("href") || helpDialog()?.dataset.inboxUrl;
    if (url) location.assign(url);
  }

  function threadMessages() {
    return [...document.querySelectorAll("ol.thread > li")].filter((item) => !item.classList.contains("thread-older"));
  }

  function moveMessage(step) {
    const items = threadMessages();
    if (!items.length) return;
    const focused = document.activeElement?.closest?.("ol.thread > li");
    const current = items.includes(focused) ? focused : items.find((item) => item.classList.contains("is-kbd-current"));
    const index = items.indexOf(current);
    const next = index === -1 ? (step > 0 ? 0 : items.length - 1) : index + step;
    if (next < 0) {
      announce("This is the first message shown.");
      return;
    }
    if (next >= items.length) {
      announce("This is the newest message.");
      return;
    }
    items.forEach((item) => item.classList.toggle("is-kbd-current", item === items[next]));
    if (!items[next].hasAttribute("tabindex")) items[next].setAttribute("tabindex", "-1");
    items[next].focus();
    announce(`Message ${next + 1} of ${items.length}.`);
  }

  function reply() {
    if (!onList() && !onThread()) return false;
    const body = document.querySelector("#composer textarea");
    if (!body) {
      announce(onList() ? "Open a conversation to reply to it." : "There is nothing to reply to on this page.");
      return;
    }
    if (body.matches(":disabled")) {
      announce(reasonFor(body, "You cannot reply to this conversation."));
      return;
    }
    body.scrollIntoView({ block: "center" });
    body.focus({ preventScroll: true });
  }

  // A form that leaves the page: its answer's message (the flash) is announced on the next page.
  function submitWith(button, saying) {
    writeJson(PENDING_KEY, { what: "flash", at: Date.now() });
    announce(saying);
    button.click();
  }

  function assignToMe() {
    if (!onList() && !onThread()) return false;
    const panel = document.querySelector(".assignment-panel");
    if (!panel) {
      announce(onList() ? "Open a conversation to assign it to yourself." : "There is nothing to assign on this page.");
      return;
    }
    const button = panel.querySelector('button[name="to"][value="me"]');
    if (!button) announce("This conversation is already assigned to you.");
    else if (button.matches(":disabled")) announce(reasonFor(button, "You cannot assign this conversation."));
    else submitWith(button, "Assigning the conversation to you.");
  }

  function closeConversation() {
    if (!onList() && !onThread()) return false;
    const button = document.querySelector('form[action$="/close/"] button[type="submit"]');
    if (!button) {
      if (document.querySelector('form[action$="/reopen/"]')) announce("This conversation is already closed.");
      else announce(onList() ? "Open a conversation to close it." : "There is nothing to close on this page.");
    } else if (button.matches(":disabled")) announce(reasonFor(button, "You cannot close this conversation."));
    else submitWith(button, "Closing the conversation.");
  }

  // --- Everywhere ----------------------------------------------------------------------------------

  function focusSearch() {
    const field = document.getElementById("inbox-search");
    if (field) {
      field.focus();
      field.select?.();
      return true;
    }
    return false;
  }

  function search() {
    if (focusSearch()) return;
    const url = helpDialog()?.dataset.inboxUrl;
    if (!url || location.pathname === new URL(url, location.href).pathname) {
      announce("Search is not available on this page.");
      return;
    }
    writeJson(PENDING_KEY, { what: "search", at: Date.now() });
    announce("Opening the inbox to search.");
    location.assign(url);
  }

  function showHelp() {
    const dialog = helpDialog();
    const focused = document.activeElement;
    // app.js gives the focus back to it when the dialog closes.
    dialog.returnFocusTo = focused && focused !== document.body ? focused : null;
    dialog.showModal();
  }

  const SHORTCUTS = {
    j: () => (onThread() ? moveConversation(1) : onList() ? moveRow(1) : false),
    k: () => (onThread() ? moveConversation(-1) : onList() ? moveRow(-1) : false),
    o: () => (onList() ? openRow() : false),
    n: () => (onThread() ? moveMessage(1) : false),
    p: () => (onThread() ? moveMessage(-1) : false),
    u: () => (onThread() ? backToList() : false),
    r: reply,
    a: assignToMe,
    e: closeConversation,
    "/": search,
    "?": showHelp,
  };

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.isComposing || event.ctrlKey || event.altKey || event.metaKey) return;
    const dialog = helpDialog();
    if (!dialog || inField(event.target)) return;
    // Caps Lock gives "J": the same key.
    const key = event.key.length === 1 && !event.shiftKey ? event.key.toLowerCase() : event.key;
    const shortcut = SHORTCUTS[key];
    if (!shortcut) return;
    if (document.querySelector("dialog[open]")) {
      // Another dialog has the keys; ? toggles the list of shortcuts.
      if (key === "?" && dialog.open) {
        event.preventDefault();
        dialog.close();
      }
      return;
    }
    if (event.repeat && !REPEATABLE.has(key)) {
      event.preventDefault(); // holding a or e down sends one form, not one per repeat
      return;
    }
    if (shortcut() === false) return;
    event.preventDefault();
  });

  // What a shortcut started on the page before, finished on this one.
  function resume() {
    if (!helpDialog()) return;
    if (onThread()) threadList = findThreadList();
    restoreRow();
    if (takePending("search") && !focusSearch()) announce("Search is not available on this page.");
    if (takePending("flash")) {
      const flash = document.querySelector(".flash-stack");
      // After a moment: text that is there when the page loads is not announced by screen readers.
      if (flash) setTimeout(() => announce(flash.textContent.trim().replace(/\s+/g, " ")), 300);
    }
  }

  resume();
  // Back and forward can show the page from the cache, with the shortcuts' state as it was left.
  window.addEventListener("pageshow", (event) => {
    if (!event.persisted) return;
    if (onThread()) threadList = findThreadList();
    restoreRow();
  });
})();
