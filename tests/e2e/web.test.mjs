// End-to-end test of the web page: the real ditherd, Debian's Chromium driven by playwright-core.
// Run by scripts/e2e.sh, which installs what it needs and passes:
//   DITHERD    the ditherd binary
//   E2E_PHOTO  a real photo (JPEG, under 4 MB and 4 MP)
//   E2E_OUT    where the screenshots and the server's log go
// Every step saves a screenshot (E2E_OUT/NN-name.png): look at them after a change to the page.
// API keys come from the dither-keys program next to ditherd, run on the test's data directory.
import assert from 'node:assert/strict';
import {spawn, spawnSync} from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {after, before, test} from 'node:test';

import {createRequire} from 'node:module';
import {chromium} from 'playwright-core';

import {isGif, readGif, writeGif} from './gif.mjs';
import {greyPng, hex, isPng, readPng} from './png.mjs';

const DITHERD = process.env.DITHERD;
const DITHER_KEYS = DITHERD && path.join(path.dirname(DITHERD), 'dither-keys');
const PHOTO = process.env.E2E_PHOTO;
const OUT = process.env.E2E_OUT || fs.mkdtempSync(path.join(os.tmpdir(), 'dither-e2e-out-'));
const MAX_UPLOAD_BYTES = 4 * 1024 * 1024;
const MAX_PIXELS = 4_000_000;
const SLOW = Number(process.env.E2E_TIMEOUT_SCALE || 1);

// EGA's 16 colours, the palette the test asks for (docs/API.md: `ega`).
const EGA = new Set(('000000 0000aa 00aa00 00aaaa aa0000 aa00aa aa5500 aaaaaa ' +
                     '555555 5555ff 55ff55 55ffff ff5555 ff55ff ffff55 ffffff').split(' ').map((h) => '#' + h));
// The automatic dither's palette: levels:2, the 8 corners of the RGB cube.
const CORNERS8 = new Set(['#000000', '#0000ff', '#00ff00', '#00ffff', '#ff0000', '#ff00ff', '#ffff00', '#ffffff']);

let server;
let base;
let browser;
let dataDir;
let shot = 0;

// A port that was free a moment ago, below the kernel's ephemeral range (where an outgoing
// connection could take it before ditherd binds it) and the other suites' fixed ports (as
// tests/functional/harness.py).
async function freePort() {
  for (let attempt = 0; attempt < 500; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 6000);
    const free = await new Promise((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port');
}

async function waitFor(check, what, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs * SLOW;
  let last;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

// A request from outside any browser: no session, no key.
async function api(pathname, init) {
  const r = await fetch(new URL(pathname, base), init);
  const text = await r.text();
  return {status: r.status, body: text ? JSON.parse(text) : null};
}

// A request made inside a page, as its own script makes them: with that browser's session cookie,
// and with the headers given (an API key). `pathname` is relative to the page.
async function pageApi(page, pathname, {method = 'GET', headers = {}} = {}) {
  return page.evaluate(async ({pathname, method, headers}) => {
    const r = await fetch(pathname, {method, headers, credentials: 'same-origin'});
    const text = await r.text();
    let body = text;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      // not JSON: the text
    }
    return {status: r.status, body};
  }, {pathname, method, headers});
}

// An upload made inside a page (multipart, as the page sends it).
async function pageUpload(page, name, bytes, type = 'image/png') {
  return page.evaluate(async ({name, b64, type}) => {
    const data = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const form = new FormData();
    form.append('file', new Blob([data], {type}), name);
    const r = await fetch('api/images', {method: 'POST', body: form});
    const text = await r.text();
    return {status: r.status, body: text ? JSON.parse(text) : null};
  }, {name, b64: Buffer.from(bytes).toString('base64'), type});
}

// The key tool, on the running server's data directory (docs/SECURITY.md).
function ditherKeys(...args) {
  const r = spawnSync(DITHER_KEYS, args, {env: {...process.env, DITHER_DATA_DIR: dataDir},
                                         encoding: 'utf8', timeout: 30000 * SLOW});
  assert.equal(r.status, 0, `dither-keys ${args.join(' ')} failed: ${r.error || ''}${r.stderr}`);
  return r.stdout;
}

// Chooses the API key on the page: "Use an API key", paste, Use.
async function useKey(page, key) {
  await page.locator('#key-box > summary').click();
  await page.fill('#api-key', key);
  await page.locator('#key-use').click();
}

async function screenshot(page, name) {
  shot += 1;
  const file = path.join(OUT, `${String(shot).padStart(2, '0')}-${name}.png`);
  await page.screenshot({path: file, fullPage: true});
  return file;
}

// What a page must never do: reach anything but the gateway, or log a script error.
function watch(page) {
  const seen = {external: [], errors: []};
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(base) && !u.startsWith('data:') && !u.startsWith('blob:')) seen.external.push(u);
  });
  page.on('pageerror', (e) => seen.errors.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) seen.errors.push(m.text());
  });
  page.on('dialog', (d) => d.accept());
  return seen;
}

// WCAG 2.1 A and AA rules of axe-core (contrast, names, labels, roles, keyboard...) on what the
// page shows now.
const AXE = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
async function assertAccessible(page, where) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE);
  const result = await page.evaluate(() => window.axe.run(document, {
    runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},
  }));
  const problems = result.violations.map(
      (v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  assert.deepEqual(problems, [], `accessibility problems on ${where}`);
}

function colours(bytes) {
  const png = readPng(bytes);
  const set = new Set();
  for (const p of png.pixels()) set.add(hex(p));
  return {png, set};
}

before(async () => {
  assert.ok(DITHERD && fs.existsSync(DITHERD), 'DITHERD must name the ditherd binary');
  assert.ok(PHOTO && fs.existsSync(PHOTO), 'E2E_PHOTO must name a photo');
  assert.ok(fs.existsSync(DITHER_KEYS), `dither-keys must be next to ditherd (${DITHER_KEYS})`);
  fs.mkdirSync(OUT, {recursive: true});
  for (const f of fs.readdirSync(OUT)) if (f.endsWith('.png')) fs.rmSync(path.join(OUT, f));
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dither-e2e-'));
  const ports = new Set();
  while (ports.size < 4) ports.add(await freePort());
  const [port, upload, dither, notify] = [...ports];
  base = `http://127.0.0.1:${port}/`;
  const log = fs.openSync(path.join(OUT, 'ditherd.log'), 'w');
  server = spawn(DITHERD, [], {
    env: {
      ...process.env, DITHER_DATA_DIR: dataDir, DITHER_HOST: '127.0.0.1', DITHER_PORT: String(port),
      UPLOAD_SERVICE_PORT: String(upload), DITHER_SERVICE_PORT: String(dither),
      NOTIFY_SERVICE_PORT: String(notify), MAX_UPLOAD_BYTES: String(MAX_UPLOAD_BYTES),
      MAX_PIXELS: String(MAX_PIXELS),
      // The paging test sends 25 uploads at once from one session: a minute's budget at once
      // (the default burst is 10 s of it; tests/functional/test_limits.py tests that).
      RATE_LIMIT_BURST_SECONDS: '60',
    },
    stdio: ['ignore', log, log],
  });
  await waitFor(async () => (await fetch(new URL('health', base))).ok, 'ditherd to be healthy');
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // Playwright gives every launch a new, empty profile directory (--user-data-dir).
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

async function stopServer() {
  if (!server) return null;
  if (server.exitCode === null && server.signalCode === null) {
    const exited = new Promise((r) => server.once('exit', (code, signal) => r({code, signal})));
    server.kill('SIGTERM');
    return exited;
  }
  return {code: server.exitCode, signal: server.signalCode};
}

after(async () => {
  await browser?.close();
  await stopServer();
  if (dataDir) fs.rmSync(dataDir, {recursive: true, force: true});
  console.log(`screenshots: ${OUT}`);
});

test('the page: upload, watch, dither, compare, download, delete', async (t) => {
  const context = await browser.newContext({viewport: {width: 1280, height: 900}, acceptDownloads: true});
  context.setDefaultTimeout(30000 * SLOW);
  const page = await context.newPage();
  const seen = watch(page);
  const photo = fs.readFileSync(PHOTO);
  const photoName = path.basename(PHOTO);
  let uuid;
  let requested;

  await t.test('an empty gallery', async () => {
    const response = await page.goto(base);
    assert.equal(response.status(), 200);
    assert.match(response.headers()['content-security-policy'], /default-src 'none'/);
    await page.getByText('No images yet').waitFor();
    assert.equal(await page.title(), 'Dither');
    // The page made this browser a session of its own, and says so.
    const cookie = (await context.cookies()).find((c) => c.name === 'dither_session');
    assert.ok(cookie, 'GET / set no dither_session cookie');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Lax');
    const me = (await pageApi(page, 'api/me')).body;
    assert.equal(me.via, 'session');
    await page.locator('#who-text', {hasText: 'This browser\'s images (session'}).waitFor();
    assert.equal(await page.textContent('#who-text'),
                 `This browser's images (session ${me.owner.replace(/^session:/, '')})`);
    await screenshot(page, 'empty');
  });

  await t.test('every rejection is explained and leaves nothing', async () => {
    const uploads = page.locator('#uploads li');
    // Dropped on the drop zone, as a user drags a file from the desktop.
    await page.evaluate(() => {
      const data = new DataTransfer();
      data.items.add(new File(['just some text, not a picture\n'], 'notes.png', {type: 'image/png'}));
      document.getElementById('drop').dispatchEvent(
          new DragEvent('drop', {dataTransfer: data, bubbles: true, cancelable: true}));
    });
    await uploads.filter({hasText: 'notes.png'}).getByText('Not an image this service accepts').waitFor();

    const files = page.locator('#files');
    await files.setInputFiles({name: 'cut.jpg', mimeType: 'image/jpeg', buffer: photo.subarray(0, photo.length >> 1)});
    await uploads.filter({hasText: 'cut.jpg'}).getByText('cannot be decoded').waitFor();

    await files.setInputFiles({name: 'huge.png', mimeType: 'image/png', buffer: greyPng(2500, 2000)});
    await uploads.filter({hasText: 'huge.png'}).getByText('Too many pixels').waitFor();

    await files.setInputFiles({name: 'big.jpg', mimeType: 'image/jpeg', buffer: Buffer.alloc(MAX_UPLOAD_BYTES + 1024, 1)});
    await uploads.filter({hasText: 'big.jpg'}).getByText('Too large: the limit is 4.0 MB per file.').waitFor();

    await page.fill('#email', 'someone@localhost');
    await files.setInputFiles({name: photoName, mimeType: 'image/jpeg', buffer: photo});
    await uploads.filter({hasText: photoName}).getByText(/e-?mail|address/i).waitFor();
    assert.equal(await uploads.locator('[role="alert"]').count(), 5);

    const listed = await pageApi(page, 'api/images');
    assert.equal(listed.body.items.length, 0, 'a rejected upload was stored');
    await screenshot(page, 'rejections');
    await assertAccessible(page, 'the gallery with rejected uploads');
  });

  await t.test('upload a photo with an e-mail address and watch it finish', async () => {
    await page.click('#clear-uploads');
    assert.equal(await page.locator('#uploads li').count(), 0);
    await page.fill('#email', 'reader@example.org');
    await page.locator('#files').setInputFiles({name: photoName, mimeType: 'image/jpeg', buffer: photo});
    const row = page.locator('#uploads li', {hasText: photoName});
    await row.getByRole('link', {name: 'Open'}).waitFor();
    assert.equal(await row.locator('progress').evaluate((p) => p.value), 1);
    const card = page.locator('#gallery li', {hasText: photoName});
    await card.waitFor();
    await screenshot(page, 'uploaded');
    // Live: the card turns FINISHED without a reload.
    await card.locator('.badge.FINISHED').waitFor({timeout: 60000 * SLOW});
    await row.getByText('Uploaded and dithered').waitFor();
    uuid = (await card.locator('a').getAttribute('href')).split('/').pop();
    const record = await pageApi(page, `api/images/${uuid}`);
    assert.equal(record.body.status, 'FINISHED');
    // Files are reached only through the signed links of the API's answers.
    assert.match(record.body.url, /\/files\/originals\/[^?]+\?(.+&)?sig=/);
    assert.match(record.body.url, /[?&]expires=\d+/);
    assert.equal((await fetch(record.body.url)).status, 200);
    assert.equal((await fetch(record.body.url.split('?')[0])).status, 403, 'an unsigned link opened a file');
    // The card shows the gateway's preview, not the 1600-px original.
    await page.waitForFunction(() => {
      const i = document.querySelector('#gallery li img');
      return i && i.complete && i.naturalWidth > 0;
    });
    const thumb = await card.locator('img').evaluate((i) => ({src: i.src, w: i.naturalWidth, h: i.naturalHeight}));
    assert.match(thumb.src, /\/thumbnails\/originals\/[^?]+\?/);
    assert.equal(new URL(thumb.src).search, new URL(record.body.url).search, 'the thumbnail is not signed as its file');
    assert.deepEqual([thumb.w, thumb.h], [400, 250]);
    await screenshot(page, 'finished');
    await assertAccessible(page, 'the gallery');
  });

  await t.test('open the image from the keyboard', async () => {
    await page.locator('#gallery li a').first().focus();
    await page.keyboard.press('Enter');
    await page.locator('#image-view').waitFor();
    assert.equal(await page.evaluate(() => document.activeElement.id), 'image-title');
    assert.equal(await page.textContent('#image-title'), photoName);
    await page.locator('#dithers li .badge.FINISHED').first().waitFor();
    assert.equal(await page.locator('#dithers li').count(), 1);
    await page.waitForFunction(() => document.getElementById('cmp-dither').naturalWidth > 0);
    await screenshot(page, 'image');
  });

  await t.test('the form is made from GET api/options, presets first', async () => {
    // Every option of the table (the request's options, and the path's channels) has its control,
    // of the kind its description asks for, labelled and filled with its default.
    const options = (await pageApi(page, 'api/options')).body.options;
    const wanted = options.filter((o) => o.in === 'query' || o.in === 'path');
    assert.ok(wanted.length >= 10, `only ${wanted.length} options in GET api/options`);
    assert.ok(wanted.some((o) => o.name === 'channels' && o.in === 'path'));
    const form = page.locator('#dither-form');
    await form.locator('[data-option="algorithm"]').waitFor({state: 'attached'});
    for (const o of wanted) {
      const control = form.locator(`[data-option="${o.name}"]`);
      assert.equal(await control.count(), 1, `no control for the option ${o.name}`);
      const facts = await control.evaluate((c) => ({
        tag: c.tagName.toLowerCase(), type: c.type, value: c.value, checked: c.checked,
        label: c.labels && c.labels.length ? c.labels[0].textContent : '',
        options: c.tagName === 'SELECT' ? Array.from(c.options, (x) => x.value) : null,
        list: c.list ? Array.from(c.list.options, (x) => x.value) : null,
        min: c.min, max: c.max,
      }));
      const human = o.name.replace(/_/g, ' ');
      assert.match(facts.label.toLowerCase(), new RegExp(human), `${o.name} is not labelled with its name`);
      const def = o.default === undefined ? '' : String(o.default);
      if (o.type === 'boolean') {
        assert.equal(facts.type, 'checkbox', `${o.name}: a check box`);
        assert.equal(facts.checked, def === 'true', `${o.name}: its default`);
      } else if (o.choices) {
        assert.equal(facts.tag, 'select', `${o.name}: a list of its choices`);
        assert.deepEqual(facts.options, o.choices.map((c) => String(c.value)));
        assert.equal(facts.value, def, `${o.name}: its default`);
      } else if (o.suggestions) {
        assert.equal(facts.type, 'text', `${o.name}: free text`);
        assert.deepEqual(facts.list, o.suggestions.map((c) => String(c.value)), `${o.name}: its suggestions`);
        assert.equal(facts.value, def);
      } else if (o.type === 'integer' || o.type === 'number') {
        assert.ok(['number', 'range'].includes(facts.type), `${o.name}: a number (${facts.type})`);
        assert.equal(Number(facts.value), Number(def), `${o.name}: its default`);
        if (o.minimum !== undefined) assert.equal(Number(facts.min), o.minimum, `${o.name}: its minimum`);
        if (o.maximum !== undefined) assert.equal(Number(facts.max), o.maximum, `${o.name}: its maximum`);
      }
    }
    // The presets come first: the built-in ones, then the caller's own (none yet), then Custom.
    const presets = (await pageApi(page, 'api/presets')).body.items;
    assert.ok(presets.length >= 1 && presets.every((p) => p.builtin));
    const rows = page.locator('#preset-list .preset');
    await rows.nth(presets.length).waitFor();
    assert.deepEqual(await rows.evaluateAll((rs) => rs.map((r) => r.dataset.preset)),
                     [...presets.map((p) => p.name), '']);
    for (const p of presets) {
      assert.equal(await page.locator(`#preset-list [data-preset="${p.name}"] .preset-desc`).textContent(), p.description);
    }
    assert.equal(await page.locator('#preset-list input[name="preset"]:checked').getAttribute('value'), presets[0].name);
    assert.equal(await page.locator('#custom-panel').isHidden(), true, 'the options show before Custom is chosen');
    await screenshot(page, 'presets');
  });

  await t.test('a preset: the dither has its options', async () => {
    const presets = (await pageApi(page, 'api/presets')).body.items;
    const preset = presets.find((p) => p.name === 'gameboy') || presets[0];
    await page.getByLabel(preset.name, {exact: true}).check();
    const [sent] = await Promise.all([
      page.waitForRequest((r) => r.method() === 'POST' && r.url().includes('/api/dithers/')),
      page.click('#dither-submit')]);
    assert.deepEqual(sent.postDataJSON(), {preset: preset.name});
    await page.getByText(new RegExp(`Dither #\\d+ requested with the preset ${preset.name}`)).waitFor();
    const id = Number(/#(\d+)/.exec(await page.textContent('#form-message'))[1]);
    const item = page.locator(`#dithers li[data-id="${id}"]`);
    await item.locator('.badge.FINISHED').waitFor({timeout: 60000 * SLOW});
    const dither = (await pageApi(page, `api/dithers/${uuid}`)).body.items.find((d) => d.id === id);
    assert.equal(dither.algorithm, preset.options.algorithm);
    assert.equal(dither.palette, preset.options.palette);
    for (const [name, value] of Object.entries(preset.options)) {
      assert.equal(dither.options[name], value, `the preset's ${name}`);
    }
    assert.match(await item.textContent(), new RegExp(preset.options.algorithm));
  });

  await t.test('custom options: Atkinson, EGA, serpentine', async () => {
    await page.getByLabel('Custom', {exact: true}).check();
    await page.locator('#custom-panel').waitFor();
    // Custom starts from the preset chosen before.
    await page.locator('#custom-note', {hasText: 'Starting from the preset gameboy'}).waitFor();
    assert.equal(await page.inputValue('#opt-palette'), 'gameboy');
    assert.equal(await page.locator('[data-option-field="bayer_size"]').isVisible(), true);
    await page.selectOption('[data-option="algorithm"]', 'atkinson');
    // An option of one algorithm only shows with it.
    assert.equal(await page.locator('[data-option-field="bayer_size"]').isHidden(), true);
    await page.fill('[data-option="palette"]', 'ega');
    await page.check('[data-option="serpentine"]');
    await screenshot(page, 'custom');
    const [sent] = await Promise.all([
      page.waitForRequest((r) => r.method() === 'POST' && r.url().includes('/api/dithers/')),
      page.click('#dither-submit')]);
    // Only what differs from the defaults, typed as JSON; the path's channels is the default.
    assert.deepEqual(sent.postDataJSON(), {algorithm: 'atkinson', palette: 'ega', serpentine: true});
    assert.match(sent.url(), new RegExp(`/api/dithers/${uuid}/2$`));
    await page.getByText(/Dither #\d+ requested/).waitFor();
    requested = Number(/#(\d+)/.exec(await page.textContent('#form-message'))[1]);
    const item = page.locator(`#dithers li[data-id="${requested}"]`);
    await item.locator('.badge.FINISHED').waitFor({timeout: 60000 * SLOW});
    assert.equal(await page.locator('#dithers li').count(), 3);
    assert.match(await item.textContent(), /atkinson/);
    assert.match(await item.textContent(), /ega/);
    assert.match(await item.textContent(), /serpentine/);
    // The comparison switches to the new dither by itself.
    await page.waitForFunction((id) => document.getElementById('cmp-dither').alt.startsWith(`Dither #${id}`), requested);
    await page.waitForFunction(() => document.getElementById('cmp-dither').complete &&
                                     document.getElementById('cmp-dither').naturalWidth > 0);
    const dither = (await pageApi(page, `api/dithers/${uuid}`)).body.items.find((d) => d.id === requested);
    assert.equal(dither.palette, 'ega');
    assert.equal(dither.algorithm, 'atkinson');
    assert.equal(dither.options.serpentine, 'true');
    await screenshot(page, 'new-dither');
    await assertAccessible(page, 'the image page with the custom options');
  });

  await t.test('a bad option is explained', async () => {
    // Out of the table's bounds: said before anything is sent, at the control.
    await page.fill('[data-option="channels"]', '300');
    await page.click('#dither-submit');
    await page.locator('#form-message.error').getByText('Channels must be a whole number from 2 to 256.').waitFor();
    assert.equal(await page.evaluate(() => document.activeElement.dataset.option), 'channels');
    assert.equal(await page.getAttribute('[data-option="channels"]', 'aria-invalid'), 'true');
    await page.fill('[data-option="channels"]', '2');
    // Refused by the service: its reason.
    await page.fill('[data-option="palette"]', 'levels:300');
    await page.click('#dither-submit');
    await page.locator('#form-message.error').getByText(/Not accepted: .*palette.*from 2 to 256/).waitFor();
    await page.fill('[data-option="palette"]', 'ega');
  });

  await t.test("save the options as a preset of one's own, choose it, delete it", async () => {
    await page.locator('#save-preset > summary').click();
    await page.fill('#preset-name', 'Not A Name');
    await page.click('#preset-save');
    await page.locator('#preset-message.error').getByText('lower-case letters').waitFor();
    await page.fill('#preset-name', 'gameboy');
    await page.click('#preset-save');
    await page.locator('#preset-message.error').getByText('built-in preset').waitFor();
    await page.fill('#preset-name', 'e2e-look');
    await page.fill('#preset-description', 'Atkinson on EGA, serpentine');
    await page.click('#preset-save');
    await page.locator('#preset-message', {hasText: 'Saved the preset e2e-look'}).waitFor();
    const row = page.locator('#preset-list [data-preset="e2e-look"]');
    await row.waitFor();
    assert.match(await row.textContent(), /yours/);
    assert.match(await row.textContent(), /Atkinson on EGA, serpentine/);
    const saved = (await pageApi(page, 'api/presets')).body.items.find((p) => p.name === 'e2e-look');
    assert.equal(saved.builtin, false);
    assert.equal(saved.options.algorithm, 'atkinson');
    assert.equal(saved.options.palette, 'ega');
    assert.equal(saved.options.serpentine, 'true');
    // Still Custom: the options stay as they were.
    assert.equal(await page.locator('#custom-panel').isVisible(), true);
    await screenshot(page, 'preset-saved');
    await assertAccessible(page, "the form with a preset of one's own");

    await page.getByLabel('e2e-look', {exact: true}).check();
    assert.equal(await page.locator('#custom-panel').isHidden(), true);
    await row.getByRole('button', {name: 'Delete preset e2e-look'}).click();
    await row.waitFor({state: 'detached'});
    assert.equal((await pageApi(page, 'api/presets')).body.items.some((p) => p.name === 'e2e-look'), false);
    // The choice falls back to the first preset.
    assert.equal(await page.locator('#preset-list input[name="preset"]:checked').count(), 1);
    await page.getByLabel('Custom', {exact: true}).check();
  });

  await t.test('compare: slider, side by side, zoomed pixel-exact', async () => {
    const split = page.locator('#split');
    await split.focus();
    for (let i = 0; i < 10; i++) await page.keyboard.press('ArrowLeft');
    assert.equal(await page.locator('#stage-inner').evaluate((e) => e.style.getPropertyValue('--split')), '40%');
    await screenshot(page, 'compare-slider');

    // 4x: every image pixel is a 4x4 block of screen pixels, with no smoothing. Shown dither-only
    // (split at 0), a screenshot of the stage then holds nothing but EGA colours.
    await page.selectOption('#zoom', '4');
    await split.focus();
    await page.keyboard.press('Home');
    const geometry = await page.evaluate(() => {
      const img = document.getElementById('cmp-dither');
      return {
        rendering: getComputedStyle(img).imageRendering,
        width: img.getBoundingClientRect().width,
        natural: img.naturalWidth,
        dpr: window.devicePixelRatio,
      };
    });
    assert.equal(geometry.rendering, 'pixelated');
    assert.equal(geometry.width, (geometry.natural * 4) / geometry.dpr);
    assert.match(await page.textContent('#compare-caption'), /4×, pixel-exact/);
    const stage = await page.locator('#stage').boundingBox();
    const crop = await page.screenshot({
      clip: {x: stage.x + stage.width * 0.3, y: stage.y + 60, width: 160, height: 120},
    });
    const {set} = colours(crop);
    const stray = [...set].filter((c) => !EGA.has(c));
    assert.deepEqual(stray, [], 'the zoomed dither shows colours outside EGA: it was smoothed');
    assert.ok(set.size >= 2, 'the crop shows a single colour');
    await screenshot(page, 'compare-zoom4');

    await page.selectOption('#zoom', 'fit');
    await split.focus();
    await page.keyboard.press('End');
    await page.getByText('Side by side', {exact: true}).click();
    const panes = await page.$$eval('#stage .pane', (ps) => ps.map((p) => p.getBoundingClientRect().toJSON()));
    assert.equal(panes.length, 2);
    assert.ok(panes[1].left >= panes[0].right - 1 || panes[1].top >= panes[0].bottom - 1, 'the panes overlap');
    await screenshot(page, 'compare-side');
    await page.getByText('Slider', {exact: true}).click();
  });

  await t.test('download the dither: a PNG whose colours are all EGA', async () => {
    const item = page.locator(`#dithers li[data-id="${requested}"]`);
    const [download] = await Promise.all([page.waitForEvent('download'),
                                          item.getByRole('link', {name: `Download dither #${requested}`}).click()]);
    assert.match(download.suggestedFilename(), new RegExp(`-dither-${requested}\\.png$`));
    const file = path.join(OUT, download.suggestedFilename());
    await download.saveAs(file);
    const bytes = fs.readFileSync(file);
    assert.ok(isPng(bytes), 'the download is not a PNG');
    const {png, set} = colours(bytes);
    const record = await pageApi(page, `api/images/${uuid}`);
    assert.equal(png.width, record.body.width);
    assert.equal(png.height, record.body.height);
    const stray = [...set].filter((c) => !EGA.has(c));
    assert.deepEqual(stray, [], 'colours outside the EGA palette');
    assert.ok(set.size >= 4, `only ${set.size} colours used`);
    fs.rmSync(file);

    // And the automatic one: the prototype's 8 colours.
    const auto = (await pageApi(page, `api/dithers/${uuid}`)).body.items.find((d) => d.source === 'auto');
    const autoItem = page.locator(`#dithers li[data-id="${auto.id}"]`);
    const [second] = await Promise.all([page.waitForEvent('download'),
                                        autoItem.getByRole('link', {name: /Download/}).click()]);
    const autoColours = colours(fs.readFileSync(await second.path())).set;
    assert.deepEqual([...autoColours].filter((c) => !CORNERS8.has(c)), []);
  });

  await t.test('a phone-sized screen', async () => {
    const phone = await browser.newContext({viewport: {width: 390, height: 844}, deviceScaleFactor: 2,
                                            isMobile: true, hasTouch: true});
    phone.setDefaultTimeout(30000 * SLOW);
    await phone.addCookies(await context.cookies());  // the same browser session, another screen
    const small = await phone.newPage();
    const phoneSeen = watch(small);
    await small.goto(base);
    await small.locator('#gallery li').first().waitFor();
    const overflow = () => small.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(await overflow() <= 0, 'the gallery scrolls sideways on a phone');
    await screenshot(small, 'phone-gallery');
    await small.goto(`${base}#/images/${uuid}`);
    await small.locator(`#dithers li[data-id="${requested}"] .badge.FINISHED`).waitFor();
    await small.waitForFunction(() => document.getElementById('cmp-dither').naturalWidth > 0);
    assert.ok(await overflow() <= 0, 'the image page scrolls sideways on a phone');
    // At 2 device pixels per CSS pixel, 1:1 is half the CSS width.
    await small.selectOption('#zoom', '1');
    const w = await small.evaluate(() => document.getElementById('cmp-dither').getBoundingClientRect().width);
    assert.equal(w, (await small.evaluate(() => document.getElementById('cmp-dither').naturalWidth)) / 2);
    await small.selectOption('#zoom', 'fit');
    await screenshot(small, 'phone-image');
    await assertAccessible(small, 'the image page on a phone');
    assert.deepEqual(phoneSeen.external, []);
    assert.deepEqual(phoneSeen.errors, []);
    await phone.close();
  });

  await t.test('delete a dither, then the image', async () => {
    const url = (await pageApi(page, `api/dithers/${uuid}`)).body.items.find((d) => d.id === requested).url_dither;
    await page.locator(`#dithers li[data-id="${requested}"]`).getByRole('button', {name: /Delete/}).click();
    await page.locator(`#dithers li[data-id="${requested}"]`).waitFor({state: 'detached'});
    assert.equal(await page.locator('#dithers li').count(), 2);
    assert.equal((await fetch(url)).status, 404);
    await waitFor(async () => (await pageApi(page, `api/images/${uuid}`)).body.dithers.length === 2, 'the summary to go');
    await screenshot(page, 'dither-deleted');

    await page.click('#delete-image');
    await page.locator('#gallery-view').waitFor();
    await page.getByText('No images yet').waitFor();
    assert.equal(await page.locator('#gallery li').count(), 0);
    assert.equal((await pageApi(page, `api/images/${uuid}`)).status, 404);
    await waitFor(async () => (await pageApi(page, `api/dithers/${uuid}`)).status === 404, 'the dithers to go');
    await screenshot(page, 'deleted');
  });

  await t.test('paging: newest first, older ones on request, new ones arrive by themselves', async () => {
    // 25 small images through the API (one more than a page), then one more while the page is open;
    // sent from the page's browser (its session owns them).
    for (let i = 0; i < 25; i++) {
      const sent = await pageUpload(page, `grey-${String(i).padStart(2, '0')}.png`, greyPng(64, 48, 8 + i * 9));
      assert.equal(sent.status, 201);
    }
    await page.reload();
    const names = () => page.$$eval('#gallery li .name', (ns) => ns.map((n) => n.textContent));
    await page.locator('#gallery li').nth(23).waitFor();
    assert.equal(await page.locator('#gallery li').count(), 24);
    assert.deepEqual((await names()).slice(0, 3), ['grey-24.png', 'grey-23.png', 'grey-22.png']);
    await page.getByRole('button', {name: 'Show older images'}).click();
    await page.locator('#gallery li').nth(24).waitFor();
    assert.equal((await names())[24], 'grey-00.png');
    await page.getByRole('button', {name: 'Show older images'}).waitFor({state: 'hidden'});

    assert.equal((await pageUpload(page, 'grey-late.png', greyPng(64, 48, 250))).status, 201);
    await page.locator('#gallery li').nth(25).waitFor();
    assert.equal((await names())[0], 'grey-late.png');
    await page.locator('#gallery li', {hasText: 'grey-late.png'}).locator('.badge.FINISHED').waitFor();
    await screenshot(page, 'paging');
  });

  await t.test('nothing but the gateway was asked for anything, and no script error', () => {
    assert.deepEqual(seen.external, []);
    assert.deepEqual(seen.errors, []);
  });
  await context.close();
});

// An animated GIF made here: a 96 x 64 pattern of 64 colours with a red square that moves 20 px
// to the right in each of 4 frames, shown 100, 200, 60 and 300 ms, played twice. `count` 1: the
// first frame alone, a still GIF.
const ANIMATION_DELAYS = [100, 200, 60, 300];
function animatedGif(count = ANIMATION_DELAYS.length) {
  const [w, h] = [96, 64];
  const palette = [];
  for (let r = 0; r < 4; r++) for (let g = 0; g < 4; g++) for (let b = 0; b < 4; b++) palette.push([r * 85, g * 85, b * 85]);
  palette.push([230, 30, 40]);
  const frames = [];
  for (let f = 0; f < count; f++) {
    const px = new Uint8Array(w * h);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const square = x >= 8 + 20 * f && x < 24 + 20 * f && y >= 24 && y < 40;
        px[y * w + x] = square ? 64 : ((x >> 4) & 3) * 16 + ((y >> 4) & 3) * 4 + (((x + y) >> 5) & 3);
      }
    }
    frames.push(px);
  }
  return count > 1 ? writeGif(w, h, frames, palette, ANIMATION_DELAYS, 2) : writeGif(w, h, frames, palette, [0]);
}

test('animations: an animated upload moves in the gallery, a still one stays still', async (t) => {
  const context = await browser.newContext({viewport: {width: 1280, height: 900}});
  context.setDefaultTimeout(30000 * SLOW);
  const page = await context.newPage();
  const seen = watch(page);
  await page.goto(base);
  await page.getByText('No images yet').waitFor();
  const shown = (card) => card.locator('img').evaluate((i) => ({src: i.src, done: i.complete && i.naturalWidth > 0}));
  let uuid;

  await t.test('an animated GIF: its card plays the dither, an animated GIF of the same frames', async () => {
    await page.locator('#files').setInputFiles({name: 'moving.gif', mimeType: 'image/gif', buffer: animatedGif()});
    const card = page.locator('#gallery li', {hasText: 'moving.gif'});
    await card.locator('.badge.FINISHED').waitFor({timeout: 60000 * SLOW});
    uuid = (await card.locator('a').getAttribute('href')).split('/').pop();
    const record = (await pageApi(page, `api/images/${uuid}`)).body;
    assert.equal(record.frames, ANIMATION_DELAYS.length);
    assert.equal(record.content_type, 'image/gif');
    assert.equal(record.dithers[0].format, 'gif', 'the automatic dither of an animated GIF is a GIF');
    assert.match(await card.locator('.meta').textContent(), /96×64 · 4 frames/);
    await waitFor(async () => (await shown(card)).done, 'the card\'s picture');
    const {src} = await shown(card);
    // The file itself (the gateway's thumbnails are still), signed as the record's link.
    assert.match(src, /\/files\/dithers\/[^?]+\.gif\?/);
    assert.equal(new URL(src).pathname, new URL(record.url_dither).pathname);
    const served = await fetch(src);
    assert.equal(served.headers.get('content-type'), 'image/gif');
    const bytes = Buffer.from(await served.arrayBuffer());
    assert.ok(isGif(bytes));
    const gif = readGif(bytes);
    assert.deepEqual([gif.width, gif.height], [96, 64]);
    assert.equal(gif.frames, ANIMATION_DELAYS.length, 'the card shows a still picture');
    assert.deepEqual(gif.delaysMs, ANIMATION_DELAYS);
    assert.equal(gif.loop, 2);
    await screenshot(page, 'animated-card');
  });

  await t.test('its page says how many frames, and the dither moves there too', async () => {
    await page.locator('#gallery li', {hasText: 'moving.gif'}).locator('a').click();
    await page.locator('#image-view').waitFor();
    await page.locator('#image-meta', {hasText: '4 frames'}).waitFor();
    const mini = page.locator('#dithers li img.mini').first();
    await mini.waitFor();
    assert.match(await mini.evaluate((i) => i.src), /\/files\/dithers\/[^?]+\.gif\?/);
    await page.waitForFunction(() => document.getElementById('cmp-dither').naturalWidth > 0);
    assert.match(await page.locator('#cmp-dither').evaluate((i) => i.src), /\/files\/dithers\/[^?]+\.gif\?/);
    // Asked for as PNG: the first frame, a still picture; its small preview is the thumbnail.
    const asked = await pageApi(page, `api/dithers/${uuid}/2?format=png`, {method: 'POST'});
    assert.equal(asked.status, 202);
    assert.equal(asked.body.format, 'png');
    const item = page.locator(`#dithers li[data-id="${asked.body.id}"]`);
    await item.locator('.badge.FINISHED').waitFor({timeout: 60000 * SLOW});
    assert.match(await item.locator('img.mini').evaluate((i) => i.src), /\/thumbnails\/dithers\/[^?]+\.png\?/);
    await screenshot(page, 'animated-image');
    // The image's latest dither is that still PNG now: its card plays the original instead.
    await page.goto(`${base}#/`);
    const card = page.locator('#gallery li', {hasText: 'moving.gif'});
    await waitFor(async () => /\/files\/originals\/[^?]+\.gif\?/.test((await shown(card)).src),
                  'the card to play the original');
  });

  await t.test('a still GIF stays a still picture', async () => {
    await page.locator('#files').setInputFiles({name: 'still.gif', mimeType: 'image/gif', buffer: animatedGif(1)});
    const card = page.locator('#gallery li', {hasText: 'still.gif'});
    await card.locator('.badge.FINISHED').waitFor({timeout: 60000 * SLOW});
    const id = (await card.locator('a').getAttribute('href')).split('/').pop();
    const record = (await pageApi(page, `api/images/${id}`)).body;
    assert.equal(record.frames, 1);
    assert.equal(record.dithers[0].format, 'png');
    assert.doesNotMatch(await card.locator('.meta').textContent(), /frames/);
    await waitFor(async () => (await shown(card)).done, 'the card\'s picture');
    assert.match((await shown(card)).src, /\/thumbnails\/originals\/[^?]+\.gif\?/);
  });

  await t.test('nothing but the gateway was asked for anything, and no script error', () => {
    assert.deepEqual(seen.external, []);
    assert.deepEqual(seen.errors, []);
  });
  await context.close();
});

test('owners: each browser sees its own images, an API key the same ones everywhere', async (t) => {
  const contexts = [];
  const open = async () => {
    const context = await browser.newContext({viewport: {width: 1280, height: 900}});
    context.setDefaultTimeout(30000 * SLOW);
    contexts.push(context);
    const page = await context.newPage();
    return {context, page, seen: watch(page)};
  };
  const a = await open();
  const b = await open();
  const cardUuid = async (page, name) =>
    (await page.locator('#gallery li', {hasText: name}).locator('a').getAttribute('href')).split('/').pop();
  let mine;
  let key;
  let keyId;

  await t.test('without a session or a key the API answers 401', async () => {
    const anonymous = await api('api/images');
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.body.error.code, 'unauthorized');
    assert.equal((await api('api/me')).status, 401);
  });

  await t.test('two browsers do not see each other\'s images', async () => {
    await a.page.goto(base);
    await b.page.goto(base);
    const meA = (await pageApi(a.page, 'api/me')).body;
    const meB = (await pageApi(b.page, 'api/me')).body;
    assert.equal(meA.via, 'session');
    assert.equal(meB.via, 'session');
    assert.notEqual(meA.owner, meB.owner);
    for (const x of [a, b]) {
      await x.page.getByText('No images yet').waitFor();
      await x.page.locator('#who-text', {hasText: 'This browser\'s images'}).waitFor();
    }
    assert.match(await a.page.textContent('#who-text'), new RegExp(meA.owner.replace(/^session:/, '')));

    await a.page.locator('#files').setInputFiles({name: 'mine.png', mimeType: 'image/png', buffer: greyPng(64, 48, 100)});
    await a.page.locator('#gallery li', {hasText: 'mine.png'}).locator('.badge.FINISHED').waitFor({timeout: 60000 * SLOW});
    mine = await cardUuid(a.page, 'mine.png');

    // B: an empty gallery, and A's image is as unknown as one that never existed.
    await b.page.reload();
    await b.page.getByText('No images yet').waitFor();
    assert.equal((await pageApi(b.page, 'api/images')).body.items.length, 0);
    const got = await pageApi(b.page, `api/images/${mine}`);
    assert.equal(got.status, 404);
    assert.equal(got.body.error.code, 'not_found');
    assert.equal((await pageApi(b.page, `api/dithers/${mine}`)).status, 404);
    assert.equal((await pageApi(b.page, `api/images/${mine}`, {method: 'DELETE'})).status, 404);
    await b.page.goto(`${base}#/images/${mine}`);
    await b.page.locator('#not-found-view').waitFor();
    await screenshot(b.page, 'owner-b-not-found');
    // Nothing of A's changed.
    assert.equal((await pageApi(a.page, `api/images/${mine}`)).status, 200);
    await a.page.reload();
    await a.page.locator('#gallery li', {hasText: 'mine.png'}).waitFor();
    assert.equal(await a.page.locator('#gallery li').count(), 1);
    await screenshot(a.page, 'owner-a');
  });

  await t.test('the same API key in two browsers shows the same images', async () => {
    const out = ditherKeys('create', '--name', 'e2e');
    key = (/dk_[A-Za-z0-9_-]+/.exec(out) || [])[0];
    assert.ok(key, `dither-keys printed no key: ${out}`);
    keyId = key.split('_')[1];
    const whoKey = `Images of key e2e (${keyId}), owner key:${keyId}`;

    // A: the key's images (none yet) instead of its session's; then an upload.
    await useKey(a.page, key);
    await a.page.locator('#who-text', {hasText: 'Images of key e2e'}).waitFor();
    assert.equal(await a.page.textContent('#who-text'), whoKey);
    await a.page.getByText('No images yet').waitFor();
    assert.equal(await a.page.locator('#gallery li').count(), 0);
    assert.equal(await a.page.evaluate(() => localStorage.getItem('dither.api_key')), key);
    assert.equal(await a.page.inputValue('#api-key'), '', 'the key stays in the field');
    await a.page.locator('#files').setInputFiles({name: 'shared.png', mimeType: 'image/png', buffer: greyPng(64, 48, 180)});
    await a.page.locator('#gallery li', {hasText: 'shared.png'}).locator('.badge.FINISHED').waitFor({timeout: 60000 * SLOW});
    const shared = await cardUuid(a.page, 'shared.png');
    await screenshot(a.page, 'key-a');

    // B, with the same key: the same image, and it opens.
    await useKey(b.page, key);
    await b.page.locator('#who-text', {hasText: 'Images of key e2e'}).waitFor();
    assert.equal(await b.page.textContent('#who-text'), whoKey);
    await b.page.locator('#gallery li', {hasText: 'shared.png'}).waitFor();
    assert.equal(await b.page.locator('#gallery li').count(), 1);
    assert.equal(await cardUuid(b.page, 'shared.png'), shared);
    const withKey = await pageApi(b.page, `api/images/${shared}`, {headers: {Authorization: `Bearer ${key}`}});
    assert.equal(withKey.status, 200);
    assert.equal((await pageApi(b.page, `api/images/${shared}`)).status, 404, 'B\'s session reaches the key\'s image');
    await b.page.locator('#gallery li a', {hasText: 'shared.png'}).click();
    await b.page.locator('#dithers li .badge.FINISHED').first().waitFor();
    await b.page.waitForFunction(() => document.getElementById('cmp-dither').naturalWidth > 0);
    // The key is kept across a reload.
    await b.page.reload();
    await b.page.locator('#who-text', {hasText: 'Images of key e2e'}).waitFor();
    await b.page.locator('#image-title', {hasText: 'shared.png'}).waitFor();
    await screenshot(b.page, 'key-b');
    await assertAccessible(b.page, 'the image page with a key');
  });

  await t.test('stop using the key; a wrong key and a revoked one are explained', async () => {
    await a.page.locator('#stop-key').click();
    await a.page.locator('#who-text', {hasText: 'This browser\'s images'}).waitFor();
    await a.page.locator('#gallery li', {hasText: 'mine.png'}).waitFor();
    assert.equal(await a.page.locator('#gallery li').count(), 1);
    assert.equal(await a.page.evaluate(() => localStorage.getItem('dither.api_key')), null);

    // A mistyped key changes nothing.
    const wrong = key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A');
    await useKey(a.page, wrong);
    await a.page.locator('#key-message.error', {hasText: 'not accepted'}).waitFor();
    assert.match(await a.page.textContent('#who-text'), /^This browser's images/);
    assert.equal(await a.page.evaluate(() => localStorage.getItem('dither.api_key')), null);
    await screenshot(a.page, 'key-refused');
    await assertAccessible(a.page, 'the key form with a refused key');
    await a.page.fill('#api-key', '');

    // Revoked while B uses it: B is told, and can go back to its own images.
    ditherKeys('revoke', keyId);
    await b.page.reload();
    const problem = b.page.locator('#auth-problem');
    await problem.getByText('no longer accepted').waitFor();
    await screenshot(b.page, 'key-revoked');
    await assertAccessible(b.page, 'the page with a revoked key');
    await problem.getByRole('button', {name: 'Stop using the key'}).click();
    await b.page.locator('#who-text', {hasText: 'This browser\'s images'}).waitFor();
    await b.page.getByText('No images yet').waitFor();
    assert.equal(await problem.isHidden(), true);
  });

  await t.test('forget this browser: a new, empty session', async () => {
    const before = (await pageApi(a.page, 'api/me')).body.owner;
    await Promise.all([a.page.waitForEvent('load'),
                       a.page.getByRole('button', {name: 'Forget this browser'}).click()]);
    await a.page.locator('#who-text', {hasText: 'This browser\'s images'}).waitFor();
    await a.page.getByText('No images yet').waitFor();
    const now = (await pageApi(a.page, 'api/me')).body;
    assert.equal(now.via, 'session');
    assert.notEqual(now.owner, before);
    assert.equal((await pageApi(a.page, `api/images/${mine}`)).status, 404);
    await screenshot(a.page, 'forgotten');
  });

  await t.test('nothing but the gateway was asked for anything, and no script error', () => {
    for (const x of [a, b]) {
      assert.deepEqual(x.seen.external, []);
      assert.deepEqual(x.seen.errors, []);
    }
  });
  for (const context of contexts) await context.close();
});

test('ditherd stops cleanly, with no sanitizer report', async () => {
  const {code, signal} = await stopServer();
  const log = fs.readFileSync(path.join(OUT, 'ditherd.log'), 'utf8');
  assert.doesNotMatch(log, /ERROR: (Address|Leak)Sanitizer|runtime error:/, 'sanitizer report in ditherd.log');
  assert.equal(signal, null);
  assert.equal(code, 0);
});
