/*
 * chatserver console: tiny SVG charts, no dependencies.
 *
 *   chatserverCharts.line(container, {series, yLabel, height, testid})
 *       series: [{name, className, points: [[t_ms, value], ...]}]; x is time
 *   chatserverCharts.bars(container, {rows, testid})
 *       rows: [{label, value, max, className}] — one horizontal bar per row
 *
 * Each call replaces the container's content. Labels are set with
 * textContent only (operator names come from the network); no innerHTML.
 */
(function () {
  'use strict';

  var SVG = 'http://www.w3.org/2000/svg';

  function svgEl(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function pad2(n) { return (n < 10 ? '0' : '') + n; }

  /** A "nice" upper bound for an axis: 1, 2, 5 × 10^k at or above `max`. */
  function niceMax(max) {
    if (!(max > 0)) return 1;
    var exp = Math.pow(10, Math.floor(Math.log10(max)));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i++) {
      if (steps[i] * exp >= max) return steps[i] * exp;
    }
    return 10 * exp;
  }

  function formatValue(v) {
    if (v >= 3600) return Math.round(v / 360) / 10 + ' h';
    if (v >= 120) return Math.round(v / 60) + ' min';
    return String(Math.round(v * 10) / 10);
  }

  /**
   * Time series as lines. With two series, the second uses the right axis
   * (e.g. queue length left, longest wait right).
   */
  function line(container, opts) {
    clear(container);
    var series = opts.series || [];
    var width = container.clientWidth || 480;
    var height = opts.height || 160;
    var m = { top: 10, right: series.length > 1 ? 48 : 12, bottom: 22, left: 36 };
    var w = Math.max(40, width - m.left - m.right);
    var h = Math.max(40, height - m.top - m.bottom);
    var svg = svgEl('svg', {
      viewBox: '0 0 ' + width + ' ' + height, width: '100%', height: height,
      role: 'img', class: 'chart chart-line', 'data-testid': opts.testid || 'chart'
    });
    svg.appendChild(svgEl('title', {}, opts.title || ''));
    var tMin = Infinity;
    var tMax = -Infinity;
    series.forEach(function (s) {
      s.points.forEach(function (p) {
        if (p[0] < tMin) tMin = p[0];
        if (p[0] > tMax) tMax = p[0];
      });
    });
    if (!isFinite(tMin)) {
      svg.appendChild(svgEl('text', { x: width / 2, y: height / 2, class: 'chart-empty', 'text-anchor': 'middle' }, 'No data yet'));
      container.appendChild(svg);
      return svg;
    }
    if (tMax - tMin < 10 * 60000) tMin = tMax - 10 * 60000;  // at least ten minutes wide
    var x = function (t) { return m.left + (t - tMin) / (tMax - tMin) * w; };
    var g = svgEl('g', {});
    // Grid and time axis: one tick per hour (or per 10 min on short spans).
    var step = tMax - tMin > 2 * 3600000 ? 3600000 : 600000;
    for (var t = Math.ceil(tMin / step) * step; t <= tMax; t += step) {
      var d = new Date(t);
      g.appendChild(svgEl('line', { x1: x(t), x2: x(t), y1: m.top, y2: m.top + h, class: 'chart-grid' }));
      g.appendChild(svgEl('text', { x: x(t), y: height - 6, class: 'chart-tick', 'text-anchor': 'middle' },
        pad2(d.getHours()) + ':' + pad2(d.getMinutes())));
    }
    g.appendChild(svgEl('line', { x1: m.left, x2: m.left + w, y1: m.top + h, y2: m.top + h, class: 'chart-axis' }));
    series.forEach(function (s, i) {
      var max = niceMax(Math.max.apply(null, s.points.map(function (p) { return p[1]; }).concat([0])));
      var y = function (v) { return m.top + h - v / max * h; };
      var right = i === 1;
      g.appendChild(svgEl('text', {
        x: right ? m.left + w + 4 : m.left - 4, y: m.top + 8,
        class: 'chart-tick ' + (s.className || ''), 'text-anchor': right ? 'start' : 'end'
      }, formatValue(max)));
      g.appendChild(svgEl('text', {
        x: right ? m.left + w + 4 : m.left - 4, y: m.top + h,
        class: 'chart-tick', 'text-anchor': right ? 'start' : 'end'
      }, '0'));
      var d = '';
      s.points.forEach(function (p, j) {
        d += (j ? 'L' : 'M') + x(p[0]).toFixed(1) + ',' + y(p[1]).toFixed(1);
      });
      g.appendChild(svgEl('path', { d: d, class: 'chart-series ' + (s.className || ''), fill: 'none' }));
      var last = s.points[s.points.length - 1];
      g.appendChild(svgEl('circle', {
        cx: x(last[0]).toFixed(1), cy: y(last[1]).toFixed(1), r: 3, class: 'chart-dot ' + (s.className || '')
      }));
    });
    svg.appendChild(g);
    container.appendChild(svg);
    return svg;
  }

  /** Horizontal bars: `value` of `max` per row, labelled "value / max". */
  function bars(container, opts) {
    clear(container);
    var rows = opts.rows || [];
    var width = container.clientWidth || 480;
    var rowH = 18;
    var labelW = Math.min(160, Math.round(width * 0.35));
    var height = Math.max(rowH, rows.length * rowH) + 4;
    var svg = svgEl('svg', {
      viewBox: '0 0 ' + width + ' ' + height, width: '100%', height: height,
      role: 'img', class: 'chart chart-bars', 'data-testid': opts.testid || 'chart'
    });
    svg.appendChild(svgEl('title', {}, opts.title || ''));
    if (!rows.length) {
      svg.appendChild(svgEl('text', { x: width / 2, y: 14, class: 'chart-empty', 'text-anchor': 'middle' }, opts.empty || 'No data'));
    }
    var barW = Math.max(20, width - labelW - 56);
    rows.forEach(function (r, i) {
      var y = 2 + i * rowH;
      var max = r.max > 0 ? r.max : 1;
      var frac = Math.max(0, Math.min(1, r.value / max));
      var row = svgEl('g', { class: 'chart-bar-row', 'data-label': r.label });
      var label = svgEl('text', { x: labelW - 6, y: y + 12, class: 'chart-label', 'text-anchor': 'end' }, r.label);
      row.appendChild(label);
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

  window.chatserverCharts = { line: line, bars: bars, niceMax: niceMax };
})();
