// Seeded, deterministic PRNG for everything random in training (init, shuffles,
// augmentation, dropout) so a run is reproducible from its seed and resumable
// from a checkpoint. Generator: xoshiro128** 1.1 (Blackman & Vigna,
// https://prng.di.unimi.it/xoshiro128starstar.c), 128-bit state, period 2^128-1,
// seeded through splitmix32 so that nearby seeds give unrelated streams.
// Not cryptographic.

/** JSON-serialisable generator state: the four xoshiro words and the cached Box–Muller spare. */
export interface RngState {
  s: [number, number, number, number];
  spare: number | null;
}

type Shuffleable = { length: number; [i: number]: any };

export class Rng {
  private a = 0;
  private b = 0;
  private c = 0;
  private d = 0;
  /** Second Box–Muller deviate, returned by the next normal() call. */
  private spare: number | null = null;

  constructor(seed = 0) {
    // splitmix32 (the 32-bit variant of Vigna's splitmix64 finaliser) expands the seed.
    let x = seed >>> 0;
    const sm = (): number => {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
      z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
      return (z ^ (z >>> 15)) >>> 0;
    };
    this.a = sm(); this.b = sm(); this.c = sm(); this.d = sm();
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1; // all-zero state is a fixed point
  }

  /** Next raw 32-bit output as an unsigned integer. */
  nextU32(): number {
    const b = this.b;
    const r = Math.imul(rotl(Math.imul(b, 5), 7), 9);
    const t = b << 9;
    this.c ^= this.a;
    this.d ^= b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return r >>> 0;
  }

  /** Uniform in [0, 1) with 32-bit resolution. */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform in [lo, hi). */
  uniform(lo = 0, hi = 1): number {
    return lo + (hi - lo) * this.next();
  }

  /** Uniform integer in [0, n), n ≤ 2^32; unbiased (rejection of the short last bucket). */
  int(n: number): number {
    if (!(n >= 1 && n <= 4294967296) || !Number.isInteger(n)) throw new RangeError(`Rng.int: bad n ${n}`);
    const limit = 4294967296 - (4294967296 % n); // largest multiple of n that fits in 32 bits
    let u: number;
    do u = this.nextU32(); while (u >= limit);
    return u % n;
  }

  /** Standard normal N(0, 1), Box–Muller; the second deviate is cached, so normals come in pairs. */
  normal(): number {
    if (this.spare !== null) {
      const z = this.spare;
      this.spare = null;
      return z;
    }
    const u1 = 1 - this.next(); // (0, 1]: log(0) impossible
    const u2 = this.next();
    const r = Math.sqrt(-2 * Math.log(u1));
    const th = 2 * Math.PI * u2;
    this.spare = r * Math.sin(th);
    return r * Math.cos(th);
  }

  /**
   * timm's trunc_normal_(std=std, a, b): N(mean, std²) restricted to [a, b], where a and b are
   * ABSOLUTE bounds, not multiples of std (so with the usual std=0.02 the ±2 bounds almost never
   * bite). Sampled by rejection, which is exact; it throws if [a, b] holds almost no mass.
   */
  truncNormal(std = 1, a = -2, b = 2, mean = 0): number {
    if (!(a < b)) throw new RangeError(`Rng.truncNormal: empty interval [${a}, ${b}]`);
    if (std === 0) return Math.min(b, Math.max(a, mean));
    for (let tries = 0; tries < 10000; tries++) {
      const v = mean + std * this.normal();
      if (v >= a && v <= b) return v;
    }
    throw new RangeError(`Rng.truncNormal: [${a}, ${b}] is too far in the tail of N(${mean}, ${std}²)`);
  }

  /** Fill `out` with truncNormal draws (weight init). */
  fillTruncNormal(out: Float32Array, std: number, a = -2, b = 2, mean = 0): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = this.truncNormal(std, a, b, mean);
    return out;
  }

  /** In-place Fisher–Yates (Durstenfeld) shuffle; returns the same array. */
  shuffle<T extends Shuffleable>(arr: T): T {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = arr[i];
      arr[i] = arr[j];
      arr[j] = t;
    }
    return arr;
  }

  state(): RngState {
    return { s: [this.a >>> 0, this.b >>> 0, this.c >>> 0, this.d >>> 0], spare: this.spare };
  }

  setState(st: RngState): this {
    const s = st?.s;
    if (!Array.isArray(s) || s.length !== 4 || !s.every((v) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff)) {
      throw new TypeError('Rng.setState: expected { s: [4 uint32], spare }');
    }
    if ((s[0] | s[1] | s[2] | s[3]) === 0) throw new TypeError('Rng.setState: all-zero state');
    this.a = s[0] | 0; this.b = s[1] | 0; this.c = s[2] | 0; this.d = s[3] | 0;
    this.spare = typeof st.spare === 'number' ? st.spare : null;
    return this;
  }

  /** Independent copy at the same position. */
  clone(): Rng {
    return new Rng().setState(this.state());
  }

  static fromState(st: RngState): Rng {
    return new Rng().setState(st);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
