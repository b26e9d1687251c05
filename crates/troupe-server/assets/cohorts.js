// Cohorts: sets of users, or of groups of one type, used as filters in any insight. The list,
// a cohort's page (definition, size, members a page at a time, CSV, delete, use in an insight)
// and the form that makes one: by properties, by behaviour, or static from pasted ids or a CSV.

import {
  state, api, P, h, render, guard, errorBox, table, link, download, csv, confirmDialog, show, when, picker, eventItems,
  propertyItems, valueItems,
} from '/assets/lib.js';
import { fmt } from '/assets/charts.js';
import { insightHref } from '/assets/builder.js';

const OPERATORS = [['equals', '='], ['not_equals', '≠'], ['contains', 'contains'], ['not_contains', 'does not contain'],
  ['is_set', 'is set'], ['is_not_set', 'is not set'], ['gt', '>'], ['lt', '<']];
const MEMBERS_PAGE = 25;

const ofLabel = (countBy) => (typeof countBy === 'object' && countBy ? (state.groupTypes.find((t) => t.group_type === countBy.group_type) || { display_name: countBy.group_type }).display_name : 'Users');

/** A cohort's rule in words. */
export function describe(c) {
  if (c.type === 'static') return `${fmt(c.ids.length)} listed id${c.ids.length === 1 ? '' : 's'}`;
  const parts = c.criteria.map((k) => {
    const test = `${k.key} ${(OPERATORS.find(([o]) => o === k.operator) || [, k.operator || '='])[1]}${['is_set', 'is_not_set'].includes(k.operator) ? '' : ` ${show(k.value)}`}`;
    if (k.type === 'performed_event') return `did ${k.event || 'any event'} at least ${k.at_least || 1}× in the last ${k.days} days`;
    if (k.type === 'group_property') return `in a ${k.group_type} whose ${test}`;
    return test;
  });
  return parts.join(c.match === 'any' ? ' or ' : ' and ');
}

export async function cohortsPage() {
  const body = h('div');
  render(h('div.title-row', {}, h('h1', {}, 'Cohorts'), h('div.spacer'), h('a.button.primary.needs-edit', { href: '#/cohort/new' }, 'New cohort')), body);
  await guard(body, async () => {
    const cohorts = (await api('GET', `${P()}/cohorts`)).results;
    if (!cohorts.length) {
      body.append(h('p.empty', {}, 'No cohorts yet. Make one here, or “Save as cohort” from the actors behind any chart.'));
      return;
    }
    body.append(table(['Name', 'Of', 'Rule', 'Size', 'Updated'], cohorts.map((c) => {
      const href = `#/cohort/${encodeURIComponent(c.id)}`;
      return h('tr.clickable', { onclick: () => { location.hash = href; } },
        h('td', {}, link(href, c.name || c.id)), h('td', {}, ofLabel(c.count_by)), h('td', {}, describe(c)),
        h('td', { 'data-size': c.size ?? '' }, c.size === null || c.size === undefined ? (c.size_error || '–') : fmt(c.size)), h('td.nowrap', {}, when(c.updated_at)));
    }), 'cohorts'));
  });
}

export async function cohortPage(id) {
  if (id === 'new') return cohortForm();
  const body = h('div');
  render(h('p', {}, link('#/cohorts', '← Cohorts')), body);
  await guard(body, async () => {
    const c = await api('GET', `${P()}/cohorts/${encodeURIComponent(id)}`);
    const groupType = typeof c.count_by === 'object' ? c.count_by.group_type : null;
    const members = h('div');
    const use = { kind: 'trends', count_by: c.count_by || 'users', date_range: { from: '-30d' }, interval: 'day', series: [{ math: groupType ? 'unique' : 'unique' }], filters: { and: [{ cohort: c.id }] } };
    body.append(
      h('div.title-row', {}, h('h1', {}, c.name || c.id, h('span.muted.small', {}, ` ${ofLabel(c.count_by)} · ${c.type}`)), h('div.spacer'),
        h('a.button', { href: insightHref(null, use, {}) }, 'Use in an insight'),
        h('button', { onclick: () => exportMembers(c) }, 'Export CSV'),
        h('button.danger.needs-edit', { onclick: async () => {
          const ok = await confirmDialog(`Delete the cohort ${c.name || c.id}?`, 'Insights that filter on it will answer with an error until they are changed. Its members are not touched.', [{ label: 'Delete cohort', value: true, danger: true }]);
          if (!ok) return;
          await api('DELETE', `${P()}/cohorts/${encodeURIComponent(c.id)}`);
          state.notice = `The cohort ${c.name || c.id} was deleted.`;
          location.hash = '#/cohorts';
        } }, 'Delete…')),
      h('section.card', {}, h('p', {}, h('strong', {}, 'Rule: '), describe(c)),
        h('p', {}, h('strong', {}, 'Size now: '), h('span.cohort-size', {}, c.size === null || c.size === undefined ? (c.size_error || '–') : fmt(c.size)))),
      h('h2', {}, 'Members'), members);
    let offset = 0;
    const page = async () => {
      const r = await api('GET', `${P()}/cohorts/${encodeURIComponent(c.id)}/members?limit=${MEMBERS_PAGE}&offset=${offset}`);
      const rows = r.results.map((a) => groupType
        ? h('tr', {}, h('td', {}, link(`#/group/${encodeURIComponent(groupType)}/${encodeURIComponent(a.key)}`, a.key)), h('td', {}, a.name || ''))
        : h('tr', {}, h('td', {}, link(`#/person/${encodeURIComponent((a.distinct_ids || [])[0] || a.key)}`, (a.properties && (a.properties.name || a.properties.email)) || (a.distinct_ids || [])[0] || a.key)),
          h('td', {}, (a.properties || {}).email || ''), h('td', {}, (a.distinct_ids || []).join(', '))));
      members.replaceChildren(r.results.length ? table(groupType ? ['Key', 'Name'] : ['Person', 'Email', 'Distinct ids'], rows, 'members-table') : h('p.empty', {}, 'No members now.'),
        r.total > MEMBERS_PAGE ? h('div.pager', {},
          h('button', { disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - MEMBERS_PAGE); page(); } }, '← Previous'),
          h('span.muted', {}, `${offset + 1}–${offset + r.results.length} of ${fmt(r.total)}`),
          h('button', { disabled: offset + MEMBERS_PAGE >= r.total, onclick: () => { offset += MEMBERS_PAGE; page(); } }, 'Next →')) : null);
    };
    await guard(members, page);
  });
  return undefined;
}

async function exportMembers(c) {
  const r = await api('GET', `${P()}/cohorts/${encodeURIComponent(c.id)}/members?limit=10000`);
  const keys = [...new Set(r.results.flatMap((a) => Object.keys(a.properties || {})))];
  download(`cohort-${c.id}.csv`, csv([['key', 'distinct_ids', 'name', ...keys],
    ...r.results.map((a) => [a.key, (a.distinct_ids || []).join(' '), a.name || '', ...keys.map((k) => (a.properties || {})[k])])]));
}

/** The first column of a CSV or pasted list, without a header naming it. */
export function idsFromText(text) {
  const lines = text.split(/\r?\n/).map((l) => l.split(',')[0].trim().replace(/^"(.*)"$/, '$1')).filter(Boolean);
  if (lines.length && /^(id|key|person_id|distinct_id|user_id|ids)$/i.test(lines[0])) lines.shift();
  return [...new Set(lines)];
}

function cohortForm() {
  const err = h('div');
  const name = h('input', { 'aria-label': 'Cohort name', required: true, maxlength: 200 });
  const of = h('select', { 'aria-label': 'Cohort of' }, h('option', { value: 'users' }, 'Users'),
    state.groupTypes.map((t) => h('option', { value: t.group_type }, t.display_name)));
  const kind = h('select', { 'aria-label': 'Cohort kind' }, h('option', { value: 'dynamic' }, 'By properties and behaviour'), h('option', { value: 'static' }, 'A list of ids'));
  const match = h('select', { 'aria-label': 'Match' }, h('option', { value: 'all' }, 'all of'), h('option', { value: 'any' }, 'any of'));
  const criteria = [];
  const rows = h('div.criteria');
  const ids = h('textarea', { rows: 6, 'aria-label': 'Ids', placeholder: 'One id per line (distinct ids or person ids for users, keys for groups), or a CSV whose first column is the id' });
  const file = h('input', { type: 'file', accept: '.csv,text/csv,text/plain', 'aria-label': 'CSV file' });
  file.addEventListener('change', async () => { if (file.files[0]) ids.value = (await file.files[0].text()); });
  const source = () => (of.value === 'users' ? 'person' : `group:${of.value}`);
  const drawRows = () => {
    rows.replaceChildren(...criteria.map((c, i) => h('div.row', {},
      h('select', { 'aria-label': `Criterion ${i + 1} kind`, onchange: (e) => { criteria[i] = blank(e.target.value); drawRows(); } },
        [['performed_event', 'Did an event'], ['property', of.value === 'users' ? 'Person property' : 'Group property'], ...(of.value === 'users' ? [['group_property', 'Property of their group']] : [])]
          .map(([v, t]) => h('option', { value: v, selected: c.type === v }, t))),
      c.type === 'performed_event' ? [
        picker({ value: c.event || '', placeholder: 'Any event', label: `Criterion ${i + 1} event`, load: eventItems, onpick: (v) => { c.event = v || undefined; } }),
        h('label.inline', {}, 'at least ', h('input.num', { type: 'number', min: 1, value: c.at_least, 'aria-label': `Criterion ${i + 1} at least`, onchange: (e) => { c.at_least = Math.max(1, Number(e.target.value) || 1); } }), ' times in the last ',
          h('input.num', { type: 'number', min: 1, value: c.days, 'aria-label': `Criterion ${i + 1} days`, onchange: (e) => { c.days = Math.max(1, Number(e.target.value) || 1); } }), ' days'),
      ] : [
        c.type === 'group_property' ? h('select', { 'aria-label': `Criterion ${i + 1} group type`, onchange: (e) => { c.group_type = e.target.value; drawRows(); } },
          state.groupTypes.map((t) => h('option', { value: t.group_type, selected: c.group_type === t.group_type }, t.display_name))) : null,
        picker({ value: c.key, placeholder: 'property', label: `Criterion ${i + 1} property`, load: () => propertyItems(c.type === 'group_property' ? `group:${c.group_type}` : source()), onpick: (v) => { c.key = v.trim(); } }),
        h('select', { 'aria-label': `Criterion ${i + 1} operator`, onchange: (e) => { c.operator = e.target.value; drawRows(); } }, OPERATORS.map(([v, t]) => h('option', { value: v, selected: c.operator === v }, t))),
        ['is_set', 'is_not_set'].includes(c.operator) ? null : picker({ value: c.value === undefined ? '' : show(c.value), placeholder: 'value', label: `Criterion ${i + 1} value`, preferMatch: false,
          load: () => (c.key ? valueItems(c.type === 'group_property' ? `group:${c.group_type}` : source(), c.key) : Promise.resolve([])),
          onpick: (v) => { c.value = /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v; } }),
      ],
      h('button.link', { type: 'button', onclick: () => { criteria.splice(i, 1); drawRows(); } }, 'Remove'))),
    h('button.link', { type: 'button', onclick: () => { criteria.push(blank('property')); drawRows(); } }, '+ Add criterion'));
  };
  const blank = (type) => (type === 'performed_event' ? { type, event: undefined, at_least: 1, days: 30 }
    : type === 'group_property' ? { type, group_type: (state.groupTypes[0] || {}).group_type, key: '', operator: 'equals', value: '' } : { type, key: '', operator: 'equals', value: '' });
  criteria.push(blank('property'));
  const dynamicPart = h('div', {}, h('label.inline', {}, 'Members match ', match, ' these:'), rows);
  const staticPart = h('div', { hidden: true }, h('label', {}, 'Ids', ids), h('label', {}, 'Or load a CSV (first column)', file));
  kind.addEventListener('change', () => { dynamicPart.hidden = kind.value !== 'dynamic'; staticPart.hidden = kind.value !== 'static'; });
  of.addEventListener('change', () => { criteria.splice(0, criteria.length, blank('property')); drawRows(); });
  drawRows();
  const form = h('form.card', {
    onsubmit: async (e) => {
      e.preventDefault();
      err.replaceChildren();
      const body = { name: name.value.trim(), count_by: of.value === 'users' ? 'users' : { group_type: of.value } };
      if (kind.value === 'static') {
        body.type = 'static';
        body.ids = idsFromText(ids.value);
        if (!body.ids.length) { err.append(errorBox('list at least one id')); return; }
      } else {
        body.type = 'dynamic';
        body.match = match.value;
        body.criteria = criteria.map((c) => {
          const out = { ...c };
          if (out.type !== 'performed_event' && ['is_set', 'is_not_set'].includes(out.operator)) delete out.value;
          if (out.type === 'performed_event' && !out.event) delete out.event;
          return out;
        });
        if (body.criteria.some((c) => c.type !== 'performed_event' && !c.key)) { err.append(errorBox('every property criterion needs a property')); return; }
      }
      try {
        const saved = await api('POST', `${P()}/cohorts`, body);
        location.hash = `#/cohort/${encodeURIComponent(saved.id)}`;
      } catch (ex) { err.append(errorBox(ex)); }
    },
  },
  h('label', {}, 'Name', name), h('div.row', {}, h('label', {}, 'Of', of), h('label', {}, 'Kind', kind)),
  dynamicPart, staticPart, err, h('div.actions', {}, h('a.button', { href: '#/cohorts' }, 'Cancel'), h('button.primary', { type: 'submit' }, 'Save cohort')));
  render(h('p', {}, link('#/cohorts', '← Cohorts')), h('h1', {}, 'New cohort'), form);
}

/** Saved cohorts of the project, for the builder's cohort filter. */
export async function savedCohorts() {
  return (await api('GET', `${P()}/cohorts`)).results;
}
