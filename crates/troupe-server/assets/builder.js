// The insight builder: the question (kind, series or steps, count by, dates, breakdown, filters)
// picked from what the data holds, kept in the URL (shareable, Back and reload keep it), re-run
// on every change with the old answer marked stale meanwhile; saving, saving as new, renaming and
// adding to a chosen dashboard. `showResult` draws an answer here and on dashboard tiles.

import {
  state, api, P, h, render, errorBox, table, download, csv, link, modal, askName, show,
  bucketLabel, day, picker, eventItems, propertyItems, valueItems, catalog,
} from '/assets/lib.js';
import { seriesChart, bigNumbers, changeBadge, stackedBars, funnelBars, retentionTable, pathsChart, fmt } from '/assets/charts.js';

const KINDS = [['trends', 'Trends'], ['funnel', 'Funnel'], ['retention', 'Retention'], ['stickiness', 'Stickiness'], ['lifecycle', 'Lifecycle'], ['paths', 'Paths']];
const MATHS = [['total', 'Total events'], ['unique', 'Unique actors'], ['weekly_active', 'Weekly active'], ['monthly_active', 'Monthly active'],
  ['avg_per_actor', 'Events per actor'], ['sum', 'Sum of property'], ['avg', 'Average of property'], ['min', 'Minimum of property'],
  ['max', 'Maximum of property'], ['median', 'Median of property'], ['p90', 'p90 of property']];
const PROPERTY_MATHS = ['sum', 'avg', 'min', 'max', 'median', 'p90'];
const OPERATORS = [['equals', '='], ['not_equals', '≠'], ['contains', 'contains'], ['not_contains', 'does not contain'], ['regex', 'matches regex'],
  ['is_set', 'is set'], ['is_not_set', 'is not set'], ['gt', '>'], ['lt', '<'], ['in', 'is one of']];
const RANGES = [['-24h', 'Last 24 hours'], ['-7d', 'Last 7 days'], ['-14d', 'Last 14 days'], ['-30d', 'Last 30 days'], ['-90d', 'Last 90 days'],
  ['-8w', 'Last 8 weeks'], ['-6m', 'Last 6 months'], ['-12m', 'Last 12 months']];
const CHARTS = [['line', 'Line'], ['area', 'Area'], ['bar', 'Bar'], ['stacked', 'Stacked bar'], ['number', 'Number'], ['table', 'Table']];
const FUNNEL_VIEWS = [['steps', 'Steps'], ['time', 'Time to convert'], ['trend', 'Conversion over time']];

/** A first question, from the project's most frequent events. */
export function defaultQuery(kind, names = []) {
  const [a = 'Signed In', b = a, c = b] = names;
  const common = { count_by: 'users', date_range: { from: '-30d' }, interval: 'day' };
  switch (kind) {
    case 'funnel': return { kind, ...common, steps: [{ event: a }, { event: b }, { event: c }], window: { value: 14, unit: 'day' }, order: 'ordered' };
    case 'retention': return { kind, ...common, interval: 'week', date_range: { from: '-8w' }, start: { event: a }, return: { event: b }, cohorting: 'first_time' };
    case 'stickiness': return { kind, ...common, series: [{ event: a }] };
    case 'lifecycle': return { kind, ...common, interval: 'week', date_range: { from: '-8w' }, event: { event: a } };
    case 'paths': return { kind, ...common, start: { event: a }, step_limit: 5 };
    default: return { kind: 'trends', ...common, series: [{ event: a, math: 'unique' }] };
  }
}

/** The question as sent: without what the builder holds while it is being filled in. */
export function clean(query) {
  const q = JSON.parse(JSON.stringify(query));
  if (q.breakdown && !q.breakdown.key) delete q.breakdown;
  const keep = (f) => f.key === undefined || f.key !== '';
  if (q.filters && q.filters.and) {
    q.filters.and = q.filters.and.filter(keep);
    if (!q.filters.and.length) delete q.filters;
  }
  if (!q.formula) delete q.formula;
  if (!q.compare) delete q.compare;
  if (!q.cumulative) delete q.cumulative;
  for (const s of q.series || []) if (!s.event) delete s.event;
  for (const s of q.steps || []) if (!s.event) delete s.event;
  return q;
}

// ---------------------------------------------------------------- the URL

/** `#/insights[/id]?q=<question>&v=<view>`: a question is a link. */
export function insightHref(id, query, view) {
  const params = new URLSearchParams({ q: JSON.stringify(clean(query)) });
  if (view && Object.keys(view).length) params.set('v', JSON.stringify(view));
  return `#/insights${id ? `/${encodeURIComponent(id)}` : ''}?${params}`;
}

function fromUrl() {
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  if (!params.get('q')) return null;
  try {
    return { query: JSON.parse(params.get('q')), view: params.get('v') ? JSON.parse(params.get('v')) : {} };
  } catch {
    return { error: 'The link’s question is not readable JSON; showing a new insight instead.' };
  }
}

// ---------------------------------------------------------------- the page

/** The project's saved cohorts, for cohort filters (read when the builder opens). */
let cohortList = [];

export async function insightsPage(id) {
  const names = (await catalog.events().catch(() => [])).map((n) => n.name);
  cohortList = (await api('GET', `${P()}/cohorts`).catch(() => ({ results: [] }))).results;
  let saved = null;
  if (id) {
    try { saved = await api('GET', `${P()}/insights/${encodeURIComponent(id)}`); } catch (e) { render(errorBox(e)); return; }
  }
  const linked = fromUrl();
  let query = (linked && linked.query) || (saved && saved.query) || defaultQuery('trends', names);
  let view = (linked && linked.view) || (saved && saved.view) || {};

  const title = h('div.title-row');
  const builder = h('div.builder', { 'aria-label': 'Insight builder' });
  const status = h('p.status.small', { role: 'status' });
  const result = h('div.result');
  const actors = h('div.actors');
  render(title, linked && linked.error ? errorBox(linked.error) : '', builder, status, result, actors);

  const savedState = () => saved && JSON.stringify([clean(saved.query), saved.view || {}]);
  const dirty = () => !saved || JSON.stringify([clean(query), view]) !== savedState();

  const drawTitle = () => {
    title.replaceChildren(...[
      h('h1', {}, saved ? saved.name : 'New insight', saved && dirty() ? h('span.badge.unsaved', { title: 'changed since it was saved' }, 'unsaved changes') : ''),
      h('div.spacer'),
      h('button.primary.needs-edit', { type: 'button', onclick: () => act(save), disabled: saved && !dirty() }, 'Save'),
      saved ? h('button.needs-edit', { type: 'button', onclick: () => act(saveAsNew) }, 'Save as new') : null,
      saved ? h('button.needs-edit', { type: 'button', onclick: () => act(rename) }, 'Rename') : null,
      h('button.needs-edit', { type: 'button', onclick: () => act(addToDashboard) }, 'Add to dashboard…')].filter(Boolean));
  };
  const act = async (fn) => { try { await fn(); } catch (e) { status.replaceChildren(errorBox(e)); } };

  const body = () => ({ name: saved ? saved.name : '', query: clean(query), view });
  const adopt = (s) => {
    saved = s;
    history.replaceState(null, '', insightHref(s.id, query, view));
    drawTitle();
  };
  async function save() {
    if (saved) return adopt(await api('PUT', `${P()}/insights/${encodeURIComponent(saved.id)}`, body()));
    const name = await askName('Save insight', suggestName(query), 'Save');
    if (name) adopt(await api('POST', `${P()}/insights`, { ...body(), name }));
    return undefined;
  }
  async function saveAsNew() {
    const name = await askName('Save as a new insight', `${saved.name} (copy)`, 'Save as new');
    if (name) adopt(await api('POST', `${P()}/insights`, { ...body(), name }));
  }
  async function rename() {
    const name = await askName('Rename insight', saved.name, 'Rename');
    if (!name) return;
    // Only the name changes: edits not saved stay edits.
    saved = await api('PUT', `${P()}/insights/${encodeURIComponent(saved.id)}`, { name, query: saved.query, view: saved.view || {} });
    drawTitle();
  }
  async function addToDashboard() {
    const dashboards = (await api('GET', `${P()}/dashboards`)).results;
    const choice = await dashboardDialog(dashboards, saved, dirty(), suggestName(query));
    if (!choice) return;
    let insight = saved;
    if (!saved || choice.asNew) insight = await api('POST', `${P()}/insights`, { ...body(), name: choice.insightName });
    else if (dirty()) insight = await api('PUT', `${P()}/insights/${encodeURIComponent(saved.id)}`, body());
    adopt(insight);
    let dashboard;
    if (choice.dashboard) {
      const d = dashboards.find((x) => x.id === choice.dashboard);
      dashboard = await api('PUT', `${P()}/dashboards/${encodeURIComponent(d.id)}`, { name: d.name, insights: [...new Set([...d.insights, insight.id])] });
    } else {
      dashboard = await api('POST', `${P()}/dashboards`, { name: choice.dashboardName, insights: [insight.id] });
    }
    location.hash = `#/dashboard/${encodeURIComponent(dashboard.id)}`;
  }

  // Every edit: a new URL (Back steps through edits), the title's "unsaved", a re-run.
  let seq = 0;
  let timer = null;
  const changed = (redraw = true) => {
    const href = insightHref(saved && saved.id, query, view);
    if (location.hash !== href) history.pushState(null, '', href);
    if (redraw) drawBuilder();
    drawTitle();
    clearTimeout(timer);
    result.classList.add('stale');
    status.textContent = 'Changed: updating…';
    timer = setTimeout(run, 250);
  };
  const run = async () => {
    const mine = ++seq;
    result.classList.add('stale');
    status.textContent = 'Updating…';
    actors.replaceChildren();
    try {
      const asked = clean(query);
      const r = await api('POST', `${P()}/query`, asked);
      if (mine !== seq) return;
      result.replaceChildren();
      result.classList.remove('stale');
      status.textContent = '';
      showResult(result, asked, view, r, (request) => showActors(actors, asked, request), {
        onView: (v) => { view = { ...view, ...v }; changed(false); },
      });
      await dataEndsHint(result, asked, r, (range) => { query.date_range = range; changed(); });
    } catch (e) {
      if (mine !== seq) return;
      result.classList.remove('stale');
      status.textContent = '';
      result.replaceChildren(errorBox(e));
    }
  };
  const drawBuilder = () => {
    builder.replaceChildren(
      h('div.tabs', { role: 'tablist' }, KINDS.map(([k, t]) => h(`button.tab${query.kind === k ? '.active' : ''}`, {
        type: 'button', role: 'tab', 'aria-selected': String(query.kind === k),
        onclick: () => { if (query.kind !== k) { query = { ...defaultQuery(k, names), count_by: query.count_by }; view = {}; changed(); } },
      }, t))),
      kindControls(query, changed),
      commonControls(query, changed),
      filterControls(query, changed));
  };
  drawTitle();
  drawBuilder();
  await run();
}

function suggestName(q) {
  const events = (q.series || q.steps || [q.start || q.end || q.event || {}]).map((s) => s.event || 'any event');
  const by = typeof q.count_by === 'object' ? ` by ${q.count_by.group_type}` : '';
  return `${KINDS.find(([k]) => k === q.kind)[1]}: ${[...new Set(events)].join(' → ')}${by}`.slice(0, 200);
}

/** Which dashboard (or a new one), and for a changed saved insight: save the changes, or add a copy. */
function dashboardDialog(dashboards, saved, dirty, suggested) {
  const select = h('select', { 'aria-label': 'Dashboard' },
    dashboards.map((d) => h('option', { value: d.id }, `${d.name} (${d.insights.length})`)),
    h('option', { value: '' }, 'New dashboard…'));
  const newName = h('input', { 'aria-label': 'New dashboard name', placeholder: 'Dashboard name', maxlength: 200 });
  const newRow = h('label', { hidden: dashboards.length > 0 }, 'New dashboard name', newName);
  select.addEventListener('change', () => { newRow.hidden = select.value !== ''; });
  const asNew = h('input', { type: 'checkbox', 'aria-label': 'As a new insight' });
  const insightName = h('input', { 'aria-label': 'Insight name', value: saved ? `${saved.name} (copy)` : suggested, maxlength: 200 });
  const nameRow = h('label', { hidden: !!saved }, 'Insight name', insightName);
  asNew.addEventListener('change', () => { nameRow.hidden = !asNew.checked; });
  const what = !saved ? 'The insight is saved first.'
    : dirty ? `“${saved.name}” has unsaved changes: they are saved with it, unless you add them as a new insight.`
      : `Adds “${saved.name}”.`;
  return modal('Add to dashboard', h('div', {},
    h('label', {}, 'Dashboard', select), newRow, h('p.small.muted', {}, what),
    saved ? h('label.inline', {}, asNew, ' As a new insight') : null, nameRow),
  [{ label: 'Add', primary: true, value: true }], () => {
    const choice = { dashboard: select.value, dashboardName: newName.value.trim(), asNew: asNew.checked, insightName: insightName.value.trim() };
    if (!choice.dashboard && !choice.dashboardName) throw new Error('name the new dashboard');
    if ((!saved || choice.asNew) && !choice.insightName) throw new Error('name the insight');
    return choice;
  });
}

// ---------------------------------------------------------------- controls

function select(label, options, value, onchange) {
  return h('select', { 'aria-label': label, onchange: (e) => onchange(e.target.value) },
    options.map(([v, t]) => h('option', { value: v, selected: v === value }, t)));
}

function eventPicker(selector, label, changed) {
  return picker({
    value: selector.event || '', placeholder: 'Any event', label, load: eventItems,
    unknown: 'no such event in the last 90 days',
    onpick: (v) => { selector.event = v || undefined; changed(); },
  });
}

function countByOptions() {
  return [['users', 'Users'], ...state.groupTypes.map((t) => [t.group_type, t.display_name])];
}

function commonControls(q, changed) {
  const current = typeof q.count_by === 'object' ? q.count_by.group_type : 'users';
  return h('div.block', {}, h('div.row', {},
    h('label', {}, 'Count by', select('Count by', countByOptions(), current, (v) => { q.count_by = v === 'users' ? 'users' : { group_type: v }; changed(); })),
    dateRangeControl(q, changed),
    q.kind === 'paths' ? null : h('label', {}, 'Interval', select('Interval', [['hour', 'Hour'], ['day', 'Day'], ['week', 'Week'], ['month', 'Month']], q.interval || 'day', (v) => { q.interval = v; changed(); })),
    !['lifecycle', 'paths'].includes(q.kind) ? breakdownControl(q, changed) : null));
}

const UNITS = { h: 'hour', d: 'day', w: 'week', m: 'month', y: 'year' };

function dateRangeControl(q, changed) {
  const range = q.date_range || {};
  // A relative range from a link or a saved insight that is not a preset is offered as it is.
  const relative = !range.to && /^-(\d+)([hdwmy])$/.exec(range.from || '');
  const options = [...RANGES];
  if (relative && !RANGES.some(([v]) => v === range.from)) options.push([range.from, `Last ${relative[1]} ${UNITS[relative[2]]}${relative[1] === '1' ? '' : 's'}`]);
  const preset = relative ? range.from : 'custom';
  const custom = h('span.inline-group', { hidden: preset !== 'custom' },
    h('input', { type: 'date', 'aria-label': 'From date', value: /^\d{4}-\d\d-\d\d$/.test(range.from || '') ? range.from : '', onchange: (e) => { q.date_range = { ...q.date_range, from: e.target.value }; changed(); } }),
    h('span.muted', {}, '→'),
    h('input', { type: 'date', 'aria-label': 'To date', value: /^\d{4}-\d\d-\d\d$/.test(range.to || '') ? range.to : '', onchange: (e) => { q.date_range = { ...q.date_range, to: e.target.value || undefined }; changed(); } }));
  return h('label', {}, 'Date range', h('span.inline-group', {},
    select('Date range', [...options, ['custom', 'Custom dates…']], preset, (v) => {
      if (v === 'custom') {
        const today = new Date().toISOString().slice(0, 10);
        const from = new Date(Date.now() - 29 * 86400000).toISOString().slice(0, 10);
        q.date_range = { from, to: today };
      } else q.date_range = { from: v };
      changed();
    }), custom));
}

/** Where a property is read: `event`, `person` or `group:<type>`. */
function sourceSelect(value, label, onchange) {
  return select(label, [['event', 'Event property'], ['person', 'Person property'], ...state.groupTypes.map((t) => [`group:${t.group_type}`, `${t.display_name} property`])], value, onchange);
}

function sourceOf(v) {
  return v.startsWith('group:') ? { type: 'group', group_type: v.slice(6) } : { type: v };
}

function sourceValue(o) {
  return o && o.type === 'group' ? `group:${o.group_type}` : (o && o.type) || 'event';
}

/** The event a property list is narrowed to, when the question has one. */
function firstEvent(q) {
  const s = (q.series || q.steps || [q.start || q.event || {}])[0] || {};
  return s.event;
}

function propertyPicker(q, source, value, label, onpick) {
  return picker({
    value, placeholder: 'property', label, onpick, unknown: 'not seen in recent data',
    load: () => propertyItems(source, source === 'event' ? firstEvent(q) : undefined).then((items) => items.length || source !== 'event' ? items : propertyItems('event')),
  });
}

function breakdownControl(q, changed) {
  // The source is kept while the key is still empty (the question is sent without it).
  if (!q.breakdown) q.breakdown = { type: 'event', key: '' };
  const b = q.breakdown;
  return h('label', {}, 'Breakdown', h('span.inline-group', {},
    sourceSelect(sourceValue(b), 'Breakdown source', (v) => { q.breakdown = { ...sourceOf(v), key: '' }; changed(); }),
    propertyPicker(q, sourceValue(b), b.key, 'Breakdown property', (key) => { b.key = key.trim(); changed(); }),
    b.key ? h('button.link', { type: 'button', 'aria-label': 'Remove breakdown', onclick: () => { q.breakdown = { ...sourceOf(sourceValue(b)), key: '' }; changed(); } }, '✕') : null));
}

function kindControls(q, changed) {
  switch (q.kind) {
    case 'trends': return trendControls(q, changed);
    case 'funnel': return funnelControls(q, changed);
    case 'retention':
      return h('div.block', {}, h('div.row', {},
        h('label', {}, 'Start event', eventPicker(q.start, 'Start event', changed)),
        h('label', {}, 'Return event', eventPicker(q.return, 'Return event', changed)),
        h('label', {}, 'Cohorts', select('Cohorting', [['first_time', 'First time'], ['recurring', 'Recurring']], q.cohorting, (v) => { q.cohorting = v; changed(); })),
        h('label.inline', {}, h('input', { type: 'checkbox', checked: !!q.cumulative, onchange: (e) => { q.cumulative = e.target.checked; changed(); } }), ' On or after (cumulative)')));
    case 'stickiness':
      return h('div.block', {}, h('div.row', {}, h('label', {}, 'Event', eventPicker(q.series[0], 'Event', changed)),
        h('label.inline', {}, h('input', { type: 'checkbox', checked: !!q.cumulative, onchange: (e) => { q.cumulative = e.target.checked; changed(); } }), ' Cumulative (N or more)')));
    case 'lifecycle':
      return h('div.block', {}, h('div.row', {}, h('label', {}, 'Event', eventPicker(q.event, 'Event', changed))));
    case 'paths': return pathControls(q, changed);
    default:
      return h('div');
  }
}

function trendControls(q, changed) {
  const cumulativeAllowed = q.series.every((s) => ['total', 'sum', 'unique', undefined].includes(s.math));
  return h('div.block', {}, h('div.label', {}, 'Series'), q.series.map((s, i) => h('div.row', {},
    h('span.badge', {}, String.fromCharCode(65 + i)), eventPicker(s, `Series ${i + 1} event`, changed),
    select(`Series ${i + 1} math`, MATHS, s.math || 'total', (v) => { s.math = v; if (!PROPERTY_MATHS.includes(v)) delete s.property; changed(); }),
    PROPERTY_MATHS.includes(s.math) ? picker({ value: s.property || '', placeholder: 'numeric property', label: `Series ${i + 1} property`,
      load: () => propertyItems('event', s.event).then((items) => items.filter((p) => p.meta === 'number')), unknown: 'not a number property in recent data',
      onpick: (v) => { s.property = v; changed(); } }) : null,
    q.series.length > 1 ? h('button.link', { type: 'button', onclick: () => { q.series.splice(i, 1); if (q.series.length < 2) delete q.formula; changed(); } }, 'Remove') : null)),
  h('div.row', {}, q.series.length < 26 ? h('button.link', { type: 'button', onclick: () => { q.series.push({ event: q.series[q.series.length - 1].event, math: 'total' }); changed(); } }, '+ Add series') : null,
    q.series.length > 1 ? h('label.inline', {}, 'Formula ', h('input', { placeholder: 'e.g. A / B', value: q.formula || '', 'aria-label': 'Formula', onchange: (e) => { q.formula = e.target.value.trim() || undefined; changed(); } })) : null,
    h('label.inline', {}, h('input', { type: 'checkbox', checked: !!q.compare, 'aria-label': 'Compare to previous period', onchange: (e) => { q.compare = e.target.checked; changed(); } }), ' Compare to previous period'),
    h('label.inline', { title: cumulativeAllowed ? '' : 'only for total, sum and unique' }, h('input', { type: 'checkbox', checked: !!q.cumulative, disabled: !cumulativeAllowed, 'aria-label': 'Cumulative', onchange: (e) => { q.cumulative = e.target.checked; changed(); } }), ' Cumulative')));
}

/** Paths from a start event, up to an end event, or from each actor's first event. */
function pathControls(q, changed) {
  const anchor = q.start ? 'start' : q.end ? 'end' : 'first';
  const selector = q.start || q.end;
  return h('div.block', {}, h('div.row', {},
    h('label', {}, 'Paths', select('Paths anchor', [['start', 'Starting at'], ['end', 'Ending at'], ['first', 'From the first event']], anchor, (v) => {
      const event = (q.start || q.end || {}).event;
      delete q.start;
      delete q.end;
      if (v !== 'first') q[v] = { event };
      changed();
    })),
    selector ? h('label', {}, 'Event', eventPicker(selector, 'Path event', changed)) : null,
    h('label', {}, 'Steps', h('input.num', { type: 'number', min: 2, max: 20, value: q.step_limit || 5, 'aria-label': 'Steps', onchange: (e) => { q.step_limit = Math.min(20, Math.max(2, Number(e.target.value) || 5)); changed(); } }))));
}

function funnelControls(q, changed) {
  return h('div.block', {}, h('div.label', {}, 'Steps'), q.steps.map((s, i) => h('div.row', {},
    h('span.badge', {}, String(i + 1)), eventPicker(s, `Step ${i + 1} event`, changed),
    i > 0 && q.order !== 'unordered' ? h('label.inline', {}, h('input', { type: 'checkbox', checked: !!s.optional, onchange: (e) => { s.optional = e.target.checked || undefined; changed(); } }), ' optional') : null,
    q.steps.length > 2 ? h('button.link', { type: 'button', onclick: () => { q.steps.splice(i, 1); changed(); } }, 'Remove') : null)),
  h('div.row', {},
    q.steps.length < 20 ? h('button.link', { type: 'button', onclick: () => { q.steps.push({ event: q.steps[q.steps.length - 1].event }); changed(); } }, '+ Add step') : null,
    h('label.inline', {}, 'Within ', h('input.num', { type: 'number', min: 1, value: q.window.value, 'aria-label': 'Conversion window', onchange: (e) => { q.window.value = Math.max(1, Number(e.target.value) || 1); changed(); } }),
      select('Window unit', ['minute', 'hour', 'day', 'week', 'month'].map((u) => [u, `${u}s`]), q.window.unit, (v) => { q.window.unit = v; changed(); })),
    h('label.inline', {}, 'Order ', select('Order', [['ordered', 'Ordered'], ['strict', 'Strict'], ['unordered', 'Any order']], q.order, (v) => { q.order = v; changed(); }))));
}

/** Filters: conditions combined with "and". */
function filterControls(q, changed) {
  const items = q.filters ? (q.filters.and || [q.filters]) : [];
  const commit = () => { q.filters = items.length ? { and: items } : undefined; if (!items.length) delete q.filters; changed(); };
  return h('div.block', {}, h('div.label', {}, 'Filters'),
    items.map((f, i) => f.cohort !== undefined ? h('div.row', {},
      h('span.muted', {}, typeof q.count_by === 'object' ? 'Events of' : 'Events by'),
      select(`Filter ${i + 1} cohort`, [...cohortList.map((c) => [c.id, `${c.name || c.id} (${c.size ?? '?'})`]), ...(cohortList.some((c) => c.id === f.cohort) ? [] : [[String(f.cohort), String(f.cohort)]])],
        String(f.cohort), (v) => { f.cohort = v; commit(); }),
      h('button.link', { type: 'button', onclick: () => { items.splice(i, 1); commit(); } }, 'Remove'))
      : f.key === undefined ? h('div.row', {}, h('code', {}, JSON.stringify(f))) : h('div.row', {},
      sourceSelect(sourceValue(f), `Filter ${i + 1} source`, (v) => { delete f.group_type; Object.assign(f, sourceOf(v), { key: '' }); commit(); }),
      propertyPicker(q, sourceValue(f), f.key, `Filter ${i + 1} property`, (key) => { f.key = key.trim(); commit(); }),
      select(`Filter ${i + 1} operator`, OPERATORS, f.operator, (v) => { f.operator = v; if (['is_set', 'is_not_set'].includes(v)) delete f.value; commit(); }),
      ['is_set', 'is_not_set'].includes(f.operator) ? null : picker({
        value: f.value === undefined ? '' : Array.isArray(f.value) ? f.value.join(', ') : show(f.value), placeholder: f.operator === 'in' ? 'a, b, c' : 'value',
        label: `Filter ${i + 1} value`, preferMatch: false, unknown: f.operator === 'equals' ? 'not seen in recent data' : '',
        load: () => (f.key ? valueItems(sourceValue(f), f.key, sourceValue(f) === 'event' ? firstEvent(q) : undefined) : Promise.resolve([])),
        onpick: (v) => { f.value = f.operator === 'in' ? v.split(',').map((x) => x.trim()).filter(Boolean) : (/^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v); commit(); },
      }),
      h('button.link', { type: 'button', onclick: () => { items.splice(i, 1); commit(); } }, 'Remove'))),
    h('div.row', {},
      h('button.link', { type: 'button', onclick: () => { items.push({ type: 'event', key: '', operator: 'equals', value: '' }); q.filters = { and: items }; changed(); } }, '+ Add filter'),
      cohortList.length ? h('button.link', { type: 'button', onclick: () => { items.push({ cohort: cohortList[0].id }); commit(); } }, '+ Add cohort filter')
        : h('a.small', { href: '#/cohorts' }, 'Cohorts can filter too: make one')));
}

// ---------------------------------------------------------------- results

/** Whether the last bucket is still going on (drawn as such, not as a drop). */
function lastInProgress(buckets, interval) {
  if (!buckets.length) return false;
  const start = new Date(buckets[buckets.length - 1]);
  const end = new Date(start);
  if (interval === 'hour') end.setTime(start.getTime() + 3600000);
  else if (interval === 'week') end.setTime(start.getTime() + 7 * 86400000);
  else if (interval === 'month') end.setMonth(end.getMonth() + 1);
  else end.setTime(start.getTime() + 86400000);
  return Date.now() < end.getTime();
}

function lineName(l) {
  return [l.label, l.breakdown_value, l.compare === 'previous' ? 'previous period' : null].filter((x) => x !== null && x !== undefined).join(' · ');
}

/**
 * An answer: chart (of the view's kind), summary, a collapsible numbers table and CSV.
 *   onActors(request) lists the actors of a mark; opts.onView(change) when the view changes;
 *   opts.tile: a dashboard tile (no view switcher, table closed).
 */
export function showResult(container, q, view, r, onActors, opts = {}) {
  const chart = h('div.card.chart-box');
  const tools = h('div.actions');
  container.append(tools, chart);
  const format = (b) => bucketLabel(b, q.interval || 'day');
  let rows = [];
  if (r.kind === 'trends') rows = drawTrends(chart, q, view, r, onActors, format, tools, opts);
  else if (r.kind === 'funnel') rows = drawFunnel(chart, q, view, r, onActors, format, tools, opts);
  else if (r.kind === 'retention') {
    retentionTable(chart, r.rows, r.means, format, (ri, p) => {
      const row = r.rows[ri];
      const cohort = [...new Set(r.rows.map((x) => x.cohort))].indexOf(row.cohort);
      onActors({ cohort, period: p, breakdown_value: row.breakdown_value ?? undefined, label: `${format(row.cohort)} cohort, period +${p}` });
    });
    const periods = Math.max(0, ...r.rows.map((x) => x.values.length));
    const mean = (r.means[0] || { values: [] }).values.filter((m) => m.cohorts > 0);
    if (mean.length > 1) {
      const curve = h('div');
      chart.append(h('h3.small.muted', {}, 'Retention curve (mean, % of cohort)'), curve);
      seriesChart(curve, { labels: mean.map((m) => `+${m.period}`), series: [{ name: 'Mean retention %', data: mean.map((m) => Math.round(m.percentage * 10) / 10) }], format: String });
    }
    rows = [['Cohort', 'Breakdown', 'Size', ...Array.from({ length: periods }, (_, p) => `+${p}`)],
      ...r.rows.map((row) => [format(row.cohort), row.breakdown_value || '', row.size, ...row.values.map((c) => c.count)])];
  } else if (r.kind === 'stickiness') {
    const unit = q.interval || 'day';
    const labels = r.intervals.map((n) => `${n} ${unit}${n > 1 ? 's' : ''}${q.cumulative ? ' or more' : ''}`);
    const named = r.series.map((s) => ({ name: [s.label, s.breakdown_value].filter(Boolean).join(' · ') || 'Actors', data: s.data, line: s }));
    seriesChart(chart, {
      kind: 'bar', labels, series: named, format: String,
      onPoint: (si, bi) => onActors({ series: named[si].line.series, intervals: r.intervals[bi], breakdown_value: named[si].line.breakdown_value ?? undefined, label: `${named[si].name} · ${labels[bi]}` }),
    });
    rows = [['Series', ...labels], ...r.series.map((s) => [[s.label, s.breakdown_value].filter(Boolean).join(' · '), ...s.data])];
  } else if (r.kind === 'paths') {
    pathsChart(chart, r, (mark) => onActors({ ...mark, label: mark.target ? `${mark.source} → ${mark.target} (step ${mark.step})` : `${mark.source} at step ${mark.step}` }));
    chart.append(h('p.small.muted', {}, `${fmt(r.actors_with_paths)} ${typeof q.count_by === 'object' ? q.count_by.group_type : 'user'}s with a path`));
    rows = [['Path', 'Actors'], ...r.sequences.map((sq) => [sq.steps.join(' → '), sq.actors])];
  } else if (r.kind === 'lifecycle') {
    stackedBars(chart, r.buckets, [
      { name: 'New', data: r.new, color: '#16a34a', status: 'new' }, { name: 'Returning', data: r.returning, color: '#4f46e5', status: 'returning' },
      { name: 'Resurrecting', data: r.resurrecting, color: '#d97706', status: 'resurrecting' }, { name: 'Dormant', data: r.dormant, color: '#dc2626', status: 'dormant' }], format,
    (si, bi) => {
      const status = ['new', 'returning', 'resurrecting', 'dormant'][si];
      onActors({ bucket: bi, status, label: `${status} · ${format(r.buckets[bi])}` });
    }, lastInProgress(r.buckets, q.interval));
    rows = [['Bucket', 'New', 'Returning', 'Resurrecting', 'Dormant'], ...r.buckets.map((b, i) => [format(b), r.new[i], r.returning[i], r.resurrecting[i], r.dormant[i]])];
  }
  const [head, ...bodyRows] = rows;
  if (!head) return;
  const numbers = h('details.numbers', { open: !opts.tile && (view.chart === 'table' || bodyRows.length <= 12) },
    h('summary', {}, `Numbers (${bodyRows.length} row${bodyRows.length === 1 ? '' : 's'})`),
    table(head, bodyRows.map((row) => h('tr', {}, row.map((c) => h('td', {}, typeof c === 'number' ? fmt(c) : String(c))))), 'numbers'));
  if (opts.tile && view.chart !== 'table') numbers.hidden = true;
  container.append(numbers);
  tools.append(h('div.spacer'), h('button', { type: 'button', onclick: () => download(`${q.kind}.csv`, csv(rows)) }, 'Export CSV'));
}

function drawTrends(chart, q, view, r, onActors, format, tools, opts) {
  const kind = view.chart || 'line';
  if (!opts.tile) {
    tools.append(h('label.inline', {}, 'Chart ', select('Chart type', CHARTS, kind, (v) => opts.onView({ chart: v }))));
    if (q.formula) tools.append(h('label.inline', {}, h('input', { type: 'checkbox', checked: !!view.show_inputs, 'aria-label': 'Show formula inputs', onchange: (e) => opts.onView({ show_inputs: e.target.checked }) }), ' Show the formula’s series'));
  }
  // With a formula its series are inputs, drawn only when asked.
  const lines = r.series.filter((l) => !q.formula || view.show_inputs || l.series === null);
  const current = lines.filter((l) => l.compare !== 'previous');
  const previousOf = (l) => r.series.find((p) => p.compare === 'previous' && p.series === l.series && p.breakdown_value === l.breakdown_value && p.formula === l.formula);
  const change = (l) => {
    const p = previousOf(l);
    if (!p) return undefined;
    return p.aggregated_value === 0 ? (l.aggregated_value === 0 ? 0 : Infinity) : (l.aggregated_value - p.aggregated_value) / p.aggregated_value;
  };
  const actorsOf = (l, bi) => {
    if (l.series === null || l.compare === 'previous') return;
    onActors({ series: l.series, bucket: bi, breakdown_value: l.breakdown_value ?? undefined, label: `${lineName(l)} · ${format(r.buckets[bi])}` });
  };
  if (kind === 'number') {
    bigNumbers(chart, current.map((l) => ({ name: lineName(l), value: l.aggregated_value, change: change(l) })));
  } else if (kind !== 'table') {
    const named = lines.map((l) => ({ name: lineName(l), data: l.data, dashed: l.compare === 'previous', line: l }));
    seriesChart(chart, {
      kind, labels: r.buckets, series: named, format, inProgress: lastInProgress(r.buckets, q.interval),
      onPoint: (si, bi) => actorsOf(named[si].line, bi),
    });
  }
  // The range's value per line, and the change from the previous period when compared.
  if (kind !== 'number') {
    chart.append(h('div.summary', {}, current.map((l) => h('span.total', {}, h('span.muted', {}, `${lineName(l)}: `), h('strong', {}, fmt(l.aggregated_value)),
      change(l) !== undefined ? changeBadge(change(l)) : null))));
  }
  return [['Bucket', ...lines.map(lineName)], ...r.buckets.map((b, i) => [format(b), ...lines.map((l) => l.data[i])]),
    ['Whole range', ...lines.map((l) => l.aggregated_value)]];
}

function drawFunnel(chart, q, view, r, onActors, format, tools, opts) {
  const mode = view.funnel || 'steps';
  if (!opts.tile) tools.append(h('label.inline', {}, 'View ', select('Funnel view', FUNNEL_VIEWS, mode, (v) => opts.onView({ funnel: v }))));
  const bname = (b) => (b.breakdown_value === null ? '(not set)' : b.breakdown_value);
  if (mode === 'steps') {
    funnelBars(chart, r.steps, (i, bi) => {
      const b = bi === null ? null : r.breakdowns[bi];
      onActors({ step: i, status: 'converted', breakdown_value: b ? b.breakdown_value ?? undefined : undefined, label: `reached step ${i + 1} (${r.steps[i].name})${b ? ` · ${bname(b)}` : ''}` });
    }, r.breakdowns.map((b) => ({ name: bname(b), steps: b.steps })));
    if (r.steps.length > 1) {
      chart.append(h('div.row.small', {}, 'Dropped off before: ', r.steps.slice(1).map((s, i) => h('button.link', {
        type: 'button', onclick: () => onActors({ step: i + 1, status: 'dropped', label: `dropped before step ${i + 2} (${s.name})` }),
      }, `step ${i + 2} (${fmt(s.dropped)})`))));
    }
  } else {
    // The extra views are their own questions: asked here, drawn when they answer.
    const extra = mode === 'time' ? { time_to_convert: {} } : { conversion_over_time: true };
    chart.append(h('p.muted.small', {}, 'Loading…'));
    api('POST', `${P()}/query`, { ...q, ...extra }).then((more) => {
      chart.replaceChildren();
      if (mode === 'time') {
        const t = more.time_to_convert;
        if (!t || !t.bins.length) { chart.append(h('p.empty', {}, 'Nobody converted in this range.')); return; }
        seriesChart(chart, { kind: 'bar', labels: t.bins.map((b) => duration(b.from_seconds)), series: [{ name: 'Actors', data: t.bins.map((b) => b.count) }], format: String });
        chart.append(h('p.small', {}, `Step ${t.from_step + 1} → ${t.to_step + 1}: median ${t.median_seconds == null ? '–' : duration(t.median_seconds)}, average ${t.average_seconds == null ? '–' : duration(t.average_seconds)}`));
      } else {
        const c = more.conversion_over_time;
        seriesChart(chart, {
          labels: c.buckets, format, inProgress: lastInProgress(c.buckets, q.interval),
          series: c.lines.map((l) => ({ name: `${l.breakdown_value === null ? 'Conversion' : l.breakdown_value} %`, data: l.conversion_rate.map((x) => Math.round(x * 1000) / 10) })),
        });
      }
    }).catch((e) => chart.replaceChildren(errorBox(e)));
  }
  const line = (b, s) => [b, `${s.index + 1}. ${s.name}`, s.count, `${(s.conversion_from_first * 100).toFixed(1)}%`, `${(s.conversion_from_previous * 100).toFixed(1)}%`, s.dropped, s.median_seconds == null ? '' : duration(s.median_seconds), s.average_seconds == null ? '' : duration(s.average_seconds)];
  return [['Breakdown', 'Step', 'Count', 'From first', 'From previous', 'Dropped', 'Median time', 'Average time'], ...r.steps.map((s) => line('All', s)),
    ...r.breakdowns.flatMap((b) => b.steps.map((s) => line(bname(b), s)))];
}

export function duration(seconds) {
  if (seconds < 60) return `${seconds.toFixed(0)} s`;
  if (seconds < 3600) return `${(seconds / 60).toFixed(1)} min`;
  if (seconds < 86400) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} d`;
}

/** An empty answer over a range after the project's last event: say so, and offer the range up to it. */
async function dataEndsHint(container, q, r, setRange) {
  const empty = r.kind === 'paths' ? !r.actors_with_paths : r.kind === 'trends' ? r.series.every((l) => l.aggregated_value === 0)
    : r.kind === 'funnel' ? !(r.steps[0] && r.steps[0].count) : r.kind === 'retention' ? !r.rows.some((x) => x.size) : false;
  if (!empty) return;
  const names = await catalog.events().catch(() => []);
  if (!names.length) { container.prepend(h('p.notice', {}, 'No events in this project yet.')); return; }
  const last = names.reduce((a, n) => (n.last_seen > a ? n.last_seen : a), '');
  const lastDay = new Date(last);
  const from = new Date(lastDay.getTime() - 29 * 86400000).toISOString().slice(0, 10);
  const to = lastDay.toISOString().slice(0, 10);
  container.prepend(h('p.notice', {}, `Nothing in this range. The latest event is from ${day(last)}. `,
    h('button.link', { type: 'button', onclick: () => setRange({ from, to }) }, `Show the 30 days up to ${day(last)}`)));
}

/** Actors listed per request at most; the table pages through them. */
const ACTOR_LIMIT = 10000;
const ACTOR_PAGE = 25;

/** The property keys most actors have (name and email are shown on their own). */
function commonKeys(list, n) {
  const seen = new Map();
  for (const a of list) for (const k of Object.keys(a.properties || {})) if (k !== 'name' && k !== 'email') seen.set(k, (seen.get(k) || 0) + 1);
  return [...seen.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, n).map(([k]) => k);
}

/**
 * The actors behind a mark: a table of them with their properties, a page at a time, exported
 * as CSV or saved as a static cohort.
 */
export async function showActors(container, q, request) {
  const { label, ...wanted } = request;
  container.replaceChildren(h('h2', {}, `Actors: ${label}`), h('p.muted', {}, 'Loading…'));
  try {
    const r = await api('POST', `${P()}/query`, { ...clean(q), actors: { ...wanted, limit: ACTOR_LIMIT } });
    const list = r.actors || [];
    const groupType = typeof q.count_by === 'object' ? q.count_by.group_type : null;
    const keys = commonKeys(list, 4);
    const nameOf = (a) => (groupType ? a.name || a.key : (a.properties && (a.properties.name || a.properties.email)) || (a.distinct_ids || [])[0] || a.key);
    const hrefOf = (a) => (groupType ? `#/group/${encodeURIComponent(groupType)}/${encodeURIComponent(a.key)}` : `#/person/${encodeURIComponent((a.distinct_ids || [])[0] || a.key)}`);
    const headers = groupType ? ['Key', 'Name', ...keys] : ['Person', 'Email', 'Distinct ids', ...keys];
    const cells = (a) => (groupType ? [link(hrefOf(a), a.key), a.name || ''] : [link(hrefOf(a), nameOf(a)), (a.properties || {}).email || '', (a.distinct_ids || []).length]);
    const body = h('div');
    let page = 0;
    const pages = Math.max(1, Math.ceil(list.length / ACTOR_PAGE));
    const draw = () => {
      const rows = list.slice(page * ACTOR_PAGE, (page + 1) * ACTOR_PAGE).map((a) => h('tr', {},
        cells(a).map((c) => h('td', {}, c)), keys.map((k) => h('td', { title: show((a.properties || {})[k] ?? '') }, (a.properties || {})[k] === undefined ? '' : show(a.properties[k])))));
      body.replaceChildren(...[table(headers, rows, 'actors-table'), pages > 1 ? h('div.pager', {},
        h('button', { type: 'button', disabled: page === 0, onclick: () => { page--; draw(); } }, '← Previous'),
        h('span.muted', {}, `${page * ACTOR_PAGE + 1}–${Math.min(list.length, (page + 1) * ACTOR_PAGE)} of ${fmt(list.length)}`),
        h('button', { type: 'button', disabled: page >= pages - 1, onclick: () => { page++; draw(); } }, 'Next →')) : null].filter(Boolean));
    };
    const exportCsv = () => {
      const all = commonKeys(list, 1000);
      const rows = [groupType ? ['key', 'name', ...all] : ['person_id', 'distinct_ids', 'name', 'email', ...all],
        ...list.map((a) => [...(groupType ? [a.key, a.name || ''] : [a.key, (a.distinct_ids || []).join(' '), (a.properties || {}).name || '', (a.properties || {}).email || '']),
          ...all.map((k) => (a.properties || {})[k])])];
      download(`actors-${label.replace(/[^\w]+/g, '-').slice(0, 60)}.csv`, csv(rows));
    };
    const status = h('div');
    const saveCohort = async () => {
      const name = await askName('Save as cohort', label.slice(0, 120), 'Save cohort');
      if (!name) return;
      try {
        const cohort = await api('POST', `${P()}/cohorts`, { name, count_by: q.count_by || 'users', type: 'static', ids: list.map((a) => a.key) });
        status.replaceChildren(h('p.notice', { role: 'status' }, `Saved the cohort “${name}” (${fmt(list.length)}). `, link(`#/cohort/${encodeURIComponent(cohort.id)}`, 'Open it')));
      } catch (e) { status.replaceChildren(errorBox(e)); }
    };
    const more = list.length === ACTOR_LIMIT ? ` (the first ${fmt(ACTOR_LIMIT)})` : '';
    container.replaceChildren(
      h('div.title-row', {}, h('h2', {}, `Actors: ${label}`), h('span.muted.count', {}, `${fmt(list.length)} ${groupType ? `${groupType} group` : 'user'}${list.length === 1 ? '' : 's'}${more}`),
        h('div.spacer'),
        list.length ? h('button', { type: 'button', onclick: exportCsv }, 'Export actors CSV') : null,
        list.length ? h('button.needs-edit', { type: 'button', onclick: saveCohort }, 'Save as cohort…') : null),
      status, list.length ? body : h('p.empty', {}, 'Nobody.'));
    if (list.length) draw();
    container.scrollIntoView({ behavior: 'smooth', block: 'start' });
  } catch (e) {
    container.replaceChildren(errorBox(e));
  }
}
