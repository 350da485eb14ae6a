// When a rate step "kept up": at least this share of the intended messages
// arrived and p99 stayed under this bound (a growing backlog shows as both).
// One rule for bench:fanout's saturation search and bench:peers' table.
export const MIN_DELIVERED_SHARE = 0.95;
export const MAX_STEP_P99_MS = 1_000;

export function keptUp(deliveredPerSec: number, expectedPerSec: number, p99Ms: number): boolean {
  if (!(expectedPerSec > 0)) return false;
  return deliveredPerSec / expectedPerSec >= MIN_DELIVERED_SHARE && p99Ms <= MAX_STEP_P99_MS;
}
