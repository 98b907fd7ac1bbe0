// Small behaviours that need no framework. No inline script anywhere (CSP).

// One scope of its own: the page's classic scripts share the global one otherwise.
(() => {
  // Menus (<details class="menu">): one open at a time, closed by a click outside or Escape.
  function closeMenus(except) {
    document.querySelectorAll("details.menu[open]").forEach((menu) => {
      if (menu !== except) menu.removeAttribute("open");
    });
  }

  document.addEventListener("toggle", (event) => {
    if (event.target.matches?.("details.menu") && event.target.open) closeMenus(event.target);
  }, true);

  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    const menu = document.activeElement?.closest("details.menu[open]") || document.querySelector("details.menu[open]");
    if (menu) {
      menu.removeAttribute("open");
      menu.querySelector("summary").focus();
    }
  });

  document.addEventListener("click", (event) => {
    closeMenus(event.target.closest("details.menu"));

    const copy = event.target.closest("[data-copy]");
    if (copy) {
      navigator.clipboard?.writeText(copy.getAttribute("data-copy")).then(() => {
        const label = copy.textContent;
        copy.textContent = "Copied";
        setTimeout(() => { copy.textContent = label; }, 1500);
      }, () => {});
    }

    const confirmer = event.target.closest("[data-confirm]");
    if (confirmer && !window.confirm(confirmer.getAttribute("data-confirm"))) {
      event.preventDefault();
    }

    const opener = event.target.closest("[data-open-dialog]");
    if (opener) {
      const dialog = document.getElementById(opener.getAttribute("data-open-dialog"));
      if (dialog) {
        dialog.returnFocusTo = opener;
        dialog.showModal();
        dialog.querySelector("form input:not([type=hidden]), form select, form textarea")?.focus();
      }
    }
    const closer = event.target.closest("[data-close-dialog]");
    if (closer) closer.closest("dialog")?.close();
  });

  // Focus goes back to the button that opened a dialog.
  document.addEventListener("close", (event) => {
    const dialog = event.target;
    // The close event is queued: a dialog re-opened meanwhile (see below) keeps its focus.
    if (dialog instanceof HTMLDialogElement && !dialog.open) dialog.returnFocusTo?.focus();
  }, true);

  // A dialog the server rendered open (its form came back with errors) becomes modal again,
  // with focus on the first field that needs attention.
  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("dialog[open]").forEach((dialog) => {
      dialog.close();
      dialog.returnFocusTo = document.querySelector(`[data-open-dialog="${dialog.id}"]`);
      dialog.showModal();
      dialog.querySelector("[aria-invalid=true], .has-error input, .has-error select")?.focus();
    });
  });
})();
