// A full garbage collection on request, for a long-running daemon after a bulk change: V8 otherwise
// keeps the garbage of 100k bans (promoted to its old generation while the batch was in flight) for
// as long as allocation stays low, which in a daemon that scans once a second can be for ever.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | undefined;

export function collectGarbage(): void {
  if (gc === undefined) {
    // The documented way to reach V8's gc() without starting node with --expose-gc.
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  // V8 compacts its pages (and hands back the emptied ones) only in a collection made to reduce
  // memory; optimize-for-size asks for that one. It is switched on only for this call.
  setFlagsFromString('--optimize-for-size');
  try {
    gc();
    gc();
  } finally {
    setFlagsFromString('--no-optimize-for-size');
  }
}
