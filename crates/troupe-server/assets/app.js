// The troupe dashboard: a small single-page app over troupe's own JSON API (the same routes
// scripts call). Hash routes, no build step. Pages: setup, sign in, groups, group profile,
// persons, person profile, events, insights, dashboards, settings.

import { lineChart, barChart, stackedBars, funnelBars, retentionTable, fmt, shortLabel } from '/assets/charts.js';

const state = { csrf: '', email: '', projects: [], project: '', groupTypes: [] };

// ---------------------------------------------------------------- helpers

class ApiError extends Error {
  constructor(message, status) { super(message); this.status = status; }
}

async function api(method, path, body) {
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

const P = () => `/api/projects/${encodeURIComponent(state.project)}`;

/** h('div.card', {onclick}, 'text', child…) */
function h(spec, attrs = {}, ...children) {
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

function truncate(text, n = 40) {
  const s = typeof text === 'string' ? text : JSON.stringify(text);
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

function show(v) {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function when(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return d.toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'short' });
}

function errorBox(e) {
  return h('div.error', { role: 'alert' }, e instanceof Error ? e.message : String(e));
}

function render(...nodes) {
  const app = document.getElementById('app');
  app.replaceChildren(...nodes);
  if (notice) {
    app.prepend(h('p.notice', { role: 'status' }, notice));
    notice = '';
  }
}

async function guard(container, fn) {
  try {
    await fn();
  } catch (e) {
    container.append(errorBox(e));
  }
}

function link(href, text) {
  return h('a', { href }, text);
}

function table(headers, rows, cls = '') {
  return h('div.table-wrap', {}, h(`table${cls ? '.' + cls : ''}`, {},
    h('thead', {}, h('tr', {}, headers.map((t) => h('th', {}, t)))),
    h('tbody', {}, rows)));
}

function download(name, text, type = 'text/csv') {
  const a = h('a', { href: URL.createObjectURL(new Blob([text], { type })), download: name });
  document.body.append(a);
  a.click();
  a.remove();
}

/** A modal asking to confirm: resolves with the chosen choice's value, or null when cancelled. */
function confirmDialog(title, text, choices) {
  return new Promise((resolve) => {
    const dialog = h('dialog.modal', { 'aria-label': title });
    const close = (value) => { dialog.close(); dialog.remove(); resolve(value); };
    dialog.addEventListener('cancel', () => close(null));
    dialog.append(h('form', { onsubmit: (e) => e.preventDefault() },
      h('h2', {}, title), h('p', {}, text),
      h('div.actions', {},
        h('button', { type: 'button', onclick: () => close(null) }, 'Cancel'),
        choices.map((c) => h(c.danger ? 'button.danger' : 'button', { type: 'button', onclick: () => close(c.value) }, c.label)))));
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** A notice at the top of the page, for what just happened elsewhere (an erasure). */
let notice = '';

function csv(rows) {
  return rows.map((r) => r.map((c) => {
    const s = c === null || c === undefined ? '' : String(c);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  }).join(',')).join('\n') + '\n';
}

// ---------------------------------------------------------------- shell

async function loadSession() {
  const s = await api('GET', '/api/session');
  state.csrf = s.csrf || '';
  state.email = s.email || '';
  return s;
}

async function loadProjects() {
  const p = await api('GET', '/api/projects');
  state.projects = p.results;
  const saved = localStorage.getItem('troupe.project');
  state.project = state.projects.some((x) => x.name === saved) ? saved : (state.projects[0] || {}).name || '';
  await loadGroupTypes();
}

async function loadGroupTypes() {
  state.groupTypes = state.project ? (await api('GET', `${P()}/group-types`)).results : [];
}

function nav(active) {
  const bar = document.getElementById('nav');
  bar.hidden = false;
  const items = [['groups', 'Groups'], ['persons', 'Persons'], ['events', 'Events'], ['insights', 'Insights'], ['dashboards', 'Dashboards'], ['settings', 'Settings']];
  const select = h('select', {
    'aria-label': 'Project',
    onchange: async (e) => {
      state.project = e.target.value;
      localStorage.setItem('troupe.project', state.project);
      await loadGroupTypes();
      route();
    },
  }, state.projects.map((p) => h('option', { value: p.name, selected: p.name === state.project }, p.name)));
  bar.replaceChildren(
    h('a.brand', { href: '#/groups' }, 'troupe'),
    h('nav', {}, items.map(([k, t]) => h(`a${k === active ? '.active' : ''}`, { href: `#/${k}` }, t))),
    h('div.spacer'),
    select,
    h('span.muted.user', {}, state.email),
    h('button.link', { onclick: async () => { await api('POST', '/api/logout'); state.csrf = ''; location.hash = '#/login'; } }, 'Sign out'),
  );
}

// ---------------------------------------------------------------- sign in and setup

function authPage(title, intro, action, button, tokenField = false) {
  document.getElementById('nav').hidden = true;
  const err = h('div');
  const form = h('form.auth', {
    onsubmit: async (e) => {
      e.preventDefault();
      err.replaceChildren();
      const data = new FormData(form);
      try {
        const credentials = { email: data.get('email'), password: data.get('password') };
        if (tokenField) credentials.setup_token = data.get('setup_token');
        await action(credentials);
        await loadSession();
        location.hash = '#/groups';
      } catch (ex) {
        err.append(errorBox(ex));
      }
    },
  },
  h('h1', {}, title), h('p.muted', {}, intro),
  h('label', {}, 'Email', h('input', { name: 'email', type: 'email', required: true, autocomplete: 'username' })),
  h('label', {}, 'Password', h('input', { name: 'password', type: 'password', required: true, minlength: 8, autocomplete: title === 'Sign in' ? 'current-password' : 'new-password' })),
  tokenField ? h('label', {}, 'Setup token (printed in the server log)', h('input', { name: 'setup_token', required: true, autocomplete: 'off' })) : '',
  err, h('button.primary', { type: 'submit' }, button));
  render(form);
}

function loginPage() {
  authPage('Sign in', 'Sign in to your troupe.', (c) => api('POST', '/api/login', c), 'Sign in');
}

function setupPage(tokenRequired) {
  authPage('Welcome to troupe', 'First run: create the administrator account (at least 8 characters of password).', (c) => api('POST', '/api/setup', c), 'Create account', tokenRequired);
}

// ---------------------------------------------------------------- groups

async function groupsPage(type) {
  nav('groups');
  if (!state.groupTypes.length) {
    render(h('h1', {}, 'Groups'), emptyGroups());
    return;
  }
  const current = type || state.groupTypes[0].group_type;
  const tabs = h('div.tabs', { role: 'tablist' }, state.groupTypes.map((t) =>
    h(`a.tab${t.group_type === current ? '.active' : ''}`, { href: `#/groups/${encodeURIComponent(t.group_type)}`, role: 'tab' },
      `${t.display_name} `, h('span.count', {}, fmt(t.group_count)))));
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  const search = params.get('search') || '';
  const sort = params.get('sort') || 'updated_at';
  const order = params.get('order') || 'desc';
  const offset = Number(params.get('offset') || 0);
  const limit = 25;
  const go = (changes) => {
    const p = new URLSearchParams({ search, sort, order, offset: String(offset), ...changes });
    location.hash = `#/groups/${encodeURIComponent(current)}?${p}`;
  };
  const tools = h('div.toolbar', {},
    h('input', { type: 'search', placeholder: 'Search key, name or property', value: search, 'aria-label': 'Search groups',
      onchange: (e) => go({ search: e.target.value, offset: '0' }) }),
    h('select', { 'aria-label': 'Sort by', onchange: (e) => go({ sort: e.target.value }) },
      [['updated_at', 'Last updated'], ['created_at', 'Created'], ['key', 'Key'], ['name', 'Name']].map(([v, t]) => h('option', { value: v, selected: v === sort }, t))),
    h('button', { onclick: () => go({ order: order === 'desc' ? 'asc' : 'desc' }) }, order === 'desc' ? '↓ Descending' : '↑ Ascending'),
    h('div.spacer'),
    h('button.primary', { onclick: () => groupForm(current, null) }, 'New group'));
  const body = h('div');
  render(h('h1', {}, 'Groups'), tabs, tools, body);
  await guard(body, async () => {
    const q = new URLSearchParams({ type: current, sort, order, limit: String(limit), offset: String(offset) });
    if (search) q.set('search', search);
    const page = await api('GET', `${P()}/groups?${q}`);
    if (!page.results.length) {
      body.append(h('p.empty', {}, search ? `No ${current} matches “${search}”.` : `No ${current} yet. Create one, or send a group from your app.`));
      return;
    }
    const rows = page.results.map((g) => {
      const props = Object.entries(g.properties).slice(0, 3);
      const href = `#/group/${encodeURIComponent(g.group_type)}/${encodeURIComponent(g.key)}`;
      return h('tr.clickable', { onclick: () => { location.hash = href; } },
        h('td', {}, g.group_type), h('td', {}, link(href, g.key)), h('td', {}, g.name || ''),
        [0, 1, 2].map((i) => props[i] ? h('td.prop', { title: `${props[i][0]}: ${show(props[i][1])}` }, h('span.k', {}, `${props[i][0]}: `), truncate(props[i][1], 24)) : h('td')),
        h('td.nowrap', { title: g.updated_at }, when(g.updated_at)));
    });
    body.append(table(['Type', 'Key', 'Name', 'Property 1', 'Property 2', 'Property 3', 'Last updated'], rows, 'groups'));
    body.append(h('div.pager', {},
      h('button', { disabled: offset === 0, onclick: () => go({ offset: String(Math.max(0, offset - limit)) }) }, '← Previous'),
      h('span.muted', {}, `${offset + 1}–${offset + page.results.length} of ${fmt(page.total)}`),
      h('button', { disabled: offset + limit >= page.total, onclick: () => go({ offset: String(offset + limit) }) }, 'Next →')));
  });
}

function emptyGroups() {
  const key = (state.projects.find((p) => p.name === state.project) || {}).ingestion_key || 'tri_…';
  return h('div.empty', {},
    h('p', {}, 'No groups yet. Put a user in a company from your app, or create a group here once a type exists:'),
    h('pre', {}, `curl -s ${location.origin}/api/sdk/groups/set_group -H "X-Trodo-Site-Id: ${key}" \\
  -d '{"userId": "ada@acme.io", "groupKey": "company", "groupId": "acme"}'
curl -s ${location.origin}/api/events -H "X-Trodo-Site-Id: ${key}" \\
  -d '{"event_name": "Signed In", "user_id": "ada@acme.io"}'`),
    h('button.primary', { onclick: () => groupForm('company', null) }, 'Create a company'));
}

/** Key/value rows for editing properties; values are JSON when they parse, else text. */
function propertyEditor(properties) {
  const rows = h('div.kv');
  const add = (k = '', v = '') => rows.append(h('div.kv-row', {},
    h('input', { placeholder: 'property', value: k, 'aria-label': 'Property name' }),
    h('input', { placeholder: 'value', value: typeof v === 'string' ? v : JSON.stringify(v), 'aria-label': 'Property value' }),
    h('button.link', { type: 'button', onclick: (e) => e.target.closest('.kv-row').remove(), 'aria-label': 'Remove property' }, '✕')));
  Object.entries(properties || {}).forEach(([k, v]) => add(k, v));
  if (!Object.keys(properties || {}).length) add();
  const read = () => {
    const out = {};
    rows.querySelectorAll('.kv-row').forEach((r) => {
      const [k, v] = r.querySelectorAll('input');
      if (!k.value.trim()) return;
      try { out[k.value.trim()] = JSON.parse(v.value); } catch { out[k.value.trim()] = v.value; }
    });
    return out;
  };
  return { el: h('div', {}, rows, h('button.link', { type: 'button', onclick: () => add() }, '+ Add property')), read };
}

function groupForm(type, group) {
  const editor = propertyEditor(group ? group.properties : {});
  const err = h('div');
  const dialog = h('dialog.modal', {});
  const form = h('form', {
    onsubmit: async (e) => {
      e.preventDefault();
      const data = new FormData(form);
      const t = (data.get('type') || type).trim(), key = (data.get('key') || '').trim();
      try {
        await api('PUT', `${P()}/groups/${encodeURIComponent(t)}/${encodeURIComponent(key)}`, { name: data.get('name') || null, properties: editor.read() });
        dialog.close();
        dialog.remove();
        await loadGroupTypes();
        location.hash = `#/group/${encodeURIComponent(t)}/${encodeURIComponent(key)}`;
        route();
      } catch (ex) {
        err.replaceChildren(errorBox(ex));
      }
    },
  },
  h('h2', {}, group ? `Edit ${group.name || group.key}` : 'New group'),
  h('label', {}, 'Type', h('input', { name: 'type', value: type, required: true, readonly: !!group, list: 'group-types' })),
  h('datalist', { id: 'group-types' }, state.groupTypes.map((t) => h('option', { value: t.group_type }))),
  h('label', {}, 'Key', h('input', { name: 'key', value: group ? group.key : '', required: true, readonly: !!group })),
  h('label', {}, 'Name', h('input', { name: 'name', value: group ? group.name || '' : '' })),
  h('div.label', {}, 'Properties'), editor.el, err,
  h('div.actions', {}, h('button', { type: 'button', onclick: () => { dialog.close(); dialog.remove(); } }, 'Cancel'), h('button.primary', { type: 'submit' }, 'Save')));
  dialog.append(form);
  document.body.append(dialog);
  dialog.showModal();
}

async function groupPage(type, key) {
  nav('groups');
  const body = h('div');
  render(h('p', {}, link(`#/groups/${encodeURIComponent(type)}`, `← ${type}`)), body);
  await guard(body, async () => {
    const g = await api('GET', `${P()}/groups/${encodeURIComponent(type)}/${encodeURIComponent(key)}?events=20`);
    const chart = h('div.card');
    body.append(
      h('div.title-row', {}, h('h1', {}, g.name || g.key, h('span.muted.small', {}, ` ${type} · ${g.key}`)),
        h('div.spacer'),
        h('button', { onclick: () => groupForm(type, g) }, 'Edit'),
        h('button', { onclick: async () => {
          const res = await fetch(`${P()}/groups/${encodeURIComponent(type)}/${encodeURIComponent(key)}/export`, { credentials: 'same-origin', headers: { 'X-CSRF-Token': state.csrf } });
          if (res.ok) download(`group-${type}-${key}.json`, await res.text(), 'application/json');
        } }, 'Export'),
        h('button.danger', { onclick: async () => {
          const events = await confirmDialog(`Erase ${g.name || key}?`,
            `The ${type} ${key}, its profile and every membership in it are erased. Its events can stay (they belong to people) without ${key} in their attribution, or go with it.`,
            [{ label: 'Erase, keep its events', value: 'detach', danger: true }, { label: 'Erase with its events', value: 'delete', danger: true }]);
          if (!events) return;
          await api('DELETE', `${P()}/groups/${encodeURIComponent(type)}/${encodeURIComponent(key)}?events=${events}`);
          notice = `${type} ${key} was erased.`;
          await loadGroupTypes();
          location.hash = `#/groups/${encodeURIComponent(type)}`;
        } }, 'Erase…')),
      h('div.grid2', {},
        h('section.card', {}, h('h2', {}, 'Properties'), propertiesTable(g.properties),
          h('p.muted.small', {}, `Created ${when(g.created_at)} · updated ${when(g.updated_at)}`)),
        h('section.card', {}, h('h2', {}, `Members (${g.members.length})`),
          g.members.length ? h('ul.members', {}, g.members.map((m) => h('li', {}, link(`#/person/${encodeURIComponent(m.distinct_ids[0] || m.id)}`, m.properties.name || m.properties.email || m.distinct_ids[0] || m.id))))
            : h('p.empty', {}, 'Nobody is in this group right now.'))),
      h('section', {}, h('h2', {}, 'Activity, last 30 days'), chart),
      h('section', {}, h('h2', {}, 'Recent events'), eventsTable(g.recent_events)));
    await guard(chart, async () => {
      // Events attributed to the group, and the distinct users behind them.
      const filters = { cohort: { type: 'static', count_by: { group_type: type }, ids: [key] } };
      const ask = (count_by, math) => api('POST', `${P()}/query`, { kind: 'trends', date_range: { from: '-30d' }, count_by, series: [{ math }], filters });
      const [events, users] = await Promise.all([ask({ group_type: type }, 'total'), ask('users', 'unique')]);
      lineChart(chart, events.buckets, [{ name: 'Events', data: events.series[0].data }, { name: 'Active members', data: users.series[0].data }]);
    });
  });
}

function propertiesTable(props) {
  const entries = Object.entries(props || {});
  if (!entries.length) return h('p.empty', {}, 'No properties.');
  return table(['Property', 'Value'], entries.map(([k, v]) => h('tr', {}, h('td.k', {}, k), h('td', { title: show(v) }, truncate(v, 80)))));
}

function eventsTable(events, fresh = new Set()) {
  if (!events.length) return h('p.empty', {}, 'No events yet.');
  return table(['Time', 'Event', 'Person', 'Groups', 'Properties'], events.map((e) => h(`tr${fresh.has(e.uuid) ? '.fresh' : ''}`, {},
    h('td.nowrap', { title: e.timestamp }, when(e.timestamp)),
    h('td', {}, e.event),
    h('td', {}, link(`#/person/${encodeURIComponent(e.distinct_id)}`, e.distinct_id)),
    h('td', {}, Object.entries(e.groups || {}).map(([t, ids]) => ids.map((id) => h('a.chip', { href: `#/group/${encodeURIComponent(t)}/${encodeURIComponent(id)}`, title: t }, `${t}: ${id}`)))),
    h('td.props', { title: JSON.stringify(e.properties) }, truncate(e.properties, 60)))), 'events');
}

// ---------------------------------------------------------------- persons

async function personsPage() {
  nav('persons');
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  const search = params.get('search') || '';
  const offset = Number(params.get('offset') || 0);
  const limit = 25;
  const go = (changes) => { location.hash = `#/persons?${new URLSearchParams({ search, offset: String(offset), ...changes })}`; };
  const body = h('div');
  render(h('h1', {}, 'Persons'), h('div.toolbar', {}, h('input', { type: 'search', placeholder: 'Search by id or property', value: search, 'aria-label': 'Search persons', onchange: (e) => go({ search: e.target.value, offset: '0' }) })), body);
  await guard(body, async () => {
    const q = new URLSearchParams({ limit: String(limit), offset: String(offset) });
    if (search) q.set('search', search);
    const page = await api('GET', `${P()}/persons?${q}`);
    if (!page.results.length) { body.append(h('p.empty', {}, 'No persons yet: they appear with their first event.')); return; }
    body.append(table(['Person', 'Distinct ids', 'Groups', 'Last updated'], page.results.map((p) => {
      const href = `#/person/${encodeURIComponent(p.distinct_ids[0] || p.id)}`;
      return h('tr.clickable', { onclick: () => { location.hash = href; } },
        h('td', {}, link(href, p.properties.name || p.properties.email || p.distinct_ids[0] || p.id)),
        h('td', { title: p.distinct_ids.join(', ') }, truncate(p.distinct_ids.join(', '), 50)),
        h('td', {}, Object.entries(p.group_memberships || {}).map(([t, ids]) => ids.map((id) => h('span.chip', {}, `${t}: ${id}`)))),
        h('td.nowrap', {}, when(p.updated_at)));
    })));
    body.append(h('div.pager', {},
      h('button', { disabled: offset === 0, onclick: () => go({ offset: String(Math.max(0, offset - limit)) }) }, '← Previous'),
      h('span.muted', {}, `${offset + 1}–${offset + page.results.length} of ${fmt(page.total)}`),
      h('button', { disabled: offset + limit >= page.total, onclick: () => go({ offset: String(offset + limit) }) }, 'Next →')));
  });
}

async function personPage(id) {
  nav('persons');
  const body = h('div');
  render(h('p', {}, link('#/persons', '← Persons')), body);
  await guard(body, async () => {
    const p = await api('GET', `${P()}/persons/${encodeURIComponent(id)}?events=30`);
    const name = p.properties.name || p.properties.email || p.distinct_ids[0];
    const status = h('div');
    const exportData = async () => {
      const res = await fetch(`${P()}/persons/${encodeURIComponent(p.id)}/export`, { credentials: 'same-origin', headers: { 'X-CSRF-Token': state.csrf } });
      if (!res.ok) throw new ApiError(`the export failed: the server answered ${res.status}`, res.status);
      download(`person-${p.id}.json`, await res.text(), 'application/json');
    };
    const anonymize = async () => {
      const ok = await confirmDialog(`Anonymize ${name}?`,
        'Its profile properties and its personal event fields (see the privacy settings) are removed, and its distinct ids become one pseudonym. Its events stay, so every count stays the same. This cannot be undone.',
        [{ label: 'Anonymize person', value: true, danger: true }]);
      if (!ok) return;
      const r = await api('POST', `${P()}/persons/${encodeURIComponent(p.id)}/anonymize`);
      notice = `${name} was anonymized; the person is now ${r.pseudonym}.`;
      location.hash = `#/person/${encodeURIComponent(r.pseudonym)}`;
    };
    const erase = async () => {
      const ok = await confirmDialog(`Erase ${name}?`,
        `The person, its ${p.distinct_ids.length} distinct id(s), memberships, charges and every event it sent are deleted, as if it never existed. This cannot be undone.`,
        [{ label: 'Erase person', value: true, danger: true }]);
      if (!ok) return;
      await api('DELETE', `${P()}/persons/${encodeURIComponent(p.id)}`);
      notice = `${name} was erased.`;
      location.hash = '#/persons';
    };
    const act = (fn) => async () => { try { await fn(); } catch (e) { status.replaceChildren(errorBox(e)); } };
    body.append(
      h('div.title-row', {}, h('h1', {}, name, h('span.muted.small', {}, p.identified ? ' identified' : ' anonymous')),
        h('div.spacer'),
        h('button', { onclick: act(exportData) }, 'Export'),
        h('button.danger', { onclick: act(anonymize) }, 'Anonymize…'),
        h('button.danger', { onclick: act(erase) }, 'Erase…')),
      status,
      h('div.grid2', {},
        h('section.card', {}, h('h2', {}, 'Properties'), propertiesTable(p.properties)),
        h('section.card', {}, h('h2', {}, 'Distinct ids'), h('ul', {}, p.distinct_ids.map((d) => h('li', {}, h('code', {}, d)))),
          h('h2', {}, 'Groups'),
          Object.keys(p.group_memberships || {}).length
            ? h('ul', {}, Object.entries(p.group_memberships).map(([t, ids]) => h('li', {}, `${t}: `, ids.map((k) => link(`#/group/${encodeURIComponent(t)}/${encodeURIComponent(k)}`, k)))))
            : h('p.empty', {}, 'In no group.'))),
      h('section', {}, h('h2', {}, 'Recent events'), eventsTable(p.recent_events)));
  });
}

// ---------------------------------------------------------------- events (live)

let liveTimer = null;

async function eventsPage() {
  nav('events');
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  const filters = { event: params.get('event') || '', person: params.get('person') || '', group_type: params.get('group_type') || '', group_key: params.get('group_key') || '' };
  const list = h('div');
  const status = h('span.muted.small', {}, '');
  const live = h('input', { type: 'checkbox', checked: true, 'aria-label': 'Live' });
  const form = h('form.toolbar', {
    onsubmit: (e) => {
      e.preventDefault();
      const d = new FormData(form);
      const q = new URLSearchParams();
      for (const k of Object.keys(filters)) if (d.get(k)) q.set(k, d.get(k));
      location.hash = `#/events?${q}`;
    },
  },
  h('input', { name: 'event', placeholder: 'Event name', value: filters.event, 'aria-label': 'Event name' }),
  h('input', { name: 'person', placeholder: 'Person (distinct id)', value: filters.person, 'aria-label': 'Person' }),
  h('select', { name: 'group_type', 'aria-label': 'Group type' }, h('option', { value: '' }, 'Any group'), state.groupTypes.map((t) => h('option', { value: t.group_type, selected: t.group_type === filters.group_type }, t.display_name))),
  h('input', { name: 'group_key', placeholder: 'Group key', value: filters.group_key, 'aria-label': 'Group key' }),
  h('button', { type: 'submit' }, 'Filter'),
  h('label.inline', {}, live, ' Live'), status);
  render(h('h1', {}, 'Events'), form, list);
  let known = null;
  const refresh = async () => {
    const q = new URLSearchParams({ limit: '50' });
    for (const [k, v] of Object.entries(filters)) if (v) q.set(k, v);
    try {
      const r = await api('GET', `${P()}/events?${q}`);
      const fresh = new Set(known ? r.results.filter((e) => !known.has(e.uuid)).map((e) => e.uuid) : []);
      known = new Set(r.results.map((e) => e.uuid));
      list.replaceChildren(eventsTable(r.results, fresh));
      status.textContent = `updated ${new Date().toLocaleTimeString('en-GB')}`;
    } catch (e) {
      list.replaceChildren(errorBox(e));
    }
  };
  await refresh();
  clearInterval(liveTimer);
  liveTimer = setInterval(() => {
    if (!location.hash.startsWith('#/events')) { clearInterval(liveTimer); return; }
    if (live.checked) refresh();
  }, 3000);
}

// ---------------------------------------------------------------- insights

const KINDS = [['trends', 'Trends'], ['funnel', 'Funnel'], ['retention', 'Retention'], ['stickiness', 'Stickiness'], ['lifecycle', 'Lifecycle']];
const MATHS = [['total', 'Total events'], ['unique', 'Unique actors'], ['avg_per_actor', 'Events per actor'], ['sum', 'Sum of property'], ['avg', 'Average of property'], ['median', 'Median of property'], ['p90', 'p90 of property']];
const OPERATORS = ['equals', 'not_equals', 'contains', 'not_contains', 'regex', 'is_set', 'is_not_set', 'gt', 'lt', 'in'];

function defaultQuery(kind) {
  const common = { count_by: 'users', date_range: { from: '-30d' }, interval: 'day' };
  switch (kind) {
    case 'funnel': return { kind, ...common, steps: [{ event: 'Signed In' }, { event: 'Project Created' }, { event: 'Invited Teammate' }], window: { value: 14, unit: 'day' }, order: 'ordered' };
    case 'retention': return { kind, ...common, interval: 'week', date_range: { from: '-8w' }, start: { event: 'Signed In' }, return: { event: 'Chart Created' }, cohorting: 'first_time' };
    case 'stickiness': return { kind, ...common, series: [{ event: 'Chart Created' }] };
    case 'lifecycle': return { kind, ...common, interval: 'week', date_range: { from: '-8w' }, event: { event: 'Chart Created' } };
    default: return { kind: 'trends', ...common, series: [{ event: 'Signed In', math: 'unique' }] };
  }
}

let eventNames = [];

async function loadEventNames() {
  try {
    const r = await api('GET', `${P()}/events?limit=1000`);
    eventNames = [...new Set(r.results.map((e) => e.event))].sort();
  } catch { eventNames = []; }
}

function eventInput(selector, label, onchange) {
  return h('input', { list: 'event-names', value: selector.event || '', placeholder: 'Any event', 'aria-label': label,
    onchange: (e) => { selector.event = e.target.value || undefined; onchange(); } });
}

async function insightsPage(id) {
  nav('insights');
  await loadEventNames();
  let saved = null;
  let query = defaultQuery('trends');
  if (id) {
    saved = await api('GET', `${P()}/insights/${encodeURIComponent(id)}`).catch(() => null);
    if (saved) query = saved.query;
  }
  const builder = h('div.builder');
  const result = h('div.result');
  const actors = h('div.actors');
  const run = async () => {
    result.replaceChildren(h('p.muted', {}, 'Running…'));
    actors.replaceChildren();
    try {
      const r = await api('POST', `${P()}/query`, query);
      result.replaceChildren();
      showResult(result, query, r, (extra) => showActors(actors, query, extra));
    } catch (e) {
      result.replaceChildren(errorBox(e));
    }
  };
  const draw = () => {
    builder.replaceChildren(
      h('datalist', { id: 'event-names' }, eventNames.map((n) => h('option', { value: n }))),
      h('div.tabs', {}, KINDS.map(([k, t]) => h(`button.tab${query.kind === k ? '.active' : ''}`, { type: 'button', onclick: () => { query = defaultQuery(k); draw(); run(); } }, t))),
      commonControls(query, draw),
      kindControls(query, draw),
      filterControls(query, draw),
      h('div.actions', {},
        h('button.primary', { type: 'button', onclick: run }, 'Run'),
        h('button', { type: 'button', onclick: () => saveInsight(saved, query).then((s) => { saved = s; }) }, saved ? `Save “${saved.name}”` : 'Save'),
        h('button', { type: 'button', onclick: () => addToDashboard(saved, query).then((s) => { saved = s; }) }, 'Add to dashboard')));
  };
  render(h('h1', {}, saved ? saved.name : 'New insight'), builder, result, actors);
  draw();
  await run();
}

function countByOptions(value) {
  const current = typeof value === 'object' ? value.group_type : 'users';
  return [h('option', { value: 'users', selected: current === 'users' }, 'Users'),
    ...state.groupTypes.map((t) => h('option', { value: t.group_type, selected: current === t.group_type }, t.display_name))];
}

function commonControls(q, redraw) {
  const ranges = [['-7d', 'Last 7 days'], ['-14d', 'Last 14 days'], ['-30d', 'Last 30 days'], ['-90d', 'Last 90 days'], ['-8w', 'Last 8 weeks'], ['-12m', 'Last 12 months']];
  return h('div.row', {},
    h('label', {}, 'Count by', h('select', { 'aria-label': 'Count by', onchange: (e) => { q.count_by = e.target.value === 'users' ? 'users' : { group_type: e.target.value }; redraw(); } }, countByOptions(q.count_by))),
    h('label', {}, 'Date range', h('select', { 'aria-label': 'Date range', onchange: (e) => { q.date_range = { from: e.target.value }; redraw(); } },
      ranges.map(([v, t]) => h('option', { value: v, selected: q.date_range && q.date_range.from === v }, t)))),
    h('label', {}, 'Interval', h('select', { 'aria-label': 'Interval', onchange: (e) => { q.interval = e.target.value; redraw(); } },
      ['hour', 'day', 'week', 'month'].map((v) => h('option', { value: v, selected: q.interval === v }, v)))),
    q.kind !== 'lifecycle' ? breakdownControl(q, redraw) : null);
}

function propertySource(value, onchange, label) {
  return h('select', { 'aria-label': label, onchange },
    h('option', { value: 'event', selected: value === 'event' }, 'Event property'),
    h('option', { value: 'person', selected: value === 'person' }, 'Person property'),
    state.groupTypes.map((t) => h('option', { value: `group:${t.group_type}`, selected: value === `group:${t.group_type}` }, `${t.display_name} property`)));
}

function sourceOf(v) {
  return v.startsWith('group:') ? { type: 'group', group_type: v.slice(6) } : { type: v };
}

function sourceValue(o) {
  return o.type === 'group' ? `group:${o.group_type}` : o.type;
}

function breakdownControl(q, redraw) {
  const b = q.breakdown;
  return h('label', {}, 'Breakdown',
    h('span.inline-group', {},
      propertySource(b ? sourceValue(b) : 'event', (e) => { q.breakdown = { ...(q.breakdown || { key: '' }), ...sourceOf(e.target.value) }; if (!q.breakdown.key) delete q.breakdown; redraw(); }, 'Breakdown source'),
      h('input', { placeholder: 'property (none)', value: b ? b.key : '', 'aria-label': 'Breakdown property',
        onchange: (e) => { const key = e.target.value.trim(); const src = q.breakdown ? sourceOf(sourceValue(q.breakdown)) : { type: 'event' }; q.breakdown = key ? { ...src, key } : undefined; if (!key) delete q.breakdown; redraw(); } })));
}

function kindControls(q, redraw) {
  switch (q.kind) {
    case 'trends':
      return h('div.block', {}, h('div.label', {}, 'Series'), q.series.map((s, i) => h('div.row', {},
        h('span.badge', {}, String.fromCharCode(65 + i)), eventInput(s, `Series ${i + 1} event`, redraw),
        h('select', { 'aria-label': `Series ${i + 1} math`, onchange: (e) => { s.math = e.target.value; redraw(); } }, MATHS.map(([v, t]) => h('option', { value: v, selected: (s.math || 'total') === v }, t))),
        ['sum', 'avg', 'median', 'p90'].includes(s.math) ? h('input', { placeholder: 'numeric property', value: s.property || '', 'aria-label': 'Math property', onchange: (e) => { s.property = e.target.value; } }) : null,
        q.series.length > 1 ? h('button.link', { type: 'button', onclick: () => { q.series.splice(i, 1); redraw(); } }, 'Remove') : null)),
      h('div.row', {}, h('button.link', { type: 'button', onclick: () => { q.series.push({ event: undefined, math: 'total' }); redraw(); } }, '+ Add series'),
        q.series.length > 1 ? h('label.inline', {}, 'Formula ', h('input', { placeholder: 'e.g. A / B', value: q.formula || '', 'aria-label': 'Formula', onchange: (e) => { q.formula = e.target.value || undefined; } })) : null,
        h('label.inline', {}, h('input', { type: 'checkbox', checked: !!q.compare, onchange: (e) => { q.compare = e.target.checked; } }), ' Compare to previous period')));
    case 'funnel':
      return h('div.block', {}, h('div.label', {}, 'Steps'), q.steps.map((s, i) => h('div.row', {},
        h('span.badge', {}, String(i + 1)), eventInput(s, `Step ${i + 1} event`, redraw),
        q.steps.length > 2 ? h('button.link', { type: 'button', onclick: () => { q.steps.splice(i, 1); redraw(); } }, 'Remove') : null)),
      h('div.row', {},
        q.steps.length < 20 ? h('button.link', { type: 'button', onclick: () => { q.steps.push({}); redraw(); } }, '+ Add step') : null,
        h('label.inline', {}, 'Within ', h('input.num', { type: 'number', min: 1, value: q.window.value, 'aria-label': 'Conversion window', onchange: (e) => { q.window.value = Number(e.target.value); } }),
          h('select', { 'aria-label': 'Window unit', onchange: (e) => { q.window.unit = e.target.value; } }, ['minute', 'hour', 'day', 'week', 'month'].map((u) => h('option', { value: u, selected: q.window.unit === u }, `${u}s`)))),
        h('label.inline', {}, 'Order ', h('select', { 'aria-label': 'Order', onchange: (e) => { q.order = e.target.value; } }, ['ordered', 'strict', 'unordered'].map((o) => h('option', { value: o, selected: q.order === o }, o))))));
    case 'retention':
      return h('div.block', {}, h('div.row', {},
        h('label', {}, 'Start event', eventInput(q.start, 'Start event', redraw)),
        h('label', {}, 'Return event', eventInput(q.return, 'Return event', redraw)),
        h('label', {}, 'Cohorts', h('select', { 'aria-label': 'Cohorting', onchange: (e) => { q.cohorting = e.target.value; } },
          [['first_time', 'First time'], ['recurring', 'Recurring']].map(([v, t]) => h('option', { value: v, selected: q.cohorting === v }, t))))));
    case 'stickiness':
      return h('div.block', {}, h('div.row', {}, h('label', {}, 'Event', eventInput(q.series[0], 'Event', redraw))));
    case 'lifecycle':
      return h('div.block', {}, h('div.row', {}, h('label', {}, 'Event', eventInput(q.event, 'Event', redraw))));
    default:
      return h('div');
  }
}

/** Filters: conditions combined with "and". */
function filterControls(q, redraw) {
  const items = q.filters ? (q.filters.and || [q.filters]) : [];
  const commit = () => { q.filters = items.length ? { and: items } : undefined; if (!items.length) delete q.filters; };
  return h('div.block', {}, h('div.label', {}, 'Filters'),
    items.map((f, i) => f.key === undefined ? h('div.row', {}, h('code', {}, JSON.stringify(f))) : h('div.row', {},
      propertySource(sourceValue(f), (e) => { Object.assign(f, { type: undefined, group_type: undefined }, sourceOf(e.target.value)); commit(); }, `Filter ${i + 1} source`),
      h('input', { value: f.key, placeholder: 'property', 'aria-label': `Filter ${i + 1} property`, onchange: (e) => { f.key = e.target.value; commit(); } }),
      h('select', { 'aria-label': `Filter ${i + 1} operator`, onchange: (e) => { f.operator = e.target.value; commit(); } }, OPERATORS.map((o) => h('option', { value: o, selected: f.operator === o }, o.replace(/_/g, ' ')))),
      h('input', { value: f.value === undefined ? '' : show(f.value), placeholder: 'value', 'aria-label': `Filter ${i + 1} value`,
        onchange: (e) => { const v = e.target.value; f.value = f.operator === 'in' ? v.split(',').map((x) => x.trim()) : (/^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v); commit(); } }),
      h('button.link', { type: 'button', onclick: () => { items.splice(i, 1); commit(); redraw(); } }, 'Remove'))),
    h('button.link', { type: 'button', onclick: () => { items.push({ type: 'event', key: '', operator: 'equals', value: '' }); commit(); redraw(); } }, '+ Add filter'));
}

/** Chart + numbers table + CSV for any kind; `onActors(request)` lists the actors of a mark. */
function showResult(container, q, r, onActors) {
  const chart = h('div.card.chart-box');
  const numbers = h('div');
  let rows = [];
  if (r.kind === 'trends') {
    const named = r.series.map((l) => ({ name: [l.label, l.breakdown_value, l.compare === 'previous' ? 'previous' : null].filter((x) => x !== null && x !== undefined).join(' · '), data: l.data, line: l }));
    lineChart(chart, r.buckets, named, (si, bi) => {
      const l = named[si].line;
      if (l.series === null || l.compare === 'previous') return;
      onActors({ series: l.series, bucket: bi, breakdown_value: l.breakdown_value, label: `${named[si].name} · ${shortLabel(r.buckets[bi])}` });
    });
    // One row per bucket (long ranges stay readable), one column per line.
    rows = [['Bucket', ...named.map((n) => n.name)], ...r.buckets.map((b, i) => [b, ...named.map((n) => fmt(n.data[i]))]),
      ['Whole range', ...named.map((n) => fmt(n.line.aggregated_value))]];
  } else if (r.kind === 'funnel') {
    funnelBars(chart, r.steps, (i) => onActors({ step: i, status: 'converted', label: `reached step ${i + 1} (${r.steps[i].name})` }));
    const line = (b, s) => [b, `${s.index + 1}. ${s.name}`, fmt(s.count), `${(s.conversion_from_first * 100).toFixed(1)}%`, `${(s.conversion_from_previous * 100).toFixed(1)}%`, fmt(s.dropped), s.median_seconds == null ? '' : duration(s.median_seconds), s.average_seconds == null ? '' : duration(s.average_seconds)];
    rows = [['Breakdown', 'Step', 'Count', 'From first', 'From previous', 'Dropped', 'Median time', 'Average time'], ...r.steps.map((s) => line('All', s)),
      ...r.breakdowns.flatMap((b) => b.steps.map((s) => line(b.breakdown_value === null ? '(not set)' : b.breakdown_value, s)))];
    numbers.dataset.dropped = 'true';
  } else if (r.kind === 'retention') {
    retentionTable(chart, r.rows);
    rows = [['Cohort', 'Breakdown', 'Size', ...r.buckets.map((_, p) => `+${p}`)], ...r.rows.map((row) => [row.cohort, row.breakdown_value || '', row.size, ...row.values.map((c) => c.count)])];
  } else if (r.kind === 'stickiness') {
    barChart(chart, r.intervals.map(String), r.series.map((s) => ({ name: [s.label, s.breakdown_value].filter(Boolean).join(' · '), data: s.data })));
    rows = [['Series', ...r.intervals.map((n) => `${n} ${q.interval || 'day'}${n > 1 ? 's' : ''}`)], ...r.series.map((s) => [[s.label, s.breakdown_value].filter(Boolean).join(' · '), ...s.data])];
  } else if (r.kind === 'lifecycle') {
    stackedBars(chart, r.buckets, [
      { name: 'New', data: r.new, color: '#16a34a' }, { name: 'Returning', data: r.returning, color: '#4f46e5' },
      { name: 'Resurrecting', data: r.resurrecting, color: '#d97706' }, { name: 'Dormant', data: r.dormant, color: '#dc2626' }]);
    rows = [['Bucket', 'New', 'Returning', 'Resurrecting', 'Dormant'], ...r.buckets.map((b, i) => [b, r.new[i], r.returning[i], r.resurrecting[i], r.dormant[i]])];
  }
  const [head, ...body] = rows;
  numbers.append(table(head, body.map((row) => h('tr', {}, row.map((c) => h('td', {}, String(c))))), 'numbers'));
  container.append(chart, h('div.actions', {}, h('button', { type: 'button', onclick: () => download(`${q.kind}.csv`, csv(rows)) }, 'Export CSV')), numbers);
  if (r.kind === 'funnel' && r.steps.length) {
    const drops = h('div.row.small', {}, 'Dropped off at: ', r.steps.slice(1).map((s, i) => h('button.link', { type: 'button', onclick: () => onActors({ step: i + 1, status: 'dropped', label: `dropped before step ${i + 2} (${s.name})` }) }, `step ${i + 2} (${fmt(s.dropped)})`)));
    container.insertBefore(drops, numbers);
  }
}

function duration(seconds) {
  if (seconds < 60) return `${seconds.toFixed(0)} s`;
  if (seconds < 3600) return `${(seconds / 60).toFixed(1)} min`;
  if (seconds < 86400) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} d`;
}

async function showActors(container, q, request) {
  const { label, ...wanted } = request;
  container.replaceChildren(h('h2', {}, `Actors: ${label}`), h('p.muted', {}, 'Loading…'));
  try {
    const r = await api('POST', `${P()}/query`, { ...q, actors: { ...wanted, limit: 100 } });
    const list = r.actors || [];
    const groupType = typeof q.count_by === 'object' ? q.count_by.group_type : null;
    container.replaceChildren(h('h2', {}, `Actors: ${label} (${list.length}${list.length === 100 ? '+' : ''})`),
      list.length ? h('ul.actor-list', {}, list.map((a) => h('li', {}, groupType
        ? link(`#/group/${encodeURIComponent(groupType)}/${encodeURIComponent(a.key)}`, a.name || a.key)
        : link(`#/person/${encodeURIComponent((a.distinct_ids || [])[0] || a.key)}`, (a.properties && (a.properties.name || a.properties.email)) || (a.distinct_ids || [])[0] || a.key))))
        : h('p.empty', {}, 'Nobody.'));
    container.scrollIntoView({ behavior: 'smooth', block: 'start' });
  } catch (e) {
    container.replaceChildren(errorBox(e));
  }
}

async function saveInsight(saved, query) {
  const name = prompt('Name of this insight', saved ? saved.name : '');
  if (!name) return saved;
  const body = { name, query };
  const s = saved ? await api('PUT', `${P()}/insights/${encodeURIComponent(saved.id)}`, body) : await api('POST', `${P()}/insights`, body);
  history.replaceState(null, '', `#/insights/${encodeURIComponent(s.id)}`);
  return s;
}

async function addToDashboard(saved, query) {
  const s = saved || await saveInsight(null, query);
  if (!s) return saved;
  const dashboards = (await api('GET', `${P()}/dashboards`)).results;
  const names = dashboards.map((d, i) => `${i + 1}. ${d.name}`).join('\n');
  const answer = prompt(`Add “${s.name}” to which dashboard? Type a number, or a new name:\n${names}`, dashboards.length ? '1' : 'My dashboard');
  if (!answer) return s;
  const pick = dashboards[Number(answer) - 1];
  if (pick) {
    await api('PUT', `${P()}/dashboards/${encodeURIComponent(pick.id)}`, { name: pick.name, insights: [...new Set([...pick.insights, s.id])] });
    location.hash = `#/dashboard/${encodeURIComponent(pick.id)}`;
  } else {
    const d = await api('POST', `${P()}/dashboards`, { name: answer, insights: [s.id] });
    location.hash = `#/dashboard/${encodeURIComponent(d.id)}`;
  }
  return s;
}

// ---------------------------------------------------------------- dashboards

async function dashboardsPage() {
  nav('dashboards');
  const body = h('div');
  const form = h('form.toolbar', {
    onsubmit: async (e) => {
      e.preventDefault();
      const name = new FormData(form).get('name');
      try {
        const d = await api('POST', `${P()}/dashboards`, { name, insights: [] });
        location.hash = `#/dashboard/${encodeURIComponent(d.id)}`;
      } catch (ex) { body.prepend(errorBox(ex)); }
    },
  }, h('input', { name: 'name', placeholder: 'New dashboard name', required: true, 'aria-label': 'Dashboard name' }), h('button.primary', { type: 'submit' }, 'Create dashboard'));
  render(h('h1', {}, 'Dashboards'), form, body);
  await guard(body, async () => {
    const [dashboards, insights] = await Promise.all([api('GET', `${P()}/dashboards`), api('GET', `${P()}/insights`)]);
    body.append(dashboards.results.length
      ? h('ul.cards', {}, dashboards.results.map((d) => h('li.card', {}, link(`#/dashboard/${encodeURIComponent(d.id)}`, d.name), h('span.muted.small', {}, ` ${d.insights.length} insight${d.insights.length === 1 ? '' : 's'}`))))
      : h('p.empty', {}, 'No dashboards yet. Build an insight, then “Add to dashboard”.'),
    h('h2', {}, 'Saved insights'),
    insights.results.length ? h('ul', {}, insights.results.map((i) => h('li', {}, link(`#/insights/${encodeURIComponent(i.id)}`, i.name), h('span.muted.small', {}, ` ${i.query.kind}`)))) : h('p.empty', {}, 'None saved yet.'));
  });
}

async function dashboardPage(id) {
  nav('dashboards');
  const body = h('div.dashboard');
  render(h('p', {}, link('#/dashboards', '← Dashboards')), body);
  await guard(body, async () => {
    const d = await api('GET', `${P()}/dashboards/${encodeURIComponent(id)}`);
    const insights = (await api('GET', `${P()}/insights`)).results;
    body.append(h('h1', {}, d.name));
    if (!d.insights.length) body.append(h('p.empty', {}, 'This dashboard is empty: open Insights, build one and “Add to dashboard”.'));
    const grid = h('div.tiles');
    body.append(grid);
    for (const insightId of d.insights) {
      const saved = insights.find((i) => i.id === insightId);
      const arrange = async (order) => {
        await api('PUT', `${P()}/dashboards/${encodeURIComponent(d.id)}`, { name: d.name, insights: order });
        route();
      };
      const at = d.insights.indexOf(insightId);
      const moved = (by) => {
        const order = [...d.insights];
        [order[at], order[at + by]] = [order[at + by], order[at]];
        return order;
      };
      const tile = h('section.card.tile', {}, h('div.title-row', {}, h('h2', {}, saved ? link(`#/insights/${encodeURIComponent(saved.id)}`, saved.name) : `Missing insight ${insightId}`),
        h('div.spacer'),
        at > 0 ? h('button.link', { type: 'button', title: 'Move earlier', 'aria-label': 'Move earlier', onclick: () => arrange(moved(-1)) }, '←') : null,
        at < d.insights.length - 1 ? h('button.link', { type: 'button', title: 'Move later', 'aria-label': 'Move later', onclick: () => arrange(moved(1)) }, '→') : null,
        h('button.link', { type: 'button', onclick: () => arrange(d.insights.filter((x) => x !== insightId)) }, 'Remove')));
      grid.append(tile);
      if (!saved) continue;
      await guard(tile, async () => {
        const r = await api('POST', `${P()}/query`, saved.query);
        showResult(tile, saved.query, r, (extra) => showActors(tile.appendChild(h('div')), saved.query, extra));
      });
    }
  });
}

// ---------------------------------------------------------------- settings

async function settingsPage() {
  nav('settings');
  const body = h('div');
  render(h('h1', {}, 'Project settings'), body);
  const project = state.projects.find((p) => p.name === state.project);
  if (!project) { body.append(h('p.empty', {}, 'No project.')); return; }
  body.append(h('section.card', {}, h('h2', {}, project.name),
    h('p', {}, 'Ingestion key (write-only; give it to your SDKs): ', h('code.key', {}, project.ingestion_key)),
    h('p.muted.small', {}, 'The secret key that reads the API was shown once when the project was created.')));
  body.append(h('h2', {}, 'Group types'), groupTypesTable());
  body.append(h('h2', {}, 'Privacy'));
  await guard(body, async () => body.append(await privacyForm()));
}

function groupTypesTable() {
  if (!state.groupTypes.length) return h('p.empty', {}, 'No group types yet: they appear with the first group.');
  return table(['Slot', 'Key', 'Display name', 'Groups', ''], state.groupTypes.map((t) => {
    const key = h('input', { value: t.group_type, 'aria-label': `Key of ${t.group_type}` });
    const display = h('input', { value: t.display_name, 'aria-label': `Display name of ${t.group_type}` });
    const msg = h('span.small');
    const save = async () => {
      try {
        const edit = { display_name: display.value };
        if (key.value.trim() !== t.group_type) edit.name = key.value.trim();
        await api('PATCH', `${P()}/group-types/${encodeURIComponent(t.group_type)}`, edit);
        await loadGroupTypes();
        settingsPage();
      } catch (e) { msg.replaceChildren(errorBox(e)); }
    };
    const remove = async () => {
      const ok = await confirmDialog(`Delete the group type ${t.group_type}?`,
        `Its ${fmt(t.group_count)} groups, every membership in them and the events' attribution to them are deleted; the events stay. Its slot is freed for a new type.`,
        [{ label: 'Delete group type', value: true, danger: true }]);
      if (!ok) return;
      try {
        await api('DELETE', `${P()}/group-types/${encodeURIComponent(t.group_type)}`);
        notice = `The group type ${t.group_type} was deleted.`;
        await loadGroupTypes();
        settingsPage();
      } catch (e) { msg.replaceChildren(errorBox(e)); }
    };
    return h('tr', {}, h('td', {}, String(t.index)), h('td', {}, key), h('td', {}, display), h('td', {}, fmt(t.group_count)),
      h('td', {}, h('button', { onclick: save }, 'Save'), h('button.danger', { onclick: remove }, 'Delete…'), msg));
  }));
}

async function privacyForm() {
  const s = await api('GET', `${P()}/settings/privacy`);
  const ops = ['delete', 'anonymize', 'export'];
  const boxes = ops.map((op) => h('input', { type: 'checkbox', checked: s.ingestion_key_may.includes(op), 'aria-label': `Site id may ${op}` }));
  const text = h('textarea', { rows: 3 }, s.policy_text || '');
  const url = h('input', { type: 'url', value: s.policy_url || '' });
  const fields = h('input', { value: s.personal_fields.join(', ') });
  const recreate = h('input', { type: 'checkbox', checked: s.recreate_erased, 'aria-label': 'Erased persons may start again' });
  const retention = h('input.num', { type: 'number', min: 1, max: 36500, value: s.event_retention_days ?? '' });
  const msg = h('div');
  const form = h('form.card', {
    onsubmit: async (e) => {
      e.preventDefault();
      try {
        await api('PUT', `${P()}/settings/privacy`, {
          ingestion_key_may: ops.filter((_, i) => boxes[i].checked),
          policy_text: text.value || null,
          policy_url: url.value || null,
          personal_fields: fields.value.split(',').map((f) => f.trim()).filter(Boolean),
          event_retention_days: retention.value ? Number(retention.value) : null,
          recreate_erased: recreate.checked,
        });
        msg.replaceChildren(h('p.small', {}, 'Saved.'));
      } catch (ex) { msg.replaceChildren(errorBox(ex)); }
    },
  },
  h('div.label', {}, 'What the ingestion key (site id) may ask for on /api/sdk/gdpr/*'),
  h('div', {}, ops.map((op, i) => h('label.inline', {}, boxes[i], ` ${op}`))),
  h('label', {}, 'Privacy policy text', text),
  h('label', {}, 'Privacy policy link', url),
  h('label', {}, 'Personal event fields removed by anonymization (comma-separated)', fields),
  h('label.inline', {}, recreate, ' A later event under an erased person\'s id starts a new person (unticked: it is dropped)'),
  h('label', {}, 'Keep events for this many days (empty: forever; older events are dropped every hour)', retention),
  h('div.actions', {}, h('button.primary', { type: 'submit' }, 'Save privacy settings')), msg);
  return form;
}

// ---------------------------------------------------------------- router

async function route() {
  const path = location.hash.replace(/^#/, '').split('?')[0];
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  try {
    if (!state.csrf) {
      const s = await loadSession();
      if (!s.signed_in) {
        if (s.setup_needed) return setupPage(s.setup_token_required);
        return loginPage();
      }
    }
    if (parts[0] === 'login' || parts[0] === 'setup') { location.hash = '#/groups'; return undefined; }
    if (!state.projects.length) await loadProjects();
    switch (parts[0]) {
      case 'group': return await groupPage(parts[1], parts[2]);
      case 'persons': return await personsPage();
      case 'person': return await personPage(parts[1]);
      case 'events': return await eventsPage();
      case 'insights': return await insightsPage(parts[1]);
      case 'dashboards': return await dashboardsPage();
      case 'dashboard': return await dashboardPage(parts[1]);
      case 'settings': return await settingsPage();
      default: return await groupsPage(parts[1]);
    }
  } catch (e) {
    render(errorBox(e));
    return undefined;
  }
}

window.addEventListener('hashchange', route);
route();
