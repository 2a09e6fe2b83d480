// The status page of cogd: fills the page the daemon served from its JSON API and refreshes it by
// polling that API (no reloads, no websocket). Plain browser JavaScript, no build step and nothing
// from outside this machine. Every value is put in the page with textContent, never as markup:
// manifest keys and error messages are user data.
'use strict';

const REFRESH_MS = 2000;
const STATES = ['idle', 'running', 'held', 'converted', 'failed', 'removed'];

/** An element with attributes and children (strings become text nodes). */
function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'text') node.textContent = String(value);
    else node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(
      typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child,
    );
  }
  return node;
}

const dash = (n) => (n === 0 ? '_' : String(n));

function when(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return `${d.getMonth() + 1}/${d.getDate()} ${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}:${String(d.getSeconds()).padStart(2, '0')}`;
}

function duration(ms) {
  if (ms === null || ms === undefined) return '—';
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** A progress bar: finished of total, the failed part shown apart. */
function bar(counts) {
  const finished = counts.done + counts.failed + counts.removed;
  const total = counts.total;
  const pct = (n) => (total === 0 ? 0 : (100 * n) / total);
  const meter = el(
    'div',
    {
      class: 'bar',
      role: 'progressbar',
      'aria-valuemin': 0,
      'aria-valuemax': total,
      'aria-valuenow': finished,
      title: `${finished} of ${total} finished`,
    },
    el('span', { class: 'ok', 'data-width': pct(counts.done).toFixed(2) }),
    el('span', { class: 'bad', 'data-width': pct(counts.failed + counts.removed).toFixed(2) }),
  );
  return el('div', { class: 'progress' }, meter, el('span', { class: 'fraction', text: `${finished}/${total}` }));
}

/** Widths set through the CSSOM (the Content-Security-Policy allows no inline style attributes). */
function sizeBars(root) {
  for (const span of root.querySelectorAll('[data-width]')) span.style.width = `${span.dataset.width}%`;
}

function stateBadge(state) {
  return el('span', { class: `state state-${state}`, text: state });
}

async function getJson(url) {
  const response = await fetch(url, { headers: { Accept: 'application/json' }, cache: 'no-store' });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `${response.status}`);
  return body;
}

function showUpdated(error) {
  const node = document.getElementById('updated');
  if (error) {
    node.textContent = `not refreshed: ${error.message}`;
    node.className = 'error';
  } else {
    node.textContent = `updated ${when(new Date().toISOString())}`;
    node.className = 'muted';
  }
}

function daemonLine(report) {
  if (report.daemon.running) return `daemon pid ${report.daemon.pid ?? '?'} on ${report.home}`;
  return `no daemon running on ${report.home}`;
}

/** The notes `cogd status` prints under its table. */
function notes(report) {
  const lines = [];
  for (const w of report.watches) {
    if (w.conditionalWrites === false) {
      lines.push([
        'warn',
        `watch ${w.id}: s3://${w.inputBucket} does not enforce conditional writes; only one cogd daemon may watch this bucket`,
      ]);
    }
    if (w.warning !== null) lines.push(['warn', `watch ${w.id}: warning: ${w.warning}`]);
    if (w.lastPollError) lines.push(['error', `watch ${w.id}: last poll failed: ${w.lastPollError}`]);
  }
  for (const r of report.runs) {
    if (r.manifestError !== null)
      lines.push(['error', `run ${r.id} ${r.manifest}: manifest rejected: ${r.manifestError}`]);
    if (r.postError !== null)
      lines.push(['error', `run ${r.id} ${r.manifest}: post failed: ${r.postError} (retried at the next poll)`]);
    for (const h of r.holdReasons)
      lines.push(['warn', `run ${r.id}: ${h.jobs} ${h.jobs === 1 ? 'job' : 'jobs'} ${h.reason}`]);
    if (r.counts.failed > 0 || r.counts.removed > 0) {
      const why = `${r.counts.failed} failed, ${r.counts.removed} removed (why: the run's page)`;
      lines.push(['error', `run ${r.id} ${r.manifest}: ${why}`]);
    }
  }
  return lines;
}

function renderStatus(report) {
  const app = document.getElementById('app');
  document.getElementById('where').textContent = daemonLine(report);

  const watchRows = report.watches.map((w) =>
    el(
      'tr',
      { 'data-watch': w.id },
      el('td', { text: w.id }),
      el('td', { class: 'name', text: w.batchName }),
      el('td', { text: `s3://${w.inputBucket} → s3://${w.outputBucket}` }),
      el('td', { text: w.schedule }),
      el('td', { class: 'last-poll', text: w.lastPolledAt ? when(w.lastPolledAt) : 'not yet' }),
    ),
  );
  const watches = el(
    'section',
    { id: 'watches' },
    el('h2', { text: 'Watches' }),
    report.watches.length === 0
      ? el('p', { class: 'muted', text: 'no watches' })
      : el(
          'div',
          { class: 'scroll' },
          el(
            'table',
            {},
            el(
              'thead',
              {},
              el(
                'tr',
                {},
                ['ID', 'BATCH_NAME', 'BUCKETS', 'SCHEDULE', 'LAST POLL'].map((h) => el('th', { text: h })),
              ),
            ),
            el('tbody', {}, watchRows),
          ),
        ),
  );

  const runRows = report.runs.map((r) => {
    const c = r.counts;
    return el(
      'tr',
      { 'data-run': r.id, 'data-state': r.state },
      el('td', {}, el('a', { href: `/runs/${r.id}`, text: String(r.id) })),
      el('td', { class: 'name', text: r.batchName }),
      el('td', { text: when(r.createdAt) }),
      el('td', { class: 'num done', text: dash(c.done + c.failed + c.removed) }),
      el('td', { class: 'num run', text: dash(c.running) }),
      el('td', { class: 'num idle', text: dash(c.idle) }),
      el('td', { class: 'num hold', text: dash(c.held) }),
      el('td', { class: 'num total', text: dash(c.total) }),
      el('td', {}, bar(c)),
      el('td', {}, stateBadge(r.state)),
      el('td', { class: 'manifest', text: r.manifest }),
    );
  });
  const runs = el(
    'section',
    { id: 'runs' },
    el('h2', { text: 'Runs' }),
    report.runs.length === 0
      ? el('p', { class: 'muted', text: 'no runs in the last 24 hours' })
      : el(
          'div',
          { class: 'scroll' },
          el(
            'table',
            {},
            el(
              'thead',
              {},
              el(
                'tr',
                {},
                [
                  'ID',
                  'BATCH_NAME',
                  'SUBMITTED',
                  'DONE',
                  'RUN',
                  'IDLE',
                  'HOLD',
                  'TOTAL',
                  'PROGRESS',
                  'STATE',
                  'MANIFEST',
                ].map((h) => el('th', { text: h })),
              ),
            ),
            el('tbody', {}, runRows),
          ),
        ),
  );

  const t = report.totals;
  const noteList = notes(report);
  const content = [
    watches,
    runs,
    noteList.length === 0
      ? null
      : el(
          'ul',
          { id: 'notes' },
          noteList.map(([kind, text]) => el('li', { class: kind, text })),
        ),
    el('p', {
      id: 'totals',
      text: `Total: ${t.total} jobs; ${t.done} completed, ${t.failed} failed, ${t.removed} removed, ${t.idle} idle, ${t.running} running, ${t.held} held`,
    }),
  ];
  app.replaceChildren(...content.filter(Boolean));
  sizeBars(app);
}

/** The run page's filter and page, kept in the address (so a link or a reload shows the same). */
function runQuery() {
  const params = new URLSearchParams(location.search);
  const state = STATES.includes(params.get('state')) ? params.get('state') : '';
  const page = Math.max(1, Number.parseInt(params.get('page') || '1', 10) || 1);
  return { state, page };
}

function setRunQuery(runId, state, page) {
  const params = new URLSearchParams();
  if (state) params.set('state', state);
  if (page > 1) params.set('page', String(page));
  const search = params.toString();
  history.replaceState(null, '', `/runs/${runId}${search ? `?${search}` : ''}`);
}

function facts(pairs) {
  return el(
    'table',
    { class: 'facts' },
    pairs.map(([name, value, cls]) => el('tr', {}, el('th', { text: name }), el('td', { class: cls, text: value }))),
  );
}

function renderRun(runId, data, page) {
  const app = document.getElementById('app');
  const summary = data.runs[0];
  const run = data.run;
  document.getElementById('where').textContent = daemonLine(data);
  const c = summary.counts;
  const { state } = runQuery();

  const header = [
    el('p', {}, el('a', { href: '/', text: '← all runs' })),
    el('h1', {}, `run ${run.id} `, stateBadge(run.state)),
    el('div', { id: 'run-progress' }, bar(c)),
    facts([
      ['manifest', `s3://${run.inputBucket}/${run.manifestKey}`, 'manifest'],
      ['batch', run.batchName],
      ['outputs', `s3://${run.outputBucket}`],
      ['claimed', when(run.createdAt)],
      ['finished', run.finishedAt ? when(run.finishedAt) : '—'],
      ['duration', duration(run.durationMs)],
      ['rows', run.rowsTotal === null ? '—' : String(run.rowsTotal)],
      ['processed CSV', run.results.processed ?? '—'],
      ['failed CSV', run.results.failed ?? '—'],
      ['errors CSV', run.results.errors ?? '—'],
      ...(run.manifestError ? [['manifest rejected', run.manifestError, 'error']] : []),
      ...(run.postError ? [['post failed', run.postError, 'error']] : []),
    ]),
  ];

  const countOf = (s) => (s === 'converted' ? c.done : c[s]);
  const filter = el(
    'nav',
    { id: 'filter', 'aria-label': 'filter jobs by state' },
    el('a', {
      href: `/runs/${runId}`,
      'data-state': '',
      class: state === '' ? 'current' : null,
      text: `all ${c.total}`,
    }),
    STATES.map((s) =>
      el('a', {
        href: `/runs/${runId}?state=${s}`,
        'data-state': s,
        class: state === s ? 'current' : null,
        text: `${s} ${countOf(s)}`,
      }),
    ),
  );

  const rows = page.jobs.map((j) =>
    el(
      'tr',
      { 'data-line': j.line, 'data-state': j.state },
      el('td', {}, el('a', { href: `/runs/${runId}/jobs/${j.line}`, text: j.id })),
      el('td', { class: 'key', text: j.key ?? '—' }),
      el('td', {}, stateBadge(j.state)),
      el('td', { class: 'num', text: String(j.attempts) }),
      el('td', { class: 'num', text: duration(j.durationMs) }),
      el('td', { class: 'error', text: j.error ?? '' }),
    ),
  );
  const pager = el(
    'p',
    { id: 'pager' },
    el('button', { type: 'button', id: 'prev', disabled: page.page <= 1 ? 'disabled' : null, text: '← previous' }),
    el('span', { text: ` page ${page.page} of ${page.pages} (${page.total} jobs) ` }),
    el('button', { type: 'button', id: 'next', disabled: page.page >= page.pages ? 'disabled' : null, text: 'next →' }),
  );
  const jobs = el(
    'section',
    { id: 'jobs' },
    el('h2', { text: 'Jobs' }),
    filter,
    page.jobs.length === 0
      ? el('p', { class: 'muted', text: state === '' ? 'no jobs' : `no ${state} jobs` })
      : el(
          'div',
          { class: 'scroll' },
          el(
            'table',
            {},
            el(
              'thead',
              {},
              el(
                'tr',
                {},
                ['JOB', 'KEY', 'STATE', 'TRIES', 'DURATION', 'LAST_ERROR'].map((h) => el('th', { text: h })),
              ),
            ),
            el('tbody', {}, rows),
          ),
        ),
    pager,
  );
  app.replaceChildren(...header, jobs);
  sizeBars(app);

  for (const link of filter.querySelectorAll('a')) {
    link.addEventListener('click', (event) => {
      event.preventDefault();
      setRunQuery(runId, link.dataset.state, 1);
      refresh().catch(showUpdated);
    });
  }
  const go = (to) => {
    setRunQuery(runId, state, to);
    refresh().catch(showUpdated);
  };
  document.getElementById('prev').addEventListener('click', () => go(page.page - 1));
  document.getElementById('next').addEventListener('click', () => go(page.page + 1));
}

async function refresh() {
  const kind = document.body.dataset.page;
  if (kind === 'status') {
    renderStatus(await getJson('/api/status'));
  } else if (kind === 'run') {
    const runId = document.body.dataset.run;
    const { state, page } = runQuery();
    const params = new URLSearchParams({ page: String(page) });
    if (state) params.set('state', state);
    const [data, jobs] = await Promise.all([
      getJson(`/api/runs/${runId}`),
      getJson(`/api/runs/${runId}/jobs?${params.toString()}`),
    ]);
    renderRun(runId, data, jobs);
  } else {
    return;
  }
  showUpdated(null);
}

/** Refreshes every REFRESH_MS, one request at a time; a failure is shown and the next one tried. */
async function loop() {
  for (;;) {
    try {
      await refresh();
    } catch (error) {
      showUpdated(error);
    }
    if (document.body.dataset.page !== 'status' && document.body.dataset.page !== 'run') return;
    await new Promise((resolve) => setTimeout(resolve, REFRESH_MS));
  }
}

loop().catch(showUpdated);
