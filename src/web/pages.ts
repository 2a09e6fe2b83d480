/**
 * The status page's HTML. `/` and `/runs/ID` are small shells: `web/app.js` fills them from the
 * JSON API and refreshes them by polling it, building the DOM with `textContent` only (a manifest
 * key is user data and never becomes markup). A job's page with its log tails is rendered here,
 * every value escaped. No inline script or style: the Content-Security-Policy forbids them.
 */
import type { JobOfPage } from '../state/report.js';
import type { LogTail } from './log-tail.js';

/** Text made safe for HTML content and attribute values. */
export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

function layout(title: string, body: string, data: Record<string, string> = {}): string {
  const attributes = Object.entries(data)
    .map(([name, value]) => ` data-${name}="${escapeHtml(value)}"`)
    .join('');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<link rel="stylesheet" href="/static/style.css">
<script src="/static/app.js" defer></script>
</head>
<body${attributes}>
<header><a href="/" class="brand">cogd</a> <span id="where"></span> <span id="updated" class="muted"></span></header>
<main id="app">
${body}
</main>
</body>
</html>
`;
}

const noscript =
  '<noscript><p>This page needs JavaScript to refresh itself; the same data is at <a href="/api/status">/api/status</a>.</p></noscript>';

/** `/`: watches and runs, like `cogd status`. */
export function statusPage(): string {
  return layout('cogd status', `<p class="muted" id="loading">loading…</p>${noscript}`, { page: 'status' });
}

/** `/runs/ID`: the run, its jobs filterable by state, paged. */
export function runPage(runId: number): string {
  return layout(`cogd run ${runId}`, `<p class="muted" id="loading">loading…</p>${noscript}`, {
    page: 'run',
    run: String(runId),
  });
}

const seconds = (ms: number | null): string => (ms === null ? '—' : `${(ms / 1000).toFixed(1)} s`);

function tailSection(title: string, tail: LogTail | undefined): string {
  if (tail === undefined) return `<section><h2>${escapeHtml(title)}</h2><p class="muted">no log</p></section>`;
  const note =
    tail.size === 0
      ? '<p class="muted">empty, or not written yet</p>'
      : tail.truncated
        ? `<p class="muted">the last ${tail.text.length.toLocaleString('en')} characters of ${tail.size.toLocaleString('en')} bytes</p>`
        : '';
  return `<section><h2>${escapeHtml(tail.name)}</h2>${note}<pre class="log">${escapeHtml(tail.text)}</pre></section>`;
}

/** `/runs/ID/jobs/LINE`: one job, its last error, and the tails of its `.log` and `.err`. */
export function jobPage(job: JobOfPage, manifest: string, tails: { log?: LogTail; err?: LogTail }): string {
  const rows: Array<[string, string]> = [
    ['job', job.id],
    ['manifest', manifest],
    ['line', String(job.line)],
    ['key', job.key ?? '—'],
    ['state', job.state],
    ['attempts', String(job.attempts)],
    ['started', job.startedAt ?? '—'],
    ['finished', job.finishedAt ?? '—'],
    ['duration', seconds(job.durationMs)],
    ['last error', job.error ?? '—'],
  ];
  const table = rows
    .map(
      ([name, value]) =>
        `<tr><th>${escapeHtml(name)}</th><td class="${escapeHtml(name.replace(' ', '-'))}">${escapeHtml(value)}</td></tr>`,
    )
    .join('\n');
  const body = `<p><a href="/runs/${job.run}">← run ${job.run}</a></p>
<h1>job ${escapeHtml(job.id)}</h1>
<table class="facts">
${table}
</table>
${tailSection('log', tails.log)}
${tailSection('stderr', tails.err)}`;
  return layout(`cogd job ${job.id}`, body, { page: 'job' });
}

/** A short page for 404s and other refusals. */
export function messagePage(status: number, message: string): string {
  return layout(`cogd: ${status}`, `<h1>${status}</h1><p>${escapeHtml(message)}</p><p><a href="/">status</a></p>`);
}
