// The posthog_flow.py session through the real, unmodified posthog-node (gzip /batch/).
// Usage: node posthog_node_flow.cjs HOST API_KEY   (asserted by posthog_clients.rs)
const { PostHog } = require('posthog-node');

const [host, apiKey] = process.argv.slice(2);

async function main() {
  const errors = [];
  const ph = new PostHog(apiKey, { host, flushAt: 100, flushInterval: 0 });
  ph.on('error', (e) => errors.push(e));
  ph.capture({ distinctId: 'anon-9c1d', event: 'Landing Page Viewed', properties: { utm_source: 'ads' } });
  ph.alias({ distinctId: 'grace@globex.io', alias: 'anon-9c1d' });
  ph.identify({ distinctId: 'grace@globex.io', properties: { name: 'Grace Hopper', plan: 'pro' } });
  ph.identify({ distinctId: 'grace@globex.io', properties: { $set_once: { signup: '2026-11-01' } } });
  ph.identify({ distinctId: 'grace@globex.io', properties: { $set_once: { signup: '1999-01-01' } } });
  ph.groupIdentify({ groupType: 'company', groupKey: 'globex', properties: { name: 'Globex', plan: 'enterprise', employees: 120 } });
  ph.capture({ distinctId: 'grace@globex.io', event: 'Signed In', properties: { method: 'sso' }, groups: { company: 'globex' } });
  ph.capture({ distinctId: 'grace@globex.io', event: 'Chart Created', groups: { company: 'globex', team: 'globex-data' } });
  ph.groupIdentify({ groupType: 'company', groupKey: 'globex', properties: { employees: 130, industry: 'energy' } });
  ph.capture({ distinctId: 'grace@globex.io', event: 'Report Exported', properties: { format: 'csv' } });
  await ph.shutdown();
  if (errors.length) throw new Error(`posthog-node reported: ${errors.join('; ')}`);
  console.log('DONE');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
