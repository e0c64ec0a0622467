// Heap allocator shared by every backend whose memory is one linear buffer
// (WASM memory, the reference backend's ArrayBuffer).
//
// Why our own allocator: AssemblyScript kernels are built with `--runtime stub`
// (no GC, no malloc), so the heap is managed from TypeScript. That also keeps
// kernels free of runtime globals, so later one module can be instantiated in
// several workers over one shared memory.
//
// Layout: [0, HEAP_BASE) is reserved: pointer 0 means "none" to kernels, and
// the WASM build keeps its read-only constant tables there (assembly/math.ts).
// Blocks are ALIGN-byte aligned (a cache line; f32x4 loads need only 16).
// Free blocks live in a list sorted by address and are coalesced with their
// neighbours; allocation is first fit, else bump from the top, else grow.

export const ALIGN = 64;
export const HEAP_BASE = 1024;

export class HeapAllocator {
  private top = HEAP_BASE;
  private readonly freeList: Array<[ptr: number, bytes: number]> = [];
  private readonly live = new Map<number, number>();
  bytesInUse = 0;
  peakBytes = 0;

  /** @param capacity current heap size in bytes; @param grow makes the heap at least `bytes` long and returns the new size */
  constructor(private capacity: number, private readonly grow: (bytes: number) => number) {}

  alloc(bytes: number): number {
    if (!(bytes >= 0) || !Number.isFinite(bytes)) throw new RangeError(`alloc: invalid size ${bytes}`);
    const size = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
    let ptr = -1;
    for (let i = 0; i < this.freeList.length; i++) {
      const [p, s] = this.freeList[i];
      if (s < size) continue;
      ptr = p;
      if (s === size) this.freeList.splice(i, 1);
      else this.freeList[i] = [p + size, s - size];
      break;
    }
    if (ptr < 0) {
      // take the trailing free block too if it touches the top
      const last = this.freeList[this.freeList.length - 1];
      if (last && last[0] + last[1] === this.top) {
        this.freeList.pop();
        this.top = last[0];
      }
      ptr = this.top;
      this.top += size;
      if (this.top > this.capacity) this.capacity = this.grow(this.top);
    }
    this.live.set(ptr, size);
    this.bytesInUse += size;
    if (this.bytesInUse > this.peakBytes) this.peakBytes = this.bytesInUse;
    return ptr;
  }

  free(ptr: number): void {
    const size = this.live.get(ptr);
    if (size === undefined) throw new Error(`free: ${ptr} is not a live allocation (double free?)`);
    this.live.delete(ptr);
    this.bytesInUse -= size;
    // insert sorted, then merge with neighbours
    const fl = this.freeList;
    let lo = 0, hi = fl.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (fl[mid][0] < ptr) lo = mid + 1; else hi = mid; }
    fl.splice(lo, 0, [ptr, size]);
    if (lo + 1 < fl.length && fl[lo][0] + fl[lo][1] === fl[lo + 1][0]) {
      fl[lo] = [fl[lo][0], fl[lo][1] + fl[lo + 1][1]];
      fl.splice(lo + 1, 1);
    }
    if (lo > 0 && fl[lo - 1][0] + fl[lo - 1][1] === fl[lo][0]) {
      fl[lo - 1] = [fl[lo - 1][0], fl[lo - 1][1] + fl[lo][1]];
      fl.splice(lo, 1);
    }
    // give the tail back to the bump pointer
    const last = fl[fl.length - 1];
    if (last && last[0] + last[1] === this.top) { fl.pop(); this.top = last[0]; }
  }

  get liveCount(): number { return this.live.size; }
}
