// A small PNG reader and writer for the end-to-end test (no dependencies): reads the dithers the
// page downloads and the page's own screenshots, writes test images. Non-interlaced, 8-bit or
// indexed/grey below 8 bits; enough for what the test checks.
import zlib from 'node:zlib';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const CRC_TABLE = Array.from({length: 256}, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export function isPng(bytes) {
  return bytes.length > 8 && bytes.subarray(0, 8).equals(SIGNATURE);
}

// -> {width, height, colorType, bitDepth, palette: [[r,g,b]...] | null, pixels(): iterator of
// [r, g, b]}
export function readPng(bytes) {
  if (!isPng(bytes)) throw new Error('not a PNG (bad signature)');
  let pos = 8;
  let header = null;
  let palette = null;
  const idat = [];
  while (pos < bytes.length) {
    const length = bytes.readUInt32BE(pos);
    const type = bytes.toString('latin1', pos + 4, pos + 8);
    const data = bytes.subarray(pos + 8, pos + 8 + length);
    if (crc32(bytes.subarray(pos + 4, pos + 8 + length)) !== bytes.readUInt32BE(pos + 8 + length)) {
      throw new Error(`bad CRC in chunk ${type}`);
    }
    pos += 12 + length;
    if (type === 'IHDR') {
      header = {
        width: data.readUInt32BE(0), height: data.readUInt32BE(4), bitDepth: data[8],
        colorType: data[9], interlace: data[12],
      };
    } else if (type === 'PLTE') {
      palette = [];
      for (let i = 0; i + 2 < data.length; i += 3) palette.push([data[i], data[i + 1], data[i + 2]]);
    } else if (type === 'IDAT') {
      idat.push(data);
    } else if (type === 'IEND') {
      break;
    }
  }
  if (!header) throw new Error('no IHDR');
  const {width, height, bitDepth, colorType, interlace} = header;
  if (interlace !== 0) throw new Error('interlaced PNGs are not supported here');
  const channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colorType];
  if (!channels) throw new Error(`colour type ${colorType}`);
  if (bitDepth > 8) throw new Error('16-bit PNGs are not supported here');
  const bitsPerPixel = channels * bitDepth;
  const stride = Math.ceil((width * bitsPerPixel) / 8);
  const bpp = Math.max(1, bitsPerPixel >> 3);
  const raw = zlib.inflateSync(Buffer.concat(idat));
  if (raw.length < height * (stride + 1)) throw new Error('truncated image data');
  const rows = [];
  let prev = Buffer.alloc(stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const row = Buffer.from(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)));
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? row[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
      let add;
      switch (filter) {
        case 0: add = 0; break;
        case 1: add = a; break;
        case 2: add = b; break;
        case 3: add = (a + b) >> 1; break;
        case 4: {
          const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
          add = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          break;
        }
        default: throw new Error(`bad filter ${filter} in row ${y}`);
      }
      row[i] = (row[i] + add) & 0xff;
    }
    rows.push(row);
    prev = row;
  }
  const sample = (row, index) => {  // the index-th sample of bitDepth bits
    if (bitDepth === 8) return row[index];
    const bit = index * bitDepth;
    return (row[bit >> 3] >> (8 - bitDepth - (bit & 7))) & ((1 << bitDepth) - 1);
  };
  const scale = 255 / ((1 << bitDepth) - 1);
  function* pixels() {
    for (const row of rows) {
      for (let x = 0; x < width; x++) {
        if (colorType === 3) {
          const entry = palette[sample(row, x)];
          if (!entry) throw new Error('palette index out of range');
          yield entry;
        } else if (colorType === 0 || colorType === 4) {
          const v = Math.round(sample(row, x * channels) * scale);
          yield [v, v, v];
        } else {
          yield [row[x * channels], row[x * channels + 1], row[x * channels + 2]];
        }
      }
    }
  }
  return {width, height, bitDepth, colorType, palette, pixels};
}

// A grey 8-bit PNG of one value (compresses to almost nothing, whatever its size).
export function greyPng(width, height, value = 128) {
  const chunk = (type, data) => {
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    out.write(type, 4, 'latin1');
    data.copy(out, 8);
    out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;  // bit depth
  ihdr[9] = 0;  // grey
  const row = Buffer.alloc(width + 1, value);
  row[0] = 0;
  const raw = Buffer.alloc(row.length * height);
  for (let y = 0; y < height; y++) row.copy(raw, y * row.length);
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw)),
                        chunk('IEND', Buffer.alloc(0))]);
}

export const hex = ([r, g, b]) => '#' + [r, g, b].map((v) => v.toString(16).padStart(2, '0')).join('');
