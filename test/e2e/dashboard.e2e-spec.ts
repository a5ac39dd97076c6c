/**
 * The dashboard at `/` in a real browser: playwright-core driving Debian's chromium (.ci/run installs
 * it), against the real app running the embedded demo.
 */
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { chromium, type Browser, type ConsoleMessage, type Page } from 'playwright-core';
import { createApp } from '../../src/app.factory.js';
import { loadConfig } from '../../src/config/config.loader.js';
import { prepareDemo } from '../../src/demo/demo-models.js';
import { BackendStartupService } from '../../src/models/backend-startup.service.js';
import { FakeClock } from '../support/fake-clock.js';

const ADMIN = 'dashboard-admin-token';
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// The README's picture is refreshed only on request (UPDATE_SCREENSHOT=1), so a test run leaves the tree clean.
const SCREENSHOT = process.env.UPDATE_SCREENSHOT
  ? join(process.cwd(), 'docs', 'img', 'dashboard.png')
  : join(mkdtempSync(join(tmpdir(), 'mp-dashboard-')), 'dashboard.png');

/** Seconds shown by the countdown cell ("9m 58s" or "42s"). */
function parseSeconds(text: string): number {
  const m = /^(?:(\d+)m )?(\d+)s$/.exec(text.trim());
  if (!m) throw new Error(`not a countdown: '${text}'`);
  return Number(m[1] ?? 0) * 60 + Number(m[2]);
}

describe('dashboard at / in chromium', () => {
  const clock = new FakeClock();
  let app: NestFastifyApplication;
  let url: string;
  let browser: Browser;
  let page: Page;
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} missing: apt-get install -y chromium (.ci/run does)`);
    const cwd = mkdtempSync(join(tmpdir(), 'modelplane-dashboard-'));
    const config = loadConfig({ argv: [], env: { MODELPLANE_ADMIN_TOKEN: ADMIN, MODELPLANE_HOST: '127.0.0.1' }, cwd });
    await prepareDemo(config);
    app = await createApp(config, { clock, logger: false });
    await app.listen({ host: '127.0.0.1', port: 0 });
    await app.get(BackendStartupService).settled();
    url = `http://127.0.0.1:${(app.getHttpServer().address() as { port: number }).port}`;
    // Root in CI containers: chromium's sandbox needs user namespaces it does not get there.
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    page.on('console', (m: ConsoleMessage) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (err) => consoleErrors.push(err.message));
    await page.goto(url);
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  it('shows backends with readiness and the demo models loaded', async () => {
    await page.locator('#loaded tr[data-model="demo-chat"]').waitFor();
    await page.locator('#loaded tr[data-model="demo-image"]').waitFor();
    const backends = await page.locator('#backends tbody tr').allInnerTexts();
    expect(backends.join('\n')).toMatch(/local-llm\s+llama-cpp\s+ready/);
    expect(backends.join('\n')).toMatch(/local-image\s+onnx-image\s+ready/);
    expect(await page.locator('#readiness').innerText()).toBe('ready');
    const title = await page.title();
    expect(title).toBe('modelplane');
  });

  it('counts down to idle unload as time passes on the server', async () => {
    const cell = page.locator('#loaded tr[data-model="demo-chat"] .countdown');
    const before = parseSeconds(await cell.innerText());
    expect(before).toBeGreaterThan(500);
    clock.advance(120_000);
    // The next poll shows the server's countdown two minutes on.
    for (let i = 0; i < 100 && parseSeconds(await cell.innerText()) > before - 115; i++) await page.waitForTimeout(100);
    expect(parseSeconds(await cell.innerText())).toBeLessThanOrEqual(before - 115);
  });

  it('shows the eviction plan for a chosen model', async () => {
    await page.locator('#plan-model').selectOption('demo-embed');
    await page.locator('#plan-form button').click();
    await page.locator('#plan p').waitFor();
    expect(await page.locator('#plan').innerText()).toContain('demo-embed');
  });

  it('keeps a screenshot for the README', async () => {
    mkdirSync(dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(existsSync(SCREENSHOT)).toBe(true);
  });

  it('a wrong admin token shows an error and leaves the model loaded', async () => {
    await page.locator('#token').fill('not-the-admin-token');
    await page.locator('#token-form button[type="submit"]').click();
    await page.locator('#loaded tr[data-model="demo-chat"] button').click();
    await page.locator('#error').waitFor({ state: 'visible' });
    expect(await page.locator('#error').innerText()).toMatch(/refused.*admin bearer token/i);
    expect(await page.locator('#loaded tr[data-model="demo-chat"]').count()).toBe(1);
    // The browser itself reports the 401 response; nothing else may have reached the console.
    expect(consoleErrors.filter((e) => !/status of 401/.test(e))).toEqual([]);
    consoleErrors.length = 0;
  });

  it('an unload with the admin token removes the model from the page within 2 s and the feed shows it', async () => {
    await page.locator('#token').fill(ADMIN);
    await page.locator('#token-form button[type="submit"]').click();
    await page.locator('#loaded tr[data-model="demo-chat"] button').click();
    await page.locator('#loaded tr[data-model="demo-chat"]').waitFor({ state: 'detached', timeout: 2000 });
    expect(await page.locator('#error').isHidden()).toBe(true);
    await page.locator('#events li', { hasText: 'model.unloaded demo-chat' }).waitFor();
    // The token lives in this tab's session storage only.
    expect(await page.evaluate("sessionStorage.getItem('modelplane.adminToken')")).toBe(ADMIN);
    expect(await page.evaluate('localStorage.length')).toBe(0);
  });

  it('is usable at 360 px wide without horizontal page scroll, with no console errors', async () => {
    await page.setViewportSize({ width: 360, height: 740 });
    await page.locator('#loaded tr[data-model="demo-image"]').waitFor();
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(360);
    expect(await page.locator('#token').isVisible()).toBe(true);
    expect(consoleErrors).toEqual([]);
  });
});
