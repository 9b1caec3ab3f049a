// DOM helpers. Every value from the API is put into the page as a text node or an attribute
// value, never parsed as HTML: there is no innerHTML anywhere in the console (the CSP also
// requires Trusted Types, so an HTML sink would throw).

let uid = 0;

/** A fresh element id with the given prefix. */
export function nextId(prefix = "f") {
  uid += 1;
  return `${prefix}-${uid}`;
}

/**
 * `h("tag.class1.class2", {attr: value, onclick: fn}, child, ...)`: children that are strings
 * or numbers become text nodes; null/undefined/false are skipped; arrays are flattened.
 */
export function h(spec, attrs = {}, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag || "div");
  if (classes.length) el.className = classes.join(" ");
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2), v);
    } else if (k === "value") {
      if (tag === "input") el.setAttribute("value", v); // also the value a form reset restores
      else el.value = v;
    } else if (k === "checked") {
      el.checked = Boolean(v);
    } else if (k === "dataset") {
      Object.assign(el.dataset, v);
    } else {
      el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A status badge: the status word itself (not colour alone) with a class per status. */
export function badge(status) {
  const s = String(status || "unknown");
  return h(`span.badge.status-${s.replace(/[^A-Za-z]/g, "")}`, { "data-status": s }, s);
}

/** A labelled form field: returns the wrapper; the control gets an id and a name. */
export function field(label, control, hint) {
  if (!control.id) control.id = nextId(control.name || "field");
  const hintEl = hint ? h("small.hint", { id: `${control.id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute("aria-describedby", hintEl.id);
  const wrap = control.type === "checkbox"
    ? h("div.field.check", {}, control, h("label", { for: control.id }, label), hintEl)
    : h("div.field", {}, h("label", { for: control.id }, label), control, hintEl);
  return wrap;
}

export function input(name, attrs = {}) {
  return h("input", { name, type: "text", autocomplete: "off", spellcheck: "false", ...attrs });
}

export function select(name, options, attrs = {}) {
  const el = h("select", { name, ...attrs });
  setOptions(el, options);
  return el;
}

/** Sets a select's options ([value, label] pairs), keeping the selection when still offered. */
export function setOptions(sel, options) {
  const keep = sel.value;
  const sig = JSON.stringify(options);
  if (sel.dataset.sig === sig) return;
  sel.dataset.sig = sig;
  sel.replaceChildren(...options.map(([v, l]) => h("option", { value: v }, l)));
  if (options.some(([v]) => v === keep)) sel.value = keep;
}

/** A table with a caption and column headers; `tbody` is filled by syncRows. */
export function table(caption, headers) {
  const tbody = h("tbody");
  const t = h(
    "table",
    {},
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    tbody,
  );
  return { el: h("div.table-wrap", { tabindex: "0", role: "region", "aria-label": caption }, t), tbody };
}

function editing(row) {
  const a = document.activeElement;
  const typing = a && row.contains(a) && (a.tagName === "TEXTAREA" || (a.tagName === "INPUT" && a.type !== "checkbox"));
  return typing || row.querySelector("[data-dirty]") !== null;
}

/** After a row was rebuilt: the focus goes to the same control in the new row (by its
 * aria-label or text), else to the row's first enabled control, so the keyboard stays put. */
function keepFocus(oldRow, newRow) {
  const a = document.activeElement;
  if (!a || !oldRow.contains(a)) return;
  const label = a.getAttribute("aria-label");
  const controls = [...newRow.querySelectorAll("button, a, input, select, textarea")];
  const same = controls.find((c) => !c.disabled && (label ? c.getAttribute("aria-label") === label : c.textContent === a.textContent));
  const target = same || controls.find((c) => !c.disabled);
  if (target) target.focus();
}

/**
 * Brings `tbody` up to `items`: a row is rebuilt only when its item changed; a row whose input
 * is being edited is left alone, and a rebuilt row keeps the keyboard focus.
 */
export function syncRows(tbody, items, key, render, emptyText = "None yet.", columns = 1) {
  const old = new Map([...tbody.children].map((tr) => [tr.dataset.key, tr]));
  const rows = [];
  const moved = [];
  for (const item of items) {
    const k = key(item);
    const sig = JSON.stringify(item);
    const prev = old.get(k);
    if (prev && (prev.dataset.sig === sig || editing(prev))) {
      rows.push(prev);
      continue;
    }
    const tr = render(item);
    tr.dataset.key = k;
    tr.dataset.sig = sig;
    rows.push(tr);
    if (prev) moved.push([prev, tr]);
  }
  if (!rows.length) {
    const td = h("td.empty", { colspan: String(columns) }, emptyText);
    rows.push(h("tr", { "data-key": "" }, td));
  }
  const same = rows.length === tbody.children.length && rows.every((r, i) => tbody.children[i] === r);
  if (same) return;
  const focus = moved.find(([prev]) => prev.contains(document.activeElement));
  tbody.replaceChildren(...rows);
  if (focus) keepFocus(focus[0], focus[1]);
}

/** Shows an error next to the form field it names (else at the top of the form). */
export function showError(form, err) {
  clearErrors(form);
  const text = err && err.code ? `${err.code}: ${err.msg}` : String((err && err.message) || err);
  const msg = (err && err.msg) || text;
  let target = null;
  let best = 0;
  for (const el of form.querySelectorAll("[name]")) {
    const n = el.getAttribute("name");
    if (n && msg.includes(n) && n.length > best) {
      target = el;
      best = n.length;
    }
  }
  const p = h("p.error", { role: "alert", id: nextId("error") }, text);
  if (target) {
    target.setAttribute("aria-invalid", "true");
    const described = target.getAttribute("aria-describedby");
    target.setAttribute("aria-describedby", described ? `${described} ${p.id}` : p.id);
    (target.closest(".field") || target).after(p);
  } else {
    form.prepend(p);
  }
  return p;
}

export function clearErrors(form) {
  for (const p of form.querySelectorAll("p.error")) p.remove();
  for (const el of form.querySelectorAll("[aria-invalid]")) {
    el.removeAttribute("aria-invalid");
    const d = (el.getAttribute("aria-describedby") || "").split(" ").filter((x) => !x.startsWith("error-"));
    if (d.length) el.setAttribute("aria-describedby", d.join(" "));
    else el.removeAttribute("aria-describedby");
  }
}

/** Wires a form's submit to an async action: errors shown in place, the button busy meanwhile. */
export function onSubmit(form, action) {
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    form.setAttribute("aria-busy", "true");
    clearErrors(form);
    try {
      await action(new FormData(form));
    } catch (err) {
      showError(form, err);
    } finally {
      if (button) button.disabled = false;
      form.removeAttribute("aria-busy");
    }
  });
  return form;
}

/** Lines or commas of a textarea as a list of trimmed non-empty strings. */
export function splitList(text) {
  return String(text || "")
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}
