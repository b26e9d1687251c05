// The dashboard as a new user meets it, in Debian's headless Chromium driven by playwright-core:
// first-run setup, sign out and in, groups, a group created in the UI, a group profile, persons,
// erasing a person, events, a funnel by companies, saved to a dashboard and reopened, settings, and a phone-width
// page. Saves a screenshot of each page and prints what it read as `RESULT <json>` lines for
// the Rust test (dashboard.rs) to compare with the JSON API.
//
// Usage: node dashboard.cjs BASE_URL SCREENSHOT_DIR

const { launch, step, pick, settled } = require('./ui.cjs');
const path = require('path');

const [base, shots] = process.argv.slice(2);

async function main() {
  const browser = await launch();
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  page.setDefaultTimeout(15000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const shot = (name) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });

  // First run: the setup page creates the administrator.
  await page.goto(base);
  await page.getByRole('heading', { name: 'Welcome to troupe' }).waitFor();
  await page.getByLabel('Email').fill('admin@example.com');
  await page.getByLabel('Password').fill('correct horse battery');
  await shot('01-setup');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('heading', { name: 'Groups' }).waitFor();

  // Sign out, then sign in; a wrong password gets a readable error.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await page.getByLabel('Email').fill('admin@example.com');
  await page.getByLabel('Password').fill('wrong password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  step('wrong_password', await page.getByRole('alert').innerText());
  await shot('02-sign-in-error');
  await page.getByLabel('Password').fill('correct horse battery');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Groups' }).waitFor();
  await page.locator('table.groups tbody tr').first().waitFor();

  // Groups: a tab per type, the columns.
  step('tabs', await page.locator('.tabs .tab').allInnerTexts());
  step('columns', await page.locator('table.groups thead th').allTextContents());
  step('first_page_rows', await page.locator('table.groups tbody tr').count());
  step('groups_first_row', await page.locator('table.groups tbody tr').first().locator('td').allInnerTexts());
  await shot('03-groups');
  // A header sorts the list; clicking it again reverses it.
  await page.locator('table.groups thead').getByRole('button', { name: 'Name' }).click();
  await page.waitForURL(/sort=name/);
  const sortedBy = (order) => page.waitForFunction((o) => [...document.querySelectorAll(`th[aria-sort="${o}"]`)].some((th) => th.textContent.startsWith('Name'))
    && document.querySelectorAll('table.groups tbody tr').length > 0, order);
  await sortedBy('ascending');
  const byName = async () => page.locator('table.groups tbody tr td:nth-child(2)').allInnerTexts();
  step('sorted_by_name', await byName());
  await page.locator('table.groups thead').getByRole('button', { name: /Name/ }).click();
  await page.waitForURL(/order=desc/);
  await sortedBy('descending');
  step('sorted_by_name_desc', await byName());

  // Create a group in the UI.
  await page.getByRole('button', { name: 'New group' }).click();
  const dialog = page.locator('dialog.modal');
  await dialog.getByLabel('Key', { exact: true }).fill('e2e-corp');
  await dialog.getByLabel('Name', { exact: true }).fill('E2E Corp');
  await dialog.getByLabel('Property name').first().fill('plan');
  await dialog.getByLabel('Property value').first().fill('pro');
  await shot('04-new-group');
  await dialog.getByRole('button', { name: 'Save' }).click();
  await page.getByRole('heading', { name: /E2E Corp/ }).waitFor();
  step('created', await page.locator('h1').innerText());

  // A demo company's profile: members and events.
  await page.goto(`${base}/#/groups/company?sort=name&order=asc`);
  await page.locator('table.groups tbody tr').first().waitFor();
  const firstKey = await page.locator('table.groups tbody tr').first().locator('td').nth(0).innerText();
  await page.locator('table.groups tbody tr').first().click();
  await page.getByRole('heading', { name: 'Recent events' }).waitFor();
  await page.locator('svg.chart').first().waitFor();
  await page.locator('table.members-table tbody tr').first().waitFor();
  const stat = (name) => page.locator(`[data-stat="${name}"] strong`).innerText();
  step('profile', {
    key: firstKey,
    members: await page.locator('table.members-table tbody tr').count(),
    member_last_seen: await page.locator('table.members-table tbody tr td:nth-child(3)').allInnerTexts(),
    events: await page.locator('table.events tbody tr').count(),
    stats: { events: await stat('events'), active: await stat('active-members'), members: await stat('members') },
    top_events: await page.locator('table.top-events tbody tr').evaluateAll((rows) => rows.map((r) => [r.cells[0].textContent, r.cells[1].textContent])),
    related: await page.locator('.related a.chip').allInnerTexts(),
  });
  await shot('05-group-profile');
  // A team's page links its company.
  const chip = page.locator('.related a.chip').first();
  const teamName = (await chip.innerText()).replace(/^[^:]*: /, '');
  await chip.click();
  await page.waitForFunction((name) => (document.querySelector('h1') || {}).textContent?.startsWith(name) && document.querySelector('.related a.chip'), teamName);
  step('team_page', { url: page.url(), related: await page.locator('.related a.chip').allInnerTexts() });
  await shot('05b-team-profile');

  // Persons and a person profile.
  await page.goto(`${base}/#/persons`);
  await page.locator('table tbody tr').first().waitFor();
  step('persons_columns', await page.locator('table.persons thead th').allInnerTexts());
  step('persons_first_row', await page.locator('table.persons tbody tr').first().locator('td').allInnerTexts());
  await shot('06-persons');
  await page.locator('table tbody tr').first().click();
  await page.getByRole('heading', { name: 'Distinct ids' }).waitFor();
  await shot('07-person');

  // Erase that person: a confirmation first; then the persons list says it is gone.
  const personId = decodeURIComponent(page.url().split('#/person/')[1] || '');
  await page.getByRole('button', { name: 'Erase…' }).click();
  const confirmErase = page.getByRole('dialog');
  await confirmErase.getByRole('button', { name: 'Erase person' }).waitFor();
  await shot('07b-erase-confirm');
  await confirmErase.getByRole('button', { name: 'Erase person' }).click();
  await page.getByRole('status').waitFor();
  step('erased_person', personId);
  step('erase_notice', await page.getByRole('status').innerText());
  await shot('07c-erased');

  // Events, live.
  await page.goto(`${base}/#/events`);
  await page.locator('table.events tbody tr').first().waitFor();
  step('events_rows', await page.locator('table.events tbody tr').count());
  await shot('08-events');

  // A funnel counted by companies, its steps chosen in the event pickers.
  await page.goto(`${base}/#/insights`);
  await page.getByRole('tab', { name: 'Funnel' }).click();
  for (const [i, name] of ['Signed In', 'Project Created', 'Invited Teammate'].entries()) {
    await pick(page, `Step ${i + 1} event`, name);
  }
  await page.getByLabel('Count by').selectOption('company');
  await settled(page);
  await page.locator('svg.chart rect.funnel-bar').first().waitFor();
  const counts = async (root) => (await root.locator('table.numbers tbody tr').evaluateAll((rows) =>
    rows.filter((r) => r.cells[0].textContent === 'All').map((r) => Number(r.cells[2].textContent.replace(/,/g, '')))));
  step('funnel_counts', await counts(page));
  // Clicking a step lists the companies behind it.
  await page.locator('svg.chart rect.funnel-bar').nth(2).click();
  await page.locator('.actors table.actors-table tbody tr').first().waitFor();
  step('funnel_step3_actors', await page.locator('.actors table.actors-table tbody tr').count());
  await shot('09-funnel');

  // Trends and retention render too.
  await page.getByRole('tab', { name: 'Trends' }).click();
  await settled(page);
  await page.locator('svg.chart circle.point').first().waitFor();
  // Clicking a data point (today's) lists the users behind it.
  await page.locator('svg.chart circle.point').last().click();
  await page.locator('.actors h2').waitFor();
  step('trend_point_actors', await page.locator('.actors h2').innerText());
  await shot('10-trends');
  await page.getByRole('tab', { name: 'Retention' }).click();
  await settled(page);
  await page.locator('table.retention').waitFor();
  await shot('11-retention');
  await page.getByRole('tab', { name: 'Lifecycle' }).click();
  await settled(page);
  await page.locator('svg.chart rect.bar').first().waitFor();
  await shot('12-lifecycle');

  // Back to the funnel (the browser's Back steps through the edits), then save it to a new dashboard.
  for (let i = 0; i < 3; i++) await page.goBack();
  await page.getByRole('tab', { name: 'Funnel', selected: true }).waitFor();
  await settled(page);
  await page.locator('svg.chart rect.funnel-bar').first().waitFor();
  step('funnel_after_back', await counts(page));
  await page.getByRole('button', { name: 'Add to dashboard…' }).click();
  const add = page.getByRole('dialog', { name: 'Add to dashboard' });
  await add.getByLabel('New dashboard name').fill('Team health');
  await add.getByLabel('Insight name').fill('Companies activation');
  await add.getByRole('button', { name: 'Add' }).click();
  await page.getByRole('heading', { name: 'Team health' }).waitFor();
  const dashboardUrl = page.url();
  await page.goto(`${base}/#/groups`);
  await page.goto(dashboardUrl);
  await page.reload();
  await page.getByRole('heading', { name: 'Team health' }).waitFor();
  await page.locator('.tile svg.chart rect.funnel-bar').first().waitFor();
  step('dashboard_counts', await counts(page.locator('.tile').first()));
  step('dashboard_tile', await page.locator('.tile h2').first().innerText());
  await shot('13-dashboard');

  // Settings: keys and group types.
  await page.goto(`${base}/#/settings`);
  await page.getByRole('heading', { name: 'Group types' }).waitFor();
  await page.getByRole('button', { name: 'Save privacy settings' }).waitFor();
  step('install_snippet', await page.locator('pre[data-snippet="browser"]').innerText());
  await shot('14-settings');

  // A phone.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${base}/#/groups`);
  await page.locator('table.groups tbody tr').first().waitFor();
  step('phone_overflow', await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth));
  await shot('15-groups-phone');

  step('page_errors', errors);
  await browser.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
