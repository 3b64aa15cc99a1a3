// Stress: the arrival rate of customer journeys (browse, then order) ramps
// from 10/s to MAX_RATE/s (default 200: 4 times the 50 orders/s two cores
// sustain) over RAMP (20s), then holds it for DURATION (40s). The suite
// must shed what it cannot serve: the thresholds (lib/suite.js overload)
// hold admitted orders to p99 < 250 ms, refusals to p99 < 5 ms with 503 or
// 429 and Retry-After, no other 5xx, every accepted order settled exactly
// once (teardown), and every service under MAX_RSS_MB (40) resident.
import { overload, expectRefusals, prepare, journey, settle, watchMemory, num, durationMs } from './lib/suite.js';

const ramp = __ENV.RAMP || '20s';
const hold = __ENV.DURATION || '40s';

expectRefusals();

export const options = {
  // teardown waits up to SETTLE (60s) for the last orders to settle.
  teardownTimeout: '3m',
  scenarios: {
    ramp: {
      executor: 'ramping-arrival-rate',
      startRate: 10,
      timeUnit: '1s',
      preAllocatedVUs: 100,
      maxVUs: 1000,
      stages: [
        { target: num('MAX_RATE', 200), duration: ramp },
        { target: num('MAX_RATE', 200), duration: hold },
      ],
    },
    memory: { executor: 'constant-vus', exec: 'watchMemory', vus: 1, duration: `${(durationMs(ramp) + durationMs(hold)) / 1000}s` },
  },
  thresholds: {
    ...overload,
    // A suite that falls over stops the run early rather than after a minute.
    http_req_failed: [{ threshold: 'rate<0.01', abortOnFail: true, delayAbortEval: '10s' }],
  },
};

export function setup() {
  return prepare(20);
}

export default journey;
export { watchMemory };
export const teardown = settle;
