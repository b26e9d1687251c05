// Running troupe for a team, in headless Chromium: the administrator invites a viewer and a
// member from the settings page, makes a query-scoped secret key (shown once) and rotates the
// ingestion key; each invitee joins through their link in a browser of their own and meets the
// dashboard their role allows — what it offers, and what the API refuses when the page is
// bypassed. The administrator then changes a role and reads the audit log. Prints what it read
// as `RESULT <json>` lines for roles.rs; saves a screenshot of each step.
//
// Usage: node roles.cjs BASE_URL SCREENSHOT_DIR

const { launch, step } = require('./ui.cjs');
const path = require('path');

const [base, shots] = process.argv.slice(2);

/** A request the page itself could make, with the session's CSRF token: its status and error. */
async function apiAs(page, method, url, body) {
  return page.evaluate(async ([m, u, b]) => {
    const s = await (await fetch('/api/session')).json();
    const r = await fetch(u, { method: m, headers: { 'content-type': 'application/json', 'x-csrf-token': s.csrf }, body: b ? JSON.stringify(b) : undefined });
    const j = await r.json().catch(() => ({}));
    return { status: r.status, error: j.error || '' };
  }, [method, url, body]);
}

const visible = async (page, selector) => page.locator(selector).filter({ visible: true }).count();

async function main() {
  const browser = await launch();
  const errors = [];
  const open = async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    const page = await context.newPage();
    page.setDefaultTimeout(15000);
    page.on('pageerror', (e) => errors.push(String(e)));
    return page;
  };
  const admin = await open();
  const shot = (page, name) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });

  await admin.goto(base);
  await admin.getByRole('heading', { name: 'Welcome to troupe' }).waitFor();
  await admin.getByLabel('Email').fill('owner@example.com');
  await admin.getByLabel('Password').fill('correct horse battery');
  await admin.getByRole('button', { name: 'Create account' }).click();
  await admin.getByRole('heading', { name: 'Groups' }).waitFor();

  // Invitations from the settings page.
  await admin.goto(`${base}/#/settings`);
  await admin.locator('#members table').waitFor();
  const links = {};
  for (const [email, role] of [['viewer@example.com', 'viewer'], ['member@example.com', 'member']]) {
    await admin.getByLabel('Email to invite').fill(email);
    await admin.getByLabel('Role to invite with').selectOption(role);
    await admin.getByRole('button', { name: 'Invite' }).click();
    const notice = admin.locator('#invite-link', { hasText: email }).locator('pre');
    await notice.waitFor();
    links[role] = (await notice.innerText()).trim();
  }
  step('invited', await admin.locator('#members tr[data-invite]').allInnerTexts());
  // A secret key, shown once.
  await admin.getByLabel('Key name').fill('metabase');
  await admin.getByLabel('Key scope').selectOption('query');
  await admin.getByLabel('Expires in days').fill('30');
  await admin.getByRole('button', { name: 'Create secret key' }).click();
  await admin.locator('#new-secret pre').waitFor();
  step('secret', (await admin.locator('#new-secret pre').innerText()).trim());
  step('secret_rows', await admin.locator('#keys tr[data-secret-key]').evaluateAll((rows) => rows.map((r) => r.dataset.secretKey)));
  // The ingestion key rotated with a day's overlap.
  await admin.getByLabel('Overlap hours').fill('24');
  await admin.getByRole('button', { name: 'Rotate ingestion key…' }).click();
  await admin.getByRole('button', { name: 'Rotate', exact: true }).click();
  await admin.locator('#keys tr[data-ingestion-key]').nth(1).waitFor();
  step('ingestion_keys', await admin.locator('#keys tr[data-ingestion-key]').evaluateAll((rows) => rows.map((r) => [r.dataset.ingestionKey, r.cells[1].innerText])));
  await shot(admin, '01-admin-settings');

  // The viewer joins in a browser of their own.
  const viewer = await open();
  await viewer.goto(links.viewer);
  await viewer.getByRole('heading', { name: 'Join default' }).waitFor();
  step('viewer_invite_text', await viewer.locator('form.auth p').innerText());
  await shot(viewer, '02-viewer-invite');
  await viewer.getByLabel('Password').fill('viewer password');
  await viewer.getByRole('button', { name: 'Join' }).click();
  await viewer.getByRole('heading', { name: 'Groups' }).waitFor();
  await viewer.locator('table.groups tbody tr').first().waitFor();
  step('viewer_new_group_buttons', await visible(viewer, 'button:has-text("New group")'));
  await viewer.goto(`${base}/#/insights?q=${encodeURIComponent(JSON.stringify({ kind: 'trends', series: [{ event: 'Signed In' }], date_range: { from: '-30d' }, interval: 'day' }))}`);
  await viewer.locator('.result svg, .result table').first().waitFor();
  step('viewer_save_buttons', await visible(viewer, 'button:has-text("Save")'));
  step('viewer_chart_drawn', await viewer.locator('.result svg').count() > 0);
  await shot(viewer, '03-viewer-insight');
  step('viewer_api_save', await apiAs(viewer, 'POST', '/api/projects/default/insights', { name: 'sneaky', query: { kind: 'trends', series: [{ event: 'Signed In' }] } }));
  step('viewer_api_query', (await apiAs(viewer, 'POST', '/api/projects/default/query', { kind: 'trends', series: [{ event: 'Signed In' }], date_range: { from: '-7d' } })).status);
  await viewer.goto(`${base}/#/settings`);
  await viewer.locator('#sessions table').waitFor();
  step('viewer_settings_sections', await viewer.locator('#app h2').allInnerTexts());
  step('viewer_account', await viewer.locator('#sessions h3').innerText());
  step('viewer_settings_locked', [await viewer.getByLabel('Project time zone').isDisabled(), await viewer.getByLabel('Key of company').isEditable(), await viewer.getByLabel('Privacy policy link').isDisabled()]);
  await shot(viewer, '04-viewer-settings');
  step('viewer_api_keys', await apiAs(viewer, 'GET', '/api/projects/default/keys'));

  // The member joins, and saves an insight from the page.
  const member = await open();
  await member.goto(links.member);
  await member.getByRole('heading', { name: 'Join default' }).waitFor();
  await member.getByLabel('Password').fill('member password');
  await member.getByRole('button', { name: 'Join' }).click();
  await member.getByRole('heading', { name: 'Groups' }).waitFor();
  step('member_new_group_buttons', await visible(member, 'button:has-text("New group")'));
  await member.goto(`${base}/#/insights?q=${encodeURIComponent(JSON.stringify({ kind: 'trends', series: [{ event: 'Signed In' }], date_range: { from: '-30d' }, interval: 'day' }))}`);
  await member.locator('.result svg').first().waitFor();
  await member.getByRole('button', { name: 'Save', exact: true }).click();
  await member.getByRole('dialog').getByRole('textbox').fill('Member sign-ins');
  await member.getByRole('dialog').getByRole('button', { name: 'Save' }).click();
  await member.waitForURL(/#\/insights\/[^?]+/);
  step('member_saved', decodeURIComponent(member.url().split('#/insights/')[1].split('?')[0]));
  step('member_erase_buttons', await (async () => { await member.goto(`${base}/#/persons`); await member.locator('table tbody tr').first().click(); await member.locator('.title-row h1').waitFor(); return visible(member, 'button:has-text("Erase")'); })());
  step('member_api_settings', await apiAs(member, 'PUT', '/api/projects/default/settings/general', { timezone: 'Europe/Paris' }));
  await member.goto(`${base}/#/settings`);
  await member.locator('#sessions table').waitFor();
  step('member_settings_sections', await member.locator('#app h2').allInnerTexts());
  await shot(member, '05-member-settings');

  // The administrator makes the member a viewer; the member's next save is refused.
  await admin.goto(`${base}/#/settings`);
  await admin.reload();
  await admin.locator('#members tr[data-member="member@example.com"]').waitFor();
  await admin.getByLabel('Role of member@example.com').selectOption('viewer');
  await admin.getByText('member@example.com is now viewer.').waitFor();
  step('member_api_save_after', (await apiAs(member, 'POST', '/api/projects/default/insights', { name: 'again', query: { kind: 'trends', series: [{ event: 'Signed In' }] } })).status);
  await admin.reload();
  await admin.locator('#audit table').waitFor();
  step('audit', await admin.locator('#audit tr[data-audit]').evaluateAll((rows) => rows.map((r) => [r.cells[1].innerText, r.cells[2].innerText, r.cells[3].innerText])));
  await shot(admin, '06-admin-audit');

  // The owner signed in on a second browser ends that session from the first.
  const laptop = await open();
  await laptop.goto(base);
  await laptop.getByRole('heading', { name: 'Sign in' }).waitFor();
  await laptop.getByLabel('Email').fill('owner@example.com');
  await laptop.getByLabel('Password').fill('correct horse battery');
  await laptop.getByRole('button', { name: 'Sign in' }).click();
  await laptop.getByRole('heading', { name: 'Groups' }).waitFor();
  await admin.reload();
  await admin.locator('#sessions tr[data-session]').nth(1).waitFor();
  step('sessions_before', await admin.locator('#sessions tr[data-session]').count());
  await admin.locator('#sessions tr[data-session]').filter({ hasNotText: 'this browser' }).getByRole('button', { name: 'Sign out' }).click();
  await admin.waitForFunction(() => document.querySelectorAll('#sessions tr[data-session]').length === 1);
  step('sessions_after', await admin.locator('#sessions tr[data-session]').allInnerTexts());
  await laptop.goto(`${base}/#/persons`);
  await laptop.reload();
  await laptop.getByRole('heading', { name: 'Sign in' }).waitFor();
  step('other_browser_signed_out', true);
  await admin.setViewportSize({ width: 390, height: 844 });
  await admin.reload();
  await admin.locator('#audit table').waitFor();
  await shot(admin, '07-admin-settings-phone');
  step('page_errors', errors);
  await browser.close();
}

main().catch((e) => { console.error(e); process.exit(1); });
