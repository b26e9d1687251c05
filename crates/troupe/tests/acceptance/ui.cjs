// What the dashboard's browser flows share (dashboard.cjs, builder.cjs, actors.cjs): Chromium
// launched as the tests run it, the RESULT lines the Rust tests read, and how to drive the
// builder (pick in a picker, wait for a current answer, read the question from the URL).

const { chromium } = require('playwright-core');

/** Debian's Chromium, headless, without the background traffic a test does not want. */
function launch() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}

/** One `RESULT {"name": value}` line for the Rust test. */
const step = (name, value) => console.log(`RESULT ${JSON.stringify({ [name]: value })}`);

/** Types into a picker and takes its best suggestion. */
async function pick(page, label, text) {
  const box = page.getByRole('combobox', { name: label, exact: true });
  await box.click();
  await box.fill(text);
  await page.locator('.picker-list:not([hidden]) li').first().waitFor();
  await box.press('Enter');
}

/** Waits until the builder's answer is current (not marked stale). */
async function settled(page) {
  await page.waitForTimeout(350);
  await page.waitForFunction(() => { const r = document.querySelector('.result'); return r && !r.classList.contains('stale') && r.childElementCount > 0; });
  await page.waitForLoadState('networkidle');
}

function hashParams(page) {
  return new URLSearchParams(new URL(page.url()).hash.split('?')[1] || '');
}

/** The question the page asked, read from its URL. */
function question(page) {
  return JSON.parse(hashParams(page).get('q'));
}

/** The view (chart kind and options) the page keeps in its URL. */
function view(page) {
  const v = hashParams(page).get('v');
  return v ? JSON.parse(v) : {};
}


module.exports = { launch, step, pick, settled, question, view };
