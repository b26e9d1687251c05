// A B2B session driven through the real, unmodified @openpanel/sdk (node).
// Usage: node openpanel_flow.cjs API_URL CLIENT_ID   (asserted by the Rust test openpanel_node.rs)
const { OpenPanel } = require('@openpanel/sdk');

const [apiUrl, clientId] = process.argv.slice(2);

async function main() {
  const op = new OpenPanel({ clientId, clientSecret: 'server-side', apiUrl });
  // The SDK resolves to null when it gave up after error replies: make that fail the flow.
  const check = (reply, what) => {
    if (reply === null) throw new Error(`${what}: the SDK gave up after error replies`);
  };
  check(await op.track('Landing Page Viewed', { utm_source: 'podcast' }), 'anonymous track');
  check(await op.identify({ profileId: 'hedy@wonka.io', firstName: 'Hedy', lastName: 'Lamarr', email: 'hedy@wonka.io', properties: { plan: 'pro' } }), 'identify');
  check(await op.upsertGroup({ id: 'wonka', type: 'company', name: 'Wonka', properties: { plan: 'enterprise', employees: 40 } }), 'upsertGroup');
  check(await op.setGroup('wonka'), 'setGroup');
  check(await op.track('Signed In', { method: 'sso' }), 'track');
  check(await op.upsertGroup({ id: 'wonka', type: 'company', name: 'Wonka', properties: { employees: 45 } }), 'upsertGroup again');
  check(await op.increment({ profileId: 'hedy@wonka.io', property: 'logins', value: 3 }), 'increment');
  check(await op.decrement({ profileId: 'hedy@wonka.io', property: 'logins', value: 1 }), 'decrement');
  check(await op.track('Report Exported', { format: 'csv', groups: ['lab-7'] }), 'track with a group');
  // setGroup before the group exists: the OpenPanel document lets it be created later.
  check(await op.setGroup('lab-9'), 'setGroup of a group not created yet');
  check(await op.upsertGroup({ id: 'lab-9', type: 'team', name: 'Lab 9' }), 'upsertGroup creating it');
  console.log('DONE');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
