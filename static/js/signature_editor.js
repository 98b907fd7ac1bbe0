// Team signature editor (C6). The form's textarea is the signature and the "HTML" mode;
// "Rich text" mode is a contenteditable area mirrored into it. Without this script the
// textarea alone works. The server sanitizes on save and in the preview: the cleaning
// here only keeps the editing area tidy, it protects nothing.

const DROP = "script, style, iframe, frame, object, embed, svg, math, template, noscript, link, meta, base, form, input, button, textarea, select";
const SAFE_LINK = /^(https?:|mailto:)/i;
const SAFE_IMAGE = /^(https:|cid:)/i;

function cleanInto(target, html) {
  const doc = new DOMParser().parseFromString(html, "text/html");  // inert: nothing runs or loads
  doc.body.querySelectorAll(DROP).forEach((node) => node.remove());
  doc.body.querySelectorAll("*").forEach((node) => {
    for (const attribute of [...node.attributes]) {
      const name = attribute.name.toLowerCase();
      const value = attribute.value.replace(/\s+/g, "");
      if (name.startsWith("on") || name.startsWith("hx-") || name.startsWith("data-")
          || (name === "href" && !SAFE_LINK.test(value) && !value.startsWith("#"))
          || (name === "src" && !SAFE_IMAGE.test(value))) {
        node.removeAttribute(attribute.name);
      }
    }
  });
  target.replaceChildren(...[...doc.body.childNodes].map((node) => document.adoptNode(node)));
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

  const setMode = (next) => {
    mode = next;
    if (mode === "rich") cleanInto(rich, textarea.value);
    rich.hidden = mode !== "rich";
    htmlField.hidden = mode === "rich";
    richOnly.hidden = mode !== "rich";
    modeButtons.forEach((button) => button.setAttribute("aria-pressed", String(button.dataset.mode === mode)));
  };

  const changed = () => {
    if (mode === "rich") mirror();
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
  };

  // The font menu and the prompts take focus; the selection is put back before a command runs.
  let range = null;
  document.addEventListener("selectionchange", () => {
    const selection = document.getSelection();
    if (selection.rangeCount && rich.contains(selection.anchorNode)) range = selection.getRangeAt(0).cloneRange();
  });

  const run = (command, value = null) => {
    rich.focus();
    if (range) {
      const selection = document.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
    }
    document.execCommand("styleWithCSS", false, false);  // <b>, <i>, <font face>: kept by the sanitizer
    document.execCommand(command, false, value);
    changed();
  };

  toolbar.hidden = false;
  setMode("rich");
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
});
