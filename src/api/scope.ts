// The low-level API's scope(), with a safety net: a scope only tracks the
// tensors made while fn runs synchronously, so an async fn leaks everything
// made after its first `await` and may have tensors disposed under it. The
// public `scope` warns (once per process) when fn returns a promise.
import { scope as trackScope } from '../tensor.js';

let warned = false;

/**
 * Runs fn and disposes every tensor made inside it except those it returns
 * (tensors found in the returned value, arrays and plain objects), which move
 * to the enclosing scope. fn must be synchronous: read results out (e.g.
 * `t.toArray()`) inside it.
 *
 * ```js
 * import { scope, Tensor, ops } from 'caitjs';
 * const y = scope(() => ops.gelu(Tensor.from([1, 2, 3], [3])).toArray());   // nothing left allocated
 * ```
 */
export function scope<T>(fn: () => T): T {
  const r = trackScope(fn);
  if (!warned && r && typeof (r as { then?: unknown }).then === 'function') {
    warned = true;
    console.warn('caitjs: scope() was given an async function (it returned a promise): tensors made after its first await are not freed by the scope. Keep the scope synchronous and await outside it.');
  }
  return r;
}
