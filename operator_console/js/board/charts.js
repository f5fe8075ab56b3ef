/*
 * Tiny SVG charts for the board, no dependencies.
 *
 *   lineChart(container, {series, title, height, testid})
 *       series: [{name, className, points: [[t_ms, value], ...]}]; x is time
 *   barChart(container, {rows, title, empty, testid})
 *       rows: [{label, value, max, className}] — one horizontal bar per row
 *
 * Each call replaces the container's content. Labels are set with
 * textContent only (operator names come from the network); no innerHTML.
 */
import { clear } from '../shared/dom.js';
import { t } from '../shared/i18n.js';
import { formatClock } from '../shared/format.js';

const SVG = 'http://www.w3.org/2000/svg';

function svgEl(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  Object.keys(attrs || {}).forEach((k) => { node.setAttribute(k, String(attrs[k])); });
  if (text !== undefined) node.textContent = String(text);
  return node;
}

/** A "nice" upper bound for an axis: 1, 2, 5 × 10^k at or above `max`. */
export function niceMax(max) {
  if (!(max > 0)) return 1;
  const exp = Math.pow(10, Math.floor(Math.log10(max)));
  const steps = [1, 2, 5, 10];
  for (let i = 0; i < steps.length; i++) {
    if (steps[i] * exp >= max) return steps[i] * exp;
  }
  return 10 * exp;
}

function formatValue(v) {
  if (v >= 3600) return t('chart.hours', { n: Math.round(v / 360) / 10 });
  if (v >= 120) return t('chart.minutes', { n: Math.round(v / 60) });
  return String(Math.round(v * 10) / 10);
}

/**
 * Time series as lines. With two series, the second uses the right axis
 * (e.g. queue length left, longest wait right).
 */
export function lineChart(container, opts) {
  clear(container);
  const series = opts.series || [];
  const width = container.clientWidth || 480;
  const height = opts.height || 160;
  const m = { top: 10, right: series.length > 1 ? 48 : 12, bottom: 22, left: 36 };
  const w = Math.max(40, width - m.left - m.right);
  const h = Math.max(40, height - m.top - m.bottom);
  const svg = svgEl('svg', {
    viewBox: '0 0 ' + width + ' ' + height, width: '100%', height: height,
    role: 'img', class: 'chart chart-line', 'data-testid': opts.testid || 'chart'
  });
  svg.appendChild(svgEl('title', {}, opts.title || ''));
  let tMin = Infinity;
  let tMax = -Infinity;
  series.forEach((s) => {
    s.points.forEach((p) => {
      if (p[0] < tMin) tMin = p[0];
      if (p[0] > tMax) tMax = p[0];
    });
  });
  if (!isFinite(tMin)) {
    svg.appendChild(svgEl('text', { x: width / 2, y: height / 2, class: 'chart-empty', 'text-anchor': 'middle' }, t('chart.noDataYet')));
    container.appendChild(svg);
    return svg;
  }
  if (tMax - tMin < 10 * 60000) tMin = tMax - 10 * 60000;  // at least ten minutes wide
  const x = (tm) => m.left + (tm - tMin) / (tMax - tMin) * w;
  const g = svgEl('g', {});
  // Grid and time axis: one tick per hour (or per 10 min on short spans).
  const step = tMax - tMin > 2 * 3600000 ? 3600000 : 600000;
  for (let tm = Math.ceil(tMin / step) * step; tm <= tMax; tm += step) {
    g.appendChild(svgEl('line', { x1: x(tm), x2: x(tm), y1: m.top, y2: m.top + h, class: 'chart-grid' }));
    g.appendChild(svgEl('text', { x: x(tm), y: height - 6, class: 'chart-tick', 'text-anchor': 'middle' },
      formatClock(tm)));
  }
  g.appendChild(svgEl('line', { x1: m.left, x2: m.left + w, y1: m.top + h, y2: m.top + h, class: 'chart-axis' }));
  series.forEach((s, i) => {
    const max = niceMax(Math.max.apply(null, s.points.map((p) => p[1]).concat([0])));
    const y = (v) => m.top + h - v / max * h;
    const right = i === 1;
    g.appendChild(svgEl('text', {
      x: right ? m.left + w + 4 : m.left - 4, y: m.top + 8,
      class: 'chart-tick ' + (s.className || ''), 'text-anchor': right ? 'start' : 'end'
    }, formatValue(max)));
    g.appendChild(svgEl('text', {
      x: right ? m.left + w + 4 : m.left - 4, y: m.top + h,
      class: 'chart-tick', 'text-anchor': right ? 'start' : 'end'
    }, '0'));
    let d = '';
    s.points.forEach((p, j) => {
      d += (j ? 'L' : 'M') + x(p[0]).toFixed(1) + ',' + y(p[1]).toFixed(1);
    });
    g.appendChild(svgEl('path', { d: d, class: 'chart-series ' + (s.className || ''), fill: 'none' }));
    const last = s.points[s.points.length - 1];
    g.appendChild(svgEl('circle', {
      cx: x(last[0]).toFixed(1), cy: y(last[1]).toFixed(1), r: 3, class: 'chart-dot ' + (s.className || '')
    }));
  });
  svg.appendChild(g);
  container.appendChild(svg);
  return svg;
}

/** Horizontal bars: `value` of `max` per row, labelled "value / max". */
export function barChart(container, opts) {
  clear(container);
  const rows = opts.rows || [];
  const width = container.clientWidth || 480;
  const rowH = 18;
  const labelW = Math.min(160, Math.round(width * 0.35));
  const height = Math.max(rowH, rows.length * rowH) + 4;
  const svg = svgEl('svg', {
    viewBox: '0 0 ' + width + ' ' + height, width: '100%', height: height,
    role: 'img', class: 'chart chart-bars', 'data-testid': opts.testid || 'chart'
  });
  svg.appendChild(svgEl('title', {}, opts.title || ''));
  if (!rows.length) {
    svg.appendChild(svgEl('text', { x: width / 2, y: 14, class: 'chart-empty', 'text-anchor': 'middle' }, opts.empty || t('chart.noData')));
  }
  const barW = Math.max(20, width - labelW - 56);
  rows.forEach((r, i) => {
    const y = 2 + i * rowH;
    const max = r.max > 0 ? r.max : 1;
    const frac = Math.max(0, Math.min(1, r.value / max));
    const row = svgEl('g', { class: 'chart-bar-row', 'data-label': r.label });
    row.appendChild(svgEl('text', { x: labelW - 6, y: y + 12, class: 'chart-label', 'text-anchor': 'end' }, r.label));
    row.appendChild(svgEl('rect', { x: labelW, y: y + 3, width: barW, height: rowH - 6, rx: 2, class: 'chart-track' }));
    row.appendChild(svgEl('rect', {
      x: labelW, y: y + 3, width: Math.max(frac > 0 ? 2 : 0, frac * barW), height: rowH - 6, rx: 2,
      class: 'chart-bar ' + (r.className || '') + (r.value >= max ? ' is-full' : '')
    }));
    row.appendChild(svgEl('text', { x: labelW + barW + 6, y: y + 12, class: 'chart-tick' }, r.value + ' / ' + r.max));
    svg.appendChild(row);
  });
  container.appendChild(svg);
  return svg;
}
