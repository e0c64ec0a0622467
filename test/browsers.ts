// One way to launch the browsers the tests and bench/browsers.ts drive:
// headless Chromium (Debian's /usr/bin/chromium, over CDP) and Firefox ESR
// (Debian's /usr/bin/firefox-esr, over WebDriver BiDi), both through
// puppeteer-core, each with a fresh profile (and a writable HOME for Firefox)
// removed afterwards. scripts/setup-browsers.sh installs both.
//
//   const why = browserMissing('firefox');            // '' when it can run
//   await withBrowser('firefox', async (page) => { await page.goto(url); ... });
//
// $CAIT_CHROMIUM / $CAIT_FIREFOX point at other executables. Pages that need
// SharedArrayBuffer (the threaded WASM backend) must be served cross-origin
// isolated (web/serve.ts sends COOP/COEP).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, LaunchOptions, Page } from 'puppeteer-core';

export type BrowserName = 'chromium' | 'firefox';
export const BROWSERS: BrowserName[] = ['chromium', 'firefox'];

export const EXECUTABLES: Record<BrowserName, string> = {
  chromium: process.env.CAIT_CHROMIUM ?? '/usr/bin/chromium',
  firefox: process.env.CAIT_FIREFOX ?? '/usr/bin/firefox-esr',
};

/** The Chromium flags CI uses (issue #9): software rendering, no network chatter, no first-run UI; --no-sandbox for root in containers. */
export const CHROMIUM_FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'];

/** Firefox preferences: no updates, telemetry or first-run pages (they would fetch from the network). */
const FIREFOX_PREFS: Record<string, unknown> = {
  'app.update.enabled': false, 'app.update.auto': false, 'browser.shell.checkDefaultBrowser': false,
  'datareporting.policy.dataSubmissionEnabled': false, 'toolkit.telemetry.enabled': false,
  'browser.startup.homepage_override.mstone': 'ignore', 'browser.aboutwelcome.enabled': false,
  'extensions.update.enabled': false, 'network.captive-portal-service.enabled': false,
};

type Puppeteer = typeof import('puppeteer-core');
let pup: Puppeteer | null | undefined;
async function puppeteer(): Promise<Puppeteer | null> {
  if (pup === undefined) {
    try { pup = ((await import('puppeteer-core')) as unknown as { default: Puppeteer }).default; } catch { pup = null; }
  }
  return pup;
}

/** Why `name` cannot be driven here ('' when it can): a missing executable or a missing puppeteer-core. */
export async function browserMissing(name: BrowserName): Promise<string> {
  if (!existsSync(EXECUTABLES[name])) {
    return `no ${name} at ${EXECUTABLES[name]} (scripts/setup-browsers.sh installs Debian's; $CAIT_${name === 'chromium' ? 'CHROMIUM' : 'FIREFOX'} points elsewhere)`;
  }
  if (!(await puppeteer())) return 'puppeteer-core is not installed (it is a devDependency: npm ci)';
  return '';
}

export interface BrowserOptions {
  /** Extra Chromium flags (ignored for Firefox). */
  args?: string[];
  /** Drop these default Chromium flags (e.g. '--disable-gpu' for WebGPU). */
  dropArgs?: string[];
  /** Extra Firefox preferences. */
  prefs?: Record<string, unknown>;
  viewport?: { width: number; height: number };
  /** Fail the run if the page throws an uncaught error (default true). */
  pageErrors?: boolean;
  /** Default timeout for waits, ms (default 60 s). */
  timeout?: number;
}

export interface Launched { browser: Browser; page: Page; name: BrowserName; version: string; errors: string[] }

/** Launches `name` headless with a fresh profile; close with `closeBrowser`. */
export async function launchBrowser(name: BrowserName, o: BrowserOptions = {}): Promise<Launched & { dir: string }> {
  const why = await browserMissing(name);
  if (why) throw new Error(why);
  const p = (await puppeteer())!;
  const dir = mkdtempSync(join(tmpdir(), `cait-${name}-`));
  const opts: LaunchOptions = {
    executablePath: EXECUTABLES[name], headless: true, userDataDir: join(dir, 'profile'),
    defaultViewport: o.viewport ?? { width: 1200, height: 900 }, timeout: 60_000, protocolTimeout: 600_000,
  };
  if (name === 'chromium') {
    opts.browser = 'chrome';
    opts.args = [...CHROMIUM_FLAGS.filter((f) => !o.dropArgs?.includes(f)), ...(o.args ?? [])];
  } else {
    // Firefox writes caches and a few files under $HOME: a fresh, writable one
    opts.browser = 'firefox';
    opts.extraPrefsFirefox = { ...FIREFOX_PREFS, ...(o.prefs ?? {}) };
    // puppeteer's viewport emulation needs a BiDi command Firefox 140 lacks (emulation.setScreenOrientationOverride):
    // size the headless window instead (MOZ_HEADLESS_WIDTH/HEIGHT)
    const v = o.viewport ?? { width: 1200, height: 900 };
    opts.defaultViewport = null;
    opts.env = { ...process.env, HOME: dir, XDG_CACHE_HOME: join(dir, 'cache'), MOZ_CRASHREPORTER_DISABLE: '1', MOZ_HEADLESS_WIDTH: String(v.width), MOZ_HEADLESS_HEIGHT: String(v.height) } as Record<string, string>;
  }
  let browser: Browser;
  try { browser = await p.launch(opts); } catch (e) { rmSync(dir, { recursive: true, force: true }); throw e; }
  const errors: string[] = [];
  try {
    const page = (await browser.pages())[0] ?? await browser.newPage();
    page.setDefaultTimeout(o.timeout ?? 60_000);
    page.on('pageerror', (e) => errors.push(String(e)));
    return { browser, page, name, version: await browser.version(), errors, dir };
  } catch (e) {
    await browser.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

export async function closeBrowser(l: { browser: Browser; dir: string }): Promise<void> {
  await l.browser.close().catch(() => {});
  rmSync(l.dir, { recursive: true, force: true });
}

/**
 * Runs `fn` with a page of a fresh headless `name`, closes the browser and
 * removes its profile afterwards; throws if the page had uncaught errors
 * (unless `pageErrors: false`).
 */
export async function withBrowser<T>(name: BrowserName, fn: (page: Page, b: Launched) => Promise<T>, o: BrowserOptions = {}): Promise<T> {
  const l = await launchBrowser(name, o);
  try {
    const r = await fn(l.page, l);
    if ((o.pageErrors ?? true) && l.errors.length) throw new Error(`${name}: errors on the page:\n${l.errors.join('\n')}`);
    return r;
  } finally {
    await closeBrowser(l);
  }
}
