// Actors from every chart kind and cohorts made in the UI, in Debian's headless Chromium
// (playwright-core): a trend point, a funnel step and its drop-off, a retention cell, a stickiness
// bar and a lifecycle bar each list their actors in a paged table with a CSV export; the funnel's
// actors are saved as a cohort; a dynamic cohort is made on the cohort page and used as a filter
// in the builder. Prints what it read as `RESULT <json>` for builder.rs to compare with the API
// (each actors request the page made is printed with what it showed).
//
// Usage: node actors.cjs BASE_URL SCREENSHOT_DIR

const { launch, step, pick, settled, question } = require('./ui.cjs');
const fs = require('fs');
const path = require('path');

const [base, shots] = process.argv.slice(2);

async function main() {
  const browser = await launch();
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('response', (r) => { if (r.status() >= 400) errors.push(`${r.status()} ${r.request().method()} ${r.url()}`); });
  // The last question that asked for actors.
  let asked = null;
  page.on('request', (r) => {
    if (r.method() === 'POST' && r.url().endsWith('/query')) {
      const body = JSON.parse(r.postData() || '{}');
      if (body.actors) asked = body;
    }
  });
  const shot = (name) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });

  await page.goto(base);
  await page.getByRole('heading', { name: 'Welcome to troupe' }).waitFor();
  await page.getByLabel('Email').fill('pm@example.com');
  await page.getByLabel('Password').fill('correct horse battery');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('heading', { name: 'Groups' }).waitFor();

  const companies = { group_type: 'company' };
  const kinds = [
    ['trend_point', { kind: 'trends', count_by: 'users', date_range: { from: '-14d' }, interval: 'day', series: [{ event: 'Signed In', math: 'unique' }] }, 'svg.chart circle.point[data-bucket="5"]'],
    ['funnel_step', { kind: 'funnel', count_by: companies, date_range: { from: '-30d' }, interval: 'day', steps: [{ event: 'Signed In' }, { event: 'Chart Created' }, { event: 'Report Exported' }], window: { value: 14, unit: 'day' }, order: 'ordered' }, 'svg.chart rect.funnel-bar[data-step="1"]'],
    ['funnel_dropped', null, '.chart-box button.link >> nth=0'],
    ['retention_cell', { kind: 'retention', count_by: 'users', date_range: { from: '-4w' }, interval: 'week', start: { event: 'Signed In' }, return: { event: 'Chart Created' }, cohorting: 'first_time' }, 'table.retention td.cell[tabindex] >> nth=2'],
    ['stickiness_bar', { kind: 'stickiness', count_by: 'users', date_range: { from: '-7d' }, interval: 'day', series: [{ event: 'Chart Created' }] }, 'svg.chart rect.bar[data-bucket="1"]'],
    ['paths_band', { kind: 'paths', count_by: 'users', date_range: { from: '-30d' }, interval: 'day', start: { event: 'Signed In' }, step_limit: 4 }, 'svg.chart path.band >> nth=0'],
    ['lifecycle_bar', { kind: 'lifecycle', count_by: companies, date_range: { from: '-6w' }, interval: 'week', event: { event: 'Chart Created' } }, 'svg.chart rect.bar[data-status="returning"] >> nth=2'],
  ];
  for (const [name, question, mark] of kinds) {
    if (question) {
      await page.goto(`${base}/#/insights?q=${encodeURIComponent(JSON.stringify(question))}`);
      await settled(page);
    }
    asked = null;
    await page.locator(mark).click();
    await page.locator('.actors .title-row h2').waitFor();
    await page.waitForFunction(() => !document.querySelector('.actors .muted:not(.count)') || document.querySelector('.actors table'));
    await page.locator('.actors table.actors-table, .actors .empty').first().waitFor();
    const empty = await page.locator('.actors .empty').count();
    const csvText = empty ? null : await downloaded(page, page.getByRole('button', { name: 'Export actors CSV' }));
    step(name, {
      asked,
      title: await page.locator('.actors h2').innerText(),
      count: await page.locator('.actors .count').innerText(),
      rows: await page.locator('.actors table.actors-table tbody tr').count(),
      csv: csvText,
    });
    await shot(`40-actors-${name}`);
    if (name === 'funnel_step') {
      // Those companies, saved as a static cohort.
      await page.getByRole('button', { name: 'Save as cohort…' }).click();
      const dialog = page.getByRole('dialog', { name: 'Save as cohort' });
      await dialog.getByLabel('Name').fill('Charting companies');
      await dialog.getByRole('button', { name: 'Save cohort' }).click();
      await page.getByRole('link', { name: 'Open it' }).click();
      await page.getByRole('heading', { name: /Charting companies/ }).waitFor();
      await page.locator('table.members-table tbody tr').first().waitFor();
      step('saved_cohort', {
        id: decodeURIComponent(page.url().split('#/cohort/')[1]),
        size: await page.locator('.cohort-size').innerText(),
        members: await page.locator('table.members-table tbody tr').count(),
      });
      await shot('41-cohort-static');
      await page.goBack();
      await settled(page);
    }
  }

  // A dynamic cohort made on the cohorts page: users whose role is the most common one.
  await page.goto(`${base}/#/cohorts`);
  await page.getByRole('link', { name: 'New cohort' }).click();
  await page.getByLabel('Cohort name').fill('Admins');
  await pick(page, 'Criterion 1 property', 'role');
  const value = page.getByRole('combobox', { name: 'Criterion 1 value' });
  await value.click();
  await page.locator('.picker-list:not([hidden]) li').first().waitFor();
  await value.fill('admin');
  await value.press('Enter');
  await shot('42-cohort-form');
  await page.getByRole('button', { name: 'Save cohort' }).click();
  await page.getByRole('heading', { name: /Admins/ }).waitFor();
  await page.locator('table.members-table tbody tr').first().waitFor();
  const admins = decodeURIComponent(page.url().split('#/cohort/')[1]);
  step('admins', { id: admins, size: await page.locator('.cohort-size').innerText(), pager: await page.locator('.pager .muted').allInnerTexts() });
  await shot('43-cohort-dynamic');
  await page.goto(`${base}/#/cohorts`);
  await page.locator('table.cohorts tbody tr').nth(1).waitFor();
  step('cohort_list', await page.locator('table.cohorts tbody tr td:first-child').allInnerTexts());
  await shot('44-cohorts');

  // The cohort as a filter in the builder.
  const trend = { kind: 'trends', count_by: 'users', date_range: { from: '-14d' }, interval: 'day', series: [{ event: 'Signed In', math: 'unique' }] };
  await page.goto(`${base}/#/insights?q=${encodeURIComponent(JSON.stringify(trend))}`);
  await settled(page);
  await page.getByRole('button', { name: '+ Add cohort filter' }).click();
  await settled(page);
  await page.getByLabel('Filter 1 cohort').selectOption(admins);
  await settled(page);
  step('filtered', { question: question(page), numbers: await page.locator('table.numbers tr').evaluateAll((rows) => rows.map((r) => [...r.cells].map((c) => c.textContent))) });
  await shot('45-cohort-filter');
  step('page_errors', errors);
  await browser.close();
}

async function downloaded(page, button) {
  const [download] = await Promise.all([page.waitForEvent('download'), button.click()]);
  return fs.readFileSync(await download.path(), 'utf8');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
