// What an uploaded image is, before anything is decoded: its size from the
// PNG IHDR or the JPEG start-of-frame marker, so that a 60000x60000 image is
// refused before a byte of its pixels is allocated; and the file part of a
// multipart/form-data body (RFC 7578), for HTML forms and `curl -F`.
import { HttpError, bad } from './protocol.js';

export interface ImageHeader { format: 'png' | 'jpeg'; width: number; height: number }

/**
 * Format and size from the first bytes: PNG (W3C PNG §11.2.1: IHDR is the
 * first chunk, width and height at bytes 16 and 20) or JPEG (ITU T.81 B.2:
 * segments until a SOFn marker, whose frame header holds height, width).
 */
export function imageHeader(b: Uint8Array): ImageHeader {
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) {
    if (b.length < 24) throw bad(`truncated PNG (${b.length} bytes): no complete IHDR`);
    const type = String.fromCharCode(b[12], b[13], b[14], b[15]);
    if (type !== 'IHDR') throw bad(`corrupt PNG: first chunk is '${type}', expected IHDR`);
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    return { format: 'png', width: dv.getUint32(16), height: dv.getUint32(20) };
  }
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) {
    let p = 2;
    while (p + 4 <= b.length) {
      if (b[p] !== 0xff) throw bad(`corrupt JPEG: expected a marker at byte ${p}`);
      const m = b[p + 1];
      if (m === 0xff) { p++; continue; }                               // fill byte
      if (m === 0x01 || (m >= 0xd0 && m <= 0xd7)) { p += 2; continue; } // no length
      if (m === 0xd9 || m === 0xda) throw bad('corrupt JPEG: no frame header (SOF) before the image data');
      const len = (b[p + 2] << 8) | b[p + 3];
      const sof = m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
      if (sof) {
        if (p + 9 > b.length) break;
        return { format: 'jpeg', height: (b[p + 5] << 8) | b[p + 6], width: (b[p + 7] << 8) | b[p + 8] };
      }
      if (len < 2) throw bad(`corrupt JPEG: segment length ${len} at byte ${p}`);
      p += 2 + len;
    }
    throw bad(`truncated JPEG (${b.length} bytes): no frame header (SOF)`);
  }
  if (b.length === 0) throw bad('empty body: expected a PNG or JPEG image');
  const head = Array.from(b.subarray(0, 8), (v) => v.toString(16).padStart(2, '0')).join(' ');
  throw new HttpError(415, `not a PNG or JPEG image (${b.length} bytes, starting ${head})`);
}

/** The header checked against a pixel limit (413 when over). */
export function checkImageSize(b: Uint8Array, maxPixels: number): ImageHeader {
  const h = imageHeader(b);
  if (h.width === 0 || h.height === 0) throw bad(`corrupt ${h.format.toUpperCase()}: size ${h.width}x${h.height}`);
  if (h.width * h.height > maxPixels) throw new HttpError(413, `image ${h.width}x${h.height} has ${h.width * h.height} pixels, over this server's limit of ${maxPixels}`);
  return h;
}

/**
 * The first part with a filename (else the first part) of a
 * multipart/form-data body; `contentType` carries the boundary.
 */
export function multipartFile(body: Buffer, contentType: string): Buffer {
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  if (!m) throw bad('multipart/form-data without a boundary parameter');
  const delim = Buffer.from(`--${m[1] ?? m[2]}`);
  const parts: { headers: string; data: Buffer }[] = [];
  let at = body.indexOf(delim);
  if (at < 0) throw bad('multipart body does not contain its boundary');
  for (;;) {
    let start = at + delim.length;
    if (body.subarray(start, start + 2).toString() === '--') break;      // closing delimiter
    if (body[start] === 0x0d && body[start + 1] === 0x0a) start += 2;
    const next = body.indexOf(delim, start);
    if (next < 0) throw bad('truncated multipart body: no closing boundary');
    const part = body.subarray(start, next);
    const sep = part.indexOf('\r\n\r\n');
    if (sep < 0) throw bad('malformed multipart part: no blank line after its headers');
    let end = part.length;
    if (part[end - 2] === 0x0d && part[end - 1] === 0x0a) end -= 2;        // the CRLF before the delimiter
    parts.push({ headers: part.subarray(0, sep).toString('latin1'), data: part.subarray(sep + 4, end) });
    at = next;
  }
  if (!parts.length) throw bad('multipart body has no parts');
  return (parts.find((p) => /filename=/i.test(p.headers)) ?? parts[0]).data;
}
