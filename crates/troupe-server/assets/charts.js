// Charts as plain SVG: lines, bars, stacked bars, funnel bars, and the retention table.
// Every mark has a <title> (the tooltip) and, where it stands for actors, a click handler.

const NS = 'http://www.w3.org/2000/svg';
export const PALETTE = ['#4f46e5', '#0891b2', '#d97706', '#db2777', '#16a34a', '#7c3aed', '#dc2626', '#0d9488', '#64748b', '#ca8a04'];
const W = 720, H = 280, PAD = { l: 48, r: 12, t: 12, b: 44 };

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c);
  return el;
}

function titled(el, text) {
  el.append(svg('title', {}, text));
  return el;
}

function frame(height = H) {
  return svg('svg', { viewBox: `0 0 ${W} ${height}`, class: 'chart', role: 'img', preserveAspectRatio: 'xMidYMid meet' });
}

function niceMax(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export function fmt(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  if (Number.isInteger(v)) return v.toLocaleString('en-US');
  return v.toLocaleString('en-US', { maximumFractionDigits: 2 });
}

/** Short label of an RFC 3339 bucket start. */
export function shortLabel(label) {
  const [date, time] = label.split('T');
  const hm = time ? time.slice(0, 5) : '00:00';
  return hm === '00:00' ? date.slice(5) : `${date.slice(5)} ${hm}`;
}

function yAxis(root, min, max, height) {
  const inner = height - PAD.t - PAD.b;
  for (let i = 0; i <= 4; i++) {
    const v = min + ((max - min) * i) / 4;
    const y = PAD.t + inner - (inner * (v - min)) / (max - min || 1);
    root.append(svg('line', { x1: PAD.l, x2: W - PAD.r, y1: y, y2: y, class: 'grid' }));
    root.append(svg('text', { x: PAD.l - 6, y: y + 4, class: 'tick', 'text-anchor': 'end' }, fmt(Math.round(v * 100) / 100)));
  }
}

function xLabels(root, labels, xOf, height) {
  const every = Math.max(1, Math.ceil(labels.length / 10));
  labels.forEach((l, i) => {
    if (i % every) return;
    root.append(svg('text', { x: xOf(i), y: height - PAD.b + 16, class: 'tick', 'text-anchor': 'middle' }, shortLabel(l)));
  });
}

function legend(container, names, colors = []) {
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

/** Lines over buckets. `onPoint(seriesIndex, bucketIndex)` when a point is clicked. */
export function lineChart(container, labels, series, onPoint) {
  const root = frame();
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.data)));
  const inner = { w: W - PAD.l - PAD.r, h: H - PAD.t - PAD.b };
  const xOf = (i) => PAD.l + (labels.length <= 1 ? inner.w / 2 : (inner.w * i) / (labels.length - 1));
  const yOf = (v) => PAD.t + inner.h - (inner.h * v) / max;
  yAxis(root, 0, max, H);
  xLabels(root, labels, xOf, H);
  series.forEach((s, si) => {
    const color = PALETTE[si % PALETTE.length];
    const points = s.data.map((v, i) => `${xOf(i)},${yOf(v)}`).join(' ');
    root.append(svg('polyline', { points, fill: 'none', stroke: color, 'stroke-width': 2 }));
    s.data.forEach((v, i) => {
      const dot = titled(svg('circle', { cx: xOf(i), cy: yOf(v), r: 4, fill: color, class: 'point', 'data-series': si, 'data-bucket': i }), `${s.name} · ${labels[i]}: ${fmt(v)}`);
      if (onPoint) dot.addEventListener('click', () => onPoint(si, i));
      root.append(dot);
    });
  });
  container.append(root);
  legend(container, series.map((s) => s.name));
}

/** Grouped bars: one group per label, one bar per series. */
export function barChart(container, labels, series, onBar) {
  const root = frame();
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.data)));
  const inner = { w: W - PAD.l - PAD.r, h: H - PAD.t - PAD.b };
  const group = inner.w / Math.max(1, labels.length);
  const bar = Math.max(2, (group * 0.8) / Math.max(1, series.length));
  yAxis(root, 0, max, H);
  xLabels(root, labels, (i) => PAD.l + group * i + group / 2, H);
  series.forEach((s, si) => {
    s.data.forEach((v, i) => {
      const h = (inner.h * v) / max;
      const rect = titled(svg('rect', {
        x: PAD.l + group * i + group * 0.1 + bar * si, y: PAD.t + inner.h - h, width: bar - 1, height: Math.max(0, h),
        fill: PALETTE[si % PALETTE.length], class: 'bar',
      }), `${s.name} · ${labels[i]}: ${fmt(v)}`);
      if (onBar) rect.addEventListener('click', () => onBar(si, i));
      root.append(rect);
    });
  });
  container.append(root);
  legend(container, series.map((s) => s.name));
}

/** Lifecycle: new, returning, resurrecting stacked up; dormant down. */
export function stackedBars(container, labels, stacks) {
  const up = labels.map((_, i) => stacks.filter((s) => s.data[i] > 0).reduce((a, s) => a + s.data[i], 0));
  const down = labels.map((_, i) => stacks.filter((s) => s.data[i] < 0).reduce((a, s) => a + s.data[i], 0));
  // Symmetric around zero, so the zero line is a grid line.
  const max = niceMax(Math.max(1, ...up, ...down.map(Math.abs))), min = -max;
  const root = frame();
  const inner = { w: W - PAD.l - PAD.r, h: H - PAD.t - PAD.b };
  const group = inner.w / Math.max(1, labels.length);
  const yOf = (v) => PAD.t + (inner.h * (max - v)) / (max - min);
  yAxis(root, min, max, H);
  xLabels(root, labels, (i) => PAD.l + group * i + group / 2, H);
  labels.forEach((l, i) => {
    let pos = 0, neg = 0;
    stacks.forEach((s, si) => {
      const v = s.data[i];
      if (!v) return;
      const from = v > 0 ? pos : neg, to = from + v;
      if (v > 0) pos = to; else neg = to;
      root.append(titled(svg('rect', {
        x: PAD.l + group * i + group * 0.15, y: yOf(Math.max(from, to)), width: group * 0.7, height: Math.abs(yOf(from) - yOf(to)),
        fill: s.color || PALETTE[si % PALETTE.length], class: 'bar',
      }), `${s.name} · ${l}: ${fmt(v)}`));
    });
  });
  container.append(root);
  legend(container, stacks.map((s) => s.name), stacks.map((s, i) => s.color || PALETTE[i % PALETTE.length]));
}

/** Funnel: a bar per step (height = count) with conversion and drop-off. */
export function funnelBars(container, steps, onStep) {
  const height = 300;
  const root = frame(height);
  const inner = { w: W - PAD.l - PAD.r, h: height - PAD.t - PAD.b - 20 };
  const max = Math.max(1, ...steps.map((s) => s.count));
  const col = inner.w / Math.max(1, steps.length);
  steps.forEach((s, i) => {
    const x = PAD.l + col * i + col * 0.15, w = col * 0.7;
    const h = (inner.h * s.count) / max;
    root.append(svg('rect', { x, y: PAD.t + 20, width: w, height: inner.h, class: 'funnel-bg' }));
    const bar = titled(svg('rect', { x, y: PAD.t + 20 + inner.h - h, width: w, height: h, class: 'funnel-bar', 'data-step': i }),
      `${s.name}: ${fmt(s.count)} (${(s.conversion_from_first * 100).toFixed(1)}% of step 1), ${fmt(s.dropped)} dropped`);
    if (onStep) bar.addEventListener('click', () => onStep(i));
    root.append(bar);
    root.append(svg('text', { x: x + w / 2, y: PAD.t + 12, class: 'tick strong', 'text-anchor': 'middle' },
      `${fmt(s.count)} · ${(s.conversion_from_first * 100).toFixed(1)}%`));
    root.append(svg('text', { x: x + w / 2, y: height - PAD.b + 12, class: 'tick', 'text-anchor': 'middle' }, `${i + 1}. ${s.name}`.slice(0, 28)));
  });
  container.append(root);
}

/** The retention triangle: one row per cohort, shaded by the share retained. */
export function retentionTable(container, rows) {
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
  for (const r of rows) {
    const tr = body.insertRow();
    tr.insertCell().textContent = shortLabel(r.cohort) + (r.breakdown_value ? ` · ${r.breakdown_value}` : '');
    tr.insertCell().textContent = fmt(r.size);
    for (let p = 0; p < periods; p++) {
      const td = tr.insertCell();
      const c = r.values[p];
      if (!c) continue;
      td.textContent = `${c.percentage.toFixed(0)}%`;
      td.title = `${fmt(c.count)} of ${fmt(r.size)}`;
      td.className = 'cell';
      td.style.backgroundColor = `rgba(79, 70, 229, ${Math.min(1, c.percentage / 100) * 0.85 + 0.05})`;
      if (c.percentage > 55) td.classList.add('dark');
    }
  }
  container.append(table);
}
