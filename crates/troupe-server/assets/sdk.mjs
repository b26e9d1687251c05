// troupe's browser SDK. troupe serves it as a classic script at /sdk.js (which defines
// `window.troupe`) and as this ES module at /sdk.mjs; no build step either way.
//
//   <script src="https://analytics.example.com/sdk.js"></script>
//   <script>
//     troupe.init('tri_…', { host: 'https://analytics.example.com' });
//     troupe.identify('ada@acme.io');            // merges the anonymous visitor into Ada
//     troupe.set_group('company', 'acme');       // this browser (and troupe) remember it
//     troupe.track('Report Exported', { format: 'pdf' });
//   </script>
//
// Events and operations are queued (kept in localStorage until troupe took them), sent in
// batches, retried with their ids (so a retry never counts twice), and sent with sendBeacon when
// the page is hidden or closed. No third-party requests: everything goes to `host`.

const troupe = (() => {
  const KEYS = { anon: 'troupe.anon_id', user: 'troupe.user_id', groups: 'troupe.groups', queue: 'troupe.queue' };
  const MAX_QUEUE = 1000;
  let config = null;
  let timer = null;
  let sending = false;
  let failures = 0;

  const store = {
    get(key, fallback) {
      try { const v = localStorage.getItem(key); return v === null ? fallback : JSON.parse(v); } catch { return fallback; }
    },
    set(key, value) {
      try { localStorage.setItem(key, JSON.stringify(value)); } catch { /* private mode: memory only */ }
    },
    remove(key) {
      try { localStorage.removeItem(key); } catch { /* nothing kept */ }
    },
  };

  const uuid = () => (crypto.randomUUID ? crypto.randomUUID() : `${Date.now().toString(16)}-${Math.random().toString(16).slice(2)}`);

  function anonId() {
    let id = store.get(KEYS.anon, null);
    if (!id) { id = `anon-${uuid()}`; store.set(KEYS.anon, id); }
    return id;
  }

  /** Who this browser's events are from: the identified user, else the anonymous id. */
  function distinctId() {
    return store.get(KEYS.user, null) || anonId();
  }

  /** The persistent memberships: {type: [ids]}. */
  function groups() {
    return store.get(KEYS.groups, {});
  }

  function queue() {
    return store.get(KEYS.queue, []);
  }

  function enqueue(type, body) {
    if (!config) throw new Error('troupe: call troupe.init(key, {host}) first');
    const items = queue();
    items.push({ type, ...body });
    // Bounded: the oldest writes go first when a browser stays offline for long.
    store.set(KEYS.queue, items.slice(-MAX_QUEUE));
    if (items.length >= config.batchSize) send();
    else schedule(config.flushInterval);
  }

  function schedule(ms) {
    if (!timer) timer = setTimeout(() => { timer = null; send(); }, ms);
  }

  /** Sends the queue in batches; a failed batch stays queued and is retried with backoff. */
  async function send() {
    if (sending || !config) return;
    sending = true;
    try {
      for (;;) {
        const batch = queue().slice(0, config.batchSize);
        if (!batch.length) break;
        const ok = await post('/api/sdk/batch', { siteId: config.key, items: batch });
        if (!ok) {
          failures += 1;
          schedule(Math.min(30000, 500 * 2 ** Math.min(failures, 6)) * (0.5 + Math.random() / 2));
          break;
        }
        failures = 0;
        const sent = new Set(batch.map((i) => i.event_id || i.request_id));
        store.set(KEYS.queue, queue().filter((i) => !sent.has(i.event_id || i.request_id)));
      }
    } finally {
      sending = false;
    }
  }

  /** true when troupe took it (or refused it for good: a 4xx would be refused again). */
  async function post(path, body) {
    try {
      const res = await fetch(`${config.host}${path}`, {
        method: 'POST', keepalive: true, headers: { 'Content-Type': 'application/json', 'X-Trodo-Site-Id': config.key }, body: JSON.stringify(body),
      });
      return res.ok || (res.status >= 400 && res.status < 500 && res.status !== 429);
    } catch {
      return false;
    }
  }

  /** On page hide: whatever is queued goes out with sendBeacon (kept queued until acknowledged
   *  by a later fetch is not possible, so ids make the next page's resend harmless). */
  function beacon() {
    if (!config || !navigator.sendBeacon) return;
    const items = queue();
    if (!items.length) return;
    const body = new Blob([JSON.stringify({ siteId: config.key, items: items.slice(0, config.batchSize * 5) })], { type: 'text/plain' });
    navigator.sendBeacon(`${config.host}/api/sdk/batch`, body);
  }

  function pageContext() {
    return { $current_url: location.href, $pathname: location.pathname, $referrer: document.referrer || undefined, $title: document.title || undefined, $lib: 'troupe-web' };
  }

  /** Persistent memberships merged with an event's own (`{type: id | [ids]}`). */
  function mergedGroups(own) {
    const out = {};
    for (const [t, ids] of Object.entries(groups())) out[t] = [...ids];
    for (const [t, ids] of Object.entries(own || {})) out[t] = [...new Set([...(out[t] || []), ...[].concat(ids).map(String)])];
    return out;
  }

  function operation(type, body) {
    enqueue(type, { ...body, request_id: uuid() });
  }

  function profile(prefix, ids) {
    const op = (name, fields) => operation(`${prefix}/${name}`, { ...ids, ...fields });
    return op;
  }

  const api = {
    /** Start: `key` is the project's ingestion key; `host` where troupe runs (default: this page's origin). */
    init(key, options = {}) {
      config = {
        key,
        host: (options.host || location.origin).replace(/\/$/, ''),
        batchSize: options.batchSize || 20,
        flushInterval: options.flushInterval ?? 1000,
      };
      anonId();
      addEventListener('visibilitychange', () => { if (document.visibilityState === 'hidden') beacon(); });
      addEventListener('pagehide', beacon);
      if (queue().length) schedule(0);
      return api;
    },

    track(event, properties = {}, options = {}) {
      enqueue('events', {
        event_name: event, user_id: distinctId(), event_id: uuid(), timestamp: new Date().toISOString(),
        custom_properties: { ...pageContext(), ...properties }, groups: mergedGroups(options.groups),
      });
    },

    page(properties = {}) {
      api.track('$pageview', properties);
    },

    /** The visitor is `userId` from now on: troupe merges the anonymous id into it and answers
     *  with the user's memberships, which this browser adopts (a second device sees the same groups). */
    async identify(userId) {
      if (!config) throw new Error('troupe: call troupe.init(key, {host}) first');
      const previous = distinctId();
      store.set(KEYS.user, String(userId));
      if (previous === String(userId)) return groups();
      await send();
      try {
        const res = await fetch(`${config.host}/api/sdk/identify`, {
          method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Trodo-Site-Id': config.key },
          body: JSON.stringify({ userId: previous, identifyId: String(userId), request_id: uuid() }),
        });
        const answer = await res.json();
        if (res.ok && answer.group_memberships) store.set(KEYS.groups, answer.group_memberships);
      } catch {
        operation('identify', { userId: previous, identifyId: String(userId) });
      }
      return groups();
    },

    /** Forget the user and its groups on this browser (logout): a new anonymous visitor. */
    reset() {
      store.remove(KEYS.user);
      store.remove(KEYS.groups);
      store.set(KEYS.anon, `anon-${uuid()}`);
    },

    set_group(type, ids) {
      const list = [].concat(ids).map(String);
      store.set(KEYS.groups, { ...groups(), [type]: list });
      operation('groups/set_group', { userId: distinctId(), groupKey: type, groupId: list });
    },

    add_group(type, id) {
      const all = groups();
      all[type] = [...new Set([...(all[type] || []), String(id)])];
      store.set(KEYS.groups, all);
      operation('groups/add_group', { userId: distinctId(), groupKey: type, groupId: String(id) });
    },

    remove_group(type, id) {
      const all = groups();
      all[type] = (all[type] || []).filter((g) => g !== String(id));
      if (!all[type].length) delete all[type];
      store.set(KEYS.groups, all);
      operation('groups/remove_group', { userId: distinctId(), groupKey: type, groupId: String(id) });
    },

    /** Profile operations on a group. */
    get_group(type, id) {
      const op = profile('groups/profile', { groupKey: type, groupId: String(id) });
      return {
        set: (properties) => op('set', { properties }),
        set_once: (properties) => op('set_once', { properties }),
        unset: (property) => op('unset', { property }),
        increment: (property, value = 1) => op('increment', { property, value }),
        append: (property, value) => op('append', { property, value }),
        union: (listName, values) => op('union', { listName, values }),
        remove: (listName, value) => op('remove', { listName, value }),
      };
    },

    /** The user's own profile. */
    people() {
      const op = profile('people', { userId: distinctId() });
      return {
        set: (properties) => op('set', { properties }),
        set_once: (properties) => op('set_once', { properties }),
        unset: (keys) => op('unset', { keys: [].concat(keys) }),
        increment: (key, amount = 1) => op('increment', { key, amount }),
        append: (key, values) => op('append', { key, values: [].concat(values) }),
        union: (key, values) => op('union', { key, values: [].concat(values) }),
      };
    },

    clear() { api.reset(); },
    flush: () => send(),
    groups,
    distinctId,
  };
  return api;
})();

export default troupe;
