// troupe's browser SDK (/sdk.js) on a customer's site (another origin), in Debian's headless
// Chromium: two browser profiles for one user see the same memberships after identify; events
// after set_group carry the group; logout clears it; a page closed with events still queued
// delivers them (sendBeacon); the site talks to nobody but itself and troupe.
//
// Usage: node sdk_browser.cjs SITE_URL TROUPE_URL SECRET_KEY

const { launch, step } = require('./ui.cjs');

const [site, troupeUrl, secret] = process.argv.slice(2);

async function main() {
  const browser = await launch();
  const hosts = new Set();
  const errors = [];
  const open = async (flush) => {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(15000);
    page.on('request', (r) => hosts.add(new URL(r.url()).origin));
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${site}/?flush=${flush}`);
    await page.waitForFunction(() => window.troupe && window.troupe.distinctId());
    return { context, page };
  };

  // Profile A: an anonymous visit, then Ada signs in and joins her company and team.
  const a = await open(50);
  step('profile_a', await a.page.evaluate(async () => {
    const anon = troupe.distinctId();
    troupe.page({ section: 'pricing' });
    troupe.track('Landing Page Viewed');
    await troupe.identify('ada');
    troupe.set_group('company', 'acme');
    troupe.add_group('team', 'acme-eng');
    troupe.add_group('team', 'acme-ops');
    troupe.remove_group('team', 'acme-ops');
    troupe.track('Report Exported', { format: 'pdf' });
    troupe.get_group('company', 'acme').set({ plan: 'pro' });
    troupe.people().set({ name: 'Ada' });
    troupe.people().increment('exports', 1);
    await troupe.flush();
    return { anon, user: troupe.distinctId(), groups: troupe.groups(), queued: JSON.parse(localStorage.getItem('troupe.queue') || '[]').length };
  }));

  // Profile B: another browser; after identify it knows Ada's groups from troupe's answer.
  const b = await open(50);
  step('profile_b', await b.page.evaluate(async () => {
    const anon = troupe.distinctId();
    const before = troupe.groups();
    const after = await troupe.identify('ada');
    troupe.track('Chart Created', { chart_type: 'line' });
    await troupe.flush();
    return { anon, before, after };
  }));

  // Logout on B: identity and groups are gone; the next event is a new anonymous visitor's.
  step('logout', await b.page.evaluate(async () => {
    troupe.clear();
    troupe.track('Signed Out Page Viewed');
    await troupe.flush();
    return { user: troupe.distinctId(), groups: troupe.groups() };
  }));

  // Profile C: events queued when the page goes away are still delivered.
  const c = await open(600000);
  step('unload', await c.page.evaluate(() => {
    troupe.track('Before Unload', { n: 1 });
    troupe.track('Before Unload', { n: 2 });
    return JSON.parse(localStorage.getItem('troupe.queue') || '[]').length;
  }));
  // Away to a page without the SDK: only sendBeacon can have sent them.
  await c.page.goto('about:blank');
  const count = async () => {
    const res = await fetch(`${troupeUrl}/api/projects/default/events?event=Before%20Unload`, { headers: { authorization: `Bearer ${secret}` } });
    return (await res.json()).results.length;
  };
  let beaconed = 0;
  for (let i = 0; i < 50 && beaconed < 2; i++) {
    await new Promise((r) => setTimeout(r, 100));
    beaconed = await count();
  }
  step('after_beacon', beaconed);
  // Back on the site, this browser's queue still holds them (a beacon is never answered): sent
  // again, stored once.
  await c.page.goto(`${site}/other?flush=50`);
  await c.page.waitForFunction(() => JSON.parse(localStorage.getItem('troupe.queue') || '[]').length === 0);
  step('after_resend', await count());

  step('hosts', [...hosts].sort());
  step('page_errors', errors);
  await browser.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
