// The session of same_session.rs, sent through troupe's browser SDK (/sdk.js) from a page of
// another origin, one browser profile per user.
//
// Usage: node same_session.cjs SITE_URL

const { launch, step } = require('./ui.cjs');

const [site] = process.argv.slice(2);

async function main() {
  const browser = await launch();
  const users = [['ada', 'acme'], ['bob', 'acme'], ['cy', 'globex']];
  const events = [['ada', 'Signed In', { method: 'sso' }], ['ada', 'Report Exported', { format: 'pdf' }], ['ada', 'Report Exported', { format: 'csv' }],
    ['bob', 'Signed In', { method: 'password' }], ['cy', 'Signed In', { method: 'google' }], ['cy', 'Chart Created', { chart_type: 'line' }]];
  const left = [];
  for (const [user, company] of users) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${site}/?flush=50`);
    await page.waitForFunction(() => window.troupe && window.troupe.distinctId());
    left.push(await page.evaluate(async ({ user, company, mine }) => {
      await troupe.identify(user);
      troupe.set_group('company', company);
      troupe.people().set({ role: user === 'ada' ? 'admin' : 'member' });
      if (user === 'ada') {
        troupe.add_group('team', 'acme-eng');
        troupe.get_group('company', 'acme').set({ plan: 'pro' });
      }
      if (user === 'cy') troupe.get_group('company', 'globex').set({ plan: 'free' });
      for (const [, event, props] of mine) troupe.track(event, props);
      await troupe.flush();
      return JSON.parse(localStorage.getItem('troupe.queue') || '[]').length;
    }, { user, company, mine: events.filter(([u]) => u === user) }));
    await context.close();
  }
  step('left_queued', left);
  await browser.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
