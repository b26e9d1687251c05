// Charts as plain SVG: lines, areas, bars, stacked bars, big numbers, funnel bars and the
// retention table. Drawn at the width of their box (labels stay 11 px on a phone); every mark
// has a <title> (the tooltip) and, where it stands for actors, a click handler that the keyboard
// reaches too (Tab, then Enter).

const NS = 'http://www.w3.org/2000/svg';
export const PALETTE = ['#4f46e5', '#0891b2', '#d97706', '#db2777', '#16a34a', '#7c3aed', '#dc2626', '#0d9488', '#64748b', '#ca8a04'];
const PAD = { l: 52, r: 16, t: 14, b: 40 };

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children) el.append(c);
  return el;
}

function titled(el, text) {
  el.append(svg('title', {}, text));
  return el;
}

/** A mark that lists actors: clickable and reachable by keyboard. */
function actionable(el, label, action) {
  if (!action) return el;
  el.setAttribute('tabindex', '0');
  el.setAttribute('role', 'button');
  el.setAttribute('aria-label', label);
  el.addEventListener('click', action);
  el.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); action(); } });
  return el;
}

/** The drawing area, as wide as the box it is drawn in. */
function frame(container, height) {
  const width = Math.max(300, Math.min(1400, container.clientWidth || 720));
  const h = height || (width < 560 ? 230 : 280);
  const root = svg('svg', { viewBox: `0 0 ${width} ${h}`, width, height: h, class: 'chart', role: 'img' });
  return { root, W: width, H: h, inner: { w: width - PAD.l - PAD.r, h: h - PAD.t - PAD.b } };
}

/** Round axis ends and steps: 1, 2, 2.5 or 5 times a power of ten; whole steps for counts. */
export function ticks(maxValue, integer) {
  const max = maxValue > 0 ? maxValue : 1;
  const raw = max / 4;
  const p = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((x) => x >= raw * (1 - 1e-9));
  if (integer) step = Math.max(1, Math.ceil(step));
  return { max: step * Math.ceil(max / step - 1e-9), step };
}

export function fmt(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  if (Number.isInteger(v)) return v.toLocaleString('en-US');
  return v.toLocaleString('en-US', { maximumFractionDigits: 2 });
}

function yAxis(f, min, max, step) {
  for (let v = min; v <= max + step / 1000; v += step) {
    const y = PAD.t + f.inner.h - (f.inner.h * (v - min)) / (max - min || 1);
    f.root.append(svg('line', { x1: PAD.l, x2: f.W - PAD.r, y1: y, y2: y, class: v === 0 ? 'grid zero' : 'grid' }));
    f.root.append(svg('text', { x: PAD.l - 6, y: y + 4, class: 'tick', 'text-anchor': 'end' }, fmt(Math.round(v * 100) / 100)));
  }
}

/** As many labels as fit (one per ~70 px); the first and last kept inside the frame. */
function xLabels(f, labels, xOf, format) {
  const every = Math.max(1, Math.ceil(labels.length / Math.max(2, Math.floor(f.inner.w / 70))));
  labels.forEach((l, i) => {
    if (i % every && i !== labels.length - 1) return;
    if (i === labels.length - 1 && i % every && labels.length - 1 - (i - (i % every)) < every / 2) return;
    const x = xOf(i);
    const anchor = x - PAD.l < 24 ? 'start' : f.W - PAD.r - x < 24 ? 'end' : 'middle';
    f.root.append(svg('text', { x, y: f.H - PAD.b + 16, class: 'tick', 'text-anchor': anchor }, format(l)));
  });
}

function legend(container, names, colors = []) {
  if (names.length < 2 && !colors.length) return;
  const box = document.createElement('div');
  box.className = 'legend';
  names.forEach((n, i) => {
    const item = document.createElement('span');
    const dot = document.createElement('i');
    dot.style.background = colors[i] || PALETTE[i % PALETTE.length];
    item.append(dot, n);
    box.append(item);
  });
  container.append(box);
}

/**
 * Series over buckets as `kind` = line | area | bar | stacked.
 *   labels, series [{name, data, dashed?}], format(label) for the x axis and tooltips,
 *   inProgress: the last bucket is not over (drawn dashed / hatched), onPoint(series, bucket).
 */
export function seriesChart(container, { kind = 'line', labels, series, format = String, inProgress = false, onPoint }) {
  const f = frame(container);
  const integer = series.every((s) => s.data.every((v) => Number.isInteger(v)));
  const totals = kind === 'stacked' ? labels.map((_, i) => series.reduce((a, s) => a + Math.max(0, s.data[i] || 0), 0)) : [];
  const { max, step } = ticks(Math.max(0, ...series.flatMap((s) => s.data), ...totals), integer);
  const yOf = (v) => PAD.t + f.inner.h - (f.inner.h * v) / max;
  yAxis(f, 0, max, step);
  const last = labels.length - 1;
  if (kind === 'bar' || kind === 'stacked') {
    const group = f.inner.w / Math.max(1, labels.length);
    const xOf = (i) => PAD.l + group * i + group / 2;
    xLabels(f, labels, xOf, format);
    const width = kind === 'bar' ? Math.max(1, (group * 0.8) / Math.max(1, series.length)) : Math.max(1, group * 0.7);
    const base = labels.map(() => 0);
    series.forEach((s, si) => {
      const color = PALETTE[si % PALETTE.length];
      s.data.forEach((v, i) => {
        const from = kind === 'stacked' ? base[i] : 0;
        const x = kind === 'bar' ? PAD.l + group * i + group * 0.1 + width * si : PAD.l + group * i + group * 0.15;
        const rect = svg('rect', {
          x, y: yOf(from + Math.max(0, v)), width: Math.max(1, width - 1), height: Math.max(0, yOf(from) - yOf(from + Math.max(0, v))),
          fill: color, class: `bar${inProgress && i === last ? ' in-progress' : ''}`, 'data-series': si, 'data-bucket': i,
        });
        if (kind === 'stacked') base[i] += Math.max(0, v);
        const text = `${s.name} · ${format(labels[i])}${inProgress && i === last ? ' (in progress)' : ''}: ${fmt(v)}`;
        f.root.append(actionable(titled(rect, text), text, onPoint && (() => onPoint(si, i))));
      });
    });
  } else {
    const xOf = (i) => PAD.l + (labels.length <= 1 ? f.inner.w / 2 : (f.inner.w * i) / last);
    xLabels(f, labels, xOf, format);
    series.forEach((s, si) => {
      const color = PALETTE[si % PALETTE.length];
      const done = inProgress ? s.data.slice(0, -1) : s.data;
      const pts = (data, offset = 0) => data.map((v, i) => `${xOf(i + offset)},${yOf(v)}`).join(' ');
      if (kind === 'area' && s.data.length) {
        const area = `${xOf(0)},${yOf(0)} ${pts(s.data)} ${xOf(s.data.length - 1)},${yOf(0)}`;
        f.root.append(svg('polygon', { points: area, fill: color, 'fill-opacity': 0.15, stroke: 'none' }));
      }
      f.root.append(svg('polyline', { points: pts(done), fill: 'none', stroke: color, 'stroke-width': 2, 'stroke-dasharray': s.dashed ? '5 4' : null }));
      if (inProgress && s.data.length > 1) {
        f.root.append(svg('polyline', { points: pts(s.data.slice(-2), s.data.length - 2), fill: 'none', stroke: color, 'stroke-width': 2, 'stroke-dasharray': '3 4', class: 'in-progress' }));
      }
      s.data.forEach((v, i) => {
        const open = inProgress && i === last;
        const text = `${s.name} · ${format(labels[i])}${open ? ' (in progress)' : ''}: ${fmt(v)}`;
        const dot = svg('circle', { cx: xOf(i), cy: yOf(v), r: labels.length > 60 ? 2.5 : 4, fill: open ? 'var(--card)' : color, stroke: color, 'stroke-width': 2, class: 'point', 'data-series': si, 'data-bucket': i });
        f.root.append(actionable(titled(dot, text), text, onPoint && (() => onPoint(si, i))));
      });
    });
  }
  container.append(f.root);
  legend(container, series.map((s) => s.name));
}

/** One big number per item: {name, value, change?} (change: fraction, e.g. 0.12 = +12 %). */
export function bigNumbers(container, items) {
  const box = document.createElement('div');
  box.className = 'big-numbers';
  for (const it of items) {
    const card = document.createElement('div');
    card.className = 'big-number';
    const value = document.createElement('strong');
    value.textContent = fmt(it.value);
    const name = document.createElement('span');
    name.textContent = it.name;
    card.append(value, name);
    if (it.change !== undefined && it.change !== null) card.append(changeBadge(it.change));
    box.append(card);
  }
  container.append(box);
}

/** "+12.5 %" in green, "−3 %" in red, "new" when the previous period was zero. */
export function changeBadge(change) {
  const badge = document.createElement('span');
  if (!Number.isFinite(change)) {
    badge.className = 'change up';
    badge.textContent = 'new';
  } else {
    badge.className = `change ${change > 0 ? 'up' : change < 0 ? 'down' : ''}`;
    badge.textContent = `${change > 0 ? '+' : change < 0 ? '−' : '±'}${Math.abs(change * 100).toFixed(1)} %`;
  }
  badge.title = 'change from the previous period';
  return badge;
}

/** Lifecycle: new, returning, resurrecting stacked up; dormant down. */
export function stackedBars(container, labels, stacks, format = String, onBar, inProgress = false) {
  const up = labels.map((_, i) => stacks.filter((s) => s.data[i] > 0).reduce((a, s) => a + s.data[i], 0));
  const down = labels.map((_, i) => stacks.filter((s) => s.data[i] < 0).reduce((a, s) => a + s.data[i], 0));
  // Symmetric around zero, so the zero line is a grid line.
  const { max, step } = ticks(Math.max(1, ...up, ...down.map(Math.abs)), true);
  const min = -max;
  const f = frame(container);
  const group = f.inner.w / Math.max(1, labels.length);
  const yOf = (v) => PAD.t + (f.inner.h * (max - v)) / (max - min);
  yAxis(f, min, max, step);
  xLabels(f, labels, (i) => PAD.l + group * i + group / 2, format);
  labels.forEach((l, i) => {
    let pos = 0, neg = 0;
    stacks.forEach((s, si) => {
      const v = s.data[i];
      if (!v) return;
      const from = v > 0 ? pos : neg, to = from + v;
      if (v > 0) pos = to; else neg = to;
      const text = `${s.name} · ${format(l)}: ${fmt(v)}`;
      f.root.append(actionable(titled(svg('rect', {
        x: PAD.l + group * i + group * 0.15, y: yOf(Math.max(from, to)), width: group * 0.7, height: Math.abs(yOf(from) - yOf(to)),
        fill: s.color || PALETTE[si % PALETTE.length], class: `bar${inProgress && i === labels.length - 1 ? ' in-progress' : ''}`, 'data-status': s.status, 'data-bucket': i,
      }), inProgress && i === labels.length - 1 ? `${text} (in progress)` : text), text, onBar && (() => onBar(si, i))));
    });
  });
  container.append(f.root);
  legend(container, stacks.map((s) => s.name), stacks.map((s, i) => s.color || PALETTE[i % PALETTE.length]));
}

/**
 * Funnel: a bar per step (height = count) with conversion; with breakdowns, a bar per breakdown
 * value in each step. onStep(stepIndex, breakdownIndex | null).
 */
export function funnelBars(container, steps, onStep, breakdowns = []) {
  const f = frame(container, 300);
  const groups = breakdowns.length ? breakdowns : [{ name: null, steps }];
  const top = PAD.t + 20;
  const innerH = f.inner.h - 20;
  const max = Math.max(1, ...groups.flatMap((g) => g.steps.map((s) => s.count)));
  const col = f.inner.w / Math.max(1, steps.length);
  const width = (col * 0.7) / groups.length;
  steps.forEach((s, i) => {
    const x0 = PAD.l + col * i + col * 0.15;
    f.root.append(svg('rect', { x: x0, y: top, width: col * 0.7, height: innerH, class: 'funnel-bg' }));
    groups.forEach((g, gi) => {
      const st = g.steps[i] || { count: 0, conversion_from_first: 0, dropped: 0 };
      const h = (innerH * st.count) / max;
      const text = `${g.name === null ? '' : `${g.name} · `}${s.name}: ${fmt(st.count)} (${(st.conversion_from_first * 100).toFixed(1)}% of step 1), ${fmt(st.dropped)} dropped`;
      const bar = svg('rect', { x: x0 + width * gi, y: top + innerH - h, width: Math.max(1, width - 1), height: h, class: 'funnel-bar', fill: groups.length > 1 ? PALETTE[gi % PALETTE.length] : null, 'data-step': i });
      f.root.append(actionable(titled(bar, text), text, onStep && (() => onStep(i, g.name === null ? null : gi))));
    });
    f.root.append(svg('text', { x: x0 + col * 0.35, y: PAD.t + 10, class: 'tick strong', 'text-anchor': 'middle' },
      `${fmt(s.count)} · ${(s.conversion_from_first * 100).toFixed(1)}%`));
    f.root.append(svg('text', { x: x0 + col * 0.35, y: f.H - PAD.b + 16, class: 'tick', 'text-anchor': 'middle' }, `${i + 1}. ${s.name}`.slice(0, Math.max(8, Math.floor(col / 7)))));
  });
  container.append(f.root);
  if (groups.length > 1) legend(container, groups.map((g) => g.name));
}

/**
 * The retention triangle: one row per cohort, shaded by the share retained, under the mean row
 * the API answers (`means`: per period, over the cohorts that reach it and have actors).
 * onCell(rowIndex, period).
 */
export function retentionTable(container, rows, means, format = String, onCell) {
  const table = document.createElement('table');
  table.className = 'retention';
  const periods = Math.max(0, ...rows.map((r) => r.values.length));
  const head = table.createTHead().insertRow();
  for (const t of ['Cohort', 'Size', ...Array.from({ length: periods }, (_, p) => `+${p}`)]) {
    const th = document.createElement('th');
    th.textContent = t;
    head.append(th);
  }
  const body = table.createTBody();
  const shade = (td, pct) => {
    td.style.backgroundColor = `rgba(79, 70, 229, ${Math.min(1, pct / 100) * 0.85 + 0.05})`;
    if (pct > 55) td.classList.add('dark');
  };
  for (const mean of means) {
    const meanRow = body.insertRow();
    meanRow.className = 'mean';
    meanRow.insertCell().textContent = mean.breakdown_value ? `Mean · ${mean.breakdown_value}` : 'Mean';
    meanRow.insertCell().textContent = fmt(rows.filter((r) => (r.breakdown_value ?? null) === (mean.breakdown_value ?? null)).reduce((a, r) => a + r.size, 0));
    for (let p = 0; p < periods; p++) {
      const td = meanRow.insertCell();
      const m = mean.values.find((v) => v.period === p);
      if (!m || !m.cohorts) continue;
      td.textContent = `${m.percentage.toFixed(1)}%`;
      td.title = `${fmt(m.count)} of ${fmt(m.size)} over ${m.cohorts} cohort${m.cohorts === 1 ? '' : 's'}`;
      td.className = 'cell';
      shade(td, m.percentage);
    }
  }
  rows.forEach((r, ri) => {
    const tr = body.insertRow();
    tr.insertCell().textContent = format(r.cohort) + (r.breakdown_value ? ` · ${r.breakdown_value}` : '');
    tr.insertCell().textContent = fmt(r.size);
    for (let p = 0; p < periods; p++) {
      const td = tr.insertCell();
      const c = r.values[p];
      if (!c) continue;
      td.textContent = `${c.percentage.toFixed(0)}%`;
      td.title = `${fmt(c.count)} of ${fmt(r.size)}`;
      td.className = 'cell';
      shade(td, c.percentage);
      if (onCell && c.count) actionable(td, `${format(r.cohort)} +${p}: ${fmt(c.count)}`, () => onCell(ri, p));
    }
  });
  container.append(table);
}

/**
 * Paths as a Sankey diagram: a column per step, a node per event there (height = actors, the 8
 * largest per step), bands between them (width = actors going from one to the next).
 * onMark({step, source, target?}) for a node or a band.
 */
export function pathsChart(container, r, onMark) {
  const steps = Math.max(1, ...r.nodes.map((n) => n.step));
  const f = frame(container, 360);
  const nodeW = 10;
  const perStep = new Map();
  for (let s = 1; s <= steps; s++) {
    perStep.set(s, r.nodes.filter((n) => n.step === s).sort((a, b) => b.actors - a.actors).slice(0, 8));
  }
  const gap = 10;
  const tallest = Math.max(1, ...[...perStep.values()].map((ns) => ns.reduce((a, n) => a + n.actors, 0)));
  const spare = Math.max(...[...perStep.values()].map((ns) => ns.length - 1), 0) * gap;
  const scale = Math.max(0.0001, (f.H - 30 - spare) / tallest);
  const colX = (s) => 8 + ((f.W - 200 - nodeW) * (s - 1)) / Math.max(1, steps - 1);
  const place = new Map();
  for (const [s, ns] of perStep) {
    let y = 10;
    for (const n of ns) {
      const h = Math.max(2, n.actors * scale);
      place.set(`${s}|${n.name}`, { x: colX(s), y, h, out: y, in: y, node: n });
      y += h + gap;
    }
  }
  for (const e of r.edges) {
    const a = place.get(`${e.step}|${e.source}`), b = place.get(`${e.step + 1}|${e.target}`);
    if (!a || !b) continue;
    const w = Math.max(1, e.actors * scale);
    const x0 = a.x + nodeW, x1 = b.x, y0 = a.out, y1 = b.in;
    a.out += w;
    b.in += w;
    const mid = (x0 + x1) / 2;
    const text = `${e.source} → ${e.target} (step ${e.step}): ${fmt(e.actors)}`;
    // A filled band between the two nodes, as wide as the actors it carries.
    const d = `M${x0},${y0} C${mid},${y0} ${mid},${y1} ${x1},${y1} L${x1},${y1 + w} C${mid},${y1 + w} ${mid},${y0 + w} ${x0},${y0 + w} Z`;
    const band = svg('path', { d, fill: PALETTE[(e.step - 1) % PALETTE.length], 'fill-opacity': 0.22, class: 'band' });
    f.root.append(actionable(titled(band, text), text, onMark && (() => onMark({ step: e.step, source: e.source, target: e.target }))));
  }
  for (const p of place.values()) {
    const n = p.node;
    const text = `${n.name} (step ${n.step}): ${fmt(n.actors)}${n.ended ? `, ${fmt(n.ended)} end here` : ''}`;
    const rect = svg('rect', { x: p.x, y: p.y, width: nodeW, height: p.h, fill: PALETTE[(n.step - 1) % PALETTE.length], class: 'bar', 'data-step': n.step });
    f.root.append(actionable(titled(rect, text), text, onMark && (() => onMark({ step: n.step, source: n.name }))));
    f.root.append(svg('text', { x: p.x + nodeW + 4, y: p.y + Math.min(p.h, 24) / 2 + 4, class: 'tick' }, `${n.name.slice(0, 22)} · ${fmt(n.actors)}`));
  }
  container.append(f.root);
}
