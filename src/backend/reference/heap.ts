// What a reference kernel sees: typed views of the heap, indexed by byte
// pointer >> 2. Re-read on every call because the heap may have grown.
export interface Heap { f32: Float32Array; i32: Int32Array }
