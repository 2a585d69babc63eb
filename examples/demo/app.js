// caddy-idv demo: start or resume an identity verification with the provider
// picked in the page, follow it as the server records it, and show what
// happened and where each credential lives. Plain JavaScript, no build step.
//
// The page never sees a provider credential. What it holds: the session's
// uniqueId, an HttpOnly cookie it cannot read, and a short-lived token. The
// API key, the executive token and the webhook secret stay in Caddy.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const els = {
    verify: $('verify'), hint: $('hint'), waiting: $('waiting'), error: $('error'),
    noWebhook: $('no-webhook'), noWebhookAfter: $('no-webhook-after'), webhookURL: $('webhook-url'),
    docs: $('docs-link'), badge: $('sandbox-badge'), about: $('provider-about'),
    emailRow: $('email-row'), email: $('email'),
    result: $('result'), status: $('provider-status'), score: $('score'),
    created: $('created'), expires: $('expires'), timeline: $('timeline'),
    holds: $('browser-holds'), keeps: $('server-keeps'), sdk: $('sdk'),
  };

  // The providers this page knows, each under its own prefix on this site
  // (see the root Caddyfile). kind "hosted": a session and a hosted flow
  // that returns here; kind "sdk": a session whose token launches the
  // provider's SDK in this page (on the sandbox, a stand-in page that
  // returns here); kind "token": a short-lived token for the provider's
  // SDK, no session.
  const PROVIDERS = {
    incode: {
      name: 'Incode', api: '/api', kind: 'hosted', action: 'Verify my identity',
      about: "Incode's hosted onboarding. The result arrives by webhook; the score is then read from Incode with the executive token.",
      resultFrom: 'Score read from Incode with the executive token',
      token: 'Incode’s session token for this interview only, in the onboarding answer (what an SDK is given); this page does not keep it.',
      server: [
        ['API key', 'sent as X-Api-Key to start each session'],
        ['Executive token', 'logged in with the admin e-mail and password, used to read the score'],
        ['Webhook secret', "checks that a webhook really comes from Incode"],
      ],
    },
    regula: {
      name: 'Regula', api: '/regula/api', kind: 'hosted', action: 'Verify my identity',
      about: "Regula's hosted capture. A webhook says the session changed; its status is then read from Regula's results API.",
      resultFrom: 'Status read from Regula’s results API with the API key',
      token: 'An ephemeral token inside the hosted-flow link: it reaches this session’s data only.',
      server: [
        ['API key', 'mints each session’s ephemeral token and reads results'],
        ['Webhook secret', 'checks that a webhook really comes from Regula'],
      ],
    },
    veriff: {
      name: 'Veriff', api: '/veriff/api', kind: 'hosted', action: 'Verify my identity',
      about: "Veriff's hosted flow. Veriff signs each webhook with the shared secret; the decision is then read from Veriff, signed the same way.",
      resultFrom: 'Decision from Veriff’s signed webhook',
      resultDetail: 'Only Veriff could sign it; while none comes, the server reads the decision from Veriff with a signed request.',
      webhookCheck: 'Its HMAC signature matched the shared secret, so the server recorded it.',
      secretOption: 'shared_secret',
      resubmit: ['resubmission_requested'],
      token: 'Only the hosted-flow link: it opens this session at Veriff and nothing else.',
      server: [
        ['API key', 'sent as X-AUTH-CLIENT to start each session and read its decision'],
        ['Shared secret', 'signs the calls to Veriff and checks the signature of each webhook'],
      ],
    },
    sumsub: {
      name: 'Sumsub', api: '/sumsub/api', kind: 'sdk', action: 'Verify my identity',
      about: "Sumsub's WebSDK, launched in this page with an access token the server mints. Sumsub signs each webhook; its review decides.",
      resultFrom: 'Review from Sumsub’s signed webhook',
      resultDetail: 'Only Sumsub could sign it; while none comes, the server reads the applicant’s review from Sumsub with a signed request.',
      webhookCheck: 'Its X-Payload-Digest matched the webhook secret, so the server recorded it.',
      secretOption: 'webhook_secret',
      resubmit: ['RETRY'],
      handoff: ['Handed off to Sumsub’s WebSDK', 'This page launched the verification screen with the access token.'],
      token: 'A WebSDK access token for this applicant only, valid 10 minutes; when it expires the SDK asks this site for a fresh one (/token).',
      statuses: {
        GREEN: 'Approved (GREEN)', RED: 'Rejected (RED)', RETRY: 'Resubmission requested (RETRY)',
        init: 'Started', pending: 'Pending review', queued: 'Queued for review', onHold: 'On hold',
      },
      server: [
        ['App token and secret key', 'sign every call to Sumsub (X-App-Access-Sig)'],
        ['Webhook secret', 'checks the X-Payload-Digest of each webhook from Sumsub'],
      ],
    },
    onfido: {
      name: 'Onfido', api: '/onfido/api', kind: 'hosted', action: 'Verify my identity',
      about: "An Onfido Studio workflow run and its hosted link, which returns here. Onfido signs its webhook; the run's outcome decides.",
      resultFrom: 'Outcome from Onfido’s signed webhook',
      resultDetail: 'Only Onfido could sign it; while none comes, the server reads the workflow run from Onfido with the API token.',
      webhookCheck: 'Its X-SHA2-Signature matched the webhook token, so the server recorded it.',
      secretOption: 'webhook_token',
      token: 'An SDK token for this applicant only (90 minutes), in the start answer; this page opens the hosted link instead and does not keep it.',
      server: [
        ['API token', 'sent as Authorization: Token to create the applicant and the workflow run, and to read its outcome'],
        ['Webhook token', 'checks the X-SHA2-Signature of each webhook from Onfido'],
      ],
    },
    focalx: {
      name: 'Focalx', api: '/focalx/api', kind: 'token', action: 'Get an inspection token',
      about: 'Focalx issues a short-lived token per user for its SDK. The server seals the request with the encryption key; the page gets only the token.',
      server: [
        ['Client key and client secret', 'identify this site to Focalx'],
        ['Encryption key', 'seals the auth header (the user hash and the secrets)'],
        ['Public key', 'sent as the pubKey header'],
      ],
    },
  };

  const RESULT_TEXT = {
    verified: 'verified', failed: 'not verified', pending: 'pending', review: 'manual review',
  };
  const SCORE_TEXT = {
    OK: 'OK', FAIL: 'Fail', WARN: 'Warning: manual review', MANUAL_OK: 'OK (manual review)',
    MANUAL_FAIL: 'Fail (manual review)', UNKNOWN: 'Not scored yet',
  };

  const params = new URLSearchParams(location.search);
  // Back from the provider's hosted flow (the redirect below)? The person
  // has finished there, so the session only waits for its result now (the
  // address keeps ?returned=1, so a reload still knows).
  const returned = params.get('returned') === '1';
  const hintAfter = (() => {
    const n = Number(params.get('hintAfter') ?? document.body.dataset.hintAfter ?? 20);
    return Number.isFinite(n) && n >= 0 ? n : 20;
  })();
  els.docs.href = (document.body.dataset.docs || 'docs/operations.md') + '#webhooks';

  let provider = pickInitialProvider();
  let stream = null;
  let hintTimer = null;
  let current = null; // the last view shown, for the hint timer
  let providerAPI = null; // where the site says the provider's API is (Sumsub)

  function pickInitialProvider() {
    const p = params.get('provider') || safeGet(localStorage, 'idv-demo:provider');
    return PROVIDERS[p] ? p : 'incode';
  }

  // Storage may be unavailable (private modes, blocked cookies).
  function safeGet(store, k) { try { return store.getItem(k); } catch (_) { return null; } }
  function safeSet(store, k, v) { try { store.setItem(k, v); } catch (_) { /* not kept */ } }

  // ---- readable text --------------------------------------------------

  // human turns a provider's status code into words:
  // ONBOARDING_FINISHED → "Onboarding finished", ID_VALIDATION_FINISHED →
  // "ID validation finished", STATUS_7 → "Status 7".
  // Veriff's lower-case statuses read the same way: resubmission_requested
  // → "Resubmission requested".
  function human(code) {
    if (!code) return '–';
    if (/^[a-z0-9_]+$/.test(code)) code = code.toUpperCase();
    if (!/^[A-Z0-9_]+$/.test(code)) return code;
    const words = code.split('_').filter(Boolean).map((w, i) => {
      if (['ID', 'OK', 'API', 'URL', 'OTP', 'NFC'].includes(w)) return w;
      const l = w.toLowerCase();
      return i === 0 ? l[0].toUpperCase() + l.slice(1) : l;
    });
    return words.join(' ');
  }

  // statusText: the current provider's own words for a status, else human().
  function statusText(code) {
    const own = PROVIDERS[provider].statuses;
    return (own && own[code]) || human(code);
  }

  function plural(n, unit) { return `${n} ${unit}${n === 1 ? '' : 's'}`; }

  // humanSeconds: 600 → "10 minutes", 5400 → "1 hour 30 minutes".
  function humanSeconds(total) {
    total = Math.max(0, Math.round(total));
    if (total < 60) return plural(total, 'second');
    const parts = [];
    const d = Math.floor(total / 86400), h = Math.floor(total % 86400 / 3600), m = Math.floor(total % 3600 / 60);
    if (d) parts.push(plural(d, 'day'));
    if (h) parts.push(plural(h, 'hour'));
    if (m && !d) parts.push(plural(m, 'minute'));
    return parts.slice(0, 2).join(' ');
  }

  // parseDuration reads Go's durations ("10m0s", "24h0m0s", "90s") and
  // Python timedeltas ("2:00:00", "5 days, 0:00:00") into seconds, or null.
  function parseDuration(s) {
    s = String(s).trim();
    let m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$/.exec(s);
    if (m && s !== '') return (+m[1] || 0) * 3600 + (+m[2] || 0) * 60 + (+m[3] || 0);
    m = /^(?:(-?\d+) days?, )?(\d+):(\d\d):(\d\d(?:\.\d+)?)$/.exec(s);
    if (m) return (+m[1] || 0) * 86400 + (+m[2]) * 3600 + (+m[3]) * 60 + (+m[4]);
    return null;
  }

  function humanDuration(s) {
    const secs = parseDuration(s);
    return secs === null ? s : humanSeconds(secs);
  }

  // humanText rewrites the Go durations inside a server message:
  // "at most 10 per 10m0s" → "at most 10 per 10 minutes".
  function humanText(msg) {
    return String(msg).replace(/\b(?:\d+h)?(?:\d+m)?\d+(?:\.\d+)?s\b/g, (d) => humanDuration(d));
  }

  function clock(date) { return date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' }); }

  function timeEl(iso) {
    const t = document.createElement('time');
    const d = new Date(iso);
    t.dateTime = isNaN(d) ? iso : d.toISOString();
    t.textContent = isNaN(d) ? iso : clock(d);
    t.title = isNaN(d) ? iso : d.toLocaleString();
    return t;
  }

  // ---- the API -------------------------------------------------------

  // call GETs an idv route of the current provider and returns its JSON.
  // It throws an Error carrying the API's own message, the HTTP status and,
  // for a 429, when to retry. Every call carries X-IDV: 1, which the
  // cookie-bound routes require of a page (another site cannot send it
  // without a CORS preflight).
  async function call(path, extraHeaders) {
    const base = PROVIDERS[provider].api;
    const res = await fetch(base + path, {
      credentials: 'same-origin', cache: 'no-store',
      headers: { Accept: 'application/json', 'X-IDV': '1', ...extraHeaders },
    });
    noteSandbox(res.headers.get('X-IDV-Sandbox'));
    providerAPI = res.headers.get('X-IDV-Provider-API');
    let body = null;
    try { body = await res.json(); } catch (_) { /* not JSON */ }
    if (!res.ok || !body || body.success === false) {
      const err = new Error(humanText((body && body.error) || `${base}${path} answered HTTP ${res.status}`));
      err.status = res.status;
      if (res.status === 429 || res.status === 503) err.retryAfter = retryAfter(res.headers.get('Retry-After'));
      throw err;
    }
    return body;
  }

  // retryAfter reads a Retry-After header (seconds or an HTTP date) into
  // seconds from now, or null.
  function retryAfter(h) {
    if (!h) return null;
    if (/^\d+$/.test(h.trim())) return +h;
    const t = Date.parse(h);
    return isNaN(t) ? null : Math.max(0, (t - Date.now()) / 1000);
  }

  // currentSession returns the cookie's session, or null when there is none.
  async function currentSession() {
    if (PROVIDERS[provider].kind === 'token') return null;
    try {
      return await call('/session');
    } catch (err) {
      if (err.status === 401) return null;
      throw err;
    }
  }

  // ---- sandbox badge -------------------------------------------------

  // A provider is on the sandbox when its hosted flow is on this machine's
  // loopback (the sandbox's address; a real provider never is), or when the
  // site says so with an X-IDV-Sandbox response header (1 or 0). The answer
  // is remembered per provider, and corrected at each start.
  function noteSandbox(v) {
    if (v === null) return;
    const on = /^(1|true|yes|on)$/i.test(v.trim());
    safeSet(localStorage, `idv-demo:sandbox:${provider}`, on ? '1' : '0');
    els.badge.hidden = !on;
  }
  function showBadge() { els.badge.hidden = safeGet(localStorage, `idv-demo:sandbox:${provider}`) !== '1'; }
  function loopback(url) {
    try { return ['127.0.0.1', 'localhost', '[::1]'].includes(new URL(url).hostname); } catch (_) { return false; }
  }

  // ---- what happened, remembered by this browser -----------------------

  // The server records what it did; this browser records when it handed the
  // person off and when they came back (the server cannot know).
  function mark(id, what, when) {
    const k = `idv-demo:${id}:${what}`;
    if (!safeGet(localStorage, k)) safeSet(localStorage, k, when || new Date().toISOString());
  }
  function marked(id, what) { return safeGet(localStorage, `idv-demo:${id}:${what}`); }

  // ---- rendering -----------------------------------------------------

  function showError(msg) {
    els.error.textContent = msg ? `Error: ${msg}` : '';
    els.error.hidden = !msg;
  }

  function errorText(err) {
    let msg = err.message;
    if (err.status === 429 || err.status === 503) {
      if (!/[.!?]$/.test(msg)) msg += '.';
      msg += err.retryAfter != null
        ? ` Try again in ${humanSeconds(err.retryAfter)} (at ${clock(new Date(Date.now() + err.retryAfter * 1000))}).`
        : ' Try again later.';
    }
    return msg;
  }

  function item(list, label, detail) {
    const li = document.createElement('li');
    const b = document.createElement('b');
    b.textContent = label;
    li.append(b);
    if (detail) li.append(document.createElement('br'), Object.assign(document.createElement('span'), { className: 'detail', textContent: detail }));
    list.push(li);
    return li;
  }

  function step(list, kind, iso, label, detail) {
    const li = item([], label, detail);
    li.dataset.step = kind;
    if (iso) li.prepend(timeEl(iso));
    list.push({ li, t: iso ? Date.parse(iso) : Infinity, n: list.length });
  }

  function renderTimeline(steps) {
    const items = steps.sort((a, b) => (a.t - b.t) || (a.n - b.n)).map((s) => s.li);
    if (items.length === 0) {
      const li = document.createElement('li');
      li.className = 'empty';
      li.textContent = 'Nothing yet.';
      items.push(li);
    }
    els.timeline.replaceChildren(...items);
  }

  function renderHolds(holds) {
    const P = PROVIDERS[provider];
    const h = [];
    for (const [label, detail] of holds) item(h, label, detail);
    if (h.length === 0) item(h, 'Nothing yet', 'Start to see what this page is given.');
    els.holds.replaceChildren(...h);
    const k = [];
    for (const [label, detail] of P.server) item(k, label, detail);
    els.keeps.replaceChildren(...k);
  }

  function renderSummary(result, text, status, score, createdIso, expiresIso) {
    els.result.textContent = text;
    els.result.className = `result result-${result}`;
    els.status.textContent = status;
    els.score.textContent = score;
    els.created.replaceChildren(createdIso ? timeEl(createdIso) : '–');
    if (expiresIso) {
      const left = (Date.parse(expiresIso) - Date.now()) / 1000;
      els.expires.textContent = left > 0 ? `${humanSeconds(left)} more (until ${new Date(expiresIso).toLocaleString()})` : 'expired';
    } else {
      els.expires.textContent = '–';
    }
  }

  // render shows a hosted-flow session's view (null: none).
  function render(v) {
    current = v;
    const P = PROVIDERS[provider];
    const result = v ? (v.result || 'pending') : 'none';
    renderSummary(result, v ? (RESULT_TEXT[result] || result) : 'not started',
      v ? statusText(v.status) : '–', v && v.score ? (SCORE_TEXT[v.score] || human(v.score)) : '–',
      v && v.createdAt, v && v.expiresAt);

    const steps = [];
    if (v) {
      step(steps, 'created', v.createdAt, 'Session created',
        `The server started a session at ${P.name} with its API key and gave this page a uniqueId.`);
      const handoff = marked(v.uniqueId, 'handoff');
      const [hLabel, hDetail] = P.handoff || [`Handed off to ${P.name}’s hosted flow`, 'This page sent you to the provider’s pages.'];
      if (handoff) step(steps, 'handoff', handoff, hLabel, hDetail);
      const back = marked(v.uniqueId, 'returned');
      if (back) step(steps, 'returned', back, 'Back from the hosted flow', `${P.name} sent you back to this page.`);
      const events = v.events || [];
      events.forEach((e, i) => {
        step(steps, 'webhook', e.receivedAt, `Webhook received and verified: ${statusText(e.status)}`,
          P.webhookCheck || 'Its secret matched webhook_auth, so the server recorded it.');
        // The event that brought the result: the result was read from the
        // provider then, and the decision followed.
        if (i === events.length - 1 && v.result && v.result !== 'pending') {
          step(steps, 'result', e.receivedAt, `${P.resultFrom}: ${v.score ? (SCORE_TEXT[v.score] || v.score) : statusText(v.status)}`,
            P.resultDetail || 'The result comes from the provider, never from the webhook’s payload.');
          const decision = {
            verified: ['Approved', 'The identity is verified.'],
            failed: ['Not approved', 'The verification failed.'],
            review: ['Sent to manual review', 'A person at the provider decides; the page updates when they do.'],
          }[v.result];
          if (decision) step(steps, 'decision', e.receivedAt, decision[0], decision[1]);
        }
      });
    }
    renderTimeline(steps);

    const holds = [];
    if (v) {
      holds.push([`uniqueId ${v.uniqueId}`, 'Names the session; it is no credential by itself.']);
      const readable = document.cookie.split(';').some((c) => c.trim().startsWith('idv_session='));
      holds.push(['A session cookie it cannot read',
        `idv_session, HttpOnly: the browser sends it to ${P.api} only${readable ? '' : ', and this page’s script does not see it (document.cookie)'}.`]);
      holds.push(['A short-lived token',
        `${P.token}${v.expiresAt ? ` The session ends ${new Date(v.expiresAt).toLocaleString()}.` : ''}`]);
    }
    renderHolds(holds);

    const pending = !!v && result === 'pending';
    els.waiting.hidden = !(returned && pending && !resubmit(v));
    scheduleHint();
    els.hint.textContent = !v ? '' : resumable(v) ? 'Continues your verification in progress.' : 'Starts a new verification.';
  }

  // A session is resumed while the person has not finished it; a finished
  // one (or none) means a new verification. Finished means: a result, the
  // provider's ONBOARDING_FINISHED, or back here from the hosted flow (the
  // result may still be on its way, and the provider would only say
  // "already finished"). A provider that asks for a resubmission (Veriff's
  // resubmission_requested, Sumsub's RETRY) keeps the session open: the
  // person goes back to the same verification.
  function resumable(v) {
    if (!v || v.result !== 'pending') return false;
    if (resubmit(v)) return true;
    return v.status !== 'ONBOARDING_FINISHED' && !returned;
  }

  function resubmit(v) { return (PROVIDERS[provider].resubmit || []).includes(v.status); }

  // scheduleHint shows, hintAfter seconds after the person came back
  // without any webhook, what to check.
  function scheduleHint() {
    clearTimeout(hintTimer);
    const v = current;
    const waiting = returned && v && v.result === 'pending' && (v.events || []).length === 0;
    if (!waiting) {
      els.noWebhook.hidden = true;
      return;
    }
    const since = Date.parse(marked(v.uniqueId, 'returned') || new Date().toISOString());
    const left = since + hintAfter * 1000 - Date.now();
    const show = () => {
      const P = PROVIDERS[provider];
      els.noWebhookAfter.textContent = `Nothing has arrived in ${humanSeconds(hintAfter)}.`;
      els.webhookURL.textContent = `${location.origin}${P.api}/webhook`;
      $('webhook-secret-option').textContent = P.secretOption || 'webhook_auth';
      for (const n of els.noWebhook.querySelectorAll('.provider-name')) n.textContent = P.name;
      els.noWebhook.hidden = false;
    };
    if (left <= 0) show();
    else hintTimer = setTimeout(show, left);
  }

  // ---- Focalx: a token, no session -------------------------------------

  function renderToken(t) {
    const P = PROVIDERS.focalx;
    current = null;
    scheduleHint();
    els.waiting.hidden = true;
    if (!t) {
      renderSummary('none', 'not started', '–', '–', null, null);
      renderTimeline([]);
      renderHolds([]);
      els.hint.textContent = '';
      return;
    }
    const ok = !t.error;
    renderSummary(ok ? 'verified' : 'failed', ok ? 'token issued' : 'refused',
      ok ? 'Token issued' : 'Refused', '–', t.requestedAt, ok ? t.expiresAt : null);
    const steps = [];
    step(steps, 'created', t.requestedAt, 'Token requested',
      'The server hashed your e-mail, sealed it with the client secret under the encryption key, and called Focalx.');
    if (ok) {
      step(steps, 'result', t.issuedAt, `Token issued by ${P.name}, valid ${humanDuration(t.expiry)}`,
        `Focalx said expiry_time ${t.expiry}.`);
    } else {
      step(steps, 'decision', t.issuedAt, t.status === 429 ? 'Rate limited' : `${P.name} refused`, t.error);
    }
    renderTimeline(steps);
    renderHolds(ok ? [['A short-lived token', `Valid ${humanDuration(t.expiry)}, for the Focalx SDK. Kept in this page’s memory only, not shown.`]] : []);
    els.hint.textContent = 'Asks for a token again (the server reuses a live one).';
  }

  let focalxToken = null; // the token itself: memory only, for the SDK

  async function getToken() {
    const requestedAt = new Date().toISOString();
    try {
      // The root Caddyfile reads the user from X-User-Email. Only a demo
      // lets the browser say who it is: in production the site's own
      // authentication sets that header (forward_auth, copy_headers).
      const r = await call('/token', { 'X-User-Email': els.email.value.trim() });
      focalxToken = r.token; // what an SDK would be given
      const t = { requestedAt, issuedAt: new Date().toISOString(), expiry: r.expiry_time, expiresAt: r.expiresAt };
      safeSet(sessionStorage, 'idv-demo:focalx', JSON.stringify(t));
      renderToken(t);
    } catch (err) {
      renderToken({ requestedAt, issuedAt: new Date().toISOString(), error: errorText(err), status: err.status });
      showError(errorText(err));
    }
  }

  // ---- hosted flows ----------------------------------------------------

  // openStream follows the session: the server sends its state at once and
  // again on every change. The browser reconnects by itself after a network
  // error; a refused stream (no live session) is closed and explained.
  function openStream() {
    if (stream) return;
    const mine = provider;
    const s = new EventSource(PROVIDERS[provider].api + '/session/events');
    stream = s;
    s.addEventListener('status', (e) => {
      if (stream !== s || provider !== mine) return;
      try {
        render(JSON.parse(e.data));
        showError('');
      } catch (_) { /* ignore a malformed event */ }
    });
    s.addEventListener('error', async () => {
      if (stream !== s || s.readyState !== EventSource.CLOSED) return;
      stream = null;
      try {
        const v = await currentSession();
        if (provider !== mine) return;
        render(v);
        if (v) setTimeout(openStream, 5000);
        else if (returned) showError('your verification session was not found (cookies blocked or expired?)');
      } catch (err) {
        showError(errorText(err));
      }
    });
  }

  function closeStream() {
    if (stream) stream.close();
    stream = null;
  }

  function returnURL() {
    const u = new URL(location.pathname, location.origin);
    u.searchParams.set('provider', provider);
    u.searchParams.set('returned', '1');
    return u.toString();
  }

  async function startHosted() {
    const v = await currentSession();
    const q = new URLSearchParams();
    if (!resumable(v)) q.set('new', '1');
    let r;
    if (provider === 'incode') {
      q.set('redirectionUrl', returnURL());
      r = await call('/onboarding-url?' + q);
    } else {
      if (provider === 'onfido') q.set('redirectionUrl', returnURL());
      r = await call('/start?' + q);
    }
    if (PROVIDERS[provider].kind === 'sdk') return launchSDK(r);
    if (!r.url) throw new Error('the answer has no url');
    let url = r.url;
    noteSandbox(loopback(url) ? '1' : '0');
    // Regula's hosted capture has no redirect of its own, and Veriff's
    // callback must be https: on the sandbox, the stand-in takes ?redirect=
    // to send the person back. (With a real Veriff account, set
    // callback_url to this page's https address.)
    if ((provider === 'regula' || provider === 'veriff') && !els.badge.hidden) {
      const u = new URL(url);
      u.searchParams.set('redirect', returnURL());
      url = u.toString();
    }
    mark(r.uniqueId, 'handoff');
    location.assign(url);
  }

  // launchSDK hands the person to Sumsub's WebSDK with the session's token
  // (a fresh one when it has expired). On the sandbox (the site says its
  // API is on this machine's loopback) the sandbox's stand-in for the SDK
  // screen opens instead, and sends the person back here.
  async function launchSDK(r) {
    let token = r.token;
    if (!token || (r.expiresAt && Date.parse(r.expiresAt) - Date.now() < 30000)) token = (await call('/token')).token;
    const api = providerAPI;
    const onSandbox = !!api && loopback(api);
    noteSandbox(onSandbox ? '1' : '0');
    mark(r.uniqueId, 'handoff');
    if (onSandbox) {
      const u = new URL(`${api.replace(/\/+$/, '')}/websdk/${encodeURIComponent(token)}`);
      u.searchParams.set('redirect', returnURL());
      location.assign(u.toString());
      return;
    }
    await loadScript('https://static.sumsub.com/idensic/static/sns-websdk-builder.js');
    /* global snsWebSdk */
    const sdk = snsWebSdk.init(token, () => call('/token').then((j) => j.token))
      .withConf({ lang: document.documentElement.lang || 'en' })
      .build();
    els.sdk.hidden = false;
    sdk.launch('#sdk');
    els.verify.disabled = false;
    openStream();
  }

  function loadScript(src) {
    return new Promise((resolve, reject) => {
      if (document.querySelector(`script[src="${src}"]`)) return resolve();
      const s = document.createElement('script');
      s.src = src;
      s.onload = resolve;
      s.onerror = () => reject(new Error(`could not load ${src}`));
      document.head.append(s);
    });
  }

  async function verify() {
    els.verify.disabled = true;
    showError('');
    try {
      if (PROVIDERS[provider].kind === 'token') {
        await getToken();
        els.verify.disabled = false;
      } else {
        await startHosted();
      }
    } catch (err) {
      showError(errorText(err));
      els.verify.disabled = false;
    }
  }

  // ---- picking a provider ----------------------------------------------

  async function select(p, first) {
    provider = p;
    safeSet(localStorage, 'idv-demo:provider', p);
    const P = PROVIDERS[p];
    $(`provider-${p}`).checked = true;
    els.about.textContent = P.about;
    els.verify.textContent = P.action;
    els.emailRow.hidden = P.kind !== 'token';
    els.sdk.hidden = true;
    showBadge();
    closeStream();
    if (!first) {
      showError('');
      const u = new URL(location.href);
      u.searchParams.set('provider', p);
      u.searchParams.delete('returned');
      history.replaceState(null, '', u);
    }
    if (P.kind === 'token') {
      let t = null;
      try { t = JSON.parse(safeGet(sessionStorage, 'idv-demo:focalx')); } catch (_) { /* none */ }
      renderToken(t);
      // Only to learn whether the sandbox is in use: a session route that
      // answers without creating anything.
      fetch(P.api + '/session', { headers: { 'X-IDV': '1' }, cache: 'no-store' })
        .then((res) => noteSandbox(res.headers.get('X-IDV-Sandbox'))).catch(() => {});
      return;
    }
    try {
      const v = await currentSession();
      if (provider !== p) return;
      if (v && returned && first) mark(v.uniqueId, 'returned');
      render(v);
      if (v) openStream();
      else if (returned && first) showError('no verification session was found (cookies blocked or expired?)');
    } catch (err) {
      render(null);
      showError(errorText(err));
    }
  }

  // The wording helpers, for the browser test and the curious.
  window.idvDemo = Object.freeze({ human, humanDuration, humanText, humanSeconds });

  for (const input of document.querySelectorAll('input[name="provider"]')) {
    input.addEventListener('change', () => { if (input.checked) select(input.value, false); });
  }
  els.verify.addEventListener('click', verify);
  // Coming back with the Back button restores this page from the cache with
  // the button still disabled.
  window.addEventListener('pageshow', (e) => { if (e.persisted) els.verify.disabled = false; });
  // Expiry texts ("23 hours more") age: refresh them now and then.
  setInterval(() => { if (current) render(current); }, 60000);
  select(provider, true);
})();
