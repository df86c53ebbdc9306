// The browser's half of `npm login --auth-type=web`: opens the login URL npm printed and logs in
// through the form there (or, with `loggedInFirst`, logs in on the login page first and then
// approves on the page the URL shows a logged-in browser). Screenshots go to `artifacts`.
// Usage: node approve.cjs '{"loginUrl": ..., "user": ..., "password": ..., "artifacts": ..., "loggedInFirst": bool}'
'use strict';
const { chromium } = require(process.env.PLAYWRIGHT_CORE);
const assert = require('node:assert/strict');
const path = require('node:path');

const a = JSON.parse(process.argv[2]);
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];
const prefix = a.loggedInFirst ? 'approve-logged-in' : 'approve-login-form';

async function logIn(page) {
  await page.getByLabel('User name').fill(a.user);
  await page.getByLabel('Password').fill(a.password);
  await page.getByRole('button', { name: 'Log in' }).click();
}

async function main() {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM, args: FLAGS });
  const page = await browser.newPage();
  page.on('dialog', (d) => { throw new Error('unexpected dialog: ' + d.message()); });
  if (a.loggedInFirst) {
    await page.goto(new URL('/-/ui/login', a.loginUrl).href);
    await logIn(page);
    await page.waitForURL(new URL('/', a.loginUrl).href);
    await page.goto(a.loginUrl);
    assert.equal(await page.locator('h1').textContent(), 'Log in npm on the command line?');
    assert.ok((await page.locator('main').textContent()).includes(a.user));
    await page.screenshot({ path: path.join(a.artifacts, prefix + '-ask.png'), fullPage: true });
    await page.getByRole('button', { name: 'Approve' }).click();
  } else {
    await page.goto(a.loginUrl);
    assert.equal(await page.locator('h1').textContent(), 'Log in to npm on the command line');
    await page.screenshot({ path: path.join(a.artifacts, prefix + '-form.png'), fullPage: true });
    await logIn(page);
  }
  await page.locator('h1', { hasText: 'npm is logged in' }).waitFor();
  assert.ok((await page.locator('.message').textContent()).includes(`logged in as ${a.user}`));
  await page.screenshot({ path: path.join(a.artifacts, prefix + '-done.png'), fullPage: true });
  await browser.close();
  console.log('approved');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
