// A small GIF writer and reader for the end-to-end test (no dependencies): writes an animated GIF
// of indexed frames (one global colour table, a delay per frame, the NETSCAPE2.0 loop count) and
// reads back what a browser would play: the frame count, each frame's delay and the loop count.
// The writer's LZW codes are all literals (a clear code every 250 of them keeps the code width at
// 9 bits), which every decoder reads; the files are larger than they need be, which is fine here.

const CLEAR = 256;
const END = 257;

// Packs 9-bit codes, least significant bit first, into data sub-blocks of at most 255 bytes.
function lzwLiterals(indices) {
  const codes = [CLEAR];
  let sinceClear = 0;
  for (const i of indices) {
    if (sinceClear === 250) {
      codes.push(CLEAR);
      sinceClear = 0;
    }
    codes.push(i);
    sinceClear += 1;
  }
  codes.push(END);
  const bytes = [];
  let acc = 0;
  let bits = 0;
  for (const c of codes) {
    acc |= c << bits;
    bits += 9;
    while (bits >= 8) {
      bytes.push(acc & 0xff);
      acc >>>= 8;
      bits -= 8;
    }
  }
  if (bits > 0) bytes.push(acc & 0xff);
  const out = [8];  // LZW minimum code size: 8-bit indices
  for (let pos = 0; pos < bytes.length; pos += 255) {
    const block = bytes.slice(pos, pos + 255);
    out.push(block.length, ...block);
  }
  out.push(0);
  return out;
}

const u16 = (n) => [n & 0xff, (n >> 8) & 0xff];

// frames: [Uint8Array of width*height palette indices]; palette: [[r, g, b]] (at most 256);
// delaysMs: one per frame (rounded to centiseconds); loop: times played (0: for ever). A single
// frame without `loop` makes a still GIF.
export function writeGif(width, height, frames, palette, delaysMs, loop) {
  const bytes = [...Buffer.from('GIF89a', 'latin1'), ...u16(width), ...u16(height),
                 0xf7, 0, 0];  // global colour table of 256 entries
  for (let i = 0; i < 256; i++) bytes.push(...(palette[i] || [0, 0, 0]));
  if (loop !== undefined) {
    bytes.push(0x21, 0xff, 11, ...Buffer.from('NETSCAPE2.0', 'latin1'), 3, 1, ...u16(loop), 0);
  }
  frames.forEach((indices, f) => {
    const delay = Math.round((delaysMs[f] || 0) / 10);
    bytes.push(0x21, 0xf9, 4, 0x04, ...u16(delay), 0, 0);  // disposal: leave in place
    bytes.push(0x2c, ...u16(0), ...u16(0), ...u16(width), ...u16(height), 0);
    bytes.push(...lzwLiterals(indices));
  });
  bytes.push(0x3b);
  return Buffer.from(bytes);
}

export function isGif(bytes) {
  const magic = bytes.toString('latin1', 0, 6);
  return magic === 'GIF89a' || magic === 'GIF87a';
}

// -> {width, height, frames, delaysMs: [...], loop (the NETSCAPE2.0 count, or null)}
export function readGif(bytes) {
  if (!isGif(bytes)) throw new Error('not a GIF');
  const width = bytes.readUInt16LE(6);
  const height = bytes.readUInt16LE(8);
  let pos = 13;
  if (bytes[10] & 0x80) pos += 3 * (2 << (bytes[10] & 7));
  const skipBlocks = () => {
    while (bytes[pos] !== 0) pos += bytes[pos] + 1;
    pos += 1;
  };
  const delaysMs = [];
  let delay = 0;
  let loop = null;
  for (;;) {
    if (pos >= bytes.length) throw new Error('a GIF without its trailer');
    const kind = bytes[pos];
    if (kind === 0x3b) break;
    if (kind === 0x21) {
      const label = bytes[pos + 1];
      pos += 2;
      if (label === 0xf9) delay = bytes.readUInt16LE(pos + 2) * 10;
      if (label === 0xff && bytes.toString('latin1', pos + 1, pos + 12) === 'NETSCAPE2.0') {
        loop = bytes.readUInt16LE(pos + 14);
      }
      skipBlocks();
    } else if (kind === 0x2c) {
      const packed = bytes[pos + 9];
      pos += 10;
      if (packed & 0x80) pos += 3 * (2 << (packed & 7));
      pos += 1;  // LZW minimum code size
      skipBlocks();
      delaysMs.push(delay);
      delay = 0;
    } else {
      throw new Error(`unexpected GIF block 0x${kind.toString(16)} at ${pos}`);
    }
  }
  return {width, height, frames: delaysMs.length, delaysMs, loop};
}
