// What every page of the dashboard shares: the API client, the element builder, tables and
// dialogs, times in the project's timezone, and the searchable pickers fed by the catalog API.

export const state = { csrf: '', email: '', projects: [], project: '', groupTypes: [], timezone: 'UTC', notice: '' };

// ---------------------------------------------------------------- API

export class ApiError extends Error {
  constructor(message, status) { super(message); this.status = status; }
}

export async function api(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: { 'X-CSRF-Token': state.csrf } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (res.status === 204) return null;
  const data = await res.json().catch(() => ({ error: `the server answered ${res.status}` }));
  if (res.status === 401 && !path.startsWith('/api/login') && !path.startsWith('/api/setup')) {
    state.csrf = '';
    location.hash = '#/login';
  }
  if (!res.ok) throw new ApiError(data.error || `the server answered ${res.status}`, res.status);
  return data;
}

export const P = () => `/api/projects/${encodeURIComponent(state.project)}`;

// ---------------------------------------------------------------- elements

/** h('div.card', {onclick}, 'text', child…) */
export function h(spec, attrs = {}, ...children) {
  const [tag, ...classes] = spec.split('.');
  const el = document.createElement(tag);
  if (classes.length) el.className = classes.join(' ');
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

export function truncate(text, n = 40) {
  const s = typeof text === 'string' ? text : JSON.stringify(text);
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

export function show(v) {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

export function errorBox(e) {
  return h('div.error', { role: 'alert' }, e instanceof Error ? e.message : String(e));
}

export function render(...nodes) {
  const app = document.getElementById('app');
  app.replaceChildren(...nodes);
  if (state.notice) {
    app.prepend(h('p.notice', { role: 'status' }, state.notice));
    state.notice = '';
  }
}

export async function guard(container, fn) {
  try {
    await fn();
  } catch (e) {
    container.append(errorBox(e));
  }
}

export function link(href, text) {
  return h('a', { href }, text);
}

export function table(headers, rows, cls = '') {
  return h('div.table-wrap', {}, h(`table${cls ? '.' + cls : ''}`, {},
    h('thead', {}, h('tr', {}, headers.map((t) => h('th', {}, t)))),
    h('tbody', {}, rows)));
}

export function download(name, text, type = 'text/csv') {
  const a = h('a', { href: URL.createObjectURL(new Blob([text], { type })), download: name });
  document.body.append(a);
  a.click();
  a.remove();
}

export function csv(rows) {
  return rows.map((r) => r.map((c) => {
    const s = c === null || c === undefined ? '' : typeof c === 'object' ? JSON.stringify(c) : String(c);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  }).join(',')).join('\n') + '\n';
}

/** A modal: `fields` are built by the caller; resolves with `read()` of the chosen button, or null. */
export function modal(title, body, buttons, read = () => true) {
  return new Promise((resolve) => {
    const dialog = h('dialog.modal', { 'aria-label': title });
    const close = (value) => { dialog.close(); dialog.remove(); resolve(value); };
    const err = h('div');
    dialog.addEventListener('cancel', () => close(null));
    const form = h('form', {
      onsubmit: (e) => {
        e.preventDefault();
        const b = buttons.find((x) => x.primary) || buttons[0];
        finish(b);
      },
    }, h('h2', {}, title), body, err,
    h('div.actions', {},
      h('button', { type: 'button', onclick: () => close(null) }, 'Cancel'),
      buttons.map((b) => h(b.danger ? 'button.danger' : b.primary ? 'button.primary' : 'button', { type: 'button', onclick: () => finish(b) }, b.label))));
    function finish(b) {
      try {
        const value = read(b.value);
        if (value !== undefined && value !== null) close(value);
      } catch (e) { err.replaceChildren(errorBox(e)); }
    }
    dialog.append(form);
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** A modal asking to confirm: resolves with the chosen choice's value, or null when cancelled. */
export function confirmDialog(title, text, choices) {
  return modal(title, h('p', {}, text), choices.map((c) => ({ ...c, value: c.value })), (v) => v);
}

/** Asks for a name; resolves with it (trimmed), or null. */
export function askName(title, initial, button) {
  const input = h('input', { value: initial || '', required: true, maxlength: 200, 'aria-label': 'Name' });
  setTimeout(() => input.select(), 0);
  return modal(title, h('label', {}, 'Name', input), [{ label: button, primary: true, value: true }], () => {
    const name = input.value.trim();
    if (!name) throw new Error('a name is needed');
    return name;
  });
}

// ---------------------------------------------------------------- time, in the project's timezone

const dateTime = new Map();

function formatter(options) {
  const key = `${state.timezone}|${JSON.stringify(options)}`;
  if (!dateTime.has(key)) dateTime.set(key, new Intl.DateTimeFormat('en-GB', { ...options, timeZone: state.timezone }));
  return dateTime.get(key);
}

/** An instant as the project's local date and time. */
export function when(iso) {
  if (!iso) return '';
  return formatter({ dateStyle: 'medium', timeStyle: 'short' }).format(new Date(iso));
}

/** An instant as the project's local date. */
export function day(iso) {
  if (!iso) return '';
  return formatter({ dateStyle: 'medium' }).format(new Date(iso));
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * A bucket's label. Buckets come as RFC 3339 starts already in the question's timezone
 * (`2026-03-02T00:00:00+09:00`), so the local date is the text before the `T`.
 */
export function bucketLabel(label, interval) {
  const [date, time = ''] = String(label).split('T');
  const [y, m, d] = date.split('-').map(Number);
  if (!m) return String(label);
  if (interval === 'month') return `${MONTHS[m - 1]} ${y}`;
  const dm = `${d} ${MONTHS[m - 1]}`;
  return interval === 'hour' ? `${dm} ${time.slice(0, 5)}` : dm;
}

// ---------------------------------------------------------------- fuzzy search and the catalog

/** As the server's `catalog::fuzzy_rank`: lower is better, null when the search does not match. */
export function fuzzyRank(search, text) {
  const s = search.trim().toLowerCase();
  if (!s) return 0;
  const t = String(text).toLowerCase();
  if (t === s) return 0;
  if (t.startsWith(s)) return 1;
  const at = t.indexOf(s);
  if (at >= 0) return /[^\p{L}\p{N}]$/u.test(t.slice(0, at)) ? 2 : 3;
  let i = 0, gaps = 0, matched = true;
  for (const c of t) {
    if (i === s.length) break;
    if (c === s[i]) { i++; matched = true; } else { if (matched) gaps++; matched = false; }
  }
  return i === s.length ? 10 + gaps : null;
}

export function fuzzyFilter(items, search, text) {
  if (!search.trim()) return items;
  return items.map((item, i) => ({ item, i, rank: fuzzyRank(search, text(item)) }))
    .filter((x) => x.rank !== null)
    .sort((a, b) => a.rank - b.rank || a.i - b.i)
    .map((x) => x.item);
}

const catalogCache = new Map();

/** The catalog API, each answer kept a minute per project (the server caches as long). */
function cached(path) {
  const key = `${state.project}|${path}`;
  const hit = catalogCache.get(key);
  if (hit && Date.now() - hit.at < 60000) return hit.promise;
  const promise = api('GET', `${P()}/catalog/${path}`).then((r) => r.results).catch((e) => { catalogCache.delete(key); throw e; });
  catalogCache.set(key, { at: Date.now(), promise });
  return promise;
}

/** `event`, `person` or `group:<type>` as the catalog's query parameters. */
function sourceParams(source) {
  const q = new URLSearchParams();
  if (source.startsWith('group:')) { q.set('source', 'group'); q.set('group_type', source.slice(6)); } else q.set('source', source);
  return q;
}

export const catalog = {
  events: () => cached('events?limit=1000'),
  properties: (source, event) => {
    const q = sourceParams(source);
    if (source === 'event' && event) q.set('event', event);
    q.set('limit', '1000');
    return cached(`properties?${q}`);
  },
  values: (source, key, event) => {
    const q = sourceParams(source);
    q.set('key', key);
    if (source === 'event' && event) q.set('event', event);
    q.set('limit', '200');
    return cached(`values?${q}`);
  },
};

let pickerIds = 0;

/**
 * A searchable picker: a text box whose list of suggestions narrows fuzzily as one types (arrows
 * and Enter choose, Escape closes). Text no suggestion has is kept as typed and marked, so a typo
 * is visible instead of silently counting nothing.
 *   load: () => Promise<[{value, meta?}]>; onpick(text) after a choice or an edit.
 *   preferMatch: Enter takes the best suggestion (names); false keeps the typed text unless one
 *   is chosen with the arrows (values, where "contains acm" means what it says).
 */
export function picker({ value = '', placeholder = '', label, load, onpick, unknown = 'not seen in recent data', cls = '', preferMatch = true }) {
  const id = `picker-${++pickerIds}`;
  const input = h('input', {
    value: value ?? '', placeholder, 'aria-label': label, role: 'combobox', autocomplete: 'off',
    'aria-autocomplete': 'list', 'aria-expanded': 'false', 'aria-controls': id,
  });
  const list = h('ul.picker-list', { id, role: 'listbox', 'aria-label': 'Suggestions', hidden: true });
  const hint = h('span.picker-hint', { 'aria-live': 'polite' });
  const wrap = h(`span.picker${cls ? '.' + cls : ''}`, {}, input, list, hint);
  let items = null, shown = [], active = -1, committed = value ?? '';
  const ensure = async () => {
    if (!items) { try { items = await load(); } catch { items = []; } }
    return items;
  };
  const draw = async () => {
    const all = await ensure();
    shown = fuzzyFilter(all, input.value, (i) => String(i.value)).slice(0, 60);
    list.replaceChildren(...shown.map((it, i) => h(`li${i === active ? '.active' : ''}`, {
      role: 'option', 'aria-selected': i === active ? 'true' : 'false',
      onmousedown: (e) => { e.preventDefault(); choose(String(it.value)); },
    }, h('span.v', {}, String(it.value)), it.meta ? h('span.meta', {}, it.meta) : null)));
    if (!shown.length) list.append(h('li.none', {}, input.value ? `No match; “${input.value}” is used as typed` : 'Nothing seen yet'));
    list.hidden = document.activeElement !== input;
    input.setAttribute('aria-expanded', String(!list.hidden));
  };
  const close = () => { list.hidden = true; active = -1; input.setAttribute('aria-expanded', 'false'); };
  const check = async () => {
    const all = await ensure();
    const known = !input.value || all.some((i) => String(i.value) === input.value);
    wrap.classList.toggle('unknown', !known);
    hint.textContent = known ? '' : unknown;
  };
  const commit = () => {
    close();
    check();
    if (input.value !== committed) { committed = input.value; onpick(input.value); }
  };
  const choose = (v) => { input.value = v; commit(); };
  input.addEventListener('focus', () => { active = -1; draw(); });
  input.addEventListener('input', () => { active = preferMatch && input.value ? 0 : -1; draw(); });
  input.addEventListener('blur', commit);
  input.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      active = Math.max(0, Math.min(shown.length - 1, active + (e.key === 'ArrowDown' ? 1 : -1)));
      draw();
    } else if (e.key === 'Enter') {
      e.preventDefault();
      choose(active >= 0 && shown[active] ? String(shown[active].value) : input.value);
    } else if (e.key === 'Escape' && !list.hidden) {
      e.preventDefault();
      e.stopPropagation();
      close();
    }
  });
  if (value) check();
  return wrap;
}

export const eventItems = () => catalog.events().then((names) => names.map((n) => ({ value: n.name, meta: n.count.toLocaleString('en-US') })));
export const propertyItems = (source, event) => catalog.properties(source, event).then((keys) => keys.map((k) => ({ value: k.key, meta: k.type })));
export const valueItems = (source, key, event) => catalog.values(source, key, event).then((vals) => vals.map((v) => ({ value: typeof v.value === 'string' ? v.value : JSON.stringify(v.value), meta: v.count.toLocaleString('en-US') })));
