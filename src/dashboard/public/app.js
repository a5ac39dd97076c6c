// modelplane dashboard: plain browser JavaScript, no build step, no external resources.
// Every value shown comes from the app's own JSON routes; DOM text is set with textContent only.
const POLL_MS = 1000;
const TOKEN_KEY = 'modelplane.adminToken';
const $ = (selector) => document.querySelector(selector);

/** Latest /api/models/loaded answer and when it arrived, for the local countdown between polls. */
let loadedState = { loaded: [], backends: [] };
let fetchedAt = performance.now();

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function row(cells) {
  const tr = document.createElement('tr');
  for (const cell of cells) tr.append(cell instanceof Node ? cell : el('td', cell));
  return tr;
}

function seconds(s) {
  if (s === null || s === undefined) return '—';
  const v = Math.max(0, Math.round(s));
  return v >= 60 ? `${Math.floor(v / 60)}m ${String(v % 60).padStart(2, '0')}s` : `${v}s`;
}

function memory(m) {
  const mb = m.ram_mb ?? m.vram_mb ?? m.size_mb;
  return mb === null || mb === undefined ? '—' : `${Math.round(mb)} MB`;
}

function showError(message) {
  const box = $('#error');
  box.textContent = message;
  box.hidden = !message;
}

async function getJson(path) {
  const res = await fetch(path, { cache: 'no-store' });
  const body = await res.json();
  if (!res.ok) throw new Error(body?.error?.message ?? `${path}: HTTP ${res.status}`);
  return body;
}

function renderBackends() {
  const body = $('#backends tbody');
  body.replaceChildren(
    ...loadedState.backends.map((b) => {
      const age =
        b.observation_age_ms === null || b.observation_age_ms === undefined ? null : b.observation_age_ms / 1000;
      return row([
        b.name,
        b.backend_type,
        el('td', b.readiness, b.readiness),
        el('td', b.reason ?? '', 'reason'),
        age === null ? 'never' : `${seconds(age)} ago`,
      ]);
    }),
  );
}

function renderLoaded() {
  const elapsed = (performance.now() - fetchedAt) / 1000;
  const body = $('#loaded tbody');
  body.replaceChildren(
    ...loadedState.loaded.map((m) => {
      const button = el('button', 'Unload');
      button.type = 'button';
      button.dataset.model = m.name;
      button.addEventListener('click', () => unload(m.name));
      const countdown =
        m.unloads_in_s === null || m.unloads_in_s === undefined || m.in_flight > 0
          ? '—'
          : seconds(m.unloads_in_s - elapsed);
      const idle = m.idle_seconds === null || m.idle_seconds === undefined ? '—' : seconds(m.idle_seconds + elapsed);
      const busy = m.queued > 0 ? `${m.in_flight} (${m.queued} queued)` : m.in_flight;
      const tr = row([m.name, m.backend, memory(m), busy, idle, el('td', countdown, 'countdown'), el('td')]);
      tr.dataset.model = m.name;
      tr.lastChild.append(button);
      return tr;
    }),
  );
  $('#loaded-empty').hidden = loadedState.loaded.length > 0;
}

async function poll() {
  try {
    const [loaded, health] = await Promise.all([getJson('/api/models/loaded'), getJson('/health')]);
    loadedState = loaded;
    fetchedAt = performance.now();
    const pill = $('#readiness');
    pill.textContent = health.readiness;
    pill.className = `pill ${health.readiness}`;
    $('#updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
    renderBackends();
    renderLoaded();
  } catch (err) {
    $('#updated').textContent = `not reachable: ${err.message}`;
  }
}

async function unload(model) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = token ? { authorization: `Bearer ${token}` } : {};
  try {
    const res = await fetch(`/api/models/${encodeURIComponent(model)}/unload`, { method: 'POST', headers });
    const body = await res.json();
    if (!res.ok) {
      showError(`Unload of ${model} refused: ${body?.error?.message ?? `HTTP ${res.status}`}`);
      if (res.status === 401) $('#token').focus();
      return;
    }
    showError('');
    await poll();
  } catch (err) {
    showError(`Unload of ${model} failed: ${err.message}`);
  }
}

async function fillPlanChoices() {
  try {
    const { models } = await getJson('/api/models');
    $('#plan-model').replaceChildren(...models.map((m) => el('option', m.id)));
  } catch {
    // The next page load retries; the plan form just stays empty.
  }
}

async function showPlan(event) {
  event.preventDefault();
  const model = $('#plan-model').value;
  const out = $('#plan');
  try {
    const plan = await getJson(`/api/eviction/plan?load=${encodeURIComponent(model)}`);
    const summary = plan.fits
      ? plan.evict.length
        ? `Loading ${plan.model} evicts ${plan.evict.join(', ')}.`
        : `${plan.model} fits without evicting anything.`
      : `${plan.model} cannot fit: ${plan.reason}`;
    const list = el('ul');
    for (const c of plan.candidates) list.append(el('li', `${c.id}: ${c.action} (${c.reason})`));
    out.replaceChildren(el('p', summary), list);
  } catch (err) {
    out.replaceChildren(el('p', err.message, 'error'));
  }
}

function followEvents() {
  const feed = $('#events');
  const source = new EventSource('/api/events?since=0');
  const add = (e) => {
    let data;
    try {
      data = JSON.parse(e.data);
    } catch {
      return;
    }
    const detail = data.model ?? data.backend ?? '';
    const extra = data.reason ? ` (${data.reason})` : data.to ? ` → ${data.to}` : '';
    feed.prepend(el('li', `${new Date(data.at_ms).toLocaleTimeString()} ${data.type} ${detail}${extra}`));
    while (feed.children.length > 100) feed.lastChild.remove();
    void poll();
  };
  for (const type of ['backend.transition', 'model.loaded', 'model.load_failed', 'model.unloaded', 'model.drift'])
    source.addEventListener(type, add);
  source.onmessage = add;
}

function setupToken() {
  const input = $('#token');
  input.value = sessionStorage.getItem(TOKEN_KEY) ?? '';
  $('#token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    if (input.value) sessionStorage.setItem(TOKEN_KEY, input.value);
    else sessionStorage.removeItem(TOKEN_KEY);
    showError('');
  });
  $('#token-clear').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    input.value = '';
  });
}

setupToken();
$('#plan-form').addEventListener('submit', showPlan);
void fillPlanChoices();
void poll();
followEvents();
setInterval(poll, POLL_MS);
setInterval(renderLoaded, 250);
