// Inbox settings (Settings › Inbox): the current-inbox selector, the access picker's filter, focus after
// htmx swaps. Every page works without this file: the selector has a Go button, the picker lists everyone.

// The current-inbox selector navigates as soon as an inbox is picked; its Go button is then not needed.
document.querySelectorAll("[data-inbox-switcher]").forEach((select) => {
  select.form.querySelector("[data-inbox-switcher-go]")?.setAttribute("hidden", "");
  select.addEventListener("change", () => select.form.requestSubmit());
});

// The access picker's filter: hides the users and teams whose name or email does not match.
document.querySelectorAll("[data-picker-filter]").forEach((input) => {
  input.closest("[data-picker-filter-wrap]")?.removeAttribute("hidden");
  const lists = document.getElementById(input.getAttribute("aria-controls"));
  const empty = lists.querySelector("[data-picker-empty]");
  input.addEventListener("input", () => {
    const words = input.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    lists.querySelectorAll("[data-picker-item]").forEach((item) => {
      const text = item.getAttribute("data-picker-text");
      const match = words.every((word) => text.includes(word));
      item.hidden = !match;
      if (match) shown += 1;
    });
    if (empty) empty.hidden = shown > 0;
  });
  // Enter in the filter would submit the whole form; it only filters.
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") event.preventDefault();
  });
});

// After htmx replaces a channel row or the rename form, focus stays where the person was working.
document.addEventListener("htmx:afterSwap", (event) => {
  const id = event.detail.target?.id;
  const swapped = id && document.getElementById(id);
  if (!swapped) return;
  if (swapped.matches(".channel-row")) swapped.querySelector("[role=switch]")?.focus();
  if (swapped.id === "rename-form") swapped.querySelector("[aria-invalid=true], input:not([type=hidden])")?.focus();
});
