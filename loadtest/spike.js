// Spike: a calm rate of customer journeys (CALM_RATE/s, default 20), a
// sudden burst to SPIKE_RATE/s (default 200: 4 times the 50 orders/s two
// cores sustain) within 5 s, held for DURATION (20s), then calm again. The
// suite must shed what it cannot serve during the burst and recover after
// it, with the thresholds of lib/suite.js overload (admitted orders p99 <
// 250 ms, refusals p99 < 5 ms with 503 or 429 and Retry-After, no other
// 5xx, every accepted order settled exactly once, every service under
// MAX_RSS_MB resident). About a minute.
import { overload, expectRefusals, prepare, journey, settle, watchMemory, num, durationMs } from './lib/suite.js';

const calm = num('CALM_RATE', 20);
const spike = num('SPIKE_RATE', 200);
const hold = __ENV.DURATION || '20s';

expectRefusals();

export const options = {
  // teardown waits up to SETTLE (60s) for the last orders to settle.
  teardownTimeout: '3m',
  scenarios: {
    spike: {
      executor: 'ramping-arrival-rate',
      startRate: calm,
      timeUnit: '1s',
      preAllocatedVUs: 100,
      maxVUs: 1000,
      stages: [
        { target: calm, duration: '15s' },
        { target: spike, duration: '5s' },
        { target: spike, duration: hold },
        { target: calm, duration: '5s' },
        { target: calm, duration: '15s' },
      ],
    },
    memory: { executor: 'constant-vus', exec: 'watchMemory', vus: 1, duration: `${40 + durationMs(hold) / 1000}s` },
  },
  thresholds: overload,
};

export function setup() {
  return prepare(20);
}

export default journey;
export { watchMemory };
export const teardown = settle;
