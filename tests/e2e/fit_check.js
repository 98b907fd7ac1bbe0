// Run by assert_fits_mobile (tests/e2e/conftest.py): a list of reasons the page does not fit.
(() => {
  const doc = document.documentElement;
  const problems = [];
  if (doc.scrollWidth > doc.clientWidth) {
    problems.push(`document is ${doc.scrollWidth}px wide in a ${doc.clientWidth}px viewport`);
    const wide = [...document.body.querySelectorAll("*")].filter(
      (el) => el.getBoundingClientRect().right > doc.clientWidth + 1 && !insideScroller(el),
    );
    // Name the innermost culprits, not every ancestor they widen.
    const culprits = wide.filter((el) => !wide.some((other) => other !== el && el.contains(other)));
    for (const el of culprits.slice(0, 8)) {
      problems.push(`  sticks out to ${Math.round(el.getBoundingClientRect().right)}px: ${describe(el)}`);
    }
  }
  for (const el of document.body.querySelectorAll("*")) {
    if (el.closest(".table-wrap") || !el.checkVisibility()) continue;
    // Visually hidden text (screen readers only) is clipped to 1px on purpose.
    if (el.clientWidth <= 1 && el.clientHeight <= 1) continue;
    const style = getComputedStyle(el);
    const clips = ["hidden", "clip"].includes(style.overflowX) || ["hidden", "clip"].includes(style.overflowY);
    if (!clips || !el.textContent.trim()) continue;
    if (el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1) {
      problems.push(`text cut off (${el.scrollWidth}x${el.scrollHeight} in ${el.clientWidth}x${el.clientHeight}): ${describe(el)}`);
    }
  }
  return problems;
  // Wider content inside a scroll box that itself fits is fine (that is what .table-wrap is for).
  function insideScroller(el) {
    for (let box = el.parentElement; box && box !== document.body; box = box.parentElement) {
      const style = getComputedStyle(box);
      if (["auto", "scroll", "hidden", "clip"].includes(style.overflowX)) {
        return box.getBoundingClientRect().right <= doc.clientWidth + 1;
      }
    }
    return false;
  }
  function describe(el) {
    const id = el.id ? "#" + el.id : "";
    const cls = typeof el.className === "string" && el.className ? "." + el.className.trim().split(/\s+/).join(".") : "";
    return `<${el.tagName.toLowerCase()}${id}${cls}> "${el.textContent.trim().slice(0, 40)}"`;
  }
})();
