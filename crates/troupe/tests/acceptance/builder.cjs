// The insight builder as a product manager uses it, in Debian's headless Chromium (playwright-core):
// a question built only with the pickers (fuzzy event search, a company-property breakdown, a
// filter value from the data), the URL reopened in another tab and after a reload, Back, compare
// with % change, the number view, a custom date range, save / unsaved changes / save as new /
// rename, adding a chosen insight to a chosen dashboard, the project timezone; then every page at
// 1440 and 390 px. Prints what it read as `RESULT <json>` for builder.rs to compare with the API.
//
// Usage: node builder.cjs BASE_URL SCREENSHOT_DIR

const { launch, step, pick, settled, question, view } = require('./ui.cjs');
const path = require('path');

const [base, shots] = process.argv.slice(2);

async function main() {
  const browser = await launch();
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  const errors = [];
  const watch = (p) => {
    p.on('pageerror', (e) => errors.push(String(e)));
    p.on('response', (r) => { if (r.status() >= 400) errors.push(`${r.status()} ${r.request().method()} ${r.url()}`); });
  };
  watch(page);
  const shot = (p, name) => p.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });

  await page.goto(base);
  await page.getByRole('heading', { name: 'Welcome to troupe' }).waitFor();
  await page.getByLabel('Email').fill('pm@example.com');
  await page.getByLabel('Password').fill('correct horse battery');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('heading', { name: 'Groups' }).waitFor();

  // A trend built with the pickers only.
  await page.goto(`${base}/#/insights`);
  await settled(page);
  await pick(page, 'Series 1 event', 'sgnd in');
  step('fuzzy_event', await page.getByRole('combobox', { name: 'Series 1 event' }).inputValue());
  await page.getByLabel('Series 1 math').selectOption('unique');
  await page.getByLabel('Count by').selectOption('company');
  await page.getByLabel('Breakdown source').selectOption('group:company');
  step('breakdown_source_kept', await page.getByLabel('Breakdown source').inputValue());
  await pick(page, 'Breakdown property', 'pla');
  await page.getByRole('button', { name: '+ Add filter' }).click();
  await pick(page, 'Filter 1 property', 'meth');
  const value = page.getByRole('combobox', { name: 'Filter 1 value' });
  await value.click();
  await page.locator('.picker-list:not([hidden]) li').first().waitFor();
  const offered = await page.locator('.picker-list:not([hidden]) li .v').allTextContents();
  await value.press('ArrowDown');
  await value.press('Enter');
  step('offered_values', offered);
  await settled(page);
  step('picked_value', await value.inputValue());
  const trend = await reading(page);
  step('trend', trend);
  await shot(page, '20-builder-trend');

  // The same question from its link, in another tab, and after a reload.
  const other = await context.newPage();
  watch(other);
  await other.goto(page.url());
  await settled(other);
  step('other_tab_same', JSON.stringify(await numbers(other)) === JSON.stringify(trend.numbers));
  step('other_tab_breakdown', await other.getByRole('combobox', { name: 'Breakdown property' }).inputValue());
  await other.close();
  await page.reload();
  await settled(page);
  step('reload_same', JSON.stringify(await numbers(page)) === JSON.stringify(trend.numbers));

  // Back undoes an edit.
  await page.getByLabel('Date range').selectOption('-7d');
  await settled(page);
  step('after_edit_range', await page.getByLabel('Date range').inputValue());
  await page.goBack();
  await settled(page);
  step('after_back_range', await page.getByLabel('Date range').inputValue());
  step('after_back_same', JSON.stringify(await numbers(page)) === JSON.stringify(trend.numbers));

  // Compare the last 14 days with the 14 before: % change per line.
  await page.getByLabel('Date range').selectOption('-14d');
  await settled(page);
  await page.getByLabel('Compare to previous period').check();
  await settled(page);
  step('compare', { question: question(page), changes: await page.locator('.summary .change').allTextContents() });
  await shot(page, '21-builder-compare');
  // The number view.
  await page.getByLabel('Chart type').selectOption('number');
  await settled(page);
  step('big_numbers', await page.locator('.big-number strong').allTextContents());
  await shot(page, '22-builder-number');
  await page.getByLabel('Chart type').selectOption('line');
  await page.getByLabel('Compare to previous period').uncheck();
  await settled(page);

  const trendUrl = page.url();
  // More controls, each read back from the URL and the table: a second series with a formula
  // (its inputs hidden until asked), cumulative, then a funnel's order and window, retention's
  // cohorting, and paths.
  const simple = { kind: 'trends', count_by: 'users', date_range: { from: '-14d' }, interval: 'day', series: [{ event: 'Signed In', math: 'total' }] };
  await page.goto(`${base}/#/insights?q=${encodeURIComponent(JSON.stringify(simple))}`);
  await settled(page);
  await page.getByRole('button', { name: '+ Add series' }).click();
  await settled(page);
  await pick(page, 'Series 2 event', 'Chart Created');
  await settled(page);
  await page.getByLabel('Formula').fill('B / A');
  await page.getByLabel('Formula').press('Tab');
  await settled(page);
  step('control_formula', { ...(await reading(page)), legend: await page.locator('.summary .total').count() });
  await page.getByLabel('Show formula inputs').check();
  await settled(page);
  step('control_formula_inputs', { ...(await reading(page)), view: view(page) });
  await page.goto(`${base}/#/insights?q=${encodeURIComponent(JSON.stringify(simple))}`);
  await settled(page);
  await page.getByLabel('Cumulative').check();
  await settled(page);
  step('control_cumulative', await reading(page));
  const funnel = { kind: 'funnel', count_by: 'users', date_range: { from: '-30d' }, interval: 'day', steps: [{ event: 'Signed In' }, { event: 'Chart Created' }, { event: 'Report Exported' }], window: { value: 14, unit: 'day' }, order: 'ordered' };
  await page.goto(`${base}/#/insights?q=${encodeURIComponent(JSON.stringify(funnel))}`);
  await settled(page);
  await page.getByLabel('Order').selectOption('unordered');
  await settled(page);
  await page.getByLabel('Conversion window').fill('2');
  await page.getByLabel('Conversion window').press('Tab');
  await settled(page);
  await page.getByLabel('Window unit').selectOption('hour');
  await settled(page);
  step('control_funnel', await reading(page));
  await page.getByLabel('Funnel view').selectOption('time');
  await page.locator('.chart-box svg.chart rect.bar').first().waitFor();
  step('control_funnel_time', { view: view(page), bins: await page.locator('.chart-box svg.chart rect.bar').count() });
  const retention = { kind: 'retention', count_by: 'users', date_range: { from: '-6w' }, interval: 'week', start: { event: 'Signed In' }, return: { event: 'Chart Created' }, cohorting: 'first_time' };
  await page.goto(`${base}/#/insights?q=${encodeURIComponent(JSON.stringify(retention))}`);
  await settled(page);
  await page.getByLabel('Cohorting').selectOption('recurring');
  await settled(page);
  await page.getByLabel('On or after (cumulative)').check();
  await settled(page);
  step('control_retention', await reading(page));
  await page.getByRole('tab', { name: 'Paths' }).click();
  await settled(page);
  await page.getByLabel('Steps').fill('3');
  await page.getByLabel('Steps').press('Tab');
  await settled(page);
  step('control_paths', await reading(page));
  await page.goto(trendUrl);
  await settled(page);

  // A custom date range.
  const dayOf = (ago) => new Date(Date.now() - ago * 86400000).toISOString().slice(0, 10);
  await page.getByLabel('Date range').selectOption('custom');
  await settled(page);
  await page.getByLabel('From date').fill(dayOf(20));
  await page.getByLabel('From date').dispatchEvent('change');
  await settled(page);
  await page.getByLabel('To date').fill(dayOf(6));
  await page.getByLabel('To date').dispatchEvent('change');
  await settled(page);
  step('custom', await reading(page));

  // Save; an edit shows "unsaved changes"; save as new; rename the copy.
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  let dialog = page.getByRole('dialog', { name: 'Save insight' });
  await dialog.getByLabel('Name').fill('Companies signing in');
  await shot(page, '23-builder-save');
  await dialog.getByRole('button', { name: 'Save' }).click();
  await page.getByRole('heading', { name: 'Companies signing in' }).waitFor();
  const firstId = insightId(page);
  step('saved', { id: firstId, question: question(page) });
  await page.getByLabel('Interval').selectOption('week');
  await settled(page);
  step('unsaved_badge', await page.locator('.badge.unsaved').count());
  await page.getByRole('button', { name: 'Save as new' }).click();
  dialog = page.getByRole('dialog', { name: 'Save as a new insight' });
  await dialog.getByLabel('Name').fill('Companies signing in, weekly');
  await dialog.getByRole('button', { name: 'Save as new' }).click();
  await page.getByRole('heading', { name: 'Companies signing in, weekly' }).waitFor();
  const copyId = insightId(page);
  await page.getByRole('button', { name: 'Rename' }).click();
  dialog = page.getByRole('dialog', { name: 'Rename insight' });
  await dialog.getByLabel('Name').fill('Weekly companies');
  await dialog.getByRole('button', { name: 'Rename' }).click();
  await page.getByRole('heading', { name: 'Weekly companies' }).waitFor();
  step('copy', { id: copyId, question: question(page), unsaved: await page.locator('.badge.unsaved').count() });

  // Two dashboards; the first insight goes to the second one, chosen from the list.
  await page.goto(`${base}/#/dashboards`);
  for (const name of ['Alpha', 'Beta']) {
    await page.getByLabel('Dashboard name').fill(name);
    await page.getByRole('button', { name: 'Create dashboard' }).click();
    await page.getByRole('heading', { name }).waitFor();
    await page.goto(`${base}/#/dashboards`);
  }
  await page.goto(`${base}/#/insights/${encodeURIComponent(firstId)}`);
  await settled(page);
  await page.getByRole('button', { name: 'Add to dashboard…' }).click();
  dialog = page.getByRole('dialog', { name: 'Add to dashboard' });
  await dialog.waitFor();
  step('dashboard_choices', await dialog.getByLabel('Dashboard', { exact: true }).locator('option').allTextContents());
  await dialog.getByLabel('Dashboard', { exact: true }).selectOption({ label: 'Beta (0)' });
  await shot(page, '24-add-to-dashboard');
  await dialog.getByRole('button', { name: 'Add' }).click();
  await page.getByRole('heading', { name: 'Beta' }).waitFor();
  await page.locator('.tile svg.chart').first().waitFor();
  step('beta_tiles', await page.locator('.tile h2').allTextContents());
  await shot(page, '25-dashboard-beta');

  // The project's timezone: days are Tokyo's in the builder.
  await page.goto(`${base}/#/settings`);
  await page.getByLabel('Project time zone').selectOption('Asia/Tokyo');
  await page.getByRole('button', { name: 'Save time zone' }).click();
  await page.getByText('Saved: days are now cut').waitFor();
  const tokyo = { kind: 'trends', count_by: 'users', date_range: { from: '-7d' }, interval: 'day', series: [{ event: 'Signed In', math: 'total' }] };
  await page.goto(`${base}/#/insights?q=${encodeURIComponent(JSON.stringify(tokyo))}`);
  await settled(page);
  step('tokyo', await reading(page));

  // Every page at 1440 and at 390 px: screenshots, and nothing wider than a phone.
  await page.goto(`${base}/#/dashboards`);
  const betaHref = await page.getByRole('link', { name: 'Beta' }).getAttribute('href');
  const pages = [['groups', '#/groups'], ['persons', '#/persons'], ['events', '#/events'], ['insight-trends', `#/insights/${encodeURIComponent(firstId)}`],
    ['insight-funnel', `#/insights?q=${encodeURIComponent(JSON.stringify({ kind: 'funnel', count_by: { group_type: 'company' }, date_range: { from: '-30d' }, interval: 'day', steps: [{ event: 'Signed In' }, { event: 'Project Created' }, { event: 'Invited Teammate' }], window: { value: 14, unit: 'day' }, order: 'ordered' }))}`],
    ['dashboards', '#/dashboards'], ['dashboard', betaHref], ['settings', '#/settings'],
    ['group-profile', '#/group/company/acme-inc'], ['person', '#/person/acme-inc-user-0'], ['cohorts', '#/cohorts'], ['cohort-new', '#/cohort/new'],
    ...['retention', 'stickiness', 'lifecycle', 'paths'].map((kind) => [`insight-${kind}`, `#/insights?q=${encodeURIComponent(JSON.stringify({ kind, count_by: 'users', date_range: { from: '-8w' }, interval: 'week', ...({ retention: { start: { event: 'Signed In' }, return: { event: 'Chart Created' }, cohorting: 'first_time' }, stickiness: { series: [{ event: 'Chart Created' }] }, lifecycle: { event: { event: 'Chart Created' } }, paths: { start: { event: 'Signed In' }, step_limit: 4 } })[kind] }))}`])];
  const overflow = {};
  for (const width of [1440, 390]) {
    await page.setViewportSize({ width, height: width > 500 ? 900 : 844 });
    for (const [name, hash] of pages) {
      await page.goto(`${base}/${hash}`);
      await page.locator('#app > *').first().waitFor();
      await page.waitForLoadState('networkidle');
      await page.waitForTimeout(200);
      if (width === 390) overflow[name] = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      await shot(page, `3${width === 390 ? 1 : 0}-${name}-${width}`);
    }
  }
  step('phone_overflow', overflow);
  // Dark mode follows the system.
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.setViewportSize({ width: 1440, height: 900 });
  for (const [name, hash] of pages.filter(([n]) => ['insight-trends', 'group-profile'].includes(n))) {
    await page.goto(`${base}/${hash}`);
    await page.locator('#app > *').first().waitFor();
    await page.waitForLoadState('networkidle');
    await shot(page, `32-${name}-dark`);
  }
  step('dark_background', await page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor));
  await page.emulateMedia({ colorScheme: 'light' });

  // Signed out: the sign-in page, without the navigation, at both widths.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  step('nav_on_sign_in', await page.locator('#nav').isVisible());
  await shot(page, '30-sign-in-1440');
  await page.setViewportSize({ width: 390, height: 844 });
  await shot(page, '31-sign-in-390');
  step('sign_in_overflow', await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth));
  step('page_errors', errors);
  await browser.close();
}

function insightId(page) {
  return decodeURIComponent(new URL(page.url()).hash.split('?')[0].split('/')[2] || '');
}

/** The numbers table as text, header first. */
async function numbers(page) {
  return page.locator('table.numbers tr').evaluateAll((rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
}

async function reading(page) {
  return { question: question(page), numbers: await numbers(page) };
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
