// What a benchmark run started, stopped in reverse order, once: at the end,
// on Ctrl-C and on a failure alike. Each stop is bounded so one hung process
// cannot keep the rest running.
import type { OnCleanup } from './pipeline.ts';

const STOP_TIMEOUT_MS = 15_000;

export function cleanupList(): { onCleanup: OnCleanup; cleanup(): Promise<void> } {
  const cleanups: Array<{ what: string; fn: () => Promise<void> }> = [];
  let cleaning: Promise<void> | undefined;
  return {
    onCleanup: (what, fn) => void cleanups.push({ what, fn }),
    cleanup: () =>
      (cleaning ??= (async () => {
        for (const c of cleanups.splice(0).reverse()) {
          let timer: NodeJS.Timeout | undefined;
          try {
            await Promise.race([c.fn(), new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('timed out')), STOP_TIMEOUT_MS)))]);
          } catch (err) {
            console.error(`cleanup of ${c.what} failed: ${err instanceof Error ? err.message : String(err)}`);
          } finally {
            clearTimeout(timer);
          }
        }
      })()),
  };
}
