// V8 flags a role's process starts with (pushctl up, tests and benchmarks
// spawn roles the same way). The gateway allocates a frame batch per client
// write (~70k/s at 300k msgs/s): a 32 MB young generation (default 16 MB)
// halves how often it is scavenged. Measured with bench:fanout
// --latency-rate 30, three runs each, alternating: p99 31 → 20 ms (medians),
// longest GC pause 11 → 8-11 ms; GC time per second unchanged.
// --expose-gc lets the gateway ask for one major collection after a load
// ends (gateway/memory-reclaim.ts): V8's own memory reducer waits for an idle
// process, which a gateway never is.
const FLAGS: Record<string, string[]> = {
  gateway: ['--max-semi-space-size=32', '--expose-gc'],
};

export function nodeFlagsFor(role: string): string[] {
  return FLAGS[role] ?? [];
}

/** The role of a `system/<role>/main.ts` script path, if it is one. */
export function roleOfScript(script: string): string | undefined {
  return /(?:^|\/)system\/([a-z]+)\/main\.ts$/.exec(script)?.[1];
}
