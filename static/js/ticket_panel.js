// The Tickets tab's "Edit ticket" side panel: closing it without saving (Cancel, the close
// button, Escape) puts its fields back as they were when it opened, so the page's own Save
// never saves edits the panel discarded. Stage options may have been reloaded by htmx for
// another pipeline: they are put back too.

// One scope of its own: the page's classic scripts share the global one otherwise.
(() => {
  const panel = document.getElementById("ticket-panel");
  let snapshot = null;

  function takeSnapshot() {
    const stage = panel.querySelector("#id_stage");
    snapshot = {
      fields: Array.from(panel.querySelectorAll("input, select")).map((el) => ({
        el, value: el.value, checked: el.checked,
      })),
      stageOptions: stage ? stage.innerHTML : "",
      stageValue: stage ? stage.value : "",
    };
  }

  function restore() {
    if (!snapshot) return;
    const stage = panel.querySelector("#id_stage");
    if (stage) {
      stage.innerHTML = snapshot.stageOptions;
      stage.value = snapshot.stageValue;
    }
    snapshot.fields.forEach(({ el, value, checked }) => {
      if (!el.isConnected || el.id === "id_stage") return;
      if (el.type === "checkbox" || el.type === "radio") el.checked = checked;
      else el.value = value;
    });
  }

  if (panel) {
    // The panel opens from the button, or open already when the server shows its errors.
    document.addEventListener("click", (event) => {
      if (event.target.closest('[data-open-dialog="ticket-panel"]')) takeSnapshot();
    }, true);
    if (panel.open) takeSnapshot();
    let saving = false;
    panel.closest("form")?.addEventListener("submit", () => { saving = true; });
    panel.addEventListener("close", () => { if (!saving) restore(); });
  }
})();
