// The dashboard as a new user meets it, in Debian's headless Chromium driven by playwright-core:
// first-run setup, sign out and in, groups, a group created in the UI, a group profile, persons,
// erasing a person, events, a funnel by companies, saved to a dashboard and reopened, settings, and a phone-width
// page. Saves a screenshot of each page and prints what it read as `RESULT <json>` lines for
// the Rust test (dashboard.rs) to compare with the JSON API.
//
// Usage: node dashboard.cjs BASE_URL SCREENSHOT_DIR

const { chromium } = require('playwright-core');
const path = require('path');

const [base, shots] = process.argv.slice(2);
const results = {};
const step = (name, value) => { results[name] = value; console.log(`RESULT ${JSON.stringify({ [name]: value })}`); };

async function main() {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  page.setDefaultTimeout(15000);
  const answers = [];
  page.on('dialog', (d) => d.accept(answers.shift()));
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
  await shot('03-groups');

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
  const firstKey = await page.locator('table.groups tbody tr').first().locator('td').nth(1).innerText();
  await page.locator('table.groups tbody tr').first().click();
  await page.getByRole('heading', { name: 'Recent events' }).waitFor();
  await page.locator('svg.chart').first().waitFor();
  step('profile', {
    key: firstKey,
    members: await page.locator('ul.members li').count(),
    events: await page.locator('table.events tbody tr').count(),
  });
  await shot('05-group-profile');

  // Persons and a person profile.
  await page.goto(`${base}/#/persons`);
  await page.locator('table tbody tr').first().waitFor();
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

  // A funnel counted by companies.
  await page.goto(`${base}/#/insights`);
  await page.getByRole('button', { name: 'Funnel' }).click();
  await page.getByLabel('Count by').selectOption('company');
  await page.getByRole('button', { name: 'Run' }).click();
  await page.locator('svg.chart rect.funnel-bar').first().waitFor();
  await page.waitForFunction(() => document.querySelectorAll('table.numbers tbody tr').length >= 3);
  const counts = async (root) => (await root.locator('table.numbers tbody tr').evaluateAll((rows) =>
    rows.filter((r) => r.cells[0].innerText === 'All').map((r) => Number(r.cells[2].innerText.replace(/,/g, '')))));
  step('funnel_counts', await counts(page));
  // Clicking a step lists the companies behind it.
  await page.locator('svg.chart rect.funnel-bar').nth(2).click();
  await page.locator('.actors li').first().waitFor();
  step('funnel_step3_actors', await page.locator('.actors li').count());
  await shot('09-funnel');

  // Trends and retention render too.
  await page.getByRole('button', { name: 'Trends' }).click();
  await page.locator('svg.chart circle.point').first().waitFor();
  // Clicking a data point (today's) lists the users behind it.
  await page.locator('svg.chart circle.point').last().click();
  await page.locator('.actors h2').waitFor();
  step('trend_point_actors', await page.locator('.actors h2').innerText());
  await shot('10-trends');
  await page.getByRole('button', { name: 'Retention' }).click();
  await page.locator('table.retention').waitFor();
  await shot('11-retention');
  await page.getByRole('button', { name: 'Lifecycle' }).click();
  await page.locator('svg.chart rect.bar').first().waitFor();
  await shot('12-lifecycle');

  // Save the funnel to a dashboard, then reopen the dashboard.
  await page.getByRole('button', { name: 'Funnel' }).click();
  await page.getByLabel('Count by').selectOption('company');
  await page.getByRole('button', { name: 'Run' }).click();
  await page.locator('svg.chart rect.funnel-bar').first().waitFor();
  answers.push('Companies activation', 'Team health');
  await page.getByRole('button', { name: 'Add to dashboard' }).click();
  await page.getByRole('heading', { name: 'Team health' }).waitFor();
  const dashboardUrl = page.url();
  await page.goto(`${base}/#/groups`);
  await page.goto(dashboardUrl);
  await page.reload();
  await page.getByRole('heading', { name: 'Team health' }).waitFor();
  await page.locator('.tile svg.chart rect.funnel-bar').first().waitFor();
  await page.waitForFunction(() => document.querySelectorAll('.tile table.numbers tbody tr').length >= 3);
  step('dashboard_counts', await counts(page.locator('.tile').first()));
  step('dashboard_tile', await page.locator('.tile h2').first().innerText());
  await shot('13-dashboard');

  // Settings: keys and group types.
  await page.goto(`${base}/#/settings`);
  await page.getByRole('heading', { name: 'Group types' }).waitFor();
  await page.getByRole('button', { name: 'Save privacy settings' }).waitFor();
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
