"""The console's page shell, stylesheet and script: plain HTML, CSS and vanilla JS, no build step.

The shell carries no data except an escaped title; the script fetches the JSON API and builds the
DOM with ``textContent`` only, so nothing from the store is ever parsed as HTML.
"""

from __future__ import annotations

import html

PAGES = ("executions", "execution", "reviews")

_SHELL = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>duragent · {title}</title>
<link rel="stylesheet" href="/static/app.css">
</head>
<body>
<header class="top">
  <a class="brand" href="/">duragent</a>
  <nav>
    <a href="/" data-nav="executions">Executions</a>
    <a href="/reviews" data-nav="reviews">Inbox <span id="inbox-count" class="count"></span></a>
  </nav>
</header>
<main id="app" data-page="{page}"><p class="muted">Loading…</p></main>
<script src="/static/app.js"></script>
</body>
</html>
"""


def page(name: str, title: str) -> str:
    """The HTML shell of one page; ``title`` (which may come from the store) is escaped."""
    if name not in PAGES:
        raise ValueError(f"unknown page {name!r}")
    return _SHELL.format(page=name, title=html.escape(title, quote=True))


APP_CSS = """
:root { --fg: #1d2433; --muted: #6b7385; --line: #e3e6ec; --bg: #f7f8fa; --card: #fff;
  --blue: #2f6fde; --green: #1f8a4c; --red: #c73a3a; --amber: #b7791f; --grey: #7b8394; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
  background: var(--bg); }
a { color: var(--blue); text-decoration: none; }
a:hover { text-decoration: underline; }
header.top { display: flex; align-items: center; gap: 24px; padding: 10px 24px; background: #111827; }
header.top a { color: #e5e7eb; }
header.top .brand { font-weight: 700; color: #fff; }
header.top nav { display: flex; gap: 16px; }
header.top nav a.active { color: #fff; font-weight: 600; }
.count:not(:empty) { background: var(--red); color: #fff; border-radius: 9px; padding: 0 6px; font-size: 12px; }
main { max-width: 1200px; margin: 0 auto; padding: 20px 24px 60px; }
h1 { font-size: 20px; margin: 0 0 12px; word-break: break-all; }
h2 { font-size: 16px; margin: 28px 0 10px; }
h3 { font-size: 15px; margin: 0 0 6px; }
.muted { color: var(--muted); }
.error { color: var(--red); }
.toolbar { display: flex; gap: 14px; align-items: center; margin-bottom: 12px; flex-wrap: wrap; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px;
  margin-bottom: 12px; }
table { width: 100%; border-collapse: collapse; background: var(--card); border: 1px solid var(--line); }
th, td { text-align: left; padding: 7px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase; }
td.mono, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
pre { margin: 4px 0; padding: 8px 10px; background: #f2f4f7; border-radius: 6px; overflow: auto;
  max-height: 360px; white-space: pre-wrap; word-break: break-word; font-size: 12px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600;
  color: #fff; background: var(--grey); }
.badge.RUNNING, .badge.STARTED, .badge.pending, .badge.PENDING, .badge.READY { background: var(--blue); }
.badge.SUCCEEDED, .badge.approved, .badge.answered { background: var(--green); }
.badge.FAILED, .badge.rejected, .badge.failed { background: var(--red); }
.badge.TIMED_OUT, .badge.STOPPED, .badge.timed_out, .badge.CANCELLED { background: var(--amber); }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; word-break: break-all; }
.timeline td.name { white-space: nowrap; }
.track { position: relative; height: 10px; min-width: 160px; background: #eef0f4; border-radius: 5px; }
.bar { position: absolute; top: 0; height: 10px; border-radius: 5px; background: var(--green); min-width: 3px; }
.bar.STARTED, .bar.PENDING, .bar.READY { background: var(--blue); }
.bar.FAILED { background: var(--red); }
.bar.TIMED_OUT, .bar.STOPPED, .bar.CANCELLED { background: var(--amber); }
.msg { border-left: 4px solid var(--line); }
.msg.assistant { border-left-color: var(--blue); }
.msg.tool_result { border-left-color: var(--green); }
.msg.tool_result.is-error { border-left-color: var(--red); }
.msg.review { border-left-color: var(--amber); }
.msg .who { font-weight: 600; margin-right: 8px; }
.msg .text { white-space: pre-wrap; word-break: break-word; margin: 6px 0; }
.call { margin-top: 6px; }
.actions { display: flex; gap: 8px; margin-top: 10px; flex-wrap: wrap; }
button { font: inherit; padding: 5px 12px; border-radius: 6px; border: 1px solid var(--line); background: #fff;
  cursor: pointer; }
button.primary { background: var(--green); border-color: var(--green); color: #fff; }
button.danger { background: var(--red); border-color: var(--red); color: #fff; }
button:disabled { opacity: .6; cursor: default; }
textarea { width: 100%; min-height: 110px; font-family: ui-monospace, Menlo, monospace; font-size: 12px;
  padding: 8px; border: 1px solid var(--line); border-radius: 6px; }
input[type=text], select { font: inherit; padding: 4px 8px; border: 1px solid var(--line); border-radius: 6px; }
.form { margin-top: 10px; }
.notice { margin-top: 8px; }
details > summary { cursor: pointer; color: var(--blue); }
"""

APP_JS = r"""
'use strict';
(() => {
  const TOKEN_KEY = 'duragent-console-token';
  const REVIEWER_KEY = 'duragent-console-reviewer';
  const app = document.getElementById('app');
  const page = app.dataset.page;

  // The token arrives once in ?token=; keep it for this tab and drop it from the address bar.
  const params = new URLSearchParams(location.search);
  if (params.has('token')) {
    try { sessionStorage.setItem(TOKEN_KEY, params.get('token')); } catch (e) { /* cookie still works */ }
    params.delete('token');
    const rest = params.toString();
    history.replaceState(null, '', location.pathname + (rest ? '?' + rest : '') + location.hash);
  }

  // -- helpers: the DOM is built with textContent only --------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key === 'text') node.textContent = String(value);
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  const clear = (node) => { while (node.firstChild) node.removeChild(node.firstChild); return node; };
  const badge = (status) => el('span', {class: 'badge ' + String(status || '').replace(/[^A-Za-z_]/g, '')},
                              status || '-');
  const pretty = (value) => typeof value === 'string' ? value : JSON.stringify(value, null, 2);
  const executionLink = (id, label) => el('a', {href: '/executions/' + encodeURIComponent(id)}, label || id);
  function when(ts) { return ts ? new Date(ts * 1000).toLocaleString() : '-'; }
  function span(seconds) {
    if (seconds === null || seconds === undefined) return '';
    seconds = Math.max(0, seconds);
    if (seconds < 1) return Math.round(seconds * 1000) + 'ms';
    if (seconds < 60) return seconds.toFixed(1) + 's';
    const m = Math.floor(seconds / 60), s = Math.floor(seconds % 60);
    if (m < 60) return m + 'm' + String(s).padStart(2, '0') + 's';
    const h = Math.floor(m / 60);
    if (h < 48) return h + 'h' + String(m % 60).padStart(2, '0') + 'm';
    return Math.floor(h / 24) + 'd' + String(h % 24).padStart(2, '0') + 'h';
  }

  async function api(path, body) {
    const headers = {'Accept': 'application/json'};
    let token = null;
    try { token = sessionStorage.getItem(TOKEN_KEY); } catch (e) { token = null; }
    if (token) headers['Authorization'] = 'Bearer ' + token;
    const init = {method: body === undefined ? 'GET' : 'POST', headers, credentials: 'same-origin'};
    if (body !== undefined) { headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(body); }
    const response = await fetch(path, init);
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) throw new Error((data && data.error) || ('HTTP ' + response.status));
    return data;
  }

  function every(ms, fn) {  // poll while the tab is visible; fn returns false to pause this round
    const tick = async () => {
      if (!document.hidden) { try { await fn(); } catch (e) { /* shown by fn */ } }
      setTimeout(tick, ms);
    };
    setTimeout(tick, ms);
  }

  async function updateInboxCount() {
    try {
      const data = await api('/api/reviews');
      document.getElementById('inbox-count').textContent = data.reviews.length ? String(data.reviews.length) : '';
    } catch (e) { /* the page shows its own errors */ }
  }

  for (const link of document.querySelectorAll('[data-nav]')) {
    if (link.dataset.nav === page || (page === 'execution' && link.dataset.nav === 'executions')) {
      link.classList.add('active');
    }
  }

  // -- executions list -----------------------------------------------------------------------
  function executionsPage() {
    const statuses = ['', 'RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'STOPPED'];
    const current = (params.get('status') || '').toUpperCase();
    const select = el('select', {id: 'status-filter'},
      statuses.map((s) => el('option', {value: s, selected: s === current}, s || 'all statuses')));
    const auto = el('input', {type: 'checkbox', id: 'auto-refresh', checked: true});
    const updated = el('span', {class: 'muted'});
    const body = el('tbody', {id: 'executions'});
    clear(app).append(
      el('h1', {}, 'Executions'),
      el('div', {class: 'toolbar'}, el('label', {}, 'Status ', select),
         el('label', {}, auto, ' auto-refresh'), updated),
      el('table', {}, el('thead', {}, el('tr', {}, ['Name', 'Id', 'Function', 'Status', 'Started', 'Took']
        .map((h) => el('th', {}, h)))), body));

    async function load() {
      const status = select.value;
      const query = status ? '?status=' + encodeURIComponent(status) : '';
      try {
        const data = await api('/api/executions' + query);
        clear(body);
        if (!data.executions.length) {
          body.append(el('tr', {}, el('td', {colspan: 6, class: 'muted'},
            'No executions' + (status ? ' with status ' + status : '') + ' yet.')));
        }
        for (const row of data.executions) {
          const took = row.ended_at ? span(row.ended_at - row.started_at) : '';
          body.append(el('tr', {'data-id': row.id},
            el('td', {}, executionLink(row.id, row.name || row.id)),
            el('td', {class: 'mono'}, row.id),
            el('td', {class: 'mono'}, row.function),
            el('td', {}, badge(row.status)),
            el('td', {}, when(row.started_at)),
            el('td', {}, took)));
        }
        updated.textContent = 'updated ' + new Date().toLocaleTimeString();
        updated.classList.remove('error');
      } catch (e) {
        updated.textContent = String(e.message || e);
        updated.classList.add('error');
      }
    }
    select.addEventListener('change', () => {
      const url = new URL(location.href);
      if (select.value) url.searchParams.set('status', select.value); else url.searchParams.delete('status');
      history.replaceState(null, '', url.pathname + url.search);
      load();
    });
    load();
    every(2000, () => auto.checked ? load() : null);
  }

  // -- reviews: one card per pending callback ----------------------------------------------------
  function reviewerName() {
    try { return localStorage.getItem(REVIEWER_KEY) || ''; } catch (e) { return ''; }
  }

  function reviewCard(review, onDone) {
    const status = el('div', {class: 'notice'});
    const actions = el('div', {class: 'actions'});
    const form = el('div', {class: 'form'});
    const card = el('div', {class: 'card review', 'data-callback': review.callback_id},
      el('h3', {}, review.title || review.name || 'callback'),
      el('div', {class: 'muted'}, badge(review.kind), ' ',
         'execution ', executionLink(review.execution_id, review.execution_name || review.execution_id),
         ' · ', review.name || '', ' · asked ', when(review.started)),
      review.tool ? el('div', {class: 'call'}, 'Tool ', el('strong', {}, review.tool), ' with arguments:') : null,
      review.arguments ? el('pre', {}, pretty(review.arguments)) : null,
      review.question && review.question !== review.title ? el('p', {}, review.question) : null,
      actions, form, status);

    async function send(action, body) {
      for (const b of card.querySelectorAll('button')) b.disabled = true;
      const reviewer = reviewerName();
      if (reviewer && action !== 'answer') body.reviewer = reviewer;
      try {
        await api('/api/reviews/' + encodeURIComponent(review.callback_id) + '/' + action, body);
        card.dataset.done = '1';
        delete card.dataset.editing;
        clear(actions); clear(form);
        status.className = 'notice';
        status.textContent = {approve: 'Approved.', reject: 'Rejected.', answer: 'Answered.'}[action] +
          ' A worker resumes the execution.';
        if (onDone) onDone();
      } catch (e) {
        status.className = 'notice error';
        status.textContent = String(e.message || e);
        for (const b of card.querySelectorAll('button')) b.disabled = false;
      }
    }
    function openForm(label, initial, buttonClass, submit) {
      card.dataset.editing = '1';
      const area = el('textarea', {}, initial);
      const error = el('div', {class: 'error'});
      clear(form).append(el('label', {}, label), area, error, el('div', {class: 'actions'},
        el('button', {class: buttonClass, onclick: () => submit(area.value, error)}, 'Send'),
        el('button', {onclick: () => { clear(form); delete card.dataset.editing; }}, 'Cancel')));
      area.focus();
    }

    if (review.kind === 'tool_approval' || review.kind === 'budget') {
      actions.append(el('button', {class: 'primary', onclick: () => send('approve', {})}, 'Approve'));
      if (review.kind === 'tool_approval') {
        actions.append(el('button', {onclick: () => openForm('Arguments to run the tool with (JSON object)',
          JSON.stringify(review.arguments || {}, null, 2), 'primary', (text, error) => {
            let args;
            try { args = JSON.parse(text); } catch (e) { error.textContent = 'Not JSON: ' + e.message; return; }
            if (args === null || typeof args !== 'object' || Array.isArray(args)) {
              error.textContent = 'The arguments must be a JSON object.'; return;
            }
            send('approve', {arguments: args});
          })}, 'Edit & approve'));
      }
      actions.append(el('button', {class: 'danger', onclick: () => openForm('Why? (the model reads this)', '',
        'danger', (text, error) => {
          if (!text.trim()) { error.textContent = 'Feedback is required.'; return; }
          send('reject', {feedback: text});
        })}, 'Reject'));
    } else {
      const typed = review.kind === 'question' && review.response_schema;
      actions.append(el('button', {class: 'primary', onclick: () => openForm(
        typed ? 'Answer (JSON matching the schema below)' : 'Answer' + (review.kind === 'question' ? '' : ' (JSON)'),
        '', 'primary', (text, error) => {
          let answer = text;
          if (typed || review.kind !== 'question') {
            try { answer = JSON.parse(text); } catch (e) { error.textContent = 'Not JSON: ' + e.message; return; }
          }
          send('answer', {answer});
        })}, 'Answer'));
      if (typed) card.insertBefore(el('pre', {}, pretty(review.response_schema)), actions);
    }
    return card;
  }

  function reviewsPage() {
    const reviewer = el('input', {type: 'text', id: 'reviewer', placeholder: 'your name', value: reviewerName()});
    reviewer.addEventListener('change', () => {
      try { localStorage.setItem(REVIEWER_KEY, reviewer.value.trim()); } catch (e) { /* optional */ }
    });
    const list = el('div', {id: 'reviews'});
    const updated = el('span', {class: 'muted'});
    clear(app).append(el('h1', {}, 'Inbox'),
      el('div', {class: 'toolbar'}, el('label', {}, 'Reviewer ', reviewer), updated), list);
    let shown = '';

    async function load() {
      if (list.querySelector('[data-editing]')) return;  // never pull a form from under the reviewer
      try {
        const data = await api('/api/reviews');
        const key = JSON.stringify(data.reviews.map((r) => r.callback_id));
        if (key !== shown || list.querySelector('[data-done]')) {
          shown = key;
          clear(list);
          if (!data.reviews.length) list.append(el('p', {class: 'muted'}, 'Nothing waits for an answer.'));
          for (const review of data.reviews) list.append(reviewCard(review, updateInboxCount));
        }
        document.getElementById('inbox-count').textContent = data.reviews.length ? String(data.reviews.length) : '';
        updated.textContent = 'updated ' + new Date().toLocaleTimeString();
        updated.classList.remove('error');
      } catch (e) {
        updated.textContent = String(e.message || e);
        updated.classList.add('error');
      }
    }
    load();
    every(3000, load);
  }

  // -- one execution ----------------------------------------------------------------------------
  function section(title, ...children) { return el('section', {}, el('h2', {}, title), ...children); }

  function header(x) {
    const rows = [['Id', x.id], ['Function', x.function], ['Status', badge(x.status)],
      ['Started', when(x.started_at)], ['Ended', when(x.ended_at)],
      ['Took', x.ended_at ? span(x.ended_at - x.started_at) : ''], ['Invocations', x.invocations]];
    if (x.parent_execution) rows.push(['Parent', executionLink(x.parent_execution)]);
    const meta = el('dl', {class: 'meta'}, rows.map(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
    const card = el('div', {class: 'card'}, meta,
      el('h3', {class: 'spaced'}, 'Input'), el('pre', {}, pretty(x.input)));
    if (x.status === 'SUCCEEDED') card.append(el('h3', {}, 'Result'), el('pre', {}, pretty(x.result)));
    if (x.error) {
      card.append(el('h3', {class: 'error'}, 'Error'),
        el('pre', {}, [x.error.ErrorType, x.error.ErrorMessage].filter(Boolean).join(': ') || 'no details'));
      if (x.error.StackTrace) card.append(el('pre', {}, x.error.StackTrace.join('\n')));
    }
    return card;
  }

  function conversationView(entries) {
    if (!entries.length) return el('p', {class: 'muted'}, 'No model calls in this execution.');
    return el('div', {}, entries.map((e) => {
      if (e.kind === 'assistant') {
        const usage = e.usage ? ' · ' + e.usage.input_tokens + ' in / ' + e.usage.output_tokens + ' out' : '';
        return el('div', {class: 'card msg assistant'},
          el('div', {}, el('span', {class: 'who'}, e.agent || 'assistant'),
            el('span', {class: 'muted'}, (e.model || '') + usage + ' · ' + (e.name || ''))),
          e.error ? el('div', {class: 'error'}, e.error) : null,
          e.status !== 'SUCCEEDED' && !e.error ? el('div', {class: 'muted'}, 'model call ' + e.status) : null,
          e.text ? el('div', {class: 'text'}, e.text) : null,
          e.tool_calls.map((c) => el('div', {class: 'call'},
            '→ calls ', el('strong', {}, c.name), el('span', {class: 'muted'}, ' (' + c.id + ')'),
            el('pre', {}, pretty(c.arguments)))));
      }
      if (e.kind === 'review') {
        const d = e.decision && typeof e.decision === 'object' ? e.decision : null;
        return el('div', {class: 'card msg review'},
          el('div', {}, el('span', {class: 'who'}, 'review'), badge(e.status), ' ', e.title || ''),
          d && d.arguments ? el('div', {}, 'edited arguments:', el('pre', {}, pretty(d.arguments))) : null,
          d && d.feedback ? el('div', {class: 'text'}, 'feedback: ' + d.feedback) : null,
          d && d.reviewer ? el('div', {class: 'muted'}, 'by ' + d.reviewer + ' · ' + when(e.time)) : null,
          e.status === 'answered' ? el('pre', {}, pretty(e.decision)) : null,
          e.status === 'pending' ? el('div', {}, el('a', {href: '/reviews'}, 'answer it in the inbox')) : null);
      }
      return el('div', {class: 'card msg tool_result' + (e.is_error ? ' is-error' : '')},
        el('div', {}, el('span', {class: 'who'}, '← ' + e.tool), badge(e.status),
          e.tool_call_id ? el('span', {class: 'muted'}, ' (' + e.tool_call_id + ')') : null),
        e.content ? el('pre', {}, e.content) : null);
    }));
  }

  function timelineView(rows, x) {
    if (!rows.length) return el('p', {class: 'muted'}, 'No operations yet.');
    const times = [x.started_at, x.ended_at].concat(rows.map((r) => r.start), rows.map((r) => r.end))
      .filter((t) => typeof t === 'number');
    const t0 = Math.min(...times);
    let t1 = Math.max(...times);
    if (x.status === 'RUNNING') t1 = Math.max(t1, Date.now() / 1000);
    const total = Math.max(t1 - t0, 1e-3);
    return el('table', {class: 'timeline'},
      el('thead', {}, el('tr', {}, ['Operation', 'Type', 'Status', 'Attempt', 'Started', 'Took', '']
        .map((h) => el('th', {}, h)))),
      el('tbody', {}, rows.map((r) => {
        const bar = el('div', {class: 'bar ' + r.status});
        const start = typeof r.start === 'number' ? r.start : t0;
        const end = typeof r.end === 'number' ? r.end : t1;
        bar.style.left = (100 * (start - t0) / total).toFixed(2) + '%';
        bar.style.width = Math.max(0.5, 100 * (end - start) / total).toFixed(2) + '%';
        const name = el('td', {class: 'name'}, r.name || '-');
        name.style.paddingLeft = (10 + 18 * r.depth) + 'px';
        return el('tr', {},
          name,
          el('td', {class: 'mono'}, r.type + (r.subtype && r.subtype.toUpperCase() !== r.type ? '/' + r.subtype : '')),
          el('td', {}, badge(r.status), r.note ? el('div', {class: 'muted'}, r.note) : null),
          el('td', {}, r.attempt || ''),
          el('td', {}, when(r.start)),
          el('td', {}, span(r.duration)),
          el('td', {}, el('div', {class: 'track', title: span(r.duration)}, bar)));
      })));
  }

  function ledgerView(ledger) {
    if (!ledger) return el('p', {class: 'muted'}, 'No model calls: nothing was spent.');
    const rows = [];
    for (const [book, label] of [['paid', ''], ['reused', ' (reused from the journal)']]) {
      for (const [model, line] of Object.entries(ledger[book] || {})) {
        rows.push(el('tr', {}, el('td', {class: 'mono'}, model + label), el('td', {}, line.calls),
          el('td', {}, line.input_tokens), el('td', {}, line.output_tokens),
          el('td', {}, line.cache_read_tokens + ' / ' + line.cache_write_tokens),
          el('td', {}, '$' + Number(line.cost_usd).toFixed(4))));
      }
    }
    return el('div', {},
      el('table', {class: 'ledger'},
        el('thead', {}, el('tr', {}, ['Model', 'Calls', 'In', 'Out', 'Cache read / write', 'Cost']
          .map((h) => el('th', {}, h)))),
        el('tbody', {}, rows)),
      el('p', {}, 'Paid $' + Number(ledger.paid_usd).toFixed(4) +
        (ledger.saved_usd ? ' · reused $' + Number(ledger.saved_usd).toFixed(4) + ' without paying twice' : '')));
  }

  function historyView(id) {
    const box = el('div', {});
    const details = el('details', {}, el('summary', {}, 'Show the history events'), box);
    details.addEventListener('toggle', async () => {
      if (!details.open || box.dataset.loaded) return;
      try {
        const data = await api('/api/executions/' + encodeURIComponent(id) + '/history');
        box.dataset.loaded = '1';
        box.append(el('table', {}, el('thead', {}, el('tr', {}, ['#', 'Time', 'Event', 'Name']
          .map((h) => el('th', {}, h)))),
          el('tbody', {}, data.events.map((e) => el('tr', {}, el('td', {}, e.EventId),
            el('td', {}, when(e.EventTimestamp)), el('td', {class: 'mono'}, e.EventType), el('td', {}, e.Name || ''))))));
      } catch (err) { box.append(el('p', {class: 'error'}, String(err.message || err))); }
    });
    return details;
  }

  function executionPage() {
    const id = decodeURIComponent(location.pathname.split('/')[2] || '');
    let shown = '';
    let status = null;
    async function load() {
      if (app.querySelector('[data-editing]')) return;
      let data;
      try {
        data = await api('/api/executions/' + encodeURIComponent(id));
      } catch (e) {
        clear(app).append(el('h1', {}, 'Execution'), el('p', {class: 'error'}, String(e.message || e)),
          el('p', {}, el('a', {href: '/'}, 'all executions')));
        return;
      }
      const key = JSON.stringify(data);
      if (key === shown && !app.querySelector('[data-done]')) return;
      shown = key;
      const x = data.execution;
      status = x.status;
      document.title = 'duragent · ' + (x.name || x.id);
      const parts = [
        el('h1', {}, x.name || x.id),
        header(x),
        data.reviews.length ? section('Waiting for a person', data.reviews.map((r) => reviewCard(r, load))) : null,
        section('Conversation', conversationView(data.conversation)),
        section('Timeline', timelineView(data.timeline, x)),
        section('Cost', ledgerView(data.ledger)),
        section('History', historyView(id))];
      clear(app).append(...parts.filter(Boolean));
    }
    load();
    every(2000, () => (status === null || status === 'RUNNING') ? load() : null);  // a finished one never changes
  }

  if (page === 'executions') executionsPage();
  else if (page === 'reviews') reviewsPage();
  else if (page === 'execution') executionPage();
  updateInboxCount();
  every(5000, updateInboxCount);
})();
"""
