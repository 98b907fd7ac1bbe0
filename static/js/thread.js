// The thread page (H2): each mail's HTML frame takes the height of its content, up to a cap past
// which the frame scrolls; "Show images" marks its message's bar; older messages loaded in place
// take the focus.
//
// The frames are sandboxed without scripts but with allow-same-origin, so this script (the
// page's) can read their documents; nothing runs inside them.

// One scope of its own: the page's classic scripts share the global one otherwise.
(() => {
  const MAX_FRAME_HEIGHT = 4000;
  const MIN_FRAME_HEIGHT = 48;

  function frameDocument(frame) {
    try {
      return frame.contentDocument;
    } catch {
      return null; // not readable: the frame keeps its stylesheet height
    }
  }

  function fitFrame(frame) {
    const doc = frameDocument(frame);
    if (!doc || !doc.documentElement || doc.location.href === "about:blank") return;
    // Measured from a small height, so a frame can shrink as well as grow.
    frame.style.height = `${MIN_FRAME_HEIGHT}px`;
    const content = Math.max(doc.documentElement.scrollHeight, doc.body ? doc.body.scrollHeight : 0);
    const border = frame.offsetHeight - frame.clientHeight;
    const height = Math.min(Math.max(content, MIN_FRAME_HEIGHT), MAX_FRAME_HEIGHT) + border;
    frame.style.height = `${height}px`;
  }

  function watchFrame(frame) {
    const doc = frameDocument(frame);
    if (!doc || doc.location.href === "about:blank") return;
    fitFrame(frame);
    // "Show quoted text" inside the mail opens a <details>: the frame follows.
    doc.addEventListener("toggle", () => fitFrame(frame), true);
    // Images without a size in the markup change the height as they arrive.
    doc.querySelectorAll("img").forEach((img) => {
      if (!img.complete) img.addEventListener("load", () => fitFrame(frame), { once: true });
    });
  }

  // `load` does not bubble; caught on the way down, it covers frames htmx adds later too.
  document.addEventListener(
    "load",
    (event) => {
      if (event.target instanceof HTMLIFrameElement && event.target.matches("iframe.message-html")) {
        watchFrame(event.target);
      }
    },
    true,
  );

  function fitAll() {
    document.querySelectorAll("iframe.message-html").forEach(fitFrame);
  }

  // Frames that finished loading before this script ran.
  document.querySelectorAll("iframe.message-html").forEach((frame) => {
    const doc = frameDocument(frame);
    if (doc && doc.readyState === "complete") watchFrame(frame);
  });

  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(fitAll, 150);
  });

  // "Show images" reloads its message's frame (the link targets the frame by name); its bar says so.
  document.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-show-images]");
    if (!link) return;
    const bar = document.getElementById(link.dataset.showImages);
    if (!bar) return;
    const state = bar.querySelector(".remote-images-state");
    if (state) state.textContent = "Remote images are shown for this message.";
    // After the click's own navigation has started: a link taken out of the page follows nowhere.
    setTimeout(() => {
      link.remove();
      bar.focus();
    }, 0);
  });

  // Older messages loaded above: the focus goes to the first of them, where reading resumes.
  document.addEventListener("htmx:afterSettle", () => {
    const first = document.querySelector("[data-thread-focus]");
    if (!first) return;
    first.removeAttribute("data-thread-focus");
    first.focus();
  });
})();
