// A tiny DOM, just enough to run durable/console's app.js in node against a live console and
// report what it rendered (no browser on the test machine). Usage:
//   node console_dom.js BASE_URL PATH TOKEN [ACTION]
// ACTION: "dump" (default), "approve-edit:<json arguments>" or "reject:<feedback>" (clicks the
// first review card's buttons the way a person would). Prints one JSON line; exit 3 on a JS error.
'use strict';
const vm = require('vm');

const [base, path, token, action = 'dump'] = process.argv.slice(2);
const fail = (err) => { console.error(String(err && err.stack || err)); process.exit(3); };
process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);

class FakeNode {
  constructor() { this.parentNode = null; this.childNodes = []; }
  get firstChild() { return this.childNodes[0] || null; }
  get textContent() { return this.childNodes.map((c) => c.textContent).join(''); }
  set textContent(text) { this.childNodes = []; this.append(String(text)); }
  append(...items) { for (const item of items) this.insertBefore(item, null); }
  insertBefore(item, ref) {
    const node = item instanceof FakeNode ? item : new FakeText(String(item));
    if (node.parentNode) node.parentNode.removeChild(node);
    node.parentNode = this;
    const at = ref ? this.childNodes.indexOf(ref) : -1;
    if (at < 0) this.childNodes.push(node); else this.childNodes.splice(at, 0, node);
    return node;
  }
  removeChild(node) { this.childNodes = this.childNodes.filter((c) => c !== node); node.parentNode = null; return node; }
}

class FakeText extends FakeNode {
  constructor(text) { super(); this.text = text; }
  get textContent() { return this.text; }
  set textContent(text) { this.text = String(text); }
}

function matches(node, selector) {  // tag, #id, .class, [attr] and [attr="value"]: one simple selector
  const m = /^([a-z]*)(?:#([\w-]+))?(?:\.([\w-]+))?(?:\[([\w-]+)(?:="([^"]*)")?\])?$/i.exec(selector);
  if (!m) throw new Error('unsupported selector ' + selector);
  const [, tag, id, cls, attr, value] = m;
  if (tag && node.tagName !== tag.toUpperCase()) return false;
  if (id && node.getAttribute('id') !== id) return false;
  if (cls && !node.classList.contains(cls)) return false;
  if (attr && (!node.attributes.has(attr) || (value !== undefined && node.attributes.get(attr) !== value))) return false;
  return true;
}

class FakeElement extends FakeNode {
  constructor(tag) {
    super();
    this.tagName = tag.toUpperCase();
    this.attributes = new Map();
    this.listeners = {};
    this.style = {};
    this.disabled = false;
    const self = this;
    this.dataset = new Proxy({}, {
      get: (_, key) => self.getAttribute('data-' + String(key).replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())) ?? undefined,
      set: (_, key, value) => { self.setAttribute('data-' + String(key), value); return true; },
      deleteProperty: (_, key) => { self.attributes.delete('data-' + String(key)); return true; },
    });
    this.classList = {
      add: (c) => { const s = new Set(self.className.split(' ').filter(Boolean)); s.add(c); self.className = [...s].join(' '); },
      remove: (c) => { self.className = self.className.split(' ').filter((x) => x && x !== c).join(' '); },
      contains: (c) => self.className.split(' ').includes(c),
    };
  }
  get className() { return this.attributes.get('class') || ''; }
  set className(value) { this.attributes.set('class', String(value)); }
  setAttribute(name, value) { this.attributes.set(name, String(value)); }
  getAttribute(name) { return this.attributes.has(name) ? this.attributes.get(name) : null; }
  get value() {
    if (this._value !== undefined) return this._value;
    if (this.tagName === 'TEXTAREA') return this.textContent;
    if (this.tagName === 'SELECT') {
      const options = this.querySelectorAll('option');
      const chosen = options.find((o) => o.attributes.has('selected')) || options[0];
      return chosen ? chosen.getAttribute('value') : '';
    }
    return this.getAttribute('value') || '';
  }
  set value(v) { this._value = String(v); }
  get checked() { return this._checked !== undefined ? this._checked : this.attributes.has('checked'); }
  set checked(v) { this._checked = Boolean(v); }
  focus() {}
  addEventListener(type, fn) { (this.listeners[type] = this.listeners[type] || []).push(fn); }
  dispatch(type) { for (const fn of this.listeners[type] || []) fn({type, target: this}); }
  click() { if (!this.disabled) this.dispatch('click'); }
  descendants() {
    const out = [];
    const walk = (n) => { for (const c of n.childNodes) if (c instanceof FakeElement) { out.push(c); walk(c); } };
    walk(this);
    return out;
  }
  querySelectorAll(selector) { return this.descendants().filter((n) => matches(n, selector)); }
  querySelector(selector) { return this.querySelectorAll(selector)[0] || null; }
}

function el(tag, attrs, ...children) {
  const node = new FakeElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

async function main() {
  const auth = {Authorization: 'Bearer ' + token};
  const shell = await (await fetch(base + path, {headers: auth})).text();
  const page = /data-page="(\w+)"/.exec(shell)[1];
  const body = el('body', {},
    el('header', {}, el('a', {'data-nav': 'executions'}, 'Executions'),
      el('a', {'data-nav': 'reviews'}, 'Inbox ', el('span', {id: 'inbox-count'}))),
    el('main', {id: 'app', 'data-page': page}, 'Loading…'));
  const storage = () => { const m = new Map(); return {getItem: (k) => m.get(k) ?? null, setItem: (k, v) => m.set(k, String(v))}; };
  const location = {pathname: path, search: '?token=' + encodeURIComponent(token), hash: '',
                    get href() { return base + this.pathname + this.search; }};
  const realFetch = fetch;
  Object.assign(globalThis, {
    Node: FakeNode, location, sessionStorage: storage(), localStorage: storage(),
    history: {replaceState: (s, t, url) => { const u = new URL(url, base); location.pathname = u.pathname; location.search = u.search; }},
    document: {title: '', hidden: false, body,
               createElement: (tag) => new FakeElement(tag), createTextNode: (text) => new FakeText(text),
               getElementById: (id) => body.querySelector('#' + id), querySelectorAll: (s) => body.querySelectorAll(s)},
    fetch: (url, init) => realFetch(base + url, init),
  });
  const script = await (await realFetch(base + '/static/app.js', {headers: auth})).text();
  vm.runInThisContext(script, {filename: 'app.js'});
  const app = body.querySelector('#app');
  const settle = () => new Promise((resolve) => setTimeout(resolve, 400));
  await settle();
  const button = (root, label) => root.querySelectorAll('button').find((b) => b.textContent === label);
  let notice = null;
  if (action !== 'dump') {
    const card = app.querySelector('div.review');
    const [verb, ...rest] = action.split(':');
    button(card, verb === 'approve-edit' ? 'Edit & approve' : 'Reject').click();
    card.querySelector('textarea').value = rest.join(':');
    button(card, 'Send').click();
    await settle();
    notice = card.querySelector('div.notice').textContent;
  }
  const elements = app.descendants();
  console.log(JSON.stringify({
    page, title: globalThis.document.title, text: app.textContent, notice,
    tags: [...new Set(elements.map((n) => n.tagName))].sort(),
    rows: elements.filter((n) => n.tagName === 'TR' && n.attributes.has('data-id')).map((n) => n.getAttribute('data-id')),
    token_in_url: location.search.includes('token'),
  }));
  process.exit(0);
}

main().catch(fail);
