/**
 * The status page in a real Chromium (Debian's package, driven by playwright-core through
 * executablePath: no browser is downloaded). A real daemon serves it: the page follows a run's
 * progress without reloading, the run page filters to failed jobs and shows why, a key that is an
 * HTML tag renders as text. Screenshots go to test-results/ (CI keeps them).
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../support/helpers.js';
import { HOSTILE_KEY, startWebDaemon, type WebDaemon } from '../support/web.js';

const CHROMIUM = process.env['COGD_CHROMIUM'] ?? '/usr/bin/chromium';
const RESULTS = path.join(ROOT, 'test-results');
const available = existsSync(CHROMIUM);
if (!available) {
  console.log(`browser tests skipped: no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set COGD_CHROMIUM)`);
}

describe.skipIf(!available)('the status page in Chromium', () => {
  let web: WebDaemon;
  let browser: Browser;
  /** Run after the tests whatever happened: each closes what was opened. */
  const cleanup: Array<() => Promise<void>> = [];
  let page: Page;
  const dialogs: string[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    const { chromium } = await import('playwright-core');
    web = await startWebDaemon();
    cleanup.push(() => web.stop());
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    cleanup.unshift(() => browser.close());
    page = await browser.newPage({ viewport: { width: 1200, height: 700 } });
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      dialog.dismiss().catch(() => undefined);
    });
    page.on('pageerror', (error) => pageErrors.push(error.message));
    // A violation of the Content-Security-Policy shows in the console.
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(message.text());
    });
    await mkdir(RESULTS, { recursive: true });
  });

  afterAll(async () => {
    for (const step of cleanup.splice(0)) await step();
  });

  it('shows the run and follows its progress without reloading', async () => {
    await page.goto(web.url);
    const row = page.locator('#runs tr[data-run="1"]');
    await row.waitFor();
    expect(await row.locator('td.total').textContent()).toBe('5');
    // The two bad rows are finished; the three images wait at the gate.
    expect(await row.locator('td.done').textContent()).toBe('2');
    expect(await row.locator('.fraction').textContent()).toBe('2/5');
    expect(await page.locator('#watches tr[data-watch="w1"] td.last-poll').textContent()).not.toBe('not yet');
    await page.screenshot({ path: path.join(RESULTS, 'status-running.png'), fullPage: true });

    // Marks this document: a reload would lose the mark. (Browser-side code is given as text: this
    // file is type-checked without the DOM's types.)
    await page.evaluate('window.cogdMark = 42');
    await web.release();
    // Polled from here through locators: the page's CSP forbids the eval that waitForFunction uses.
    await expect.poll(() => row.locator('.fraction').textContent(), { timeout: 120_000, interval: 250 }).toBe('5/5');
    await expect.poll(() => row.getAttribute('data-state'), { timeout: 60_000, interval: 250 }).toBe('done');
    expect(await page.evaluate('window.cogdMark')).toBe(42);
    expect(await page.locator('#totals').textContent()).toMatch(/Total: 5 jobs; 3 completed, 2 failed/);
    const bar = page.locator('#runs tr[data-run="1"] .bar');
    expect(await bar.getAttribute('aria-valuenow')).toBe('5');
    // The converted part of the bar is drawn (widths are set through the CSSOM, allowed by the CSP).
    expect((await bar.locator('.ok').boundingBox())?.width).toBeGreaterThan(0);
    await page.screenshot({ path: path.join(RESULTS, 'status-page.png'), fullPage: true });
  });

  it('the run page filters to failed jobs, shows why, and renders a hostile key as text', async () => {
    await page.goto(web.url);
    await page.locator('#runs tr[data-run="1"] a').click();
    await page.waitForURL(/\/runs\/1$/);
    await page.locator('#jobs tbody tr').first().waitFor();
    expect(await page.locator('#jobs tbody tr').count()).toBe(5);

    await page.locator('#filter a[data-state="failed"]').click();
    await expect
      .poll(
        async () =>
          (await page.locator('#jobs tbody tr').count()) > 0 &&
          (await page.locator('#jobs tbody tr:not([data-state="failed"])').count()) === 0,
      )
      .toBe(true);
    expect(page.url()).toMatch(/\/runs\/1\?state=failed$/);
    const rows = page.locator('#jobs tbody tr');
    expect(await rows.count()).toBe(2);
    expect(await rows.nth(0).locator('td.error').textContent()).toMatch(/img\/missing\.tif does not exist/);
    expect(await rows.nth(1).locator('td.key').textContent()).toBe(HOSTILE_KEY);
    // Text, not markup: no image element was made from the key, and no script ran.
    expect(await page.locator('#jobs img').count()).toBe(0);
    await page.screenshot({ path: path.join(RESULTS, 'run-failed.png'), fullPage: true });

    // The job's own page, with its log tail.
    await rows.nth(1).locator('a').click();
    await page.waitForURL(/\/runs\/1\/jobs\/4$/);
    expect(await page.locator('td.key').textContent()).toBe(HOSTILE_KEY);
    expect(await page.locator('pre.log').first().textContent()).toMatch(/attempt 1 of 1/);
    expect(await page.locator('img').count()).toBe(0);
    expect(dialogs).toEqual([]);
    expect(pageErrors).toEqual([]);
  });

  it('is readable on a phone', async () => {
    const phone = await browser.newPage({ viewport: { width: 390, height: 800 }, isMobile: true });
    try {
      await phone.goto(`${web.url}runs/1`);
      await phone.locator('#jobs tbody tr').first().waitFor();
      // The page itself does not scroll sideways: wide tables scroll in their own box.
      const overflow = await phone.evaluate('document.documentElement.scrollWidth - window.innerWidth');
      expect(overflow).toBeLessThanOrEqual(1);
      await phone.screenshot({ path: path.join(RESULTS, 'run-phone.png'), fullPage: true });
    } finally {
      await phone.close();
    }
  });
});
