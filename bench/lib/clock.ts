// Wall-clock microseconds with sub-millisecond resolution. The feed stamps
// the intended publish time from the same wall clock on the same machine, so
// receive time − pt is an end-to-end latency.
const origin = performance.timeOrigin;

export function nowUs(): number {
  return Math.round((origin + performance.now()) * 1000);
}
