// The segment_flow.py session through the real, unmodified @segment/analytics-node.
// Usage: node segment_node_flow.cjs HOST WRITE_KEY   (asserted by segment_clients.rs)
const { Analytics } = require('@segment/analytics-node');

const [host, writeKey] = process.argv.slice(2);

async function main() {
  const errors = [];
  const analytics = new Analytics({ writeKey, host, flushInterval: 50, maxEventsInBatch: 100 });
  analytics.on('error', (e) => errors.push(e));
  const user = 'linus@initech.io';
  analytics.page({ anonymousId: 'anon-5e', name: 'Pricing', properties: { url: '/pricing' } });
  analytics.identify({ userId: user, anonymousId: 'anon-5e', traits: { name: 'Linus', plan: 'team' } });
  analytics.group({ userId: user, groupId: 'initech', traits: { name: 'Initech', plan: 'enterprise', employees: 80 } });
  analytics.track({ userId: user, event: 'Signed In', properties: { method: 'sso' } });
  analytics.track({ userId: user, event: 'Invoice Sent', context: { groupId: 'initrode' } });
  analytics.group({ userId: user, groupId: 'initech', traits: { employees: 95 } });
  analytics.track({ userId: user, event: 'Report Exported', properties: { format: 'pdf' } });
  // A multi-account user switches workspace (the Datafly document's group() on every switch).
  analytics.group({ userId: user, groupId: 'initrode', traits: { name: 'Initrode' } });
  analytics.track({ userId: user, event: 'Workspace Opened' });
  await analytics.closeAndFlush({ timeout: 20000 });
  if (errors.length) throw new Error(`analytics-node reported: ${JSON.stringify(errors)}`);
  console.log('DONE');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
