// The web page: upload, watch, dither, compare, download, delete. Plain JavaScript, no build step,
// no external requests: it talks only to the gateway that served it, with relative URLs (so it also
// works behind a reverse proxy under a path prefix). Live updates are polling (docs/WEB.md).
// Who is calling (docs/SECURITY.md): the browser session whose HttpOnly cookie `GET /` set, which
// the browser sends with every same-origin request, or an API key the person chose, kept in local
// storage and sent as `Authorization: Bearer` with every API call.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const PAGE = 24;  // gallery page size
  const POLL_BUSY_MS = 1500;  // while something visible is PENDING
  const POLL_IDLE_MS = 10000;
  const UPLOAD_CONCURRENCY = 2;

  // ---------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
    static from(status, data) {
      const e = data && data.error;
      return new ApiError(status, (e && e.code) || `http_${status}`,
                          (e && e.message) || `the server answered ${status}`);
    }
  }
  const networkError = () =>
      new ApiError(0, 'network', 'The service cannot be reached. Check the connection and try again.');

  function parseJson(text) {
    try {
      return text ? JSON.parse(text) : null;
    } catch {
      return null;
    }
  }

  // ---------------------------------------------------------------- who is calling

  const KEY_STORAGE = 'dither.api_key';
  function storedKey() {
    try {
      return localStorage.getItem(KEY_STORAGE) || '';
    } catch {
      return '';  // storage turned off: the page is the browser session
    }
  }
  let apiKey = storedKey();
  // Bumped whenever the page starts showing another owner's images: answers to requests made
  // before are thrown away.
  let authEpoch = 0;
  const authHeaders = () => (apiKey ? {Authorization: `Bearer ${apiKey}`} : {});

  // A request of the page with the page's credentials (the cookie, or the key in use). `headers`
  // may name its own Authorization (checking a key before using it): its 401 is then the caller's
  // business, not a sign that the page's own credentials stopped working.
  async function call(method, path, body, headers = {}) {
    const own = !('Authorization' in headers);
    const init = {method, credentials: 'same-origin',
                  headers: {Accept: 'application/json', ...authHeaders(), ...headers}};
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch {
      throw networkError();
    }
    const data = parseJson(await response.text());
    if (!response.ok) {
      const err = ApiError.from(response.status, data);
      if (own && response.status === 401) unauthorized();
      throw err;
    }
    if (own) authWorks();
    return data;
  }

  function newKey() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  // Stored files are addressed absolutely (PUBLIC_BASE_URL). When that names another origin for
  // this same gateway (127.0.0.1 vs localhost, say), use the path here, so that downloads keep
  // their file names; files on a CDN stay as they are.
  function localUrl(u) {
    if (!u) return '';
    try {
      const url = new URL(u, location.href);
      if (url.origin === location.origin) return url.href;
      if (url.pathname.startsWith('/files/')) return url.pathname.slice(1) + url.search;
      return url.href;
    } catch {
      return u;
    }
  }

  // A small preview of a stored file, made by the gateway (GET thumbnails/<key>): a 400-px lossy
  // WebP instead of a photo of several MB. Files elsewhere (a CDN) are shown as they are. The
  // file's link is signed (`/files/<key>?expires=...&sig=...`) and the signature covers the object
  // key, so the thumbnail keeps the same query string (a link without one is refused).
  function thumbUrl(u) {
    try {
      const url = new URL(u, location.href);
      if (url.pathname.startsWith('/files/')) return 'thumbnails/' + url.pathname.slice(7) + url.search;
    } catch {
      // not a URL: as it is
    }
    return localUrl(u);
  }

  // What a card or a small preview shows of a file. The gateway's thumbnails are still pictures
  // (the first frame), so an animation (an image whose `frames` is over 1) shows a file itself
  // instead: its latest dither when that is an animation too (GIF or WebP), else the original,
  // so that the card moves as the image does. A still image keeps its thumbnail; so does
  // everything when the system asks for reduced motion.
  const reducedMotion = window.matchMedia ? window.matchMedia('(prefers-reduced-motion: reduce)') : null;
  function moving(image) {
    return image.frames > 1 && !(reducedMotion && reducedMotion.matches);
  }
  function isAnimationFile(u) {
    try {
      return /\.(gif|webp)$/i.test(new URL(u, location.href).pathname);
    } catch {
      return false;
    }
  }
  function cardSrc(r) {
    if (!moving(r)) return thumbUrl(r.url);
    const dither = r.status === 'FINISHED' && r.url_dither && isAnimationFile(r.url_dither);
    return localUrl(dither ? r.url_dither : r.url);
  }
  function framesText(image) {
    return image.frames > 1 ? ` · ${image.frames} frames` : '';
  }

  // ---------------------------------------------------------------- formatting

  function bytes(n) {
    if (!Number.isFinite(n)) return '';
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10240 ? 1 : 0)} KB`;
    return `${(n / 1048576).toFixed(1)} MB`;
  }
  function when(iso) {
    const t = Date.parse(iso);
    if (!Number.isFinite(t)) return '';
    const s = Math.round((Date.now() - t) / 1000);
    if (s < 45) return 'just now';
    if (s < 3600) return `${Math.max(1, Math.round(s / 60))} min ago`;
    if (s < 86400) return `${Math.round(s / 3600)} h ago`;
    return new Date(t).toLocaleDateString();
  }
  const STATUS_TEXT = {
    PENDING: 'Dithering…',
    FINISHED: 'Finished',
    FAILED: 'Failed',
    DITHER_DELETED: 'No dither',
  };
  function badge(status) {
    const span = document.createElement('span');
    span.className = `badge ${status}`;
    span.textContent = STATUS_TEXT[status] || status;
    return span;
  }
  function stem(name) {
    const base = (name || 'image').split(/[\\/]/).pop();
    const dot = base.lastIndexOf('.');
    return (dot > 0 ? base.slice(0, dot) : base) || 'image';
  }
  function ditherFileName(image, d) {
    return `${stem(image && image.filename)}-dither-${d.id}.${d.format || 'png'}`;
  }
  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === 'class') node.className = v;
      else if (k === 'text') node.textContent = v;
      else if (k in node) node[k] = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) if (c != null) node.append(c);
    return node;
  }

  let toastTimer;
  function toast(text) {
    const t = $('toast');
    t.textContent = text;
    t.classList.add('show');
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => t.classList.remove('show'), 4000);
  }

  // Keeps `list`'s children in the order of `keys`, reusing the element of each key; moves only
  // what is out of place (moving a node would take the keyboard focus away from it).
  function reconcile(list, keys, elementFor) {
    keys.forEach((key, i) => {
      const node = elementFor(key);
      if (list.children[i] !== node) list.insertBefore(node, list.children[i] || null);
    });
    while (list.children.length > keys.length) list.lastElementChild.remove();
  }

  // ---------------------------------------------------------------- uploads

  // Why an upload was refused, in words, from the API's error codes (docs/API.md).
  function uploadProblem(err) {
    const m = err.message || '';
    const limit = /(\d+) bytes/.exec(m);
    switch (err.code) {
      case 'too_large':
        return limit ? `Too large: the limit is ${bytes(Number(limit[1]))} per file.`
                     : `Too large: ${m}.`;
      case 'unsupported':
        return 'Not an image this service accepts (JPEG, PNG, WebP, GIF or TIFF).';
      case 'undecodable':
        return `The image cannot be decoded: it may be damaged or cut short (${m}).`;
      case 'too_many_pixels':
        return `Too many pixels: ${m}.`;
      case 'invalid_argument':
        return m.charAt(0).toUpperCase() + m.slice(1) + (m.endsWith('.') ? '' : '.');
      case 'overloaded':
      case 'unavailable':
        return 'The service is busy or unavailable. Try again in a moment.';
      case 'unauthorized':
        return apiKey ? 'Not accepted: the API key in use no longer works (see above).'
                      : 'Not accepted: this browser\'s session has ended (see above).';
      case 'cross_origin':
        return 'Refused: the request did not come from this page\'s own address.';
      case 'network':
        return 'The upload was cut off: the service is unreachable, or it refused the file ' +
               '(too large?).';
      default:
        return m;
    }
  }

  function postImage(file, email, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open('POST', 'api/images');
      xhr.setRequestHeader('Accept', 'application/json');
      if (apiKey) xhr.setRequestHeader('Authorization', `Bearer ${apiKey}`);
      xhr.upload.onprogress = (e) => {
        if (e.lengthComputable) onProgress(e.loaded / e.total);
      };
      xhr.onload = () => {
        const data = parseJson(xhr.responseText);
        if (xhr.status >= 200 && xhr.status < 300 && data) {
          resolve(data);
          return;
        }
        if (xhr.status === 401) unauthorized();
        const err = ApiError.from(xhr.status, data);
        err.retryAfter = Number(xhr.getResponseHeader('Retry-After')) || 0;
        reject(err);
      };
      xhr.onerror = () => reject(networkError());
      xhr.onabort = () => reject(new ApiError(0, 'aborted', 'Cancelled.'));
      const form = new FormData();
      if (email) form.append('email', email);
      form.append('file', file, file.name || 'image');
      xhr.send(form);
    });
  }

  const uploads = [];  // {file, row, state, uuid}
  let uploading = 0;

  function addFiles(fileList) {
    const files = Array.from(fileList || []);
    if (files.length === 0) return;
    const email = $('email').value.trim();
    for (const file of files) {
      const progress = el('progress', {max: 1, value: 0});
      progress.setAttribute('aria-label', `Upload of ${file.name}`);
      const state = el('span', {class: 'state', text: 'Waiting…'});
      const row = el('li', {class: 'upload'},
                     el('span', {class: 'name', text: file.name || 'image', title: file.name}),
                     el('span', {class: 'muted', text: bytes(file.size)}), progress, state);
      $('uploads').prepend(row);
      uploads.push({file, email, row, progress, state, status: 'waiting', uuid: null, epoch: authEpoch});
    }
    $('clear-uploads').hidden = false;
    pumpUploads();
  }

  function pumpUploads() {
    while (uploading < UPLOAD_CONCURRENCY) {
      const next = uploads.find((u) => u.status === 'waiting');
      if (!next) return;
      uploading++;
      next.status = 'sending';
      next.epoch = authEpoch;  // sent with the credentials of now
      next.state.textContent = 'Uploading…';
      postImage(next.file, next.email, (p) => {
        next.progress.value = p;
        next.state.textContent = p < 1 ? `Uploading… ${Math.floor(p * 100)} %` : 'Checking the image…';
      })
          .then((record) => {
            next.status = 'uploaded';
            next.uuid = record.uuid;
            next.progress.value = 1;
            next.row.classList.add('done');
            setUploadState(next, record);
            if (next.epoch === authEpoch) galleryAdd(record);
            pollSoon();
          })
          .catch((err) => {
            // Busy or over the rate (429/503 with Retry-After): the file waits its turn again.
            const retryable = ['rate_limited', 'overloaded', 'queue_full', 'too_many_pending'];
            if (retryable.includes(err.code) && err.retryAfter > 0 && (next.retries || 0) < 10) {
              next.retries = (next.retries || 0) + 1;
              next.status = 'paused';
              const seconds = Math.min(err.retryAfter, 60);
              next.state.textContent = `Busy; trying again in ${seconds} s…`;
              setTimeout(() => {
                next.status = 'waiting';
                pumpUploads();
              }, seconds * 1000);
              return;
            }
            next.status = 'failed';
            next.row.classList.add('failed');
            next.progress.hidden = true;
            next.state.textContent = uploadProblem(err);
            next.state.setAttribute('role', 'alert');
          })
          .finally(() => {
            uploading--;
            pumpUploads();
          });
    }
  }

  function setUploadState(u, record) {
    const text = record.status === 'FINISHED' ? 'Uploaded and dithered. '
               : record.status === 'FAILED'   ? `Uploaded; dithering failed: ${record.error || ''} `
                                              : 'Uploaded; dithering… ';
    u.state.replaceChildren(text, el('a', {href: `#/images/${record.uuid}`, text: 'Open'}));
  }

  function updateUploadsFrom(records) {
    for (const u of uploads) {
      if (!u.uuid) continue;
      const r = records.get(u.uuid);
      if (r && r.status !== u.lastStatus) {
        u.lastStatus = r.status;
        setUploadState(u, r);
      }
    }
  }

  $('choose').addEventListener('click', () => $('files').click());
  $('files').addEventListener('change', (e) => {
    addFiles(e.target.files);
    e.target.value = '';
  });
  const drop = $('drop');
  for (const type of ['dragenter', 'dragover']) {
    drop.addEventListener(type, (e) => {
      e.preventDefault();
      drop.classList.add('over');
    });
  }
  for (const type of ['dragleave', 'drop']) {
    drop.addEventListener(type, () => drop.classList.remove('over'));
  }
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    addFiles(e.dataTransfer && e.dataTransfer.files);
  });
  // A file dropped anywhere else must not replace the page.
  window.addEventListener('dragover', (e) => e.preventDefault());
  window.addEventListener('drop', (e) => e.preventDefault());
  $('clear-uploads').addEventListener('click', () => {
    for (let i = uploads.length - 1; i >= 0; i--) {
      if (uploads[i].status === 'uploaded' || uploads[i].status === 'failed') {
        uploads[i].row.remove();
        uploads.splice(i, 1);
      }
    }
    $('clear-uploads').hidden = uploads.length === 0;
  });

  // ---------------------------------------------------------------- gallery

  // `wanted`: how many of the newest images are shown: a page at first, one more page per "Show
  // older images", one more per image that arrives while the page is open.
  const gallery = {items: [], cursor: null, loaded: false, wanted: PAGE, cards: new Map()};

  function galleryAdd(record) {
    if (!gallery.items.some((i) => i.uuid === record.uuid)) {
      gallery.items.unshift(record);
      gallery.wanted = Math.min(1000, gallery.wanted + 1);
    }
    renderGallery();
  }

  async function refreshGallery() {
    const epoch = authEpoch;
    let page = await call('GET', `api/images?limit=${gallery.wanted}`);
    if (epoch !== authEpoch) return;
    if (gallery.loaded) {
      const known = new Set(gallery.items.map((i) => i.uuid));
      const newest = gallery.items.length ? gallery.items[0].created_at : '';
      const arrived = page.items.filter((i) => !known.has(i.uuid) && i.created_at >= newest).length;
      if (arrived > 0) {
        gallery.wanted = Math.min(1000, gallery.wanted + arrived);
        // What arrived pushed shown ones off the end: ask again for all of them.
        if (page.next_cursor) page = await call('GET', `api/images?limit=${gallery.wanted}`);
        if (epoch !== authEpoch) return;
      }
    }
    gallery.items = page.items;
    gallery.cursor = page.next_cursor;
    gallery.loaded = true;
    renderGallery();
  }

  async function loadOlder() {
    if (!gallery.cursor) return;
    const button = $('more');
    button.disabled = true;
    const epoch = authEpoch;
    try {
      const page = await call(
          'GET', `api/images?limit=${PAGE}&cursor=${encodeURIComponent(gallery.cursor)}`);
      if (epoch !== authEpoch) return;
      const known = new Set(gallery.items.map((i) => i.uuid));
      for (const item of page.items) if (!known.has(item.uuid)) gallery.items.push(item);
      gallery.cursor = page.next_cursor;
      gallery.wanted = Math.min(1000, Math.max(gallery.wanted, gallery.items.length));
      renderGallery();
    } catch (err) {
      toast(`Cannot load older images: ${err.message}`);
    } finally {
      button.disabled = false;
    }
  }
  $('more').addEventListener('click', loadOlder);

  function card(uuid) {
    let c = gallery.cards.get(uuid);
    if (!c) {
      const img = el('img', {class: 'thumb', alt: '', loading: 'lazy', decoding: 'async'});
      const name = el('span', {class: 'name'});
      const meta = el('span', {class: 'meta'});
      const status = el('span');
      const link = el('a', {class: 'card', href: `#/images/${uuid}`}, img,
                      el('span', {class: 'card-body'}, name, status, meta));
      c = {li: el('li', {}, link), img, name, meta, status, link, key: ''};
      gallery.cards.set(uuid, c);
    }
    return c;
  }

  function renderGallery() {
    const records = new Map(gallery.items.map((i) => [i.uuid, i]));
    for (const uuid of gallery.cards.keys()) if (!records.has(uuid)) gallery.cards.delete(uuid);
    reconcile($('gallery'), gallery.items.map((i) => i.uuid), (uuid) => {
      const r = records.get(uuid);
      const c = card(uuid);
      const key = `${r.status}|${r.updated_at}|${r.url}|${r.url_dither}|${moving(r)}`;
      if (c.key !== key) {
        c.key = key;
        const src = cardSrc(r);
        if (c.img.getAttribute('src') !== src) c.img.src = src;
        c.img.dataset.frames = String(r.frames || 1);
        c.name.textContent = r.filename || '(no name)';
        c.link.title = r.filename || '';
        c.status.replaceChildren(badge(r.status));
      }
      c.meta.textContent = `${r.width}×${r.height}${framesText(r)} · ${bytes(r.size)} · ${when(r.created_at)}`;
      return c.li;
    });
    $('gallery-empty').hidden = !gallery.loaded || gallery.items.length > 0;
    $('more').hidden = !gallery.cursor;
    const pending = gallery.items.filter((i) => i.status === 'PENDING').length;
    $('gallery-note').textContent = gallery.items.length === 0 ? ''
        : `${gallery.items.length}${gallery.cursor ? '+' : ''} image${gallery.items.length === 1 ? '' : 's'}` +
          (pending ? `, ${pending} dithering` : '');
    updateUploadsFrom(records);
  }

  // ---------------------------------------------------------------- one image

  const view = {
    uuid: null,
    image: null,
    dithers: [],
    items: new Map(),  // dither id -> {li, ...}
    selected: null,     // dither id shown in the comparison
    awaiting: null,     // id of the dither this page just asked for
  };

  async function refreshImage() {
    const uuid = view.uuid;
    let image;
    try {
      image = await call('GET', `api/images/${uuid}`);
    } catch (err) {
      if (err.status === 404 && uuid === view.uuid) {
        showView('not-found');
        return;
      }
      throw err;
    }
    let dithers = [];
    try {
      dithers = (await call('GET', `api/dithers/${uuid}`)).items;
    } catch (err) {
      // Just uploaded: the dithering service may not have heard of the image yet.
      if (err.status !== 404) throw err;
    }
    if (uuid !== view.uuid) return;
    view.image = image;
    view.dithers = dithers;
    renderImage();
  }

  // What options say beyond what is shown apart (a dither's algorithm, palette and format: the
  // fields of `shown`): every option of the table (GET api/options) that applies and is not at its
  // default, in the table's order ("serpentine, strength 0.5, bayer size 4").
  function describe(options, shown) {
    if (!dform.options || !options) return '';
    const valueOf = (name) => {
      const o = dform.options.find((x) => x.name === name);
      return options[name] !== undefined ? String(options[name]) : o ? defaultOf(o) : '';
    };
    const parts = [];
    for (const o of dform.options) {
      if (o.in !== 'query' || o.name in shown || options[o.name] === undefined) continue;
      const c = dform.controls.get(o.name);
      if (c && c.needs && !c.needs.values.includes(valueOf(c.needs.option))) continue;
      const v = String(options[o.name]);
      if (sameValue(o, v, defaultOf(o))) continue;
      const name = human(o.name).toLowerCase();
      if (o.type === 'boolean') parts.push(v === 'true' ? name : `no ${name}`);
      else parts.push(`${name} ${v}`);
    }
    return parts.join(', ');
  }
  const describeOptions = (d) => describe(d.options, d);

  function ditherItem(id) {
    let it = view.items.get(id);
    if (!it) {
      const mini = el('div', {class: 'mini placeholder', text: '…'});
      const title = el('div', {class: 'title'});
      const meta = el('div', {class: 'meta'});
      const extra = el('div', {class: 'meta'});
      const status = el('div');
      const error = el('p', {class: 'error', hidden: true});
      const compare = el('button', {type: 'button', text: 'Compare'});
      compare.dataset.act = 'compare';
      const download = el('a', {class: 'button', text: 'Download'});
      const remove = el('button', {type: 'button', class: 'danger', text: 'Delete'});
      remove.dataset.act = 'delete';
      const li = el('li', {class: 'dither'}, mini,
                    el('div', {}, el('div', {class: 'head'}, title, status), meta, extra, error,
                       el('div', {class: 'buttons'}, compare, download, remove)));
      li.dataset.id = String(id);
      it = {li, mini, title, meta, extra, status, error, compare, download, remove, key: ''};
      view.items.set(id, it);
    }
    return it;
  }

  function renderImage() {
    const image = view.image;
    showView('image');
    $('image-title').textContent = image.filename || '(no name)';
    document.title = `${image.filename || 'Image'} · Dither`;
    $('image-meta').replaceChildren(
        badge(image.status),
        ` ${image.width}×${image.height} px${framesText(image)} · ${bytes(image.size)} · ${image.content_type} · uploaded ${when(image.created_at)}`);
    $('image-error').hidden = !(image.status === 'FAILED' && image.error);
    $('image-error').textContent = image.error ? `Dithering failed: ${image.error}` : '';
    const original = $('original-download');
    original.href = localUrl(image.url);
    original.download = image.filename || 'original';

    // Which dither to compare: the one asked for here once it is done, else the newest finished,
    // unless the user chose one that still exists.
    const finished = view.dithers.filter((d) => d.status === 'FINISHED');
    const byId = new Map(view.dithers.map((d) => [d.id, d]));
    if (view.awaiting !== null) {
      const d = byId.get(view.awaiting);
      if (!d || d.status !== 'PENDING') {
        if (d && d.status === 'FINISHED') {
          view.selected = d.id;
          toast(`Dither #${d.id} is ready.`);
        } else if (d && d.status === 'FAILED') {
          toast(`Dither #${d.id} failed: ${d.error || 'unknown error'}`);
        }
        view.awaiting = null;
      }
    }
    const current = byId.get(view.selected);
    if (!current || current.status !== 'FINISHED') {
      view.selected = finished.length ? finished[0].id : null;
    }

    for (const id of view.items.keys()) if (!byId.has(id)) view.items.delete(id);
    reconcile($('dithers'), view.dithers.map((d) => d.id), (id) => {
      const d = byId.get(id);
      const it = ditherItem(id);
      const key = `${d.status}|${d.updated_at}|${d.url_dither}|${dform.version}|${moving(image)}`;
      if (it.key !== key) {
        it.key = key;
        if (d.status === 'FINISHED' && d.url_dither) {
          // An animated dither (GIF or WebP of an animation) moves here too; a PNG is its first frame.
          const animated = moving(image) && d.format !== 'png';
          const src = animated ? localUrl(d.url_dither) : thumbUrl(d.url_dither);
          const img = el('img', {class: 'mini', alt: '', loading: 'lazy', src});
          it.mini.replaceWith(img);
          it.mini = img;
        } else if (!it.mini.classList.contains('placeholder') || it.mini.textContent !== (d.status === 'FAILED' ? '✕' : '…')) {
          const ph = el('div', {class: 'mini placeholder', text: d.status === 'FAILED' ? '✕' : '…'});
          it.mini.replaceWith(ph);
          it.mini = ph;
        }
        it.title.textContent = `#${d.id} · ${d.algorithm}`;
        it.meta.textContent = `${d.palette} · ${(d.format || '').toUpperCase()} · ${d.source === 'auto' ? 'automatic' : 'requested'} · ${when(d.created_at)}`;
        it.extra.textContent = describeOptions(d);
        it.extra.hidden = it.extra.textContent === '';
        it.status.replaceChildren(badge(d.status));
        it.error.hidden = !d.error;
        it.error.textContent = d.error || '';
        const ready = d.status === 'FINISHED' && !!d.url_dither;
        it.compare.disabled = !ready;
        it.download.hidden = !ready;
        if (ready) {
          it.download.href = localUrl(d.url_dither);
          it.download.download = ditherFileName(image, d);
        }
        it.compare.setAttribute('aria-label', `Compare dither #${d.id}`);
        it.download.setAttribute('aria-label', `Download dither #${d.id}`);
        it.remove.setAttribute('aria-label', `Delete dither #${d.id}`);
      }
      const selected = d.id === view.selected;
      it.li.classList.toggle('selected', selected);
      it.compare.setAttribute('aria-pressed', String(selected));
      return it.li;
    });
    const pending = view.dithers.filter((d) => d.status === 'PENDING').length;
    $('dithers-note').textContent =
        `${view.dithers.length} dither${view.dithers.length === 1 ? '' : 's'}` + (pending ? `, ${pending} in progress` : '');
    showCompare();
  }

  $('dithers').addEventListener('click', async (e) => {
    const button = e.target.closest('button[data-act]');
    if (!button) return;
    const id = Number(button.closest('li').dataset.id);
    const d = view.dithers.find((x) => x.id === id);
    if (!d) return;
    if (button.dataset.act === 'compare') {
      view.selected = id;
      renderImage();
      $('stage').scrollIntoView({block: 'nearest', behavior: 'smooth'});
    } else if (button.dataset.act === 'delete') {
      if (!confirm(`Delete dither #${id} (${d.algorithm}, ${d.palette})?`)) return;
      button.disabled = true;
      try {
        await call('DELETE', `api/dithers/${view.uuid}/${id}`);
        view.dithers = view.dithers.filter((x) => x.id !== id);
        if (view.selected === id) {
          view.selected = null;
        }
        toast(`Dither #${id} deleted.`);
        renderImage();
        pollSoon();
      } catch (err) {
        button.disabled = false;
        toast(`Cannot delete dither #${id}: ${err.message}`);
      }
    }
  });

  $('delete-image').addEventListener('click', async () => {
    const image = view.image;
    if (!image || !confirm(`Delete “${image.filename}” and all its dithers?`)) return;
    const button = $('delete-image');
    button.disabled = true;
    try {
      await call('DELETE', `api/images/${image.uuid}`);
      gallery.items = gallery.items.filter((i) => i.uuid !== image.uuid);
      toast(`“${image.filename}” deleted.`);
      location.hash = '#/';
    } catch (err) {
      toast(`Cannot delete the image: ${err.message}`);
    } finally {
      button.disabled = false;
    }
  });

  // ---------------------------------------------------------------- compare

  const stage = $('stage');
  const inner = $('stage-inner');
  const cmpOriginal = $('cmp-original');
  const cmpDither = $('cmp-dither');

  function mode() {
    return document.querySelector('input[name="mode"]:checked').value;
  }

  function showCompare() {
    const d = view.dithers.find((x) => x.id === view.selected);
    const has = !!(d && d.status === 'FINISHED' && d.url_dither);
    $('stage-empty').hidden = has;
    inner.hidden = !has;
    if (!has) {
      $('compare-caption').textContent = '';
      return;
    }
    const o = localUrl(view.image.url);
    const s = localUrl(d.url_dither);
    $('cmp-dither-caption').textContent = `Dither #${d.id}`;
    cmpDither.alt = `Dither #${d.id}: ${d.algorithm}, ${d.palette}`;
    cmpOriginal.alt = `Original: ${view.image.filename}`;
    if (cmpOriginal.getAttribute('src') !== o) cmpOriginal.src = o;
    if (cmpDither.getAttribute('src') !== s) cmpDither.src = s;
    layout();
  }

  // Pixel-exact: an image pixel is `scale` device pixels, an integer whenever it is 1 or more, and
  // then drawn without smoothing. The original is drawn at the dither's size (a dither may have been
  // resized or enlarged).
  function layout() {
    const d = view.dithers.find((x) => x.id === view.selected);
    if (!d || !cmpDither.complete || !cmpDither.naturalWidth) return;
    const w = cmpDither.naturalWidth, h = cmpDither.naturalHeight;
    const dpr = window.devicePixelRatio || 1;
    const side = mode() === 'side';
    let scale;
    const zoom = $('zoom').value;
    if (zoom === 'fit') {
      const availW = stage.clientWidth - 2;
      const twoUp = side && availW >= 2 * Math.min(w / dpr, availW / 2);
      const perImage = side && twoUp ? (availW - 8) / 2 : availW;
      const availH = Math.max(160, window.innerHeight * 0.75 - 2);
      const fit = Math.min(perImage * dpr / w, availH * dpr / h);
      scale = fit >= 1 ? Math.floor(fit) : fit;
    } else {
      scale = Number(zoom);
    }
    const cssW = (w * scale) / dpr, cssH = (h * scale) / dpr;
    for (const img of [cmpOriginal, cmpDither]) {
      img.style.width = `${cssW}px`;
      img.style.height = `${cssH}px`;
    }
    const exact = scale >= 1 && Number.isInteger(scale);
    stage.classList.toggle('exact', exact);
    let caption = `${w}×${h} px · `;
    caption += exact ? (scale === 1 ? '1:1, pixel-exact' : `${scale}×, pixel-exact`)
                     : `${Math.round(scale * 100)} %, scaled down to fit`;
    if (cmpOriginal.naturalWidth &&
        (cmpOriginal.naturalWidth !== w || cmpOriginal.naturalHeight !== h)) {
      caption += ' · original drawn at the dither\'s size';
    }
    $('compare-caption').textContent = caption;
    stage.dataset.scale = String(scale);
  }

  for (const img of [cmpOriginal, cmpDither]) img.addEventListener('load', layout);
  $('zoom').addEventListener('change', layout);
  window.addEventListener('resize', () => requestAnimationFrame(layout));
  for (const radio of document.querySelectorAll('input[name="mode"]')) {
    radio.addEventListener('change', () => {
      const side = mode() === 'side';
      stage.classList.toggle('mode-side', side);
      stage.classList.toggle('mode-slider', !side);
      stage.closest('.compare-panel').classList.toggle('side-mode', side);
      layout();
    });
  }

  function setSplit(percent) {
    const p = Math.max(0, Math.min(100, percent));
    inner.style.setProperty('--split', `${p}%`);
    const range = $('split');
    if (Number(range.value) !== Math.round(p)) range.value = String(Math.round(p));
    range.setAttribute('aria-valuetext', `${Math.round(p)}% original, ${100 - Math.round(p)}% dither`);
  }
  $('split').addEventListener('input', (e) => setSplit(Number(e.target.value)));
  let dragging = false;
  const splitAt = (e) => {
    const r = inner.getBoundingClientRect();
    setSplit(((e.clientX - r.left) / r.width) * 100);
  };
  inner.addEventListener('pointerdown', (e) => {
    if (mode() !== 'slider' || e.button !== 0) return;
    dragging = true;
    inner.setPointerCapture(e.pointerId);
    splitAt(e);
  });
  inner.addEventListener('pointermove', (e) => {
    if (dragging) splitAt(e);
  });
  inner.addEventListener('pointerup', () => (dragging = false));
  inner.addEventListener('pointercancel', () => (dragging = false));
  setSplit(50);

  // ---------------------------------------------------------------- the dither form

  // The form is made from the service's own table of options (GET api/options): one control per
  // option, of a kind chosen by the option's description (choices: a list; suggestions: text with
  // suggestions; boolean: a check box; a number with bounds: a slider; integer: a number field;
  // json: a text area), so an option added to the table appears here by itself. Above the options, the presets (GET
  // api/presets: the built-in ones, then the caller's own); the options show under "Custom".
  // docs/WEB.md, "New dither".
  const form = $('dither-form');
  const CUSTOM = '';  // the value of the "Custom" choice: no preset has an empty name
  const PRESET_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
  const dform = {
    options: null,         // GET api/options: [{name, type, in, help, default, ...}]
    controls: new Map(),   // option name -> {option, input, field, choiceHint, output, needs}
    presets: null,         // GET api/presets: items
    optionsLoad: null,     // the load in flight
    presetsLoad: null,
    lastPreset: null,      // the preset chosen before "Custom": where Custom starts from
    dirty: false,          // the options were changed by hand since they were last filled in
    version: 0,            // bumped when the table arrives (the dithers' summaries use it)
  };

  const human = (name) => {
    const t = String(name).replace(/_/g, ' ');
    return t.charAt(0).toUpperCase() + t.slice(1);
  };
  const sentence = (text) => (text ? text.charAt(0).toUpperCase() + text.slice(1) : '');
  const defaultOf = (o) => (o.default === undefined || o.default === null ? '' : String(o.default));
  const numeric = (o) => o.type === 'integer' || o.type === 'number';
  const sameValue = (o, a, b) => (numeric(o) ? a !== '' && b !== '' && Number(a) === Number(b) : a === b);
  const typedValue = (o, text) => (o.type === 'boolean' ? text === 'true' : numeric(o) ? Number(text) : text);

  // An option that applies only when another option has one of some values (applies_when, e.g.
  // bayer_size with algorithm bayer): its control is shown, and the option sent, only then.
  function dependency(option, names) {
    const when = option.applies_when;
    return when && names.has(when.option) && when.option !== option.name ? when : null;
  }

  // A control for one option of the table.
  function buildControl(option, names) {
    const id = `opt-${option.name}`;
    const field = el('div', {class: 'field option'});
    field.dataset.optionField = option.name;
    const hint = el('p', {class: 'hint', id: `${id}-hint`, text: sentence(option.help)});
    const label = el('label', {htmlFor: id, text: human(option.name)});
    const described = [hint.id];
    const def = defaultOf(option);
    let input;
    let choiceHint = null;
    let output = null;
    if (option.type === 'boolean') {
      input = el('input', {type: 'checkbox', id});
      input.checked = def === 'true';
      field.append(el('label', {class: 'check', htmlFor: id}, input, ` ${human(option.name)}`), hint);
    } else if (Array.isArray(option.choices) && option.choices.length) {
      input = el('select', {id});
      for (const c of option.choices) {
        const o = el('option', {value: String(c.value), text: String(c.value)});
        if (c.help) o.title = c.help;
        input.append(o);
      }
      if (option.choices.some((c) => String(c.value) === def)) input.value = def;
      field.append(label, input, hint);
      if (option.choices.some((c) => c.help)) {
        choiceHint = el('p', {class: 'hint choice', id: `${id}-choice`});
        described.push(choiceHint.id);
        field.append(choiceHint);
      }
    } else if (numeric(option)) {
      const lo = option.minimum, hi = option.maximum;
      const bounded = Number.isFinite(lo) && Number.isFinite(hi);
      if (option.type === 'number' && bounded) {
        input = el('input', {type: 'range', id, min: String(lo), max: String(hi), step: String((hi - lo) / 100)});
        output = el('output', {htmlFor: id});
        label.append(' ', output);
      } else {
        input = el('input', {type: 'number', id, step: option.type === 'integer' ? '1' : 'any',
                             inputMode: option.type === 'integer' ? 'numeric' : 'decimal'});
        if (Number.isFinite(lo)) input.min = String(lo);
        if (Number.isFinite(hi)) input.max = String(hi);
      }
      input.value = def;
      field.append(label, input, hint);
    } else if (option.type === 'json') {
      // JSON (a custom kernel or matrix): rows of numbers on a few lines, sent as the text typed;
      // the service reads and checks it (docs/CUSTOM.md).
      input = el('textarea', {id, rows: 4, autocomplete: 'off', spellcheck: false, class: 'json'});
      input.setAttribute('autocapitalize', 'off');
      input.value = def;
      field.append(label, input, hint);
    } else {
      // Text; an open set of suggestions (any other value of the syntax is accepted too).
      input = el('input', {type: 'text', id, autocomplete: 'off', spellcheck: false});
      input.setAttribute('autocapitalize', 'off');
      input.value = def;
      field.append(label, input);
      if (Array.isArray(option.suggestions) && option.suggestions.length) {
        const list = el('datalist', {id: `${id}-suggestions`});
        for (const s of option.suggestions) {
          const o = el('option', {value: String(s.value)});
          if (s.help) o.label = s.help;
          list.append(o);
        }
        input.setAttribute('list', list.id);
        field.append(list);
      }
      // A syntax of colour lists (#rrggbb,...): a colour picker adds one at a time.
      if (option.colour_list) field.append(colourAdder(input, option));
      field.append(hint);
    }
    input.dataset.option = option.name;
    input.setAttribute('aria-describedby', described.join(' '));
    return {option, input, field, choiceHint, output, needs: dependency(option, names)};
  }

  function colourAdder(input, option) {
    const colour = el('input', {type: 'color', value: '#000000', id: `opt-${option.name}-colour`});
    colour.setAttribute('aria-label', `Colour to add to the ${human(option.name).toLowerCase()}`);
    const add = el('button', {type: 'button', class: 'quiet', text: 'Add this colour'});
    add.addEventListener('click', () => {
      const now = input.value.trim();
      input.value = /^#[0-9a-f]{6}(,#[0-9a-f]{6})*$/i.test(now) ? `${now},${colour.value}` : colour.value;
      dform.dirty = true;
      syncForm();
    });
    return el('div', {class: 'colour-add'}, colour, add);
  }

  function controlValue(c) {
    return c.option.type === 'boolean' ? (c.input.checked ? 'true' : 'false') : c.input.value.trim();
  }
  function setControl(c, value) {
    const text = value === undefined || value === null ? defaultOf(c.option) : String(value);
    if (c.option.type === 'boolean') {
      c.input.checked = text === 'true';
    } else if (c.input.tagName === 'SELECT') {
      const match = Array.from(c.input.options).find((o) => o.value.toLowerCase() === text.toLowerCase());
      if (match) c.input.value = match.value;
    } else {
      c.input.value = text;
    }
  }
  function applies(c) {
    if (!c.needs) return true;
    const on = dform.controls.get(c.needs.option);
    return !on || c.needs.values.includes(controlValue(on));
  }
  // A default that depends on other options ("levels:{channels}"), with their values now.
  function noteValue(o) {
    return String(o.default_note || '').replace(/\{([a-z_]+)\}/g, (all, name) => {
      const c = dform.controls.get(name);
      return c ? controlValue(c) || defaultOf(c.option) : all;
    });
  }

  class FormProblem extends Error {
    constructor(control, message) {
      super(message);
      this.control = control;
    }
  }
  // An empty field means the option's default.
  function checkValue(c, text) {
    const o = c.option;
    if (!numeric(o) || text === '') return;
    const n = Number(text);
    const whole = o.type === 'integer';
    const lo = o.minimum, hi = o.maximum;
    if (!Number.isFinite(n) || (whole && !Number.isInteger(n)) ||
        (Number.isFinite(lo) && n < lo) || (Number.isFinite(hi) && n > hi)) {
      const range = Number.isFinite(lo) && Number.isFinite(hi) ? ` from ${lo} to ${hi}`
                  : Number.isFinite(lo) ? ` of at least ${lo}` : Number.isFinite(hi) ? ` of at most ${hi}` : '';
      throw new FormProblem(c, `${human(o.name)} must be ${whole ? 'a whole number' : 'a number'}${range}.`);
    }
  }

  // The custom options: `body` holds the options (in == "query") whose value differs from the
  // service's default, typed as JSON (an option of another algorithm is left out: it would change
  // nothing); `path` the values of the path's options (channels). For a preset (`forPreset`), an
  // option left to a default that depends on others gets that value written out (the palette
  // levels:{channels}), since a preset has no path.
  function readCustom(forPreset = false) {
    const body = {};
    const path = [];
    for (const c of dform.controls.values()) {
      c.input.removeAttribute('aria-invalid');
      const o = c.option;
      if (!applies(c)) continue;
      const text = controlValue(c);
      checkValue(c, text);
      if (o.in === 'path') {
        path.push(text === '' ? defaultOf(o) : text);
      } else if (o.in === 'query') {
        if (text !== '' && !sameValue(o, text, defaultOf(o))) body[o.name] = typedValue(o, text);
        else if (forPreset && text === '' && o.default_note) body[o.name] = noteValue(o);
      }
    }
    return {path, body};
  }

  const chosenPreset = () => {
    const r = form.querySelector('input[name="preset"]:checked');
    return r ? r.value : null;
  };
  const presetNamed = (name) => (dform.presets || []).find((p) => p.name === name);

  // The request (docs/API.md): POST api/dithers/{uuid}/{channels} with a JSON body: a preset is
  // {"preset": name} (it gives every option; the path's channels, the default, is only recorded);
  // Custom sends what readCustom() says.
  function readForm() {
    const preset = chosenPreset();
    if (preset === null) throw new FormProblem(null, 'Choose a preset, or Custom.');
    const pathDefaults = (dform.options || []).filter((o) => o.in === 'path').map(defaultOf);
    if (preset !== CUSTOM) return {path: pathDefaults.length ? pathDefaults : ['2'], body: {preset}, preset};
    if (!dform.options) throw new FormProblem(null, 'The options are not loaded yet.');
    const {path, body} = readCustom();
    return {path: path.length ? path : ['2'], body, preset: null};
  }

  function syncForm() {
    for (const c of dform.controls.values()) {
      c.field.hidden = !applies(c);
      if (c.output) c.output.textContent = c.input.value;
      if (c.choiceHint) {
        const chosen = (c.option.choices || []).find((x) => String(x.value) === c.input.value);
        c.choiceHint.textContent = chosen && chosen.help ? `${chosen.value}: ${chosen.help}` : '';
        c.choiceHint.hidden = c.choiceHint.textContent === '';
      }
      if (c.option.default_note && c.input.type === 'text') {
        c.input.placeholder = `${noteValue(c.option)} (the default)`;
      }
    }
  }

  function fillOptions(preset) {
    for (const c of dform.controls.values()) setControl(c, preset ? preset.options[c.option.name] : undefined);
    dform.dirty = false;
    $('custom-note').textContent = preset
        ? `Starting from the preset ${preset.name}. Change anything.`
        : 'The service\'s defaults. Change anything.';
    syncForm();
  }

  async function loadOptions() {
    if (dform.options) return;
    if (!dform.optionsLoad) {
      dform.optionsLoad = (async () => {
        try {
          const answer = await call('GET', 'api/options');
          const options = (answer && answer.options) || [];
          const names = new Set(options.map((o) => o.name));
          dform.controls.clear();
          for (const o of options) {
            if (o.in === 'query' || o.in === 'path') dform.controls.set(o.name, buildControl(o, names));
          }
          $('option-fields').replaceChildren(...Array.from(dform.controls.values(), (c) => c.field));
          dform.options = options;
          dform.version++;
          $('options-status').hidden = true;
          if (chosenPreset() === CUSTOM && !dform.dirty) fillOptions(presetNamed(dform.lastPreset));
          else syncForm();
          if (view.image) renderImage();  // the dithers' summaries
        } catch (err) {
          $('options-status').hidden = false;
          $('options-status').textContent = `Cannot load the options: ${err.message}`;
        } finally {
          dform.optionsLoad = null;
        }
      })();
    }
    await dform.optionsLoad;
  }

  function presetRow(p, i) {
    const id = `preset-${i}`;
    const radio = el('input', {type: 'radio', name: 'preset', id, value: p ? p.name : CUSTOM});
    const title = el('label', {class: 'preset-name', htmlFor: id, text: p ? p.name : 'Custom'});
    const text = p ? p.description || describe(p.options, {}) : 'Choose every option yourself.';
    const desc = el('span', {class: 'preset-desc', id: `${id}-desc`, text});
    radio.setAttribute('aria-describedby', desc.id);
    const row = el('div', {class: 'preset'}, radio,
                   el('div', {class: 'preset-text'}, title, p && !p.builtin ? el('span', {class: 'preset-own', text: 'yours'}) : null, desc));
    row.dataset.preset = p ? p.name : CUSTOM;
    if (p && !p.builtin) {
      const remove = el('button', {type: 'button', class: 'quiet danger', text: 'Delete'});
      remove.dataset.act = 'delete-preset';
      remove.setAttribute('aria-label', `Delete preset ${p.name}`);
      row.append(remove);
    }
    if (p) row.title = Object.entries(p.options || {}).map(([k, v]) => `${k}=${v}`).join(' ');
    return row;
  }

  function renderPresets() {
    const list = $('preset-list');
    const had = list.contains(document.activeElement);
    const before = chosenPreset();
    const presets = dform.presets || [];
    list.replaceChildren(...presets.map(presetRow), presetRow(null, presets.length));
    const keep = before !== null && (before === CUSTOM || presetNamed(before)) ? before
               : presets.length ? presets[0].name : CUSTOM;
    const radio = Array.from(list.querySelectorAll('input[name="preset"]')).find((r) => r.value === keep);
    radio.checked = true;
    if (had) radio.focus();
    presetChosen();
  }

  // The presets of whoever the page shows now (a load made for the owner before is thrown away).
  function loadPresets() {
    if (dform.presetsLoad && dform.presetsLoad.epoch === authEpoch) return dform.presetsLoad.promise;
    const load = {epoch: authEpoch};
    load.promise = (async () => {
      let items = null;
      let problem = null;
      try {
        const answer = await call('GET', 'api/presets');
        items = (answer && answer.items) || [];
      } catch (err) {
        problem = err;
      }
      if (dform.presetsLoad === load) dform.presetsLoad = null;
      if (load.epoch !== authEpoch) return;
      if (items) dform.presets = items;
      else if (dform.presets === null) dform.presets = [];
      $('preset-status').hidden = !problem;
      if (problem) $('preset-status').textContent = `Cannot load the presets: ${problem.message}`;
      renderPresets();
    })();
    dform.presetsLoad = load;
    return load.promise;
  }

  function presetChosen() {
    const preset = chosenPreset();
    const custom = preset === CUSTOM;
    for (const row of $('preset-list').children) row.classList.toggle('chosen', row.dataset.preset === preset);
    $('custom-panel').hidden = !custom;
    $('save-preset').hidden = !custom;
    if (preset !== null && !custom) dform.lastPreset = preset;
    if (custom) {
      if (!dform.options) loadOptions();
      else if (!dform.dirty) fillOptions(presetNamed(dform.lastPreset));
    }
  }

  form.addEventListener('input', (e) => {
    // A complaint about the form goes once the form changes.
    if ($('form-message').classList.contains('error')) {
      $('form-message').textContent = '';
      $('form-message').classList.remove('error');
    }
    if (e.target.dataset && e.target.dataset.option) {
      dform.dirty = true;
      e.target.removeAttribute('aria-invalid');
    }
    syncForm();
  });
  form.addEventListener('change', (e) => {
    if (e.target.name === 'preset') presetChosen();
    else if (e.target.dataset && e.target.dataset.option) dform.dirty = true;
    syncForm();
  });
  $('custom-reset').addEventListener('click', () => fillOptions(null));

  // The whole row of a preset chooses it; its Delete button deletes it.
  $('preset-list').addEventListener('click', async (e) => {
    const row = e.target.closest('.preset');
    if (!row) return;
    const button = e.target.closest('button[data-act="delete-preset"]');
    if (!button) {
      const radio = row.querySelector('input[name="preset"]');
      if (e.target !== radio && !e.target.closest('label') && !radio.checked) {
        radio.checked = true;
        presetChosen();
      }
      return;
    }
    const name = row.dataset.preset;
    if (!confirm(`Delete your preset ${name}?`)) return;
    button.disabled = true;
    try {
      await call('DELETE', `api/presets/${encodeURIComponent(name)}`);
      toast(`Preset ${name} deleted.`);
      await loadPresets();
      form.querySelector('input[name="preset"]:checked')?.focus();
    } catch (err) {
      button.disabled = false;
      toast(`Cannot delete the preset ${name}: ${err.message}`);
    }
  });

  function showProblem(message, err) {
    message.textContent = err.message;
    message.classList.add('error');
    if (err.control) {
      err.control.input.setAttribute('aria-invalid', 'true');
      err.control.input.focus();
    }
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const message = $('form-message');
    message.classList.remove('error');
    let request;
    try {
      request = readForm();
    } catch (err) {
      showProblem(message, err);
      return;
    }
    const submit = $('dither-submit');
    submit.disabled = true;
    message.textContent = 'Sending…';
    try {
      const record = await call('POST', `api/dithers/${view.uuid}/${request.path.map(encodeURIComponent).join('/')}`,
                                request.body, {'Idempotency-Key': newKey()});
      view.awaiting = record.id;
      if (!view.dithers.some((d) => d.id === record.id)) view.dithers.unshift(record);
      message.textContent = `Dither #${record.id} requested${request.preset ? ` with the preset ${request.preset}` : ''}; ` +
                            'it appears below when it is ready.';
      renderImage();
      pollSoon();
    } catch (err) {
      message.textContent = err.status === 400 ? `Not accepted: ${err.message}.` : err.message;
      message.classList.add('error');
    } finally {
      submit.disabled = false;
    }
  });

  // Saving the custom options as a preset of one's own (POST api/presets; the same name replaces it).
  $('save-preset-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const message = $('preset-message');
    message.classList.remove('error');
    const nameInput = $('preset-name');
    const name = nameInput.value.trim();
    const fail = (text, focus) => {
      message.textContent = text;
      message.classList.add('error');
      if (focus) focus.focus();
    };
    if (!PRESET_NAME.test(name)) {
      fail('A preset\'s name is 1 to 64 lower-case letters, digits, “-”, “_” or “.”, starting with a letter or digit.', nameInput);
      return;
    }
    const existing = presetNamed(name);
    if (existing && existing.builtin) {
      fail(`${name} is a built-in preset: choose another name.`, nameInput);
      return;
    }
    if (existing && !confirm(`Replace your preset ${name}?`)) return;
    if (!dform.options) {
      fail('The options are not loaded yet.');
      return;
    }
    let options;
    try {
      options = readCustom(true).body;
    } catch (err) {
      showProblem(message, err);
      return;
    }
    const button = $('preset-save');
    button.disabled = true;
    message.textContent = 'Saving…';
    try {
      const description = $('preset-description').value.trim();
      await call('POST', 'api/presets', {name, description, options});
      await loadPresets();
      message.textContent = `${existing ? 'Replaced' : 'Saved'} the preset ${name}: it is in the list above.`;
      nameInput.value = '';
      $('preset-description').value = '';
    } catch (err) {
      fail(err.status === 400 ? `Not accepted: ${err.message}.` : `Cannot save the preset: ${err.message}`);
    } finally {
      button.disabled = false;
    }
  });
  $('save-preset-form').addEventListener('input', () => {
    if ($('preset-message').classList.contains('error')) {
      $('preset-message').textContent = '';
      $('preset-message').classList.remove('error');
    }
  });

  // ---------------------------------------------------------------- views, polling, health

  let route = {name: 'gallery'};
  function showView(name) {
    $('gallery-view').hidden = name !== 'gallery';
    $('image-view').hidden = name !== 'image';
    $('not-found-view').hidden = name !== 'not-found';
    if (name !== 'image') document.title = 'Dither';
  }

  function routeFromHash() {
    const m = /^#\/images\/([0-9a-f-]{36})$/i.exec(location.hash);
    return m ? {name: 'image', uuid: m[1].toLowerCase()} : {name: 'gallery'};
  }

  async function navigate() {
    const previous = route;
    route = routeFromHash();
    if (route.name === 'image') {
      if (view.uuid !== route.uuid) {
        Object.assign(view, {uuid: route.uuid, image: null, dithers: [], selected: null,
                             awaiting: null});
        view.items.clear();
        $('dithers').replaceChildren();
        $('form-message').textContent = '';
        cmpOriginal.removeAttribute('src');
        cmpDither.removeAttribute('src');
      }
      // The form's table and presets, if they could not be loaded before.
      if (!dform.options) loadOptions();
      if (dform.presets === null || !$('preset-status').hidden) loadPresets();
      try {
        await refreshImage();
      } catch (err) {
        if (err.status !== 401) toast(err.message);  // a 401 is said above (unauthorized)
      }
      if (!$('image-view').hidden) $('image-title').focus();
      else if (!$('not-found-view').hidden) $('not-found-title').focus();
    } else {
      view.uuid = null;
      showView('gallery');
      renderGallery();
      if (previous.name === 'image') {
        const back = previous.uuid && gallery.cards.get(previous.uuid);
        (back && back.li.isConnected ? back.link : $('gallery-title')).focus();
      }
    }
    pollSoon();
  }
  window.addEventListener('hashchange', navigate);

  function busy() {
    if (route.name === 'image') return view.dithers.some((d) => d.status === 'PENDING') ||
                                       (view.image && view.image.status === 'PENDING');
    return gallery.items.some((i) => i.status === 'PENDING') ||
           uploads.some((u) => u.status === 'sending');
  }

  let pollTimer = null;
  let polling = false;
  let again = false;
  async function poll() {
    clearTimeout(pollTimer);
    pollTimer = null;
    if (document.hidden) return;
    if (polling) {
      again = true;
      return;
    }
    polling = true;
    try {
      if (route.name === 'image' && view.uuid) await refreshImage();
      else await refreshGallery();
      $('health').hidden = healthy;
    } catch (err) {
      if (err.status === 401) {
        $('health').hidden = healthy;  // said above the gallery (unauthorized)
      } else {
        $('health').hidden = false;
        $('health').textContent = err.code === 'network' ? 'Offline' : 'Service trouble';
        $('health').title = err.message;
      }
    } finally {
      polling = false;
    }
    if (again) {
      again = false;
      pollSoon();
      return;
    }
    pollTimer = setTimeout(poll, busy() ? POLL_BUSY_MS : POLL_IDLE_MS);
  }
  function pollSoon() {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(poll, 50);
  }
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) pollSoon();
  });

  let healthy = true;
  async function checkHealth() {
    try {
      const r = await fetch('health', {headers: {Accept: 'application/json'}});
      healthy = r.ok;
      if (!healthy) {
        const data = parseJson(await r.text());
        const down = data && data.services
            ? Object.entries(data.services).filter(([, s]) => s.status !== 'ok').map(([n]) => n) : [];
        $('health').textContent = down.length ? `Unavailable: ${down.join(', ')}` : 'Service trouble';
      }
    } catch {
      healthy = false;
      $('health').textContent = 'Offline';
    }
    $('health').hidden = healthy;
  }
  setInterval(() => {
    if (!document.hidden) checkHealth();
  }, 30000);

  // ---------------------------------------------------------------- whose images

  let me = null;  // GET api/me: {owner, via, admin, key_id, key_name}

  // Says whose images the page shows. Returns the status of the failure (401...), or 0.
  async function loadMe() {
    try {
      me = await call('GET', 'api/me');
      renderWho();
      return 0;
    } catch (err) {
      me = null;
      renderWho(err);
      return err.status || -1;
    }
  }

  const ownerId = (text) => el('span', {class: 'owner-id', text});
  function renderWho(err) {
    const parts = [];
    if (me && me.via === 'key') {
      parts.push('Images of key ', el('strong', {text: me.key_name || '(no name)'}), ' (',
                 ownerId(me.key_id || '?'), '), owner ', ownerId(me.owner));
    } else if (me) {
      parts.push('This browser\'s images (session ', ownerId(String(me.owner).replace(/^session:/, '')), ')');
    } else if (err && err.status === 401) {
      parts.push(apiKey ? 'The API key in use is not accepted.' : 'This browser has no session.');
    } else if (err) {
      parts.push(`Cannot tell whose images these are: ${err.message}`);
    }
    if (me && me.admin) parts.push(' · ', el('span', {class: 'admin', text: 'admin'}), ': every owner\'s images');
    $('who-text').replaceChildren(...parts);
    $('who-hint').hidden = !(me && me.via === 'session');
    // While the alert below offers it, the button is not shown twice.
    $('stop-key').hidden = !apiKey || !$('auth-problem').hidden;
    $('forget-session').hidden = !(!apiKey && me && me.via === 'session');
    $('key-box').querySelector('summary').textContent = apiKey ? 'Use another API key' : 'Use an API key';
  }

  // The page's credentials were refused: say so once (role=alert), and offer the way out.
  function unauthorized() {
    const text = apiKey
        ? 'The API key in use is no longer accepted: it was revoked, or it is wrong. ' +
          'Stop using it to see this browser\'s own images again.'
        : 'This browser\'s session has ended (or the browser blocks cookies). ' +
          'Reload the page to start a new one, or use an API key.';
    if ($('auth-problem').hidden || $('auth-problem-text').textContent !== text) {
      $('auth-problem-text').textContent = text;
      $('auth-stop-key').hidden = !apiKey;
      $('auth-reload').hidden = !!apiKey;
      $('auth-problem').hidden = false;
      $('stop-key').hidden = true;
    }
  }
  function authWorks() {
    if ($('auth-problem').hidden) return;
    $('auth-problem').hidden = true;
    $('stop-key').hidden = !apiKey;
  }

  // The page now shows another owner's images: start the gallery again.
  function switchedOwner() {
    authEpoch++;
    Object.assign(gallery, {items: [], cursor: null, loaded: false, wanted: PAGE});
    gallery.cards.clear();
    $('gallery').replaceChildren();
    // Finished rows link to the other owner's images.
    for (let i = uploads.length - 1; i >= 0; i--) {
      if (uploads[i].status === 'uploaded' || uploads[i].status === 'failed') {
        uploads[i].row.remove();
        uploads.splice(i, 1);
      }
    }
    $('clear-uploads').hidden = uploads.length === 0;
    Object.assign(view, {uuid: null, image: null, dithers: [], selected: null, awaiting: null});
    view.items.clear();
    loadPresets();  // the other owner's own presets
    if (routeFromHash().name !== 'gallery') location.hash = '#/';  // navigates
    else navigate();
  }

  $('key-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = $('api-key');
    const message = $('key-message');
    const key = input.value.trim();
    message.classList.remove('error');
    if (!key) {
      message.textContent = 'Paste a key first: it starts with dk_.';
      message.classList.add('error');
      input.focus();
      return;
    }
    const button = $('key-use');
    button.disabled = true;
    message.textContent = 'Checking the key…';
    try {
      const who = await call('GET', 'api/me', undefined, {Authorization: `Bearer ${key}`});
      if (!who || who.via !== 'key') throw new ApiError(0, 'unexpected', 'the service did not take it as a key');
      let kept = true;
      try {
        localStorage.setItem(KEY_STORAGE, key);
      } catch {
        kept = false;  // storage turned off: used until the page is closed
      }
      apiKey = key;
      me = who;
      input.value = '';
      message.textContent = '';
      $('key-box').open = false;
      authWorks();
      renderWho();
      switchedOwner();
      $('key-box').querySelector('summary').focus();
      toast(`Now showing the images of key ${who.key_name || who.key_id}` +
            (kept ? '.' : ' (this browser does not let the page keep it: until the page is closed).'));
    } catch (err) {
      message.textContent = err.status === 401
          ? 'This key is not accepted: it is unknown, revoked or mistyped. Nothing was changed.'
          : `Cannot check the key: ${err.message}`;
      message.classList.add('error');
    } finally {
      button.disabled = false;
    }
  });

  async function stopUsingKey() {
    try {
      localStorage.removeItem(KEY_STORAGE);
    } catch {
      // storage turned off: nothing was kept
    }
    apiKey = '';
    authWorks();
    const failed = await loadMe();
    if (failed === 401) {
      location.reload();  // no session any more: loading the page starts a new one
      return;
    }
    switchedOwner();
    $('key-box').querySelector('summary').focus();
    toast('Stopped using the key: this browser\'s own images again.');
  }
  $('stop-key').addEventListener('click', stopUsingKey);
  $('auth-stop-key').addEventListener('click', stopUsingKey);
  $('auth-reload').addEventListener('click', () => location.reload());

  $('forget-session').addEventListener('click', async () => {
    if (!confirm('Forget this browser? The page starts again with a new, empty session; ' +
                 'the images uploaded so far are no longer reachable from this browser.')) return;
    const button = $('forget-session');
    button.disabled = true;
    try {
      await call('DELETE', 'api/session');
    } catch (err) {
      if (err.status !== 401) {  // 401: ended already
        toast(`Cannot forget this browser: ${err.message}`);
        button.disabled = false;
        return;
      }
    }
    location.reload();
  });

  loadMe();
  checkHealth();
  loadOptions();
  loadPresets();
  navigate();
})();
