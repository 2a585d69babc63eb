// caddy-idv demo: start or resume an identity verification and show its
// result as the webhook records it. Plain JavaScript, no build step.
//
// The page never sees a provider credential: the session token stays in
// Caddy, and the session id travels only in the HttpOnly idv_session cookie
// (so it is not shown here either).
'use strict';

(function () {
  const API = '/api';
  const $ = (id) => document.getElementById(id);
  const els = {
    verify: $('verify'), hint: $('hint'), waiting: $('waiting'), error: $('error'),
    result: $('result'), status: $('provider-status'), score: $('score'),
    created: $('created'), events: $('events'),
  };
  const RESULT_TEXT = { verified: 'verified', failed: 'not verified', pending: 'pending' };

  // Back from the provider's hosted page (the redirectionUrl below)? The
  // provider sends the person back when they have finished, so the session
  // only waits for its result now (the address keeps ?returned=1, so a reload
  // still knows).
  const returned = new URLSearchParams(location.search).get('returned') === '1';

  let stream = null;

  // getJSON calls the API and throws an Error carrying the API's own
  // message (its "error" field) and the HTTP status.
  async function getJSON(path) {
    const res = await fetch(API + path, {
      credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' },
    });
    let body = null;
    try { body = await res.json(); } catch (_) { /* not JSON */ }
    if (!res.ok || !body || body.success === false) {
      const err = new Error((body && body.error) || `${API}${path} answered HTTP ${res.status}`);
      err.status = res.status;
      throw err;
    }
    return body;
  }

  // currentSession returns the cookie's session, or null when there is none.
  async function currentSession() {
    try {
      return await getJSON('/session');
    } catch (err) {
      if (err.status === 401) return null;
      throw err;
    }
  }

  // A session is resumed while the person has not finished it; a finished
  // one (or none) means a new verification. Finished means: a result, the
  // provider's ONBOARDING_FINISHED, or back here from the hosted page (the
  // result may still be on its way, and the provider would only say "already
  // finished").
  function resumable(v) {
    return !!v && v.result === 'pending' && v.status !== 'ONBOARDING_FINISHED' && !returned;
  }

  function showError(msg) {
    els.error.textContent = msg ? `Error: ${msg}` : '';
    els.error.hidden = !msg;
  }

  function when(iso) {
    const d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleString();
  }

  function timeEl(iso) {
    const t = document.createElement('time');
    t.dateTime = iso;
    t.textContent = when(iso);
    return t;
  }

  function render(v) {
    const result = v ? v.result : 'none';
    els.result.textContent = v ? (RESULT_TEXT[result] || result) : 'not started';
    els.result.className = `result result-${result}`;
    els.status.textContent = v ? v.status : '–';
    els.score.textContent = (v && v.score) || '–';
    els.created.replaceChildren(v ? timeEl(v.createdAt) : '–');

    const items = (v ? v.events : []).map((e) => {
      const li = document.createElement('li');
      li.append(timeEl(e.receivedAt), ' ', e.status);
      return li;
    });
    if (items.length === 0) {
      const li = document.createElement('li');
      li.className = 'empty';
      li.textContent = 'No events yet.';
      items.push(li);
    }
    els.events.replaceChildren(...items);

    els.waiting.hidden = !(returned && v && v.result === 'pending');
    els.hint.textContent = !v ? '' : resumable(v)
      ? 'Continues your verification in progress.'
      : 'Starts a new verification.';
  }

  // openStream follows the session: the server sends its state at once and
  // again on every change. The browser reconnects by itself after a network
  // error; a refused stream (no live session) is closed and explained.
  function openStream() {
    if (stream) return;
    stream = new EventSource(API + '/session/events');
    stream.addEventListener('status', (e) => {
      try {
        render(JSON.parse(e.data));
        showError('');
      } catch (_) { /* ignore a malformed event */ }
    });
    stream.addEventListener('error', async () => {
      if (!stream || stream.readyState !== EventSource.CLOSED) return;
      stream = null;
      try {
        const v = await currentSession();
        render(v);
        if (v) setTimeout(openStream, 5000);
        else if (returned) showError('your verification session was not found (cookies blocked or expired?)');
      } catch (err) {
        showError(err.message);
      }
    });
  }

  async function verify() {
    els.verify.disabled = true;
    showError('');
    try {
      const v = await currentSession();
      const q = new URLSearchParams({ redirectionUrl: location.origin + location.pathname + '?returned=1' });
      if (!resumable(v)) q.set('new', '1');
      const r = await getJSON('/onboarding-url?' + q);
      if (!r.url) throw new Error('the onboarding answer has no url');
      location.assign(r.url);
    } catch (err) {
      showError(err.message);
      els.verify.disabled = false;
    }
  }

  async function load() {
    try {
      const v = await currentSession();
      render(v);
      if (v) openStream();
      else if (returned) showError('no verification session was found (cookies blocked or expired?)');
    } catch (err) {
      render(null);
      showError(err.message);
    }
  }

  els.verify.addEventListener('click', verify);
  // Coming back with the Back button restores this page from the cache with
  // the button still disabled.
  window.addEventListener('pageshow', (e) => { if (e.persisted) els.verify.disabled = false; });
  load();
})();
