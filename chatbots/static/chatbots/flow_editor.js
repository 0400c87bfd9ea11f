// The sequence editor (chatbots admin): each step shows only the fields of its kind, and the shared text field
// is labelled for what it means there. Which columns a kind uses comes from the server (engine.STEP_FIELDS, as a
// data attribute of the kind select), so the rule lives in one place.
"use strict";
(function () {
  const ALWAYS = new Set(["position", "kind"]);

  function fieldElement(box, column) {
    return box.querySelector(".fieldBox.field-" + column) || box.querySelector(".form-row.field-" + column);
  }

  function apply(select) {
    const box = select.closest(".inline-related");
    if (!box || !select.dataset.stepColumns) return;
    const columns = JSON.parse(select.dataset.stepColumns);
    const labels = JSON.parse(select.dataset.textLabels || "{}");
    const all = new Set(Object.values(columns).flat());
    const shown = new Set(columns[select.value] || []);
    for (const column of all) {
      if (ALWAYS.has(column)) continue;
      const element = fieldElement(box, column);
      if (element) element.style.display = shown.has(column) ? "" : "none";
    }
    // A row of several fields (variable + input type) hides when none of them shows.
    for (const row of box.querySelectorAll(".form-row")) {
      const boxes = row.querySelectorAll(".fieldBox");
      if (boxes.length) {
        row.style.display = [...boxes].some((b) => b.style.display !== "none") ? "" : "none";
      }
    }
    const text = box.querySelector(".field-text label");
    if (text && labels[select.value]) text.textContent = labels[select.value]; // the suffix included: "Question :"
  }

  // The buttons belong to the buttons step that ends a sequence: their table shows only when there is one, or
  // when rows already exist (a sequence with buttons and no such step is an error the page must show).
  function buttonsGroup() {
    const group = document.getElementById("buttons-group");
    if (!group) return;
    const kinds = [...document.querySelectorAll("select[data-step-columns]")]
      .filter((select) => !select.closest(".empty-form")).map((select) => select.value);
    const rows = group.querySelectorAll("tr.form-row:not(.empty-form)").length;
    group.style.display = kinds.includes("buttons") || rows ? "" : "none";
  }

  function applyAll(root) {
    for (const select of root.querySelectorAll("select[data-step-columns]")) apply(select);
    buttonsGroup();
  }

  document.addEventListener("change", (event) => {
    if (event.target.matches && event.target.matches("select[data-step-columns]")) {
      apply(event.target);
      buttonsGroup();
    }
  });
  document.addEventListener("formset:added", (event) => applyAll(event.target));
  document.addEventListener("formset:removed", () => buttonsGroup());
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", () => applyAll(document));
  } else {
    applyAll(document);
  }
})();
