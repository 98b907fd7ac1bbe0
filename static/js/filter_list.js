// Filters a list of options as you type (the Automation tab's member-and-team picker).
// <input data-filter-list="list-id"> filters the list's [data-filter-text] items; a
// [data-filter-group] heading hides with its list when none of its items match.
// The search box starts hidden ([data-filter-box]): without this script it would do nothing.

// One scope of its own: the page's classic scripts share the global one otherwise.
(() => {
  function filterList(input) {
    const list = document.getElementById(input.getAttribute("data-filter-list"));
    if (!list) return;
    const query = input.value.trim().toLowerCase();
    let shown = 0;
    list.querySelectorAll("[data-filter-group]").forEach((heading) => {
      const items = heading.nextElementSibling?.querySelectorAll("[data-filter-text]") || [];
      let groupShown = 0;
      items.forEach((item) => {
        const match = item.getAttribute("data-filter-text").includes(query);
        item.hidden = !match;
        if (match) groupShown += 1;
      });
      heading.hidden = groupShown === 0;
      shown += groupShown;
    });
    const empty = list.querySelector("[data-filter-empty]");
    if (empty) empty.hidden = shown > 0;
  }

  document.addEventListener("input", (event) => {
    if (event.target.matches?.("[data-filter-list]")) filterList(event.target);
  });

  document.querySelectorAll("[data-filter-box]").forEach((box) => { box.hidden = false; });
})();
