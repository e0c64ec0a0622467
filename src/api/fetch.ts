// Fetching a model, image or kernel over HTTP without trusting the server
// (the network side of io/input.ts): the body is read chunk by chunk and
// refused as soon as the announced (Content-Length) or received bytes pass
// the caller's limit, so a hostile or mistaken URL cannot fill memory; and a
// server that stops sending (before the headers or in the middle of the body)
// is given up after FETCH_IDLE_MS without a byte, rather than hanging load()
// or classify() forever. A slow but steady download is not cut off. Errors
// name the URL. Node (undici) and browsers both provide fetch and streams.

/** How long a fetch may wait for the response headers, or for the body's next chunk, before it is aborted. */
export const FETCH_IDLE_MS = 30_000;

/** Most bytes of a WASM kernel build accepted, from a file or a URL (the builds are about 100 KB). */
export const MAX_WASM_BYTES = 64 * 2 ** 20;

const fmtBytes = (n: number): string => (n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(1)} MiB` : `${n} bytes`);

export interface FetchLimits {
  /** What the bytes are, for messages ('model weights', 'image'). */
  what: string;
  /** Most bytes accepted. */
  limit: number;
  /** Default FETCH_IDLE_MS. */
  idleMs?: number;
  /** HTTP 404 gives null instead of an error (a model folder's optional files). */
  missingOk?: boolean;
}

/** What a failed fetch threw, with the URL and (undici's 'fetch failed' says nothing else) the cause's code. */
function networkError(url: URL, e: unknown): Error {
  const c = (e as Error & { cause?: { code?: string; message?: string } }).cause;
  return new Error(`${url.href}: ${(e as Error).message}${c ? ` (${c.code ?? c.message})` : ''}`, { cause: e });
}

export async function fetchBytes(url: URL, o: FetchLimits & { missingOk: true }): Promise<Uint8Array | null>;
export async function fetchBytes(url: URL, o: FetchLimits): Promise<Uint8Array>;
/** GET `url`'s body, within o.limit bytes and o.idleMs between arrivals (see the header). */
export async function fetchBytes(url: URL, o: FetchLimits): Promise<Uint8Array | null> {
  const idle = o.idleMs ?? FETCH_IDLE_MS, ctl = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined, stalled = false;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => { stalled = true; ctl.abort(); }, idle);
  };
  const tooBig = (n: number, how: string) => new Error(`${url.href}: ${how}${fmtBytes(n)} of ${o.what}, over the limit of ${fmtBytes(o.limit)}; not downloaded`);
  arm();
  try {
    let res: Response;
    try { res = await fetch(url, { signal: ctl.signal }); } catch (e) { throw stalled ? e : networkError(url, e); }
    if (res.status === 404 && o.missingOk) { await res.body?.cancel().catch(() => {}); return null; }
    if (!res.ok) {
      await res.body?.cancel().catch(() => {});
      throw new Error(`${url.href}: HTTP ${res.status} ${res.statusText}`);
    }
    const announced = Number(res.headers.get('content-length') ?? NaN);
    if (announced > o.limit) { await res.body?.cancel().catch(() => {}); throw tooBig(announced, ''); }
    if (!res.body) return new Uint8Array(0);
    // with a length (and no compression, where the length counts the compressed bytes) the chunks go
    // straight into one buffer of that size: a 2 GiB model then takes 2 GiB, not twice that at the end
    const identity = (res.headers.get('content-encoding') ?? 'identity').trim().toLowerCase() === 'identity';
    let whole = identity && Number.isInteger(announced) && announced >= 0 ? new Uint8Array(announced) : null;
    const reader = res.body.getReader(), chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      arm();
      const { done, value } = await reader.read();
      if (done) break;
      if (total + value.byteLength > o.limit) { await reader.cancel().catch(() => {}); throw tooBig(total + value.byteLength, 'more than '); }
      if (whole && total + value.byteLength > whole.length) { chunks.push(whole.subarray(0, total)); whole = null; }   // more than announced
      if (whole) whole.set(value, total);
      else chunks.push(value);
      total += value.byteLength;
    }
    if (whole) return total === whole.length ? whole : whole.subarray(0, total);
    if (chunks.length === 1) return chunks[0];
    const out = new Uint8Array(total);
    let off = 0;
    for (const c of chunks) { out.set(c, off); off += c.byteLength; }
    return out;
  } catch (e) {
    if (stalled) throw new Error(`${url.href}: nothing received for ${idle / 1000} s; gave up on the ${o.what}`, { cause: e });
    throw e;
  } finally { clearTimeout(timer); }
}
