// ledgergate dashboard: the Budget Windows editor, dialogs, copy buttons. Plain JavaScript, no build step.
"use strict";

// ---- durations: the same grammar and canonical rule as ledgergate/domain/durations.py ----------------------
const DURATION_ALIASES = { hourly: "1h", daily: "1d", weekly: "1w", monthly: "1mo" };
const FIXED_UNIT_SECONDS = { s: 1, m: 60, h: 3600 };
const FIXED_UNIT_CYCLE = { s: 60, m: 60, h: 24 };
const GRAMMAR = "expected <positive integer><unit> with unit s, m, h, d, w or mo (e.g. 30s, 15m, 1h, 1d, 2w, 1mo), " +
  "or one of hourly, daily, weekly, monthly";
const MAX_USD = 9223372036; // what a signed 64-bit count of nano-USD can hold
const AMOUNT = /^(\d{1,15}(\.\d{0,9})?|\.\d{1,9})$/;

function parseDuration(text) {
  const normalized = text.trim().toLowerCase();
  const resolved = DURATION_ALIASES[normalized] || normalized;
  const match = /^([1-9][0-9]{0,5})(s|m|h|d|w|mo)$/.exec(resolved);
  if (!match) return { error: `'${text}' is not a duration: ${GRAMMAR}` };
  let count = Number(match[1]);
  let unit = match[2];
  const cycle = FIXED_UNIT_CYCLE[unit];
  if (cycle !== undefined && cycle % count !== 0) {
    const divisors = [];
    for (let d = 1; d <= cycle; d++) if (cycle % d === 0) divisors.push(d);
    return { error: `'${text}': periods count from midnight, so ${unit} must divide ${cycle} (${divisors.join(", ")})` };
  }
  if (unit === "h" && count === 24) { count = 1; unit = "d"; }
  const days = count * ({ d: 1, w: 7 }[unit] || 0);
  if (days > 36600 || (unit === "mo" && count > 1200)) return { error: `'${text}': a period may last at most 100 years` };
  return { canonical: canonical(count, unit) };
}

function canonical(count, unit) {
  // Equal for durations over the same periods: 24h and 1d, 7d and 1w, 60m and 1h.
  if (unit in FIXED_UNIT_SECONDS) {
    const seconds = count * FIXED_UNIT_SECONDS[unit];
    if (seconds === 86400) return "1d";
    if (seconds % 3600 === 0) return `${seconds / 3600}h`;
    if (seconds % 60 === 0) return `${seconds / 60}m`;
    return `${seconds}s`;
  }
  if (unit === "d" && count % 7 === 0) return `${count / 7}w`;
  return `${count}${unit}`;
}

// ---- the Budget Windows editor -------------------------------------------------------------------------------
let rowCounter = 0;
function newRowId() {
  // Stable per row for the life of the page; never derived from the row's position.
  rowCounter += 1;
  return `w${Date.now().toString(36)}${rowCounter}${Math.random().toString(36).slice(2, 6)}`;
}

function rowState(row) {
  const preset = row.querySelector("[data-preset]").value;
  const custom = row.querySelector("[data-custom]").value.trim();
  const max = row.querySelector("[data-max]").value.trim();
  const label = preset === "custom" ? custom : preset;
  return { row, preset, custom, max, label };
}

// ``force`` (on submit) also reports empty fields; while typing they wait until the field was left once.
function validateRows(editor, force = false) {
  const rows = Array.from(editor.querySelectorAll(".wrow"));
  const seen = new Map();
  const invalid = [];
  for (const state of rows.map(rowState)) {
    let error = "";
    let field = "duration"; // which input the error is about
    let key = null;
    if (state.preset === "lifetime") key = "lifetime";
    else if (state.preset === "custom" && !state.custom) {
      if (force || state.row.dataset.touched) error = "enter a duration such as 15m, 2h, 3d, 2w or 3mo";
    } else {
      const parsed = parseDuration(state.preset === "custom" ? state.custom : state.preset);
      if (parsed.error) error = parsed.error;
      else key = parsed.canonical;
    }
    if (!error && key !== null) {
      const first = seen.get(key);
      if (first) error = `duplicate window: '${first.label}' and '${state.label}' cover the same periods`;
      else seen.set(key, state);
    }
    if (!error) {
      field = "max";
      if (!state.max) {
        if (force || state.row.dataset.touched) error = "enter the maximum in USD per period, e.g. 25 or 0.5";
      } else if (!AMOUNT.test(state.max)) error = `max $: '${state.max}' is not an amount in USD (e.g. 25 or 0.5)`;
      else if (Number(state.max) > MAX_USD) error = `max $: at most ${MAX_USD} USD`;
    }
    showRowError(state.row, error, field);
    if (error) invalid.push(state.row);
  }
  editor.closest("form").querySelector("[data-no-windows]")?.toggleAttribute("hidden", rows.length > 0);
  return invalid;
}

function showRowError(row, error, field) {
  row.querySelector("[data-row-error]").textContent = error;
  row.classList.toggle("has-error", Boolean(error));
  const flagged = field === "max" ? "[data-max]" : row.querySelector("[data-preset]").value === "custom" ? "[data-custom]" : "[data-preset]";
  for (const input of row.querySelectorAll("[data-max], [data-custom], [data-preset]")) {
    if (error && input.matches(flagged)) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }
}

function syncPreset(row) {
  const custom = row.querySelector("[data-custom-field]");
  custom.hidden = row.querySelector("[data-preset]").value !== "custom";
}

function addRow(editor) {
  const template = editor.querySelector("[data-row-template]");
  const id = newRowId();
  const html = template.innerHTML.replaceAll("__ROW__", id);
  const holder = document.createElement("div");
  holder.innerHTML = html.trim();
  const row = holder.firstElementChild;
  // A new row defaults to a duration no other row has yet.
  const used = new Set(Array.from(editor.querySelectorAll("[data-preset]")).map((s) => s.value));
  const free = ["daily", "monthly", "hourly", "weekly"].find((p) => !used.has(p)) || "custom";
  row.querySelector("[data-preset]").value = free;
  syncPreset(row);
  editor.querySelector("[data-rows]").appendChild(row);
  row.querySelector("[data-preset]").focus();
  validateRows(editor);
}

function initEditor(editor) {
  const form = editor.closest("form");
  editor.querySelector("[data-add-row]").addEventListener("click", () => addRow(editor));
  editor.addEventListener("click", (event) => {
    const button = event.target.closest("[data-remove-row]");
    if (!button) return;
    const row = button.closest(".wrow");
    const next = row.nextElementSibling || row.previousElementSibling;
    row.remove();
    (next?.querySelector("[data-preset]") || editor.querySelector("[data-add-row]")).focus();
    validateRows(editor);
  });
  editor.addEventListener("change", (event) => {
    const row = event.target.closest(".wrow");
    if (row && event.target.matches("[data-preset]")) syncPreset(row);
    validateRows(editor);
  });
  editor.addEventListener("input", () => validateRows(editor));
  editor.addEventListener("focusout", (event) => {
    const row = event.target.closest(".wrow");
    if (row && event.target.matches("[data-max], [data-custom]")) {
      row.dataset.touched = "1";
      validateRows(editor);
    }
  });
  form.addEventListener("submit", (event) => {
    const invalid = validateRows(editor, true);
    const banner = document.querySelector("[data-form-error]");
    if (invalid.length === 0) return;
    event.preventDefault();
    banner.hidden = false;
    banner.textContent = invalid.length === 1
      ? "Not sent: one budget window needs fixing (see below)."
      : `Not sent: ${invalid.length} budget windows need fixing (see below).`;
    const first = invalid[0].querySelector("[aria-invalid='true']") || invalid[0].querySelector("[data-max]");
    first.focus();
  });
  for (const row of editor.querySelectorAll(".wrow")) syncPreset(row);
}

// ---- reset dialogs -------------------------------------------------------------------------------------------
function initResetForm(form) {
  const input = form.querySelector("[name=reset_to]");
  const summary = form.querySelector("[data-reset-summary]");
  const error = form.querySelector("[data-reset-error]");
  const previous = Number(form.dataset.previous);
  const check = () => {
    const text = input.value.trim();
    let message = "";
    if (!AMOUNT.test(text)) message = "Enter an amount in USD, e.g. 0 or 1.50.";
    else if (Number(text) > previous) message = `The new value must not exceed the current spend ($${form.dataset.previous}).`;
    error.textContent = message;
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
    summary.textContent = message ? "" : `Spend in this window goes from $${form.dataset.previous} to $${text}.`;
    return !message;
  };
  input.addEventListener("input", check);
  form.addEventListener("submit", (event) => { if (!check()) { event.preventDefault(); input.focus(); } });
  check();
}

// ---- wiring -----------------------------------------------------------------------------------------------------
function init(root) {
  for (const editor of root.querySelectorAll("[data-windows-editor]")) initEditor(editor);
  for (const form of root.querySelectorAll("[data-reset-form]")) initResetForm(form);
}

document.addEventListener("click", (event) => {
  const opener = event.target.closest("[data-open-dialog]");
  if (opener) {
    const dialog = document.getElementById(opener.dataset.openDialog);
    dialog.showModal();
    dialog.querySelector("[name=reset_to]")?.select();
  }
  const closer = event.target.closest("[data-close-dialog]");
  if (closer) closer.closest("dialog").close();
  const copy = event.target.closest("[data-copy]");
  if (copy) {
    const field = document.querySelector(copy.dataset.copy);
    const status = copy.parentElement.querySelector("[data-copy-status]");
    const done = () => { status.textContent = "Copied"; };
    field.select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done, () => { document.execCommand("copy"); done(); });
    } else {
      document.execCommand("copy");
      done();
    }
  }
});

document.addEventListener("submit", (event) => {
  const message = event.target.dataset?.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});

document.addEventListener("DOMContentLoaded", () => init(document));
