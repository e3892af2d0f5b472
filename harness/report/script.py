"""The page's own script: value tables, the list of every run and the explorer, drawn from the
one JSON block (`harness.report.page_data`). Plain ES2018, no library but Vega (for the explorer).
The JSON block and the Vega bundle are packed (gzip, base64): the script inflates them first.

`fmt` prints a number as `harness.report.text.format_value` does: the JSON holds the printed
value, so the digits are the same.
"""

PAGE_SCRIPT = r"""
(async () => {
  const inflate = async id => {
    const element = document.getElementById(id);
    if (!element) return null;
    const bytes = Uint8Array.from(atob(element.textContent.trim()), c => c.charCodeAt(0));
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
    return new Response(stream).text();
  };
  for (const slot of document.querySelectorAll('[data-packed]')) {
    slot.outerHTML = await inflate(slot.dataset.packed);  // a large section, packed
  }
  const data = JSON.parse(await inflate('report-data'));
  for (const cell of document.querySelectorAll('td[data-tip]')) {
    cell.title = data.matrix_tips[Number(cell.dataset.tip)];
  }
  const column = c => c && c.levels ? c.codes.map(i => c.levels[i]) : c;
  const runs = Object.fromEntries(Object.entries(data.runs).map(([name, c]) => [name, column(c)]));
  runs.label = runs.model.map((model, i) => `${model}@${runs.revision[i]}`);
  const entities = {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'};
  const esc = s => String(s).replace(/[&<>"]/g, c => entities[c]);
  const num = v => v === 'inf' ? Infinity : v === '-inf' ? -Infinity : v;
  const fmt = v => {
    if (v === null || v === undefined) return '–';
    if (typeof v === 'string') return v;
    const a = Math.abs(v);
    if (a > 0 && a < 0.001) return v.toExponential(2).replace(/e([+-])(\d)$/, 'e$10$2');
    if (a >= 1000) return Math.round(v).toLocaleString('en-US');
    return v.toFixed(3);
  };
  const count = v => v === null || v === undefined ? '–' : Math.trunc(v).toLocaleString('en-US');
  const flops = v => v === null || v === undefined ? '–' : v.toExponential(1).replace('e+', 'e');
  const xcell = i => ({count, flops, bpb: fmt})[data.x_format](runs[data.x_column][i]);  // ScaleAxis.cell
  const wrap = name => esc(name).replace(/_/g, '_<wbr>');
  const table = (head, rows) =>
    `<table class="n2"><thead><tr>${head}</tr></thead><tbody>${rows.join('')}</tbody></table>`;

  for (const el of document.querySelectorAll('[data-values]')) {
    const ids = el.dataset.values.split(',').map(Number);
    const metrics = el.dataset.metrics.split(' ');
    const head = `<th>model</th><th>family</th><th>${esc(data.x_label)}</th><th>n</th>`
      + metrics.map(m => `<th data-metric="${esc(m)}">${wrap(m)}</th>`).join('');
    const rows = ids.map(i => `<tr data-run="${i}"><td>${esc(runs.label[i])}</td>`
      + `<td>${esc(runs.group[i])}</td><td>${xcell(i)}</td><td>${runs.n[i]}</td>`
      + metrics.map(m => {
        const e = data.values[m][i];
        return e ? `<td>${fmt(e[0])}<i>[${fmt(e[1])}, ${fmt(e[2])}]</i></td>` : '<td>–</td>';
      }).join('') + '</tr>');
    el.innerHTML = table(head, rows);
  }

  for (const el of document.querySelectorAll('[data-mirage]')) {
    const columns = ['model', esc(data.x_label), 'observed exact_str_match', 'mean p_tok', 'mean L (tokens)',
                     'predicted p_tok<sup>L</sup>', 'mean of per-example p<sup>L</sup>',
                     'observed − predicted'];
    const rows = el.dataset.mirage.split(',').map(i => `<tr data-run="${i}"><td>${esc(runs.label[i])}</td>`
      + `<td>${xcell(i)}</td>` + (data.mirage[i] || []).map(v => `<td>${fmt(v)}</td>`).join('')
      + '</tr>');
    el.innerHTML = table(columns.map(c => `<th>${c}</th>`).join(''), rows).replace(' class="n2"', '');
  }

  const every = document.getElementById('every-run');
  if (every) {
    const columns = ['run folder', 'task', 'shots', 'n', 'limit', 'device', 'wall (s)', 'commit', 'scored'];
    const rows = runs.dir.map((dir, i) => '<tr>' + [dir, runs.task[i], runs.shots[i], runs.n[i],
      runs.limit[i] ?? '–', runs.device[i] ?? '–', runs.wall_s[i] ?? '–', runs.commit[i],
      runs.scored[i] ?? '–']
      .map(v => `<td>${esc(v)}</td>`).join('') + '</tr>');
    const head = columns.map(c => `<th>${c}</th>`).join('');
    every.innerHTML = table(head, rows);
  }

  const chart = document.getElementById('explorer-chart');
  const specBlock = document.getElementById('explorer-spec');
  const vegaCode = await inflate('vega-runtime');
  if (vegaCode) (0, eval)(vegaCode);  // a classic script, run in the global scope: window.vegaEmbed
  if (chart && specBlock && window.vegaEmbed) {
    const spec = JSON.parse(specBlock.textContent);
    const metrics = chart.dataset.metrics.split(' ');
    const rows = [];
    runs.dir.forEach((dir, i) => {
      const row = {task: runs.task[i], shots: runs.shots[i], labels: runs.labels[i], model: runs.label[i],
                   size_line: `${runs.group[i]} @ ${runs.revision[i]}`, step_line: runs.model[i],
                   x_params: runs.params[i], x_step: (runs.step[i] || 0) + 1,
                   x_compute: runs.compute[i], x_bpb: num(runs.bpb[i])};
      let any = false;
      for (const m of metrics) {
        const e = (data.values[m] || [])[i];
        if (!e) continue;
        row[m] = [num(e[0]), num(e[1]), num(e[2]), e[3] || runs.n[i], e.length > 4 ? num(e[4]) : null];
        any = true;
      }
      if (any) rows.push(row);
    });
    spec.data.find(d => d.name === 'runs').values = rows;
    await vegaEmbed(chart, spec, {mode: 'vega', renderer: 'svg', actions: false});
  }
})();
"""
