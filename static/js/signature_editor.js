// Team signature editor (C6). The form's textarea is the signature and the "HTML" mode;
// "Rich text" mode is a contenteditable area mirrored into it. Without this script the
// textarea alone works.
//
// Markup typed in HTML mode is never parsed here: the browser would compile its event
// handlers and styles against the page's CSP. Switching to rich text asks the server for
// the sanitized version instead, with `style` moved to `data-style` (see
// channels_conn.selectors.styles_as_data); applyStyles sets those through the CSSOM,
// which the CSP allows. The preview's signature is shown the same way.

// One scope of its own: the page's classic scripts share the global one otherwise.
(() => {
  const SAFE_LINK = /^(https?:|mailto:)/i;
  const SAFE_IMAGE = /^(https:|cid:)/i;

  function applyStyles(root) {
    root.querySelectorAll("[data-style]").forEach((element) => {
      element.style.cssText = element.getAttribute("data-style");
      element.removeAttribute("data-style");
    });
  }

  function setUp(root) {
    const textarea = root.querySelector("textarea");
    const rich = root.querySelector("[data-rich]");
    const toolbar = root.querySelector("[data-toolbar]");
    const htmlField = root.querySelector("[data-html-field]");
    const richOnly = root.querySelector("[data-rich-only]");
    const modeButtons = root.querySelectorAll("[data-mode]");
    let mode = "rich";

    const mirror = () => {
      textarea.value = rich.innerHTML;
    };

    const show = (next) => {
      mode = next;
      rich.hidden = mode !== "rich";
      htmlField.hidden = mode === "rich";
      richOnly.hidden = mode !== "rich";
      modeButtons.forEach((button) => button.setAttribute("aria-pressed", String(button.dataset.mode === mode)));
    };

    const setMode = async (next) => {
      if (next === mode) return;
      if (next === "rich") {
        const body = new FormData();
        body.append("signature_html", textarea.value);
        body.append("csrfmiddlewaretoken", textarea.form.querySelector("[name=csrfmiddlewaretoken]").value);
        const response = await fetch(root.dataset.editorHtmlUrl, { method: "POST", body, credentials: "same-origin" });
        if (!response.ok) return;  // stay in HTML mode; the text is still there
        // Sanitized by the server (no handlers, no style attributes): safe to parse.
        rich.innerHTML = await response.text();
        applyStyles(rich);
        mirror();
      }
      show(next);
    };

    const changed = () => {
      if (mode === "rich") mirror();
      textarea.dispatchEvent(new Event("input", { bubbles: true }));
    };

    // The font menu and the prompts take focus; the selection is put back before a command runs.
    let range = null;
    const remember = () => {
      const selection = document.getSelection();
      if (selection.rangeCount && rich.contains(selection.anchorNode)) range = selection.getRangeAt(0).cloneRange();
    };
    document.addEventListener("selectionchange", remember);

    const run = (command, value = null) => {
      rich.focus();
      if (range) {
        const selection = document.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
      }
      document.execCommand("styleWithCSS", false, false);  // <b>, <i>, <font face>: kept by the sanitizer
      document.execCommand(command, false, value);
      // At once, not on the next selectionchange: a command moves the text into new elements, and a
      // command that follows before that event (the font menu right after Bold) needs the new range.
      remember();
      changed();
    };

    toolbar.hidden = false;
    rich.replaceChildren(root.querySelector("template[data-rich-initial]").content.cloneNode(true));
    applyStyles(rich);
    show("rich");
    rich.addEventListener("input", mirror);

    modeButtons.forEach((button) => button.addEventListener("click", () => setMode(button.dataset.mode)));

    // Keep the selection in the editing area when a toolbar button is pressed.
    toolbar.addEventListener("mousedown", (event) => {
      if (event.target.closest("button.tool")) event.preventDefault();
    });

    toolbar.addEventListener("click", (event) => {
      const tool = event.target.closest("button.tool");
      if (tool) {
        const command = tool.dataset.command;
        if (command === "createLink") {
          const url = window.prompt("Link address (https://… or mailto:…)", "https://");
          if (url && SAFE_LINK.test(url.trim())) run(command, url.trim());
        } else if (command === "insertImage") {
          const url = window.prompt("Image address (https://…)", "https://");
          if (url && SAFE_IMAGE.test(url.trim())) run(command, url.trim());
        } else {
          run(command);
        }
        return;
      }
      const token = event.target.closest("[data-token]");
      if (token) {
        token.closest("details")?.removeAttribute("open");
        if (mode === "rich") {
          run("insertText", token.dataset.token);
        } else {
          textarea.focus();
          textarea.setRangeText(token.dataset.token, textarea.selectionStart, textarea.selectionEnd, "end");
          changed();
        }
      }
    });

    const font = toolbar.querySelector("select[data-command]");
    font?.addEventListener("change", () => {
      if (font.value) run("fontName", font.value);
      font.value = "";
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-signature-editor]").forEach(setUp);
    applyStyles(document);
  });

  // The preview comes back from the server with data-style too.
  document.addEventListener("htmx:afterSwap", () => applyStyles(document));
})();
