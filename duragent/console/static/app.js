// The duragent console's script: vanilla JS, no build step. It fetches the JSON API and builds the
// DOM with textContent only, so nothing from the store is ever parsed as HTML.
'use strict';
(() => {
  const TOKEN_KEY = 'duragent-console-token';
  const REVIEWER_KEY = 'duragent-console-reviewer';
  const PAGE_SIZE = 50;
  const app = document.getElementById('app');
  const path = location.pathname;
  const page = path === '/reviews' ? 'reviews' : path.startsWith('/executions/') ? 'execution' : 'executions';
  app.dataset.page = page;

  // The token arrives once in the URL fragment (#token=...), which browsers never send to a server.
  // Keep it for this tab (sessionStorage is per origin, port included) and drop it from the address bar.
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ''));
  if (fragment.has('token')) {
    try { sessionStorage.setItem(TOKEN_KEY, fragment.get('token')); } catch (e) { window.__token = fragment.get('token'); }
    history.replaceState(null, '', location.pathname + location.search);
  }
  function token() {
    try { return sessionStorage.getItem(TOKEN_KEY) || window.__token || null; } catch (e) { return window.__token || null; }
  }
  const params = new URLSearchParams(location.search);

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
  const json = (value) => JSON.stringify(value, null, 2);
  const executionLink = (id, label) => el('a', {href: '/executions/' + encodeURIComponent(id)}, label || id);
  function when(ts) { return typeof ts === 'number' ? new Date(ts * 1000).toLocaleString() : '-'; }
  function span(seconds) {
    if (typeof seconds !== 'number') return '';
    seconds = Math.max(0, seconds);
    if (seconds < 1) return Math.round(seconds * 1000) + 'ms';
    if (seconds < 60) return seconds.toFixed(1) + 's';
    const m = Math.floor(seconds / 60), s = Math.floor(seconds % 60);
    if (m < 60) return m + 'm' + String(s).padStart(2, '0') + 's';
    const h = Math.floor(m / 60);
    if (h < 48) return h + 'h' + String(m % 60).padStart(2, '0') + 'm';
    return Math.floor(h / 24) + 'd' + String(h % 24).padStart(2, '0') + 'h';
  }

  // Arguments as people read them: one line per argument, text with its real line breaks.
  function argumentsView(args) {
    if (args === null || args === undefined) return null;
    if (typeof args !== 'object' || Array.isArray(args)) return el('pre', {}, json(args));
    const keys = Object.keys(args);
    if (!keys.length) return el('div', {class: 'muted'}, '(no arguments)');
    return el('dl', {class: 'args'}, keys.map((k) => [el('dt', {}, k),
      el('dd', {}, typeof args[k] === 'string' ? args[k] : el('pre', {}, json(args[k])))]));
  }

  async function api(path, body) {
    const headers = {'Accept': 'application/json'};
    const t = token();
    if (t) headers['Authorization'] = 'Bearer ' + t;
    const init = {method: body === undefined ? 'GET' : 'POST', headers, credentials: 'omit', cache: 'no-store'};
    if (body !== undefined) { headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(body); }
    const response = await fetch(path, init);
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) throw new Error((data && data.error) || ('HTTP ' + response.status));
    return data;
  }

  function every(ms, fn) {  // poll while the tab is visible
    const tick = async () => {
      if (!document.hidden) { try { await fn(); } catch (e) { /* shown by fn */ } }
      setTimeout(tick, ms);
    };
    setTimeout(tick, ms);
  }

  function pager(page, onMove) {  // "1-50 of 2000", with previous / next: nothing is left out silently
    const first = (Number(page.cursor) || 0) + 1;
    const last = first + page.items - 1;
    const total = page.total === null || page.total === undefined ? '' : ' of ' + page.total;
    const prev = el('button', {class: 'prev', disabled: first <= 1,
      onclick: () => onMove(String(Math.max(0, first - 1 - PAGE_SIZE)))}, '← Previous');
    const next = el('button', {class: 'next', disabled: !page.next_cursor, onclick: () => onMove(page.next_cursor)},
      'Next →');
    return el('div', {class: 'pager'}, prev,
      el('span', {class: 'range'}, page.items ? first + '–' + last + total : 'none' + total), next);
  }

  async function updateInboxCount() {
    if (!token()) return;
    try {
      const data = await api('/api/reviews?limit=1');
      document.getElementById('inbox-count').textContent = data.total ? String(data.total) : '';
    } catch (e) { /* the page shows its own errors */ }
  }

  for (const link of document.querySelectorAll('[data-nav]')) {
    if (link.dataset.nav === page || (page === 'execution' && link.dataset.nav === 'executions')) {
      link.classList.add('active');
    }
  }

  // -- executions list -----------------------------------------------------------------------
  function executionsPage() {
    document.title = 'duragent · executions';
    const statuses = ['', 'RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'STOPPED'];
    let cursor = params.get('cursor') || '';
    const current = (params.get('status') || '').toUpperCase();
    const select = el('select', {id: 'status-filter'},
      statuses.map((s) => el('option', {value: s, selected: s === current}, s || 'all statuses')));
    const auto = el('input', {type: 'checkbox', id: 'auto-refresh', checked: true});
    const updated = el('span', {class: 'muted'});
    const body = el('tbody', {id: 'executions'});
    const paging = el('div', {});
    clear(app).append(
      el('h1', {}, 'Executions'),
      el('div', {class: 'toolbar'}, el('label', {}, 'Status ', select),
         el('label', {}, auto, ' auto-refresh'), updated),
      el('table', {}, el('thead', {}, el('tr', {}, ['Name', 'Id', 'Function', 'Status', 'Started', 'Took']
        .map((h) => el('th', {}, h)))), body), paging);

    function remember() {
      const url = new URL(location.href);
      for (const [key, value] of [['status', select.value], ['cursor', cursor]]) {
        if (value) url.searchParams.set(key, value); else url.searchParams.delete(key);
      }
      history.replaceState(null, '', url.pathname + url.search);
    }
    async function load() {
      const query = new URLSearchParams({limit: String(PAGE_SIZE)});
      if (select.value) query.set('status', select.value);
      if (cursor) query.set('cursor', cursor);
      try {
        const data = await api('/api/executions?' + query);
        clear(body);
        if (!data.executions.length) {
          body.append(el('tr', {}, el('td', {colspan: 6, class: 'muted'},
            'No executions' + (select.value ? ' with status ' + select.value : '') + ' yet.')));
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
        clear(paging).append(pager({...data, items: data.executions.length}, (to) => { cursor = to; remember(); load(); }));
        updated.textContent = 'updated ' + new Date().toLocaleTimeString();
        updated.classList.remove('error');
      } catch (e) {
        updated.textContent = String(e.message || e);
        updated.classList.add('error');
      }
    }
    select.addEventListener('change', () => { cursor = ''; remember(); load(); });
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
    const kindText = {tool_approval: 'tool review', budget: 'budget review', question: 'question',
                      callback: 'callback'}[review.kind] || review.kind;
    const card = el('div', {class: 'card review', 'data-callback': review.callback_id, 'data-kind': review.kind},
      el('h3', {}, review.title || review.name || 'callback'),
      el('div', {class: 'muted'}, badge(kindText), ' ',
         'execution ', executionLink(review.execution_id, review.execution_name || review.execution_id),
         ' · ', review.name || '', ' · asked ', when(review.started_at)),
      review.tool ? el('div', {class: 'call'}, 'Tool ', el('strong', {}, review.tool),
        review.tool_call_id ? el('span', {class: 'muted'}, ' (call ' + review.tool_call_id + ')') : null,
        ' with arguments:') : null,
      review.tool ? argumentsView(review.arguments) : null,
      review.question && review.question !== review.title ? el('p', {class: 'text'}, review.question) : null,
      actions, form, status);

    async function send(action, body, error) {
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
        const where = error || status;
        where.classList.add('error');
        where.textContent = String(e.message || e);
        for (const b of card.querySelectorAll('button')) b.disabled = false;
      }
    }
    function openForm(label, hint, initial, buttonClass, submit) {
      card.dataset.editing = '1';
      const area = el('textarea', {}, initial);
      const error = el('div', {class: 'error form-error'});
      clear(form).append(el('label', {}, label), hint ? el('div', {class: 'hint'}, hint) : null, area, error,
        el('div', {class: 'actions'},
          el('button', {class: buttonClass + ' send', onclick: () => submit(area.value, error)}, 'Send'),
          el('button', {class: 'cancel', onclick: () => { clear(form); delete card.dataset.editing; }}, 'Cancel')));
      area.focus();
    }
    function parsed(text, error) {
      try { return {ok: true, value: JSON.parse(text)}; } catch (e) {
        error.textContent = 'Not JSON: ' + e.message; return {ok: false};
      }
    }

    if (review.kind === 'tool_approval' || review.kind === 'budget') {
      actions.append(el('button', {class: 'primary approve', onclick: () => send('approve', {})}, 'Approve'));
      if (review.kind === 'tool_approval') {
        actions.append(el('button', {class: 'edit', onclick: () => openForm('Arguments to change (a JSON object)',
          'Name only the arguments you change; the others stay as proposed. The result must fit the tool\'s schema.',
          json(review.arguments || {}), 'primary', (text, error) => {
            const edits = parsed(text, error);
            if (!edits.ok) return;
            if (edits.value === null || typeof edits.value !== 'object' || Array.isArray(edits.value)) {
              error.textContent = 'The edit must be a JSON object of arguments.'; return;
            }
            send('approve', {edits: edits.value}, error);
          })}, 'Edit & approve'));
      }
      actions.append(el('button', {class: 'danger reject', onclick: () => openForm('Why? (the model reads this)', null,
        '', 'danger', (text, error) => {
          if (!text.trim()) { error.textContent = 'Feedback is required.'; return; }
          send('reject', {feedback: text}, error);
        })}, 'Reject'));
    } else {
      const schema = review.kind === 'question' ? review.response_schema : null;
      const text = review.kind === 'question' && !schema;
      const shape = text ? 'The answer is text.'
        : schema ? 'The answer is JSON matching this schema:'
        : 'Any JSON: the handler receives it decoded (e.g. {"approved": true}).';
      card.insertBefore(el('div', {class: 'shape'}, el('span', {class: 'muted'}, shape),
        schema ? el('pre', {}, json(schema)) : null,
        review.asked !== undefined && review.asked !== null ? el('div', {}, 'The handler recorded: ',
          el('pre', {}, json(review.asked))) : null), actions);
      actions.append(el('button', {class: 'primary answer', onclick: () => openForm(
        text ? 'Answer' : 'Answer (JSON)', null, '', 'primary', (value, error) => {
          if (text) { send('answer', {answer: value}, error); return; }
          const answer = parsed(value, error);
          if (answer.ok) send('answer', {answer: answer.value}, error);
        })}, 'Answer'));
    }
    return card;
  }

  function reviewsPage() {
    document.title = 'duragent · inbox';
    const reviewer = el('input', {type: 'text', id: 'reviewer', placeholder: 'your name', value: reviewerName()});
    reviewer.addEventListener('change', () => {
      try { localStorage.setItem(REVIEWER_KEY, reviewer.value.trim()); } catch (e) { /* optional */ }
    });
    const list = el('div', {id: 'reviews'});
    const paging = el('div', {});
    const updated = el('span', {class: 'muted'});
    clear(app).append(el('h1', {}, 'Inbox'),
      el('div', {class: 'toolbar'}, el('label', {}, 'Reviewer ', reviewer), updated), paging, list);
    let shown = '';
    let cursor = params.get('cursor') || '';

    async function load(force) {
      if (!force && list.querySelector('[data-editing]')) return;  // never pull a form from under the reviewer
      try {
        const query = new URLSearchParams({limit: String(PAGE_SIZE)});
        if (cursor) query.set('cursor', cursor);
        const data = await api('/api/reviews?' + query);
        const key = JSON.stringify([cursor, data.total, data.reviews.map((r) => r.callback_id)]);
        if (force || key !== shown || list.querySelector('[data-done]')) {
          shown = key;
          clear(list);
          if (!data.reviews.length) list.append(el('p', {class: 'muted'}, 'Nothing waits for an answer.'));
          for (const review of data.reviews) list.append(reviewCard(review, updateInboxCount));
          clear(paging).append(pager({...data, items: data.reviews.length}, (to) => { cursor = to; load(true); }));
        }
        document.getElementById('inbox-count').textContent = data.total ? String(data.total) : '';
        updated.textContent = 'updated ' + new Date().toLocaleTimeString();
        updated.classList.remove('error');
      } catch (e) {
        updated.textContent = String(e.message || e);
        updated.classList.add('error');
      }
    }
    load();
    every(3000, () => load(false));
  }

  // -- one execution ----------------------------------------------------------------------------
  function section(title, ...children) { return el('section', {}, el('h2', {}, title), ...children); }

  function header(x) {
    const rows = [['Id', x.id], ['Function', x.function], ['Status', badge(x.status)],
      ['Started', when(x.started_at)], ['Ended', when(x.ended_at)],
      ['Took', x.ended_at ? span(x.ended_at - x.started_at) : ''], ['Invocations', x.invocations]];
    if (x.parent_execution) rows.push(['Parent', executionLink(x.parent_execution)]);
    const meta = el('dl', {class: 'meta'}, rows.map(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
    const card = el('div', {class: 'card'}, meta, el('h3', {}, 'Input'), argumentsView(x.input) || el('pre', {}, 'null'));
    if (x.status === 'SUCCEEDED') card.append(el('h3', {}, 'Result'), el('pre', {class: 'result'}, json(x.result)));
    if (x.stalled) {  // its handler cannot be imported right now: it waits and is retried, never failed
      card.append(el('h3', {class: 'error'}, 'Cannot run right now'),
        el('pre', {class: 'stalled'}, String(x.stalled.reason || 'unknown reason')),
        el('p', {class: 'notice'}, 'Attempt ' + x.stalled.attempts + '; next try ' + when(x.stalled.retry_at) +
          '. The execution keeps waiting: fix the deploy and it resumes.'));
    }
    if (x.error) {
      card.append(el('h3', {class: 'error'}, 'Error'),
        el('pre', {}, [x.error.ErrorType, x.error.ErrorMessage].filter(Boolean).join(': ') || 'no details'));
      if (x.error.StackTrace) card.append(el('pre', {}, x.error.StackTrace.join('\n')));
    }
    return card;
  }

  function reviewView(e) {
    const d = e.decision;
    return el('div', {class: 'card msg review', 'data-status': e.status},
      el('div', {}, el('span', {class: 'who'}, e.review_kind === 'question' ? 'question' : 'review'),
        badge(e.status), ' ', e.title || ''),
      d && d.edits ? el('div', {}, 'the reviewer changed:', argumentsView(d.edits)) : null,
      d && d.feedback ? el('div', {class: 'text'}, 'feedback: ' + d.feedback) : null,
      d && d.reviewer ? el('div', {class: 'muted'}, 'by ' + d.reviewer + ' · ' + when(e.time)) : null,
      e.status === 'answered' ? el('div', {}, 'answer:', el('pre', {}, json(e.answer))) : null,
      e.status === 'unreadable' ? el('div', {class: 'error'}, 'the answer did not fit the review: ' + json(e.answer)) : null,
      e.status === 'pending' ? el('div', {}, el('a', {href: '/reviews'}, 'answer it in the inbox')) : null);
  }

  function resultView(e) {
    return el('div', {class: 'card msg tool_result result' + (e.is_error ? ' is-error' : '') +
                               (e.status === 'NOT_RUN' ? ' not-run' : ''), 'data-call': e.tool_call_id || ''},
      el('div', {}, el('span', {class: 'who'}, '← ' + e.tool), badge(e.status === 'NOT_RUN' ? 'not run' : e.status),
        e.tool_call_id ? el('span', {class: 'muted'}, ' (call ' + e.tool_call_id + ')') : null),
      e.content ? el('pre', {}, e.content) : null);
  }

  function threadView(thread) {
    const items = [];
    for (const e of thread.entries) {
      if (e.kind === 'system' || e.kind === 'user' || e.kind === 'note') {
        items.push(el('div', {class: 'card msg ' + e.kind},
          el('div', {}, el('span', {class: 'who'}, e.kind === 'note' ? '' : e.kind === 'system' ? 'system prompt' : 'user')),
          el('div', {class: 'text'}, e.text)));
      } else if (e.kind === 'assistant') {
        const u = e.usage;
        const usage = u ? ' · ' + u.input_tokens + ' in / ' + u.output_tokens + ' out' : '';
        items.push(el('div', {class: 'card msg assistant', 'data-op': e.operation_id},
          el('div', {}, el('span', {class: 'who'}, e.agent || 'assistant'),
            el('span', {class: 'muted'}, (e.model || '') + usage + ' · ' + (e.name || ''))),
          e.error ? el('div', {class: 'error'}, e.error) : null,
          e.status !== 'SUCCEEDED' && !e.error ? el('div', {class: 'muted'}, 'model call ' + e.status) : null,
          e.text ? el('div', {class: 'text'}, e.text) : null,
          e.tool_calls.map((c) => el('div', {class: 'call', 'data-call': c.id},
            '→ calls ', el('strong', {}, c.name), el('span', {class: 'muted'}, ' (call ' + c.id + ')'),
            argumentsView(c.arguments)))));
      } else if (e.kind === 'review') {
        items.push(reviewView(e));
      } else if (e.kind === 'tool_result') {
        items.push(resultView(e));
      }
    }
    const title = (thread.agent ? 'Agent ' + thread.agent : 'Questions') + (thread.where ? ' · in ' + thread.where : '');
    return el('div', {class: 'thread', 'data-thread': thread.id}, el('h3', {}, title), items);
  }

  function conversationView(threads) {
    if (!threads.length) return el('p', {class: 'muted'}, 'No model calls or questions in this execution.');
    return el('div', {}, threads.map(threadView));
  }

  function invocationsView(runs) {
    if (!runs.length) return el('p', {class: 'muted'}, 'No invocation has finished yet.');
    return el('div', {}, runs.map((r) => el('div', {class: 'card invocation' + (r.crashed ? ' crashed' : '')},
      el('div', {}, el('strong', {}, 'Invocation ' + r.number), ' · ', when(r.started_at), ' · ', span(r.duration),
        r.crashed ? el('span', {class: 'error'}, ' · ended without reporting back: ' + r.error) : null),
      el('div', {class: 'muted'}, r.number === 1 ? 'ran from the start' :
        (r.crashed || runs[r.number - 2].crashed ? 'resumed after a crash' : 'resumed') + ': replayed ' +
        r.replayed_count + ' result' + (r.replayed_count === 1 ? '' : 's') + ' from the journal instead of running them again'),
      r.replayed_notable.length ? el('div', {class: 'muted'}, 'replayed: ' + r.replayed_notable.join(', ') +
        (r.replayed_notable_more ? ' and ' + r.replayed_notable_more + ' more' : '')) : null)));
  }

  function timelineView(t) {
    if (!t.rows.length) return el('p', {class: 'muted'}, 'No operations yet.');
    const overlay = (track) => {
      for (const g of t.gaps) {
        const gap = el('div', {class: 'gap', title: 'a stretch of ' + span(g.seconds)});
        gap.style.left = g.left + '%'; gap.style.width = g.width + '%';
        track.append(gap);
      }
      for (const m of t.invocations) {
        const mark = el('div', {class: 'mark' + (m.crashed ? ' crashed' : ''), title: 'invocation ' + m.number});
        mark.style.left = m.left + '%';
        track.append(mark);
      }
      return track;
    };
    const legend = el('p', {class: 'axis'}, 'From ' + when(t.start) + ' to ' + when(t.end) + ' (' + span(t.end - t.start) +
      '). The scale shrinks long stretches so that short steps stay visible; hatched: a stretch of a minute or more; ' +
      'vertical marks: where each invocation began (red: after a crash).');
    return el('div', {}, legend, el('table', {class: 'timeline'},
      el('thead', {}, el('tr', {}, ['Operation', 'Type', 'Status', 'Attempt', 'Started', 'Took', '']
        .map((h) => el('th', {}, h)))),
      el('tbody', {}, t.rows.map((r) => {
        const bar = el('div', {class: 'bar ' + r.status});
        bar.style.left = r.bar.left + '%';
        bar.style.width = r.bar.width + '%';
        const name = el('td', {class: 'name'}, r.name || '-');
        name.style.paddingLeft = (10 + 18 * r.depth) + 'px';
        return el('tr', {},
          name,
          el('td', {class: 'mono'}, r.type + (r.subtype && r.subtype.toUpperCase() !== r.type ? '/' + r.subtype : '')),
          el('td', {}, badge(r.status), r.note ? el('div', {class: 'muted'}, r.note) : null),
          el('td', {}, r.attempt || ''),
          el('td', {}, when(r.start)),
          el('td', {}, span(r.duration)),
          el('td', {}, overlay(el('div', {class: 'track', title: span(r.duration)}, bar))));
      }))));
  }

  function ledgerView(ledger) {
    if (!ledger) return el('p', {class: 'muted'}, 'No model calls: nothing was spent.');
    const rows = [];
    for (const [model, line] of Object.entries(ledger.paid || {})) {
      const again = (ledger.reused || {})[model];
      rows.push(el('tr', {}, el('td', {class: 'mono'}, model), el('td', {}, line.calls),
        el('td', {}, line.input_tokens), el('td', {}, line.output_tokens),
        el('td', {}, line.cache_read_tokens + ' / ' + line.cache_write_tokens),
        el('td', {}, '$' + Number(line.cost_usd).toFixed(4)),
        el('td', {}, again ? again.calls + ' ($' + Number(again.cost_usd).toFixed(4) + ')' : '0')));
    }
    for (const [model, line] of Object.entries(ledger.lost_in_flight || {})) {  // paid, the answer lost
      rows.push(el('tr', {}, el('td', {class: 'mono'}, model + ' (lost in flight, estimated)'), el('td', {}, line.calls),
        el('td', {}, line.input_tokens), el('td', {}, line.output_tokens),
        el('td', {}, line.cache_read_tokens + ' / ' + line.cache_write_tokens),
        el('td', {}, '$' + Number(line.cost_usd).toFixed(4)), el('td', {}, '')));
    }
    return el('div', {},
      el('table', {class: 'ledger'},
        el('thead', {}, el('tr', {}, ['Model', 'Calls', 'In', 'Out', 'Cache read / write', 'Paid', 'Reused after a resume']
          .map((h) => el('th', {}, h)))),
        el('tbody', {}, rows)),
      el('p', {class: 'split'}, 'Paid $' + Number(ledger.paid_usd).toFixed(4) + ' for ' + ledger.paid_calls +
        ' model call' + (ledger.paid_calls === 1 ? '' : 's') + ', each once' +
        (ledger.lost_calls ? '; ' + ledger.lost_calls + ' more paid and lost in flight with a crashed worker (~$' +
          Number(ledger.lost_usd).toFixed(4) + '): billed $' + Number(ledger.total_usd).toFixed(4) : '') +
        (ledger.reused_calls ? '; reused ' + ledger.reused_calls + ' of them from the journal ($' +
          Number(ledger.saved_usd).toFixed(4) + ' not paid twice)' : '') + '.'));
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

  // -- live events: the console's event stream, read with fetch so that the token travels in the
  // Authorization header (EventSource cannot send one); after a dropped connection it reconnects
  // with Last-Event-ID and the server sends each durable event it missed, once.
  function follow(id, after, onEvent) {
    let last = after;
    let stopped = false;
    async function run() {
      while (!stopped) {
        let ended = false;
        try {
          const headers = {'Accept': 'text/event-stream', 'Authorization': 'Bearer ' + token()};
          if (last !== null && last !== undefined) headers['Last-Event-ID'] = String(last);
          const response = await fetch('/api/executions/' + encodeURIComponent(id) + '/events',
            {headers, credentials: 'omit', cache: 'no-store'});
          if (!response.ok || !response.body) throw new Error('HTTP ' + response.status);
          const reader = response.body.getReader();
          const decoder = new TextDecoder();
          let buffer = '';
          for (;;) {
            const {value, done} = await reader.read();
            if (done) break;
            buffer += decoder.decode(value, {stream: true});
            let cut;
            while ((cut = buffer.indexOf('\n\n')) >= 0) {
              const block = buffer.slice(0, cut);
              buffer = buffer.slice(cut + 2);
              let type = 'message', data = '', eventId = null;
              for (const line of block.split('\n')) {
                if (!line || line.startsWith(':')) continue;
                const at = line.indexOf(':');
                const field = at < 0 ? line : line.slice(0, at);
                let text = at < 0 ? '' : line.slice(at + 1);
                if (text.startsWith(' ')) text = text.slice(1);
                if (field === 'event') type = text;
                else if (field === 'data') data += (data ? '\n' : '') + text;
                else if (field === 'id') eventId = text;
              }
              if (eventId !== null) last = eventId;
              if (type === 'end') { ended = true; continue; }
              if (data) { try { onEvent(type, JSON.parse(data)); } catch (e) { /* one bad event is skipped */ } }
            }
          }
        } catch (e) { /* reconnect below */ }
        if (ended) return;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
    run();
    return () => { stopped = true; };
  }

  // -- a chat session: its messages and replies, and a box to send the next message ----------------
  function chatView(id, session, live, status, onSent) {
    const items = [];
    for (const e of session.entries) {
      if (e.kind === 'compaction') {
        items.push(el('div', {class: 'card msg note compaction'},
          el('div', {}, el('span', {class: 'who'}, 'summary'), el('span', {class: 'muted'},
            'older turns were summarized before turn ' + e.before_turn + ' (' + e.summarized_messages + ' messages, ' +
            e.tokens_before + ' tokens of a ' + e.window + '-token window) by ' + e.model)),
          el('div', {class: 'text'}, e.summary)));
        continue;
      }
      if (e.user !== null && e.user !== undefined) {
        items.push(el('div', {class: 'card msg user chat-user'}, el('span', {class: 'who'}, 'you'),
          el('div', {class: 'text'}, e.user)));
      }
      if (e.status === 'STARTED') {
        items.push(el('div', {class: 'card msg assistant chat-reply streaming'},
          el('span', {class: 'who'}, live.agent || 'replying'), el('span', {class: 'muted'}, 'writing…'),
          el('div', {class: 'text live-text'}, live.text)));
      } else if (e.error) {
        items.push(el('div', {class: 'card msg chat-error'}, el('span', {class: 'who error'}, 'failed'),
          el('div', {class: 'text'}, e.error)));
      } else {
        items.push(el('div', {class: 'card msg assistant chat-reply'}, el('span', {class: 'who'}, e.agent),
          e.tools && e.tools.length ? el('span', {class: 'muted'}, 'used ' + e.tools.join(', ')) : null,
          el('div', {class: 'text'}, typeof e.reply === 'string' ? e.reply : json(e.reply))));
      }
    }
    if (!items.length) items.push(el('p', {class: 'muted'}, 'No messages yet.'));
    let composer;
    if (status === 'RUNNING' && session.waiting_for_message) {
      const box = el('textarea', {class: 'chat-input', placeholder: 'Your message'});
      const error = el('div', {class: 'error form-error'});
      composer = el('div', {class: 'card composer'}, box, error);
      box.addEventListener('input', () => {
        if (box.value) composer.dataset.editing = '1'; else delete composer.dataset.editing;
      });
      const send = async (body) => {
        for (const b of composer.querySelectorAll('button')) b.disabled = true;
        try {
          await api('/api/executions/' + encodeURIComponent(id) + '/messages', body);
          delete composer.dataset.editing;
          box.value = '';
          onSent();
        } catch (e) {
          error.textContent = String(e.message || e);
          for (const b of composer.querySelectorAll('button')) b.disabled = false;
        }
      };
      composer.append(el('div', {class: 'actions'},
        el('button', {class: 'primary send-message', onclick: () => {
          if (!box.value.trim()) { error.textContent = 'Write a message first.'; return; }
          send({text: box.value});
        }}, 'Send'),
        el('button', {class: 'end-session', onclick: () => send({end: true})}, 'End the session')));
    } else {
      composer = el('p', {class: 'muted chat-state'}, status !== 'RUNNING' ? 'The session has ended.'
        : 'Replying… (a worker runs the session: `duragent worker` or `duragent chat`)');
    }
    return el('div', {class: 'chat'}, items, composer);
  }

  function executionPage() {
    let id = '';
    try { id = decodeURIComponent(path.split('/')[2] || ''); } catch (e) { id = ''; }
    let shown = '';
    let status = null;
    let following = null;
    let pending = null;
    const live = {text: '', agent: null, op: null};
    function soon() {  // a durable event arrived: read the page's data again (at most every 150 ms)
      if (pending === null) pending = setTimeout(() => { pending = null; load(); }, 150);
    }
    function onEvent(type, event) {
      if (type === 'text_delta') {
        if (live.op !== event.operation_id) { live.op = event.operation_id; live.text = ''; }
        live.text += event.text || '';
        live.agent = event.agent;
        for (const node of app.querySelectorAll('.live-text')) node.textContent = live.text;
        return;
      }
      if (type === 'model_call_finished' && event.operation_id === live.op) { live.text = ''; live.op = null; }
      if (event.cursor !== null && event.cursor !== undefined) soon();
    }
    async function load() {
      if (app.querySelector('[data-editing]')) return;
      let data;
      try {
        data = await api('/api/executions/' + encodeURIComponent(id));
      } catch (e) {
        document.title = 'duragent · not found';
        clear(app).append(el('h1', {}, 'Execution'), el('p', {class: 'error'}, String(e.message || e)),
          el('p', {}, el('a', {href: '/'}, 'all executions')));
        return;
      }
      const {timeline: _t, ...stable} = data;  // the timeline moves with the clock while running
      const key = JSON.stringify(stable);
      if (key === shown && !app.querySelector('[data-done]')) return;
      shown = key;
      const x = data.execution;
      status = x.status;
      document.title = 'duragent · ' + (x.name || x.id);
      const waiting = data.reviews.length ? section('Waiting for a person' +
        (data.reviews_total > data.reviews.length ? ' (' + data.reviews.length + ' of ' + data.reviews_total + ')' : ''),
        data.reviews.map((r) => reviewCard(r, load))) : null;
      if (following === null && x.status === 'RUNNING') following = follow(id, data.cursor, onEvent);
      const parts = [
        el('h1', {}, x.name || x.id),
        header(x),
        waiting,
        data.session ? section('Chat', chatView(id, data.session, live, x.status, load)) : null,
        section('Conversation', conversationView(data.conversation)),
        section('Invocations', invocationsView(data.invocations)),
        section('Timeline', timelineView(data.timeline)),
        section('Cost', ledgerView(data.ledger)),
        section('History', historyView(id))];
      clear(app).append(...parts.filter(Boolean));
    }
    load();
    every(2000, () => (status === null || status === 'RUNNING') ? load() : null);  // a finished one never changes
  }

  if (!token()) {
    document.title = 'duragent · sign in';
    clear(app).append(el('div', {class: 'card', id: 'token-missing'}, el('h1', {}, 'Open the console from its URL'),
      el('p', {}, 'This tab has no access token. Open the address that `duragent ui` printed: it ends with ' +
        '#token=…, which this page keeps for this tab only and removes from the address bar.')));
    return;
  }
  if (page === 'executions') executionsPage();
  else if (page === 'reviews') reviewsPage();
  else executionPage();
  updateInboxCount();
  every(5000, updateInboxCount);
})();
