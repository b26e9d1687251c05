// The troupe dashboard: a small single-page app over troupe's own JSON API (the same routes
// scripts call). Hash routes, no build step. Pages: setup, sign in, groups, group profile,
// persons, person profile, events, insights (builder.js), dashboards, settings. Shared helpers
// are in lib.js, charts in charts.js.

import {
  state, api, ApiError, P, h, truncate, show, when, errorBox, render, guard, link, table, download, confirmDialog,
  picker, eventItems, bucketLabel, catalog, modal,
} from '/assets/lib.js';
import { seriesChart, fmt } from '/assets/charts.js';
import { insightsPage, showResult, showActors } from '/assets/builder.js';
import { cohortsPage, cohortPage } from '/assets/cohorts.js';
import { adminSections, accountSection, invitePage } from '/assets/team.js';

// ---------------------------------------------------------------- shell

async function loadSession() {
  const s = await api('GET', '/api/session');
  state.csrf = s.csrf || '';
  state.email = s.email || '';
  state.instanceAdmin = !!s.instance_admin;
  state.roles = s.roles || {};
  return s;
}

/** The signed-in user's role in the chosen project; the page hides what it does not allow
 * (`.needs-edit`, `.needs-admin`), and the API refuses it anyway. */
function applyRole() {
  const project = state.projects.find((p) => p.name === state.project);
  state.role = project ? state.roles[String(project.id)] || '' : '';
  document.body.dataset.role = state.role;
}

async function loadProjects() {
  const p = await api('GET', '/api/projects');
  state.projects = p.results;
  const saved = localStorage.getItem('troupe.project');
  state.project = state.projects.some((x) => x.name === saved) ? saved : (state.projects[0] || {}).name || '';
  applyRole();
  await loadGroupTypes();
}

async function loadGroupTypes() {
  state.groupTypes = state.project ? (await api('GET', `${P()}/group-types`)).results : [];
  state.timezone = state.project ? (await api('GET', `${P()}/settings/general`).catch(() => ({ timezone: 'UTC' }))).timezone : 'UTC';
}

function nav(active) {
  const bar = document.getElementById('nav');
  bar.hidden = false;
  const items = [['groups', 'Groups'], ['persons', 'Persons'], ['events', 'Events'], ['insights', 'Insights'], ['cohorts', 'Cohorts'], ['dashboards', 'Dashboards'], ['settings', 'Settings']];
  const select = h('select', {
    'aria-label': 'Project',
    onchange: async (e) => {
      state.project = e.target.value;
      localStorage.setItem('troupe.project', state.project);
      applyRole();
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
  const chosen = chosenColumns(current);
  const tools = h('div.toolbar', {},
    h('input', { type: 'search', placeholder: 'Search key, name or property', value: search, 'aria-label': 'Search groups',
      onchange: (e) => go({ search: e.target.value, offset: '0' }) }),
    h('button', { onclick: () => chooseColumns(current, chosen) }, 'Columns…'),
    h('div.spacer'),
    h('button.primary.needs-edit', { onclick: () => groupForm(current, null) }, 'New group'));
  const body = h('div');
  render(h('h1', {}, 'Groups'), tabs, tools, body);
  await guard(body, async () => {
    const q = new URLSearchParams({ type: current, sort, order, limit: String(limit), offset: String(offset), activity: 'true' });
    if (search) q.set('search', search);
    const page = await api('GET', `${P()}/groups?${q}`);
    if (!page.results.length) {
      body.append(h('p.empty', {}, search ? `No ${current} matches “${search}”.` : `No ${current} yet. Create one, or send a group from your app.`));
      return;
    }
    const columns = chosen.length ? chosen : defaultColumns(page.results);
    // Headers the server sorts by toggle the order; the others describe the page only.
    const sortable = (label, field) => h('th', { 'aria-sort': sort === field ? (order === 'asc' ? 'ascending' : 'descending') : 'none' },
      h('button.sort', { type: 'button', onclick: () => go(sort === field ? { order: order === 'desc' ? 'asc' : 'desc' } : { sort: field, order: field === 'key' || field === 'name' ? 'asc' : 'desc' }) },
        label, sort === field ? (order === 'asc' ? ' ↑' : ' ↓') : ''));
    const head = h('tr', {}, sortable('Key', 'key'), sortable('Name', 'name'), h('th', {}, 'Members'), h('th', {}, 'Last seen'),
      h('th', { title: `events in the last ${page.days} days` }, `Events (${page.days} d)`),
      columns.map((c) => h('th', {}, c)), sortable('Last updated', 'updated_at'), sortable('Created', 'created_at'));
    const rows = page.results.map((g) => {
      const href = `#/group/${encodeURIComponent(g.group_type)}/${encodeURIComponent(g.key)}`;
      return h('tr.clickable', { onclick: () => { location.hash = href; } },
        h('td', {}, link(href, g.key)), h('td', {}, g.name || ''), h('td.num', {}, fmt(g.member_count)),
        h('td.nowrap', { title: g.last_seen || 'no event in the window' }, g.last_seen ? when(g.last_seen) : '–'), h('td.num', {}, fmt(g.events)),
        columns.map((c) => h('td.prop', { title: g.properties[c] === undefined ? '' : show(g.properties[c]) }, g.properties[c] === undefined ? '' : truncate(g.properties[c], 28))),
        h('td.nowrap', { title: g.updated_at }, when(g.updated_at)), h('td.nowrap', { title: g.created_at }, when(g.created_at)));
    });
    body.append(h('div.table-wrap', {}, h('table.groups', {}, h('thead', {}, head), h('tbody', {}, rows))));
    body.append(h('div.pager', {},
      h('button', { disabled: offset === 0, onclick: () => go({ offset: String(Math.max(0, offset - limit)) }) }, '← Previous'),
      h('span.muted', {}, `${offset + 1}–${offset + page.results.length} of ${fmt(page.total)}`),
      h('button', { disabled: offset + limit >= page.total, onclick: () => go({ offset: String(offset + limit) }) }, 'Next →')));
  });
}

/** The property columns chosen for a group type's list (kept in this browser). */
function chosenColumns(type) {
  try { return JSON.parse(localStorage.getItem(`troupe.columns.${state.project}.${type}`) || '[]'); } catch { return []; }
}

/** Until columns are chosen: the three properties most of the page's groups have, besides the name. */
function defaultColumns(groups) {
  const seen = new Map();
  for (const g of groups) for (const k of Object.keys(g.properties)) if (k !== 'name') seen.set(k, (seen.get(k) || 0) + 1);
  return [...seen.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, 3).map(([k]) => k);
}

async function chooseColumns(type, chosen) {
  const keys = (await catalog.properties(`group:${type}`).catch(() => [])).map((k) => k.key).filter((k) => k !== 'name');
  const boxes = keys.map((k) => h('input', { type: 'checkbox', checked: chosen.includes(k), value: k, 'aria-label': `Column ${k}` }));
  const picked = await modal(`Columns of ${type}`, h('div.columns', {},
    keys.length ? keys.map((k, i) => h('label.inline', {}, boxes[i], ` ${k}`)) : h('p.empty', {}, 'No properties seen yet.')),
  [{ label: 'Show these', primary: true, value: true }], () => boxes.filter((b) => b.checked).map((b) => b.value));
  if (!picked) return;
  localStorage.setItem(`troupe.columns.${state.project}.${type}`, JSON.stringify(picked));
  route();
}

function emptyGroups() {
  const key = (state.projects.find((p) => p.name === state.project) || {}).ingestion_key || 'tri_…';
  return h('div.empty', {},
    h('p', {}, 'No groups yet. Put a user in a company from your app, or create a group here once a type exists:'),
    h('pre', {}, `curl -s ${location.origin}/api/sdk/groups/set_group -H "X-Trodo-Site-Id: ${key}" \\
  -d '{"userId": "ada@acme.io", "groupKey": "company", "groupId": "acme"}'
curl -s ${location.origin}/api/events -H "X-Trodo-Site-Id: ${key}" \\
  -d '{"event_name": "Signed In", "user_id": "ada@acme.io"}'`),
    h('button.primary.needs-edit', { onclick: () => groupForm('company', null) }, 'Create a company'));
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

/** A group as an account: who it is, how active, its members by last seen, its related groups. */
async function groupPage(type, key) {
  nav('groups');
  const body = h('div');
  render(h('p', {}, link(`#/groups/${encodeURIComponent(type)}`, `← ${type}`)), body);
  await guard(body, async () => {
    const base = `${P()}/groups/${encodeURIComponent(type)}/${encodeURIComponent(key)}`;
    const [g, act] = await Promise.all([api('GET', `${base}?events=20`), api('GET', `${base}/activity?days=30`)]);
    const chart = h('div.card');
    const members = h('div');
    const groupLink = (r) => h('a.chip', { href: `#/group/${encodeURIComponent(r.group_type)}/${encodeURIComponent(r.key)}` }, `${r.group_type}: ${r.name || r.key}`);
    const parents = act.related.filter((r) => r.relation === 'parent');
    const children = act.related.filter((r) => r.relation === 'child');
    body.append(
      h('div.title-row', {}, h('h1', {}, g.name || g.key, h('span.muted.small', {}, ` ${type} · ${g.key}`)),
        h('div.spacer'),
        h('button.needs-edit', { onclick: () => groupForm(type, g) }, 'Edit'),
        h('button.needs-admin', { onclick: async () => {
          const res = await fetch(`${base}/export`, { credentials: 'same-origin', headers: { 'X-CSRF-Token': state.csrf } });
          if (res.ok) download(`group-${type}-${key}.json`, await res.text(), 'application/json');
        } }, 'Export'),
        h('button.danger.needs-admin', { onclick: async () => {
          const events = await confirmDialog(`Erase ${g.name || key}?`,
            `The ${type} ${key}, its profile and every membership in it are erased. Its events can stay (they belong to people) without ${key} in their attribution, or go with it.`,
            [{ label: 'Erase, keep its events', value: 'detach', danger: true }, { label: 'Erase with its events', value: 'delete', danger: true }]);
          if (!events) return;
          await api('DELETE', `${base}?events=${events}`);
          state.notice = `${type} ${key} was erased.`;
          await loadGroupTypes();
          location.hash = `#/groups/${encodeURIComponent(type)}`;
        } }, 'Erase…')),
      parents.length || children.length ? h('p.related', {}, parents.length ? ['Part of ', parents.map(groupLink)] : '',
        children.length ? [parents.length ? ' · ' : '', `${children.length} related: `, children.map(groupLink)] : '') : '',
      h('div.stats', {},
        stat('Last seen', act.last_seen ? when(act.last_seen) : `not in ${act.days} days`, 'last-seen'),
        stat(`Events, ${act.days} days`, fmt(act.events), 'events'),
        stat(`Active members, ${act.days} days`, fmt(act.active_members), 'active-members'),
        stat('Members', fmt(act.member_count), 'members')),
      h('section', {}, h('h2', {}, 'Events and active members per day'), chart),
      h('div.grid2', {},
        h('section.card', {}, h('h2', {}, `Top events, ${act.days} days`), act.top_events.length
          ? table(['Event', 'Count'], act.top_events.map((e) => h('tr', {}, h('td', {}, e.event), h('td.num', {}, fmt(e.count)))), 'top-events')
          : h('p.empty', {}, 'No events in this window.')),
        h('section.card', {}, h('h2', {}, 'Properties'), propertiesTable(g.properties),
          h('p.muted.small', {}, `Created ${when(g.created_at)} · updated ${when(g.updated_at)}`))),
      h('section', {}, h('h2', {}, `Members (${fmt(act.member_count)})`), members),
      h('section', {}, h('h2', {}, 'Recent events'), eventsTable(g.recent_events)));
    await guard(chart, async () => {
      // Events attributed to the group, and the distinct users behind them.
      const filters = { cohort: { type: 'static', count_by: { group_type: type }, ids: [key] } };
      const ask = (count_by, math) => api('POST', `${P()}/query`, { kind: 'trends', date_range: { from: `-${act.days}d` }, count_by, series: [{ math }], filters });
      const [events, users] = await Promise.all([ask({ group_type: type }, 'total'), ask('users', 'unique')]);
      seriesChart(chart, { labels: events.buckets, format: (b) => bucketLabel(b, 'day'), series: [{ name: 'Events', data: events.series[0].data }, { name: 'Active members', data: users.series[0].data }] });
    });
    let offset = 0;
    const page = async () => {
      const r = await api('GET', `${base}/members?limit=25&offset=${offset}`);
      if (!r.results.length) { members.replaceChildren(h('p.empty', {}, 'Nobody is in this group right now.')); return; }
      members.replaceChildren(...[table(['Person', 'Email', `Last seen (${r.days} d)`, `Events (${r.days} d)`], r.results.map((m) => h('tr', {},
        h('td', {}, link(`#/person/${encodeURIComponent(m.distinct_ids[0] || m.id)}`, m.properties.name || m.properties.email || m.distinct_ids[0] || m.id)),
        h('td', {}, m.properties.email || ''), h('td.nowrap', {}, m.last_seen ? when(m.last_seen) : '–'), h('td.num', {}, fmt(m.events)))), 'members-table'),
      r.total > 25 ? h('div.pager', {},
        h('button', { disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - 25); page(); } }, '← Previous'),
        h('span.muted', {}, `${offset + 1}–${offset + r.results.length} of ${fmt(r.total)}`),
        h('button', { disabled: offset + 25 >= r.total, onclick: () => { offset += 25; page(); } }, 'Next →')) : null].filter(Boolean));
    };
    await guard(members, page);
  });
}

/** Memberships as chips, each linking to its group. */
function groupChips(memberships) {
  return Object.entries(memberships || {}).map(([t, ids]) => ids.map((id) => h('a.chip', {
    href: `#/group/${encodeURIComponent(t)}/${encodeURIComponent(id)}`, title: `${t} ${id}`, onclick: (e) => e.stopPropagation(),
  }, `${t}: ${id}`)));
}

function stat(label, value, name) {
  return h('div.stat.card', { 'data-stat': name }, h('strong', {}, value), h('span.muted.small', {}, label));
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
    const q = new URLSearchParams({ limit: String(limit), offset: String(offset), activity: 'true' });
    if (search) q.set('search', search);
    const page = await api('GET', `${P()}/persons?${q}`);
    if (!page.results.length) { body.append(h('p.empty', {}, 'No persons yet: they appear with their first event.')); return; }
    body.append(table(['Person', 'Email', 'Groups', `Last seen (${page.days} d)`, `Events (${page.days} d)`, 'Distinct ids'], page.results.map((p) => {
      const href = `#/person/${encodeURIComponent(p.distinct_ids[0] || p.id)}`;
      return h('tr.clickable', { onclick: () => { location.hash = href; } },
        h('td', {}, link(href, p.properties.name || p.properties.email || p.distinct_ids[0] || p.id)),
        h('td', {}, p.properties.email || ''),
        h('td', {}, groupChips(p.group_memberships)),
        h('td.nowrap', {}, p.last_seen ? when(p.last_seen) : '–'), h('td.num', {}, fmt(p.events)),
        h('td', { title: p.distinct_ids.join(', ') }, truncate(p.distinct_ids.join(', '), 40)));
    }), 'persons'));
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
      state.notice = `${name} was anonymized; the person is now ${r.pseudonym}.`;
      location.hash = `#/person/${encodeURIComponent(r.pseudonym)}`;
    };
    const erase = async () => {
      const ok = await confirmDialog(`Erase ${name}?`,
        `The person, its ${p.distinct_ids.length} distinct id(s), memberships, charges and every event it sent are deleted, as if it never existed. This cannot be undone.`,
        [{ label: 'Erase person', value: true, danger: true }]);
      if (!ok) return;
      await api('DELETE', `${P()}/persons/${encodeURIComponent(p.id)}`);
      state.notice = `${name} was erased.`;
      location.hash = '#/persons';
    };
    const act = (fn) => async () => { try { await fn(); } catch (e) { status.replaceChildren(errorBox(e)); } };
    body.append(
      h('div.title-row', {}, h('h1', {}, name, h('span.muted.small', {}, p.identified ? ' identified' : ' anonymous')),
        h('div.spacer'),
        h('button.needs-admin', { onclick: act(exportData) }, 'Export'),
        h('button.danger.needs-admin', { onclick: act(anonymize) }, 'Anonymize…'),
        h('button.danger.needs-admin', { onclick: act(erase) }, 'Erase…')),
      status,
      h('div.grid2', {},
        h('section.card', {}, h('h2', {}, 'Properties'), propertiesTable(p.properties)),
        h('section.card', {}, h('h2', {}, 'Distinct ids'), h('ul', {}, p.distinct_ids.map((d) => h('li', {}, h('code', {}, d)))),
          h('h2', {}, 'Groups'),
          Object.keys(p.group_memberships || {}).length
            ? h('div.chips', {}, groupChips(p.group_memberships))
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
      for (const k of Object.keys(filters)) {
        const v = k === 'event' ? filters.event : d.get(k);
        if (v) q.set(k, v);
      }
      location.hash = `#/events?${q}`;
    },
  },
  picker({ value: filters.event, placeholder: 'Any event', label: 'Event name', load: eventItems, unknown: 'no such event in the last 90 days',
    onpick: (v) => { filters.event = v; } }),
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

// ---------------------------------------------------------------- dashboards

async function dashboardsPage() {
  nav('dashboards');
  const body = h('div');
  const form = h('form.toolbar.needs-edit', {
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
        at > 0 ? h('button.link.needs-edit', { type: 'button', title: 'Move earlier', 'aria-label': 'Move earlier', onclick: () => arrange(moved(-1)) }, '←') : null,
        at < d.insights.length - 1 ? h('button.link.needs-edit', { type: 'button', title: 'Move later', 'aria-label': 'Move later', onclick: () => arrange(moved(1)) }, '→') : null,
        h('button.link.needs-edit', { type: 'button', onclick: () => arrange(d.insights.filter((x) => x !== insightId)) }, 'Remove')));
      grid.append(tile);
      if (!saved) continue;
      await guard(tile, async () => {
        const r = await api('POST', `${P()}/query`, saved.query);
        const actors = h('div.actors');
        showResult(tile, saved.query, saved.view || {}, r, (extra) => showActors(actors, saved.query, extra), { tile: true });
        tile.append(actors);
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
    h('p', {}, 'Ingestion key (write-only; give it to your SDKs): ', h('code.key', { 'data-current-ingestion-key': '' }, project.ingestion_key)),
    h('p.muted.small', {}, state.role === 'admin' ? 'Secret keys that read the API are under Keys below.' : 'Secret keys that read the API are managed by the project\'s admins.')));
  body.append(h('h2', {}, 'Install'), installSnippets(project.ingestion_key));
  body.append(h('h2', {}, 'Time zone'), timezoneForm());
  body.append(h('h2', {}, 'Group types'), groupTypesTable());
  body.append(h('h2', {}, 'Privacy'));
  await guard(body, async () => body.append(await privacyForm()));
  if (state.role === 'admin') await adminSections(body, project);
  await accountSection(body);
}

/** How to send this project's events: the browser SDK this troupe serves, and the Rust SDK. */
function installSnippets(key) {
  const host = location.origin;
  const web = `<script src="${host}/sdk.js"></script>
<script>
  troupe.init('${key}', { host: '${host}' });
  troupe.page();
  // after sign-in:
  // troupe.identify('user@example.com').then(() => troupe.set_group('company', 'acme'));
</script>`;
  const rust = `let troupe = troupe_sdk::Client::new(troupe_sdk::Config::new("${host}", "${key}"));
let user = troupe.for_user("user@example.com");
user.set_group("company", ["acme"])?;
user.track("Signed In", serde_json::json!({}))?;`;
  const block = (title, code, name) => h('div', {}, h('div.title-row', {}, h('h3.small', {}, title), h('div.spacer'),
    h('button', { type: 'button', onclick: async (e) => { await navigator.clipboard?.writeText(code).catch(() => {}); e.target.textContent = 'Copied'; } }, 'Copy')),
  h('pre', { 'data-snippet': name }, code));
  return h('section.card', {}, h('p.muted.small', {}, 'Paste into your site (before </body>) or your Rust backend; see docs/sdk-browser.md and the troupe-sdk crate.'),
    block('Browser (served by this troupe at /sdk.js)', web, 'browser'), block('Rust server (crate troupe-sdk)', rust, 'rust'));
}

/** The project's timezone: insights' days and every time shown. */
function timezoneForm() {
  const zones = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
  if (!zones.includes('UTC')) zones.unshift('UTC');
  const zone = h('select', { 'aria-label': 'Project time zone', disabled: state.role !== 'admin' }, zones.map((z) => h('option', { value: z, selected: z === state.timezone }, z)));
  const msg = h('div');
  return h('form.card', {
    onsubmit: async (e) => {
      e.preventDefault();
      try {
        const saved = await api('PUT', `${P()}/settings/general`, { timezone: zone.value });
        state.timezone = saved.timezone;
        msg.replaceChildren(h('p.small', {}, `Saved: days are now cut and times shown in ${saved.timezone}.`));
      } catch (ex) { msg.replaceChildren(errorBox(ex)); }
    },
  },
  h('label', {}, 'Insights count days, weeks and months in this zone, and the dashboard shows times in it', zone),
  h('div.actions.needs-admin', {}, h('button.primary', { type: 'submit' }, 'Save time zone')), msg);
}

function groupTypesTable() {
  if (!state.groupTypes.length) return h('p.empty', {}, 'No group types yet: they appear with the first group.');
  return table(['Slot', 'Key', 'Display name', 'Groups', ''], state.groupTypes.map((t) => {
    const readOnly = state.role !== 'admin';
    const key = h('input', { value: t.group_type, 'aria-label': `Key of ${t.group_type}`, readonly: readOnly });
    const display = h('input', { value: t.display_name, 'aria-label': `Display name of ${t.group_type}`, readonly: readOnly });
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
        state.notice = `The group type ${t.group_type} was deleted.`;
        await loadGroupTypes();
        settingsPage();
      } catch (e) { msg.replaceChildren(errorBox(e)); }
    };
    return h('tr', {}, h('td', {}, String(t.index)), h('td', {}, key), h('td', {}, display), h('td', {}, fmt(t.group_count)),
      h('td.needs-admin', {}, h('button', { onclick: save }, 'Save'), h('button.danger', { onclick: remove }, 'Delete…'), msg));
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
  state.role === 'admin' ? '' : h('p.muted.small', {}, 'Only the project\'s admins change these.'),
  h('div.label', {}, 'What the ingestion key (site id) may ask for on /api/sdk/gdpr/*'),
  h('div', {}, ops.map((op, i) => h('label.inline', {}, boxes[i], ` ${op}`))),
  h('label', {}, 'Privacy policy text', text),
  h('label', {}, 'Privacy policy link', url),
  h('label', {}, 'Personal event fields removed by anonymization (comma-separated)', fields),
  h('label.inline', {}, recreate, ' A later event under an erased person\'s id starts a new person (unticked: it is dropped)'),
  h('label', {}, 'Keep events for this many days (empty: forever; older events are dropped every hour)', retention),
  h('div.actions.needs-admin', {}, h('button.primary', { type: 'submit' }, 'Save privacy settings')), msg);
  if (state.role !== 'admin') form.querySelectorAll('input, textarea').forEach((field) => { field.disabled = true; });
  return form;
}

// ---------------------------------------------------------------- router

async function route() {
  const path = location.hash.replace(/^#/, '').split('?')[0];
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  try {
    if (parts[0] === 'invite') {
      return await invitePage(parts[1], async () => { await loadSession(); state.projects = []; location.hash = '#/groups'; });
    }
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
      case 'insights': nav('insights'); return await insightsPage(parts[1]);
      case 'cohorts': nav('cohorts'); return await cohortsPage();
      case 'cohort': nav('cohorts'); return await cohortPage(parts[1]);
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
