// A person using the web UI in headless Chromium: browses the home page, finds a package by
// typing in the search box, reads its page, logs in to see a private package, logs out; a
// hostile README runs nothing; the dark theme applies; a phone-sized screen works; Verdaccio's
// address lands on the package page. Screenshots of every page go to `artifacts`.
// Usage: node ui.cjs '{"url": ..., "artifacts": ..., "user": ..., "password": ..., ...}'
// (PLAYWRIGHT_CORE and CHROMIUM name the driver and the browser.)
'use strict';
const { chromium } = require(process.env.PLAYWRIGHT_CORE);
const assert = require('node:assert/strict');
const path = require('node:path');

const a = JSON.parse(process.argv[2]);
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];
const LIGHT_BG = 'rgb(244, 245, 242)';
const DARK_BG = 'rgb(21, 25, 27)';

let stepName = '';
const step = (name) => { stepName = name; console.log('step:', name); };
const problems = [];
const shots = [];

async function shot(page, name) {
  const file = path.join(a.artifacts, name + '.png');
  await page.screenshot({ path: file, fullPage: true });
  shots.push(file);
}

function watch(page) {
  page.on('dialog', async (d) => { problems.push(`${stepName}: a dialog opened: ${d.message()}`); await d.dismiss(); });
  page.on('pageerror', (e) => problems.push(`${stepName}: page error: ${e.message}`));
  page.on('console', (m) => { if (m.text().includes('xss')) problems.push(`${stepName}: console: ${m.text()}`); });
  return page;
}

const names = async (page) => page.locator('.package-line h2 a').allTextContents();
const htmlBackground = (page) => page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);

async function main() {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM, args: FLAGS });
  const origin = new URL(a.url).origin;
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light' });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
  const page = watch(await context.newPage());

  step('the home page lists public packages, newest first, and no private one');
  await page.goto(a.url);
  const listed = await names(page);
  for (const p of a.public) assert.ok(listed.includes(p), `${p} is listed: ${listed}`);
  assert.ok(!listed.includes(a.private), `${a.private} is hidden: ${listed}`);
  assert.equal(listed[0], a.newest, 'newest first');
  assert.equal(await htmlBackground(page), LIGHT_BG);
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.className), 'skip', 'the first Tab reaches "Skip to content"');
  await shot(page, 'home');

  step('typing in the search box suggests the package; clicking it opens its page');
  const search = page.getByRole('combobox', { name: 'Search packages' });
  await search.click();
  await search.pressSequentially(a.query, { delay: 40 });
  const option = page.getByRole('option').filter({ hasText: a.package });
  await option.waitFor();
  assert.equal(await search.getAttribute('aria-expanded'), 'true');
  await shot(page, 'search-as-you-type');
  await option.click();
  await page.waitForURL(`**/-/ui/package/${a.package}`);

  step('the package page: README, versions, tags, deprecation, install commands');
  assert.equal(await page.locator('h1#package-h').textContent(), a.package);
  const readme = page.locator('.markdown');
  assert.equal((await readme.locator('h2').first().textContent()).trim(), a.readmeHeading);
  assert.ok((await readme.locator('table td').allTextContents()).includes(a.tableCell), 'a markdown table');
  const code = readme.locator('pre code.language-js');
  assert.ok((await code.textContent()).includes(a.codeSnippet), 'a fenced code block');
  assert.ok(await code.locator('span[class*="hl-"]').count() > 3, 'highlighted');
  const versions = await page.locator('table.versions .version-number').allTextContents();
  assert.deepEqual(versions, a.versions);
  const deprecated = page.locator('table.versions tr.deprecated-row');
  assert.equal(await deprecated.count(), 1);
  assert.ok((await deprecated.textContent()).includes(a.deprecation), 'the deprecation notice');
  const tags = await page.locator('dl.tags').textContent();
  for (const [tag, version] of Object.entries(a.tags)) assert.ok(tags.includes(tag + version), `tag ${tag}: ${tags}`);
  const installs = await page.locator('.installs code').allTextContents();
  assert.deepEqual(installs, ['npm install', 'pnpm add', 'yarn add', 'bun add'].map((c) => `${c} ${a.package}`));
  assert.ok((await page.locator('#dependents').textContent()).includes(a.dependent), 'its dependents');
  assert.ok((await page.locator('.details').first().textContent()).includes('Tarball size'));
  const copy = page.getByRole('button', { name: 'Copy the pnpm command' });
  await copy.click();
  await page.getByRole('button', { name: 'Copy the pnpm command' }).filter({ hasText: 'Copied' }).waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), `pnpm add ${a.package}`);
  await shot(page, 'package');

  step('Enter in the search box shows every result; arrows and Enter pick one');
  await search.fill(a.enterQuery);
  await search.press('Enter');
  await page.waitForURL('**/-/ui/search?q=*');
  const found = await names(page);
  assert.deepEqual([...found].sort(), [...a.enterFound].sort(), `found for ${a.enterQuery}`);
  await shot(page, 'search-results');
  await search.fill('');
  await search.pressSequentially(a.dependent.slice(0, 6), { delay: 40 });
  await page.getByRole('option').filter({ hasText: a.dependent }).waitFor();
  const picked = (await page.getByRole('option').allTextContents()).findIndex((t) => t.includes(a.dependent));
  for (let i = 0; i <= picked; i++) await search.press('ArrowDown');
  await search.press('Enter');
  await page.waitForURL(`**/-/ui/package/${a.dependent}`);

  step('a private package asks anonymous visitors to log in');
  await page.goto(`${a.url}-/ui/package/${a.private}`);
  assert.equal(await page.locator('h1').textContent(), 'Log in to see this (401)');
  await shot(page, 'private-anonymous');
  await page.getByRole('main').getByRole('link', { name: 'Log in' }).click();
  await page.waitForURL('**/-/ui/login?next=*');
  await page.getByLabel('User name').fill(a.user);
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Log in' }).click();
  assert.equal(await page.getByRole('alert').textContent(), 'Incorrect user name or password.');
  await shot(page, 'login-refused');

  step('logging in through the form shows the private package');
  await page.getByLabel('Password').fill(a.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(`**/-/ui/package/${a.private}`);
  assert.equal(await page.locator('h1#package-h').textContent(), a.private);
  assert.equal(await page.locator('.user').textContent(), a.user);
  await shot(page, 'private-logged-in');
  await page.goto(a.url);
  assert.ok((await names(page)).includes(a.private), 'listed once logged in');
  await shot(page, 'home-logged-in');

  step('logging out hides it again');
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.waitForURL(a.url);
  assert.ok(!(await names(page)).includes(a.private));
  assert.equal(await page.locator('.user').count(), 0);

  step('a hostile README runs nothing');
  await page.goto(`${a.url}-/ui/package/${a.hostile}`);
  await page.waitForTimeout(500);
  const hostile = await page.evaluate(() => ({
    ran: window.__xss,
    scripts: document.querySelectorAll('.markdown script').length,
    handlers: document.querySelectorAll('.markdown [onerror], .markdown [onclick], .markdown [onload]').length,
    jsLinks: document.querySelectorAll('.markdown a[href^="javascript" i]').length,
    text: document.querySelector('.markdown').textContent,
  }));
  assert.equal(hostile.ran, undefined, 'no injected code ran');
  assert.deepEqual([hostile.scripts, hostile.handlers, hostile.jsLinks], [0, 0, 0]);
  assert.ok(hostile.text.includes(a.hostileText), 'the rest of the README is shown');
  await page.getByRole('link', { name: 'click me' }).click({ timeout: 2000 }).catch(() => {});
  await page.waitForTimeout(300);
  assert.equal(await page.evaluate(() => window.__xss), undefined, 'clicking its links runs nothing');
  await shot(page, 'hostile-readme');

  step("Verdaccio's package address and the API address land on the package page");
  await page.goto(`${a.url}-/web/detail/${a.package}`);
  assert.ok(page.url().endsWith(`/-/ui/package/${a.package}`), page.url());
  await page.goto(`${a.url}${a.package}`);
  assert.ok(page.url().endsWith(`/-/ui/package/${a.package}`), page.url());

  step('the theme toggle switches to dark and stays so');
  await page.getByRole('button', { name: 'Dark theme' }).click();
  assert.equal(await htmlBackground(page), DARK_BG);
  await page.reload();
  assert.equal(await htmlBackground(page), DARK_BG, 'kept across pages');
  await context.close();

  step('the dark theme follows the system setting');
  const dark = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'dark' });
  const darkPage = watch(await dark.newPage());
  await darkPage.goto(a.url);
  assert.equal(await htmlBackground(darkPage), DARK_BG);
  assert.equal(await darkPage.evaluate(() => getComputedStyle(document.body).color), 'rgb(230, 234, 231)');
  assert.equal(await darkPage.getByRole('button', { name: 'Dark theme' }).getAttribute('aria-pressed'), 'true');
  await shot(darkPage, 'home-dark');
  await darkPage.goto(`${a.url}-/ui/package/${a.package}`);
  await shot(darkPage, 'package-dark');
  await dark.close();

  step('a phone-sized screen: one column, nothing wider than the screen');
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const phonePage = watch(await phone.newPage());
  await phonePage.goto(`${a.url}-/ui/package/${a.package}`);
  const fits = await phonePage.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
  assert.ok(fits, 'no horizontal scrolling');
  const install = await phonePage.locator('#install-h').boundingBox();
  const readmeBox = await phonePage.locator('#readme-h').boundingBox();
  assert.ok(install.y < readmeBox.y, 'install commands come first on a phone');
  await shot(phonePage, 'package-phone');
  await phonePage.goto(a.url);
  await shot(phonePage, 'home-phone');
  await phone.close();

  await browser.close();
  assert.deepEqual(problems, [], 'no dialog, page error or injected console output');
  console.log('screenshots:', shots.join(' '));
}

main().catch((e) => {
  console.error(`failed at step "${stepName}":`, e);
  process.exit(1);
});
